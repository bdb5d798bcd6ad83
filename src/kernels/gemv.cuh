// GEMV for decoding at very small batches: y[R, N] = x[R, K] · W[N, K]ᵀ with R <= gemv_max_rows per launch, bf16 in,
// fp32 accumulate, bf16 or fp32 out. At one row a projection is a stream over W, and what decides its speed is the
// bytes in flight per SM (~32 GB/s per SM x ~1 us of latency on the H200). cuBLASLt's kernels at one row keep too
// few: on Llama-8B's QKV and O shapes they ran at 46-60% of the copy bandwidth (Nsight Compute, in the decode step).
//
// Each warp owns gemv_feats output features (W rows) at a time; its lanes read 16 consecutive bytes each, so one warp
// load is 512 contiguous bytes of a row, and gemv_unroll such loads per row are issued before any is used: 8 KB in
// flight per warp, 64 KB per CTA. x is read through L1 (every warp of an SM reads the same rows); W is read with
// evict-first loads so it does not push x out.
//
// Batch invariance: a row's dot products visit k in an order that depends on (K, lane) only, the lane sums are
// reduced by the same shuffle tree, and rows never interact, so row i of a launch of R rows equals the same row
// launched alone, bit for bit, for every R (tests/ops/test_cuda_gemm.cpp).
#pragma once

#include "kernels/common.cuh"

#include <cuda_bf16.h>

namespace specattn {

constexpr int gemv_threads = 256;
constexpr int gemv_max_rows = 8;
constexpr int gemv_feats = 2;  // W rows per warp at a time
constexpr int gemv_unroll = 4; // 16-byte pieces of each W row a lane has in flight

// acc += dot(w, x) over 8 bf16 pairs, in index order.
__device__ __forceinline__ float gemv_dot8(float acc, const uint4 & w, const uint4 & x) {
    const __nv_bfloat162 * wp = reinterpret_cast<const __nv_bfloat162 *>(&w);
    const __nv_bfloat162 * xp = reinterpret_cast<const __nv_bfloat162 *>(&x);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float2 wf = __bfloat1622float2(wp[j]);
        const float2 xf = __bfloat1622float2(xp[j]);
        acc = __fmaf_rn(wf.x, xf.x, acc);
        acc = __fmaf_rn(wf.y, xf.y, acc);
    }
    return acc;
}

// grid: any (warps stride over feature groups)  block: gemv_threads.  Requires K % 8 == 0 and 16-byte aligned x, W.
template <int R, bool OUT_F32> __global__ void __launch_bounds__(gemv_threads) gemv_kernel(const gemv_params p) {
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / warp_size;
    const int64_t n_warps = static_cast<int64_t>(gridDim.x) * blockDim.x / warp_size;
    const int64_t pieces = p.k / 8; // 16-byte pieces per row
    const uint4 * x4 = reinterpret_cast<const uint4 *>(p.x);
    bool waited = false; // launched as a programmatic dependent, x comes from the grid before; W does not
    for (int64_t f0 = warp * gemv_feats; f0 < p.n; f0 += n_warps * gemv_feats) {
        const uint4 * w4[gemv_feats];
#pragma unroll
        for (int f = 0; f < gemv_feats; ++f) {
            // A group past N reads its last row again and writes nothing.
            w4[f] = reinterpret_cast<const uint4 *>(p.w + min(f0 + f, p.n - 1) * p.k);
        }
        float acc[gemv_feats][R];
#pragma unroll
        for (int f = 0; f < gemv_feats; ++f) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
                acc[f][r] = 0.0f;
            }
        }
        for (int64_t base = 0; base < pieces; base += warp_size * gemv_unroll) {
            uint4 wv[gemv_feats][gemv_unroll];
#pragma unroll
            for (int u = 0; u < gemv_unroll; ++u) {
                const int64_t c = base + u * warp_size + lane;
#pragma unroll
                for (int f = 0; f < gemv_feats; ++f) {
                    wv[f][u] = c < pieces ? __ldcs(w4[f] + c) : make_uint4(0, 0, 0, 0);
                }
            }
            if (!waited) { // the first W loads are in flight while the preceding grid finishes
                pdl_wait();
                pdl_launch_dependents();
                waited = true;
            }
#pragma unroll
            for (int u = 0; u < gemv_unroll; ++u) {
                const int64_t c = base + u * warp_size + lane;
                if (c < pieces) {
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        const uint4 xv = __ldg(x4 + r * pieces + c);
#pragma unroll
                        for (int f = 0; f < gemv_feats; ++f) {
                            acc[f][r] = gemv_dot8(acc[f][r], wv[f][u], xv);
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int f = 0; f < gemv_feats; ++f) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
                const float v = warp_sum(acc[f][r]);
                if (lane == 0 && f0 + f < p.n) {
                    const int64_t o = r * p.n + f0 + f;
                    if constexpr (OUT_F32) {
                        static_cast<float *>(p.y)[o] = v;
                    } else {
                        static_cast<bf16 *>(p.y)[o] = __float2bfloat16(v);
                    }
                }
            }
        }
    }
}

} // namespace specattn
