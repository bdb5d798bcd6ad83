// CPU reference ops against direct, double-precision computations of their definitions.
#include "backend/cpu/ops.h"
#include "model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace specattn;

namespace {
std::vector<float> random_vec(int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float & x : v) {
        x = d(rng);
    }
    return v;
}
} // namespace

TEST(cpu_ops, matmul_matches_double_reference_on_odd_shapes) {
    for (int64_t n_rows : {1, 3, 17, 40}) {
        matrix w;
        w.n_out = 37;
        w.n_in = 97;
        w.w = random_vec(w.n_out * w.n_in, 1);
        const std::vector<float> x = random_vec(n_rows * w.n_in, 2);
        const std::vector<float> b = random_vec(w.n_out, 3);
        std::vector<float> y(static_cast<size_t>(n_rows * w.n_out));
        cpu_matmul(x.data(), n_rows, w, b.data(), y.data());
        for (int64_t r = 0; r < n_rows; ++r) {
            for (int64_t o = 0; o < w.n_out; ++o) {
                double ref = b[o];
                for (int64_t i = 0; i < w.n_in; ++i) {
                    ref += static_cast<double>(x[r * w.n_in + i]) * w.w[o * w.n_in + i];
                }
                ASSERT_NEAR(y[r * w.n_out + o], ref, 1e-4) << "row " << r << " out " << o;
            }
        }
    }
}

TEST(cpu_ops, rmsnorm_definition) {
    const std::vector<float> x = random_vec(2 * 33, 4);
    const std::vector<float> w = random_vec(33, 5);
    std::vector<float> y(x.size());
    cpu_rmsnorm(x.data(), 2, 33, w.data(), 1e-5f, y.data());
    for (int r = 0; r < 2; ++r) {
        double ss = 0;
        for (int i = 0; i < 33; ++i) {
            ss += static_cast<double>(x[r * 33 + i]) * x[r * 33 + i];
        }
        const double inv = 1.0 / std::sqrt(ss / 33 + 1e-5);
        for (int i = 0; i < 33; ++i) {
            EXPECT_NEAR(y[r * 33 + i], x[r * 33 + i] * inv * w[i], 1e-5);
        }
    }
}

TEST(cpu_ops, rope_layouts_rotate_the_right_pairs) {
    const int64_t hd = 8;
    rope_params rp;
    rp.theta = 100.0f;
    const std::vector<float> inv = rope_inv_freq(rp, hd);
    ASSERT_EQ(inv.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_NEAR(inv[i], std::pow(100.0, -2.0 * i / hd), 1e-7);
    }
    const std::vector<float> x = random_vec(2 * hd, 6);
    const int64_t pos = 7;
    for (rope_layout layout : {rope_layout::rope_layout_interleaved, rope_layout::rope_layout_half_split}) {
        std::vector<float> y = x;
        cpu_rope(y.data(), 2, hd, pos, inv.data(), layout);
        for (int h = 0; h < 2; ++h) {
            for (int i = 0; i < 4; ++i) {
                const int a = layout == rope_layout::rope_layout_interleaved ? 2 * i : i;
                const int b = layout == rope_layout::rope_layout_interleaved ? 2 * i + 1 : i + 4;
                const double ang = pos * static_cast<double>(inv[i]);
                const double x0 = x[h * hd + a];
                const double x1 = x[h * hd + b];
                EXPECT_NEAR(y[h * hd + a], x0 * std::cos(ang) - x1 * std::sin(ang), 1e-5);
                EXPECT_NEAR(y[h * hd + b], x0 * std::sin(ang) + x1 * std::cos(ang), 1e-5);
            }
        }
    }
}

TEST(cpu_ops, llama3_rope_scaling_bands) {
    // Llama-3.1's published parameters: factor 8, low 1, high 4, original context 8192, theta 500000, head_dim 128.
    rope_params rp;
    rp.theta = 500000.0f;
    rp.scaling = rope_scaling_type::rope_scaling_llama3;
    rp.factor = 8.0f;
    rp.low_freq_factor = 1.0f;
    rp.high_freq_factor = 4.0f;
    rp.original_n_ctx = 8192;
    const std::vector<float> scaled = rope_inv_freq(rp, 128);
    rp.scaling = rope_scaling_type::rope_scaling_none;
    const std::vector<float> base = rope_inv_freq(rp, 128);
    int n_kept = 0, n_divided = 0, n_blended = 0;
    for (size_t i = 0; i < base.size(); ++i) {
        const double wavelen = 2 * M_PI / base[i];
        if (wavelen < 8192.0 / 4) {
            EXPECT_FLOAT_EQ(scaled[i], base[i]);
            ++n_kept;
        } else if (wavelen > 8192.0 / 1) {
            EXPECT_FLOAT_EQ(scaled[i], base[i] / 8);
            ++n_divided;
        } else {
            const double smooth = (8192.0 / wavelen - 1) / (4 - 1);
            EXPECT_NEAR(scaled[i], (1 - smooth) * base[i] / 8 + smooth * base[i], 1e-6 * base[i]);
            ++n_blended;
        }
    }
    EXPECT_GT(n_kept, 0);
    EXPECT_GT(n_divided, 0);
    EXPECT_GT(n_blended, 0);
}

TEST(cpu_ops, swiglu_definition) {
    const std::vector<float> g = random_vec(19, 7);
    const std::vector<float> u = random_vec(19, 8);
    std::vector<float> y(19);
    cpu_swiglu(g.data(), u.data(), 19, y.data());
    for (int i = 0; i < 19; ++i) {
        EXPECT_NEAR(y[i], g[i] / (1 + std::exp(-static_cast<double>(g[i]))) * u[i], 1e-6);
    }
}
