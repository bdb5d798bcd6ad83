// The skinny GEMM (kernels/skinny_gemm.cuh) against a double-precision CPU product of the same bf16 inputs, on odd
// shapes (features not a multiple of the 128-feature CTA tile, K not a power of two, rows spanning several 64-row
// chunks, uneven K splits), with NaN-poisoned output padding, and bit-exact batch invariance: row i of any run
// equals the 1-row run of row i alone, through the launcher and through cublaslt_gemm's invariant path.
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/gemm.h"
#include "ops_test_util.h"

#include <cstring>
#include <string>

using namespace specattn;
using namespace specattn::test;

namespace {

struct gemm_case {
    int64_t m, n, k;
    bool out_f32;
    int32_t splits; // 0: the policy's (skinny_gemm_splits)
    std::string vars() const {
        return "m " + std::to_string(m) + " n " + std::to_string(n) + " k " + std::to_string(k) +
               (out_f32 ? " f32" : " bf16") + " splits " + std::to_string(splits);
    }
};

// y = x · wᵀ in double on the bf16 values.
std::vector<float> reference(const std::vector<float> & x, const std::vector<float> & w, int64_t m, int64_t n,
                             int64_t k) {
    std::vector<float> y(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            double s = 0.0;
            for (int64_t l = 0; l < k; ++l) {
                s += static_cast<double>(x[static_cast<size_t>(i * k + l)]) * w[static_cast<size_t>(j * k + l)];
            }
            y[static_cast<size_t>(i * n + j)] = static_cast<float>(s);
        }
    }
    return y;
}

// A launcher call with its own workspace; y must hold m rows (more is padding the kernel must not touch).
struct skinny_runner {
    device_buffer partial;
    device_buffer counters;
    skinny_runner(int64_t n, int32_t splits)
        : partial(std::max<size_t>(16, skinny_gemm_partial_bytes(n, splits))),
          counters(static_cast<size_t>(skinny_gemm_counters(n)) * sizeof(int32_t)) {
        SPECATTN_CUDA_CHECK(cudaMemset(counters.as<void>(), 0, counters.bytes()));
    }
    void run(const bf16 * x, const bf16 * w, void * y, int64_t m, int64_t n, int64_t k, int32_t splits, bool f32) {
        skinny_gemm_params p;
        p.x = x;
        p.w = w;
        p.y = y;
        p.partial = partial.as<float>();
        p.counters = counters.as<int32_t>();
        p.m = m;
        p.n = n;
        p.k = k;
        p.splits = splits;
        p.out_f32 = f32;
        launch_skinny_gemm(p, nullptr);
        SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
    }
};

// The output as floats; elements past m * n must still hold the poison.
std::vector<float> download_out(const device_buffer & y, int64_t m, int64_t n, bool f32, size_t padded,
                                bool & padding_ok) {
    std::vector<float> out(static_cast<size_t>(m * n));
    padding_ok = true;
    if (f32) {
        const std::vector<float> h = download<float>(y, padded);
        std::copy(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(out.size()), out.begin());
        for (size_t i = out.size(); i < padded; ++i) {
            padding_ok = padding_ok && std::isnan(h[i]);
        }
    } else {
        const std::vector<uint16_t> h = download<uint16_t>(y, padded);
        for (size_t i = 0; i < out.size(); ++i) {
            out[i] = bf16_to_f32(h[i]);
        }
        for (size_t i = out.size(); i < padded; ++i) {
            padding_ok = padding_ok && h[i] == 0xffff;
        }
    }
    return out;
}

void poison(device_buffer & y) {
    SPECATTN_CUDA_CHECK(cudaMemset(y.as<void>(), 0xff, y.bytes())); // all-ones: NaN in bf16 and fp32
}

} // namespace

TEST(cuda_gemm, skinny_matches_cpu_reference) {
    SPECATTN_REQUIRE_GPU();
    const int n_sm = cuda_sm_count();
    std::vector<gemm_case> cases;
    // n 333 = 2 full CTA tiles + 77 features; k 2368 = 18.5 stages of 128 (uneven splits, a half last stage);
    // n 200, k 1000: 8 stages, the last 104 wide; n 97, k 296: one CTA, 3 stages.
    for (int64_t m : {1, 3, 7, 17, 64, 65, 130}) {
        cases.push_back({m, 333, 2368, false, 0});
        cases.push_back({m, 333, 2368, true, 0});
    }
    for (int32_t s : {1, 2, 3, 7}) {
        cases.push_back({5, 200, 1000, false, s});
        cases.push_back({33, 200, 1000, true, s});
    }
    for (int64_t m : {2, 40}) {
        cases.push_back({m, 97, 296, false, 0});
        cases.push_back({m, 97, 296, true, 2});
    }
    for (const gemm_case & cs : cases) {
        SCOPED_TRACE(cs.vars());
        const int32_t splits = cs.splits > 0 ? cs.splits : skinny_gemm_splits(cs.n, cs.k, n_sm, size_t{64} << 20);
        const std::vector<float> xf = from_bf16(to_bf16(random_vec(static_cast<size_t>(cs.m * cs.k), 11)));
        const std::vector<float> wf =
            from_bf16(to_bf16(random_vec(static_cast<size_t>(cs.n * cs.k), 12, -0.05f, 0.05f)));
        const device_buffer x = upload(to_bf16(xf));
        const device_buffer w = upload(to_bf16(wf));
        const size_t elem = cs.out_f32 ? 4 : 2;
        const size_t padded = static_cast<size_t>(cs.m * cs.n) + 1000;
        device_buffer y(padded * elem);
        poison(y);
        skinny_runner runner(cs.n, splits);
        runner.run(bptr(x), bptr(w), y.as<void>(), cs.m, cs.n, cs.k, splits, cs.out_f32);
        bool padding_ok = false;
        const std::vector<float> out = download_out(y, cs.m, cs.n, cs.out_f32, padded, padding_ok);
        const std::vector<float> ref = reference(xf, wf, cs.m, cs.n, cs.k);
        EXPECT_TRUE(padding_ok) << "output padding written";
        const double err = rel_l2(out.data(), ref.data(), out.size());
        EXPECT_LT(err, cs.out_f32 ? tol_f32_out : tol_bf16_out) << "splits " << splits;
    }
}

// Row i of an m-row run equals the 1-row run of row i (x offset to that row), bit for bit, for every row, through
// the launcher (policy splits and an explicit uneven split) and through cublaslt_gemm's invariant path.
TEST(cuda_gemm, skinny_rows_do_not_depend_on_the_number_of_rows) {
    SPECATTN_REQUIRE_GPU();
    const int n_sm = cuda_sm_count();
    struct shape {
        int64_t n, k;
        bool f32;
    };
    cublaslt_gemm gemm(size_t{32} << 20, /*skinny=*/true);
    for (const shape & sh : {shape{333, 2368, false}, shape{1536, 1024, false}, shape{8192, 512, true}}) {
        const int64_t m_max = 130;
        const device_buffer x = upload(to_bf16(random_vec(static_cast<size_t>(m_max * sh.k), 21)));
        const device_buffer w = upload(to_bf16(random_vec(static_cast<size_t>(sh.n * sh.k), 22, -0.05f, 0.05f)));
        const size_t elem = sh.f32 ? 4 : 2;
        const size_t row_bytes = static_cast<size_t>(sh.n) * elem;
        device_buffer y(static_cast<size_t>(m_max) * row_bytes);
        const int32_t policy = skinny_gemm_splits(sh.n, sh.k, n_sm, size_t{64} << 20);
        for (int32_t splits : {policy, 3}) {
            skinny_runner runner(sh.n, splits);
            // via: 0 the launcher, 1 cublaslt_gemm (its own policy split)
            for (int via = 0; via < (splits == policy ? 2 : 1); ++via) {
                const auto run = [&](int64_t row0, int64_t m) {
                    const bf16 * xr = bptr(x) + row0 * sh.k;
                    if (via == 0) {
                        runner.run(xr, bptr(w), y.as<void>(), m, sh.n, sh.k, splits, sh.f32);
                    } else {
                        gemm.run(xr, bptr(w), y.as<void>(), sh.f32 ? gemm_out::gemm_out_f32 : gemm_out::gemm_out_bf16,
                                 m, sh.n, sh.k, nullptr, /*invariant=*/true);
                    }
                    return download<unsigned char>(y, static_cast<size_t>(m) * row_bytes);
                };
                std::vector<std::vector<unsigned char>> single(static_cast<size_t>(m_max));
                for (int64_t i = 0; i < m_max; ++i) {
                    single[static_cast<size_t>(i)] = run(i, 1);
                }
                for (int64_t m : {7, 64, 130}) {
                    const std::vector<unsigned char> out = run(0, m);
                    int64_t n_bad = 0;
                    for (int64_t i = 0; i < m; ++i) {
                        n_bad += std::memcmp(out.data() + i * row_bytes, single[static_cast<size_t>(i)].data(),
                                             row_bytes) != 0;
                    }
                    EXPECT_EQ(n_bad, 0) << "rows of an m " << m << " run differ from 1-row runs (n " << sh.n << " k "
                                        << sh.k << " splits " << splits << " via " << (via ? "gemm" : "launcher")
                                        << ")";
                }
            }
        }
    }
}

// Shapes the skinny GEMM does not take (K not a multiple of 8: rows not 16-B aligned) stay on cuBLASLt's
// invariant algorithm.
TEST(cuda_gemm, unsupported_shapes_fall_back_to_cublaslt) {
    SPECATTN_REQUIRE_GPU();
    EXPECT_FALSE(skinny_gemm_supported(256, 100));
    const int64_t m = 5;
    const int64_t n = 256;
    const int64_t k = 100;
    const std::vector<float> xf = from_bf16(to_bf16(random_vec(static_cast<size_t>(m * k), 31)));
    const std::vector<float> wf = from_bf16(to_bf16(random_vec(static_cast<size_t>(n * k), 32, -0.05f, 0.05f)));
    const device_buffer x = upload(to_bf16(xf));
    const device_buffer w = upload(to_bf16(wf));
    device_buffer y(static_cast<size_t>(m * n) * sizeof(float));
    cublaslt_gemm gemm(size_t{32} << 20, /*skinny=*/true);
    gemm.run(bptr(x), bptr(w), y.as<void>(), gemm_out::gemm_out_f32, m, n, k, nullptr, /*invariant=*/true);
    const std::vector<float> out = download<float>(y, static_cast<size_t>(m * n));
    const std::vector<float> ref = reference(xf, wf, m, n, k);
    EXPECT_LT(rel_l2(out.data(), ref.data(), out.size()), tol_f32_out);
}

// The GEMV (kernels/gemv.cuh) against the double-precision product on odd shapes (features not a multiple of the
// 16-row tile, K not a multiple of the 8 warps x 32-k split, so that some warps have a partial range or none, and
// a K of one piece; more tiles than CTAs (N 9001), so CTAs loop; rows spanning several 8-row groups), NaN-poisoned
// padding untouched; and every row of an m-row run equal to its 1-row run bit for bit.
TEST(cuda_gemm, gemv_matches_cpu_reference_and_rows_do_not_depend_on_the_number_of_rows) {
    SPECATTN_REQUIRE_GPU();
    const int n_sm = cuda_sm_count();
    struct shape {
        int64_t n, k;
    };
    for (const shape & sh : {shape{333, 2368}, shape{97, 296}, shape{1, 8}, shape{4099, 1032}, shape{9001, 264}}) {
        for (bool f32 : {false, true}) {
            for (int64_t m : {1, 3, 6, 8, 9, 19}) {
                const gemm_case cs{m, sh.n, sh.k, f32, 0};
                SCOPED_TRACE("gemv " + cs.vars());
                const std::vector<float> xf = from_bf16(to_bf16(random_vec(static_cast<size_t>(m * sh.k), 21)));
                const std::vector<float> wf =
                    from_bf16(to_bf16(random_vec(static_cast<size_t>(sh.n * sh.k), 22, -0.05f, 0.05f)));
                const device_buffer x = upload(to_bf16(xf));
                const device_buffer w = upload(to_bf16(wf));
                const size_t elem = f32 ? 4 : 2;
                const size_t padded = static_cast<size_t>(m * sh.n) + 1000;
                device_buffer y(padded * elem);
                poison(y);
                gemv_params p;
                p.x = bptr(x);
                p.w = bptr(w);
                p.y = y.as<void>();
                p.m = m;
                p.n = sh.n;
                p.k = sh.k;
                p.out_f32 = f32;
                launch_gemv(p, n_sm, nullptr);
                SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
                bool padding_ok = false;
                const std::vector<float> out = download_out(y, m, sh.n, f32, padded, padding_ok);
                const std::vector<float> ref = reference(xf, wf, m, sh.n, sh.k);
                EXPECT_TRUE(padding_ok) << "output padding written";
                EXPECT_LT(rel_l2(out.data(), ref.data(), out.size()), f32 ? tol_f32_out : tol_bf16_out);
                for (int64_t i = 0; i < m; ++i) { // row i alone
                    device_buffer y1(static_cast<size_t>(sh.n) * elem);
                    gemv_params q = p;
                    q.x = bptr(x) + i * sh.k;
                    q.y = y1.as<void>();
                    q.m = 1;
                    launch_gemv(q, n_sm, nullptr);
                    SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
                    bool ignored = false;
                    const std::vector<float> one = download_out(y1, 1, sh.n, f32, static_cast<size_t>(sh.n), ignored);
                    ASSERT_EQ(std::memcmp(one.data(), out.data() + i * sh.n, one.size() * sizeof(float)), 0)
                        << "row " << i << " of " << m;
                }
            }
        }
    }
}
