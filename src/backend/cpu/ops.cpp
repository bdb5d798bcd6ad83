#include "backend/cpu/ops.h"

#include <cmath>

namespace specattn {

float cpu_dot(const float * a, const float * b, int64_t n) {
    float sum = 0.0f;
    // NOTE(specattn): a SIMD reduction reorders the sum; fp32 error stays ~1e-7 relative, far inside our tolerances.
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) {
        sum += a[i] * b[i];
    }
    return sum;
}

void cpu_matmul(const float * x, int64_t n_rows, const matrix & w, const float * bias, float * y) {
    const int64_t n_in = w.n_in;
    const int64_t n_out = w.n_out;
    // Tiles of rows so a weight row, loaded once, serves many input rows while they stay in cache.
    constexpr int64_t row_tile = 16;
    for (int64_t r0 = 0; r0 < n_rows; r0 += row_tile) {
        const int64_t r1 = r0 + row_tile < n_rows ? r0 + row_tile : n_rows;
#pragma omp parallel for schedule(static) if (n_out * n_in * (r1 - r0) > 32768)
        for (int64_t o = 0; o < n_out; ++o) {
            const float * wr = w.row(o);
            const float b = bias != nullptr ? bias[o] : 0.0f;
            for (int64_t r = r0; r < r1; ++r) {
                y[r * n_out + o] = cpu_dot(x + r * n_in, wr, n_in) + b;
            }
        }
    }
}

void cpu_rmsnorm(const float * x, int64_t n_rows, int64_t n, const float * w, float eps, float * y) {
    for (int64_t r = 0; r < n_rows; ++r) {
        const float * xr = x + r * n;
        float * yr = y + r * n;
        float ss = 0.0f;
        for (int64_t i = 0; i < n; ++i) {
            ss += xr[i] * xr[i];
        }
        const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
        for (int64_t i = 0; i < n; ++i) {
            yr[i] = w[i] * (xr[i] * scale);
        }
    }
}

void cpu_rope(float * v, int64_t n_head, int64_t head_dim, int64_t pos, const float * inv_freq, rope_layout layout) {
    const int64_t half = head_dim / 2;
    for (int64_t i = 0; i < half; ++i) {
        // fp32 angle, as transformers computes position * inv_freq.
        const float angle = static_cast<float>(pos) * inv_freq[i];
        const float c = std::cos(angle);
        const float s = std::sin(angle);
        for (int64_t h = 0; h < n_head; ++h) {
            float * vh = v + h * head_dim;
            // The two elements rotated together: adjacent (llama2.c) or half a head apart (HF rotate_half).
            const int64_t a = layout == rope_layout::rope_layout_interleaved ? 2 * i : i;
            const int64_t b = layout == rope_layout::rope_layout_interleaved ? 2 * i + 1 : i + half;
            const float x0 = vh[a];
            const float x1 = vh[b];
            vh[a] = x0 * c - x1 * s;
            vh[b] = x0 * s + x1 * c;
        }
    }
}

void cpu_swiglu(const float * gate, const float * up, int64_t n, float * out) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void cpu_add(float * out, const float * x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        out[i] += x[i];
    }
}

} // namespace specattn
