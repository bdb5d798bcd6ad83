// Skinny GEMM for decoding: y[R, N] = x[R, K] · W[N, K]ᵀ with R <= 64 rows per launch, bf16 in, fp32 accumulate.
// At these R the product is a stream over W: the kernel's job is to keep HBM busy, every output row computed the
// same way whatever R is (batch invariance, see skinny_gemm_params).
//
// Tensor cores with the operands swapped: mma.m16n8k16's A (16 x 16) is a tile of W (16 output features x 16 k),
// its B (16 x 8) is xᵀ (16 k x 8 rows of x), so 1..8 rows waste nothing and 64 rows are 8 n8 tiles.
//
// K permutation. A dot product may visit k in any order as long as W and x agree, so each lane loads 8
// consecutive k (16 bytes) of a W row and of an x row and feeds them to two mma k-steps: for a 32-wide k chunk,
// lane (g = lane / 4, c = lane % 4) holds k = 8c..8c+7; k-step s uses its k = 8c+4s..8c+4s+3 as the logical
// columns (2c, 2c+1, 2c+8, 2c+9) of both fragments (mma.cuh gives the fragment layouts). No ldmatrix, no shuffles.
//
// CTA: 4 warps x 2 row tiles of 16 = 128 output features, one K range (split) of 128-wide stages, pipelined with
// cp.async in shared memory. NOTE(gemm): the copies are laid out for HBM, the reads for the mma fragments: each
// warp copy is 2 whole rows x 256 B (full 128-B lines; the first version copied lane-private 64-B pieces of 8 rows
// and the SMs stalled at ~22 GB/s each, 54-68% of the copy bandwidth). Tiles are swizzled (piece ^ 4 on odd rows) so
// both the copies and the fragment reads are free of bank conflicts. x's stage (<= 64 rows x 128 k) is copied the
// same way. Split K: partial sums go to a workspace and the CTA of a row block that finishes last (a counter) adds
// them in split order 0, 1, ..., so the result is the same whichever CTA that is. Output rows >= R and features
// >= N are neither computed from garbage (zero-filled copies) nor written; K need only be a multiple of 8 (the
// last stage's missing pieces are zeros, which add nothing).
//
// Measured on the H200 (bench/gemm_bench.cu, m = 1): 57-63% of the copy bandwidth for QKV and O, 77-88% for down,
// gate/up and the LM head, against 61-105% for cuBLASLt; so cublaslt_gemm uses it only when asked (gemm.h). Tried
// and dropped: a stream-K grid of exactly 2 CTAs per SM over 64-k units (commit 92d1b64): balanced SMs did not help
// (gate/up 78%), and the shorter row runs and extra partial sums cost 5-12 points at m = 1 and 2x at m = 64.
#pragma once

#include "kernels/kernel_params.h"
#include "kernels/mma.cuh"

#include <cuda_runtime.h>

#include <cstdint>

namespace specattn {

constexpr int skinny_gemm_threads = 128;   // 4 warps
constexpr int skinny_gemm_block_n = 128;   // output features per CTA (4 warps x 2 tiles of 16)
constexpr int skinny_gemm_stage_k = 128;   // k per pipeline stage: 256 B of each W row
constexpr int skinny_gemm_pieces = 16;     // 16-B pieces per row and stage
constexpr int skinny_gemm_max_rows = 64;   // rows of x per launch (8 mma n-tiles)
constexpr int skinny_gemm_max_splits = 16; // the last CTA keeps one load per split in flight

template <int M_TILES, int STAGES> constexpr int skinny_gemm_smem_bytes() {
    return STAGES * (skinny_gemm_block_n + M_TILES * 8) * skinny_gemm_pieces * 16;
}

// Partial sums' row stride: N rounded up to 4 floats, so the reduction reads float4.
__host__ __device__ constexpr int64_t skinny_gemm_partial_ld(int64_t n) {
    return (n + 3) / 4 * 4;
}

// A tile row's piece u (16 B) is stored at u ^ 4 on odd rows: a quarter warp reading pieces 4j..4j+3 of two
// adjacent rows (rows 256 B apart: same banks) then covers all 32 banks once.
__device__ __forceinline__ int skinny_piece(int row, int piece) {
    return row * skinny_gemm_pieces + (piece ^ ((row & 1) << 2));
}

template <int M_TILES, int STAGES, bool OUT_F32>
__global__ void __launch_bounds__(skinny_gemm_threads) skinny_gemm_kernel(const skinny_gemm_params p) {
    constexpr int w_stage = skinny_gemm_block_n * skinny_gemm_pieces; // uint4 per stage
    constexpr int x_stage = M_TILES * 8 * skinny_gemm_pieces;
    extern __shared__ uint4 skinny_smem[];
    uint4 * w_s = skinny_smem;                    // [STAGES][128 rows][16 pieces] swizzled
    uint4 * x_s = skinny_smem + STAGES * w_stage; // [STAGES][M_TILES * 8 rows][16 pieces] swizzled

    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % 32;
    const int warp = tid / 32;
    const int g = lane / 4;
    const int c = lane % 4;
    const int m = static_cast<int>(p.m); // <= 64 (launcher)
    const int64_t n = p.n;
    const int64_t k = p.k;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * skinny_gemm_block_n;
    const int split = static_cast<int>(blockIdx.y);
    const int n_stage = static_cast<int>((k + skinny_gemm_stage_k - 1) / skinny_gemm_stage_k);
    const int t_begin = static_cast<int>(static_cast<int64_t>(split) * n_stage / p.splits);
    const int t_end = static_cast<int>(static_cast<int64_t>(split + 1) * n_stage / p.splits);

    // Copy mapping: thread tid copies piece tid % 16 of rows tid / 16 + 8 i (i < 16 for W, < M_TILES for x).
    const int cp_piece = tid % skinny_gemm_pieces;
    const int cp_row = tid / skinny_gemm_pieces;
    const int cp_dst = skinny_piece(cp_row, cp_piece); // + 8 i rows keeps the parity
    const auto load_stage = [&](int t, int slot) {
        const int64_t kk = static_cast<int64_t>(t) * skinny_gemm_stage_k + cp_piece * 8;
        const bool k_ok = kk < k;
#pragma unroll
        for (int i = 0; i < skinny_gemm_block_n / 8; ++i) {
            const int64_t row = row0 + cp_row + 8 * i;
            const bool ok = k_ok && row < n;
            cp_async_16(smem_addr(&w_s[slot * w_stage + cp_dst + 8 * i * skinny_gemm_pieces]),
                        p.w + (ok ? row * k + kk : 0), ok ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < M_TILES; ++i) {
            const int row = cp_row + 8 * i;
            const bool ok = k_ok && row < m;
            cp_async_16(smem_addr(&x_s[slot * x_stage + cp_dst + 8 * i * skinny_gemm_pieces]),
                        p.x + (ok ? row * k + kk : 0), ok ? 16 : 0);
        }
    };

    float acc[2][M_TILES][4];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                acc[r][mt][i] = 0.0f;
            }
        }
    }

#pragma unroll
    for (int i = 0; i < STAGES - 1; ++i) {
        if (t_begin + i < t_end) {
            load_stage(t_begin + i, i);
        }
        cp_async_commit(); // empty groups keep the wait count uniform
    }
    for (int t = t_begin; t < t_end; ++t) {
        cp_async_wait<STAGES - 2>();
        __syncthreads(); // stage t is visible to all; the slot refilled below was consumed by everyone
        const int t_next = t + STAGES - 1;
        if (t_next < t_end) {
            load_stage(t_next, (t_next - t_begin) % STAGES);
        }
        cp_async_commit();

        const uint4 * ws = w_s + ((t - t_begin) % STAGES) * w_stage;
        const uint4 * xs = x_s + ((t - t_begin) % STAGES) * x_stage;
#pragma unroll
        for (int j = 0; j < skinny_gemm_stage_k / 32; ++j) {
            // Lane (g, c) takes k 32j + 8c .. +7 of its rows: W rows 32 warp + 16 r + 8 h + g, x rows 8 mt + g.
            uint4 wv[2][2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    wv[r][h] = ws[skinny_piece(warp * 32 + r * 16 + h * 8 + g, j * 4 + c)];
                }
            }
            uint4 xv[M_TILES];
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
                xv[mt] = xs[skinny_piece(mt * 8 + g, j * 4 + c)];
            }
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const uint32_t a_lo[4] = {wv[r][0].x, wv[r][1].x, wv[r][0].y, wv[r][1].y}; // k 8c+0..3
                const uint32_t a_hi[4] = {wv[r][0].z, wv[r][1].z, wv[r][0].w, wv[r][1].w}; // k 8c+4..7
#pragma unroll
                for (int mt = 0; mt < M_TILES; ++mt) {
                    mma_bf16_16816(acc[r][mt], a_lo, xv[mt].x, xv[mt].y);
                    mma_bf16_16816(acc[r][mt], a_hi, xv[mt].z, xv[mt].w);
                }
            }
        }
    }

    // acc[r][mt][i]: feature row0 + 32 warp + 16 r + g + 8 (i / 2), x row 8 mt + 2c + i % 2; put(row, tok, v) for
    // every result inside the [m, n] output.
    const auto for_each_result = [&](auto && put) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int64_t row = row0 + warp * 32 + r * 16 + g + 8 * (i / 2);
                    const int tok = mt * 8 + 2 * c + i % 2;
                    if (row < n && tok < m) {
                        put(row, tok, acc[r][mt][i]);
                    }
                }
            }
        }
    };
    const auto store = [&](int64_t row, int tok, float v) {
        if (OUT_F32) {
            static_cast<float *>(p.y)[tok * n + row] = v;
        } else {
            static_cast<bf16 *>(p.y)[tok * n + row] = __float2bfloat16(v);
        }
    };
    if (p.splits == 1) {
        for_each_result(store);
        return;
    }

    const int64_t ld = skinny_gemm_partial_ld(n);
    const int64_t split_stride = skinny_gemm_max_rows * ld;
    float * part = p.partial + split * split_stride; // [64, ld]
    for_each_result([&](int64_t row, int tok, float v) { __stcg(&part[tok * ld + row], v); });
    // The last CTA of the row block sums the splits in index order (the threadFenceReduction pattern): the
    // counter only elects who adds, never what is added in which order.
    __shared__ bool is_last;
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        is_last = atomicAdd(&p.counters[blockIdx.x], 1) == p.splits - 1;
    }
    __syncthreads();
    if (!is_last) {
        return;
    }
    __threadfence();
    // float4 of 4 features; every split's load is issued before the in-order sum (latency once, not per split).
    constexpr int vec_per_row = skinny_gemm_block_n / 4;
    for (int e = tid; e < m * vec_per_row; e += skinny_gemm_threads) {
        const int tok = e / vec_per_row;
        const int64_t col = row0 + (e % vec_per_row) * 4;
        if (col >= n) {
            continue;
        }
        const float4 * src = reinterpret_cast<const float4 *>(p.partial + tok * ld + col);
        float4 v[skinny_gemm_max_splits];
#pragma unroll
        for (int sp = 0; sp < skinny_gemm_max_splits; ++sp) {
            if (sp < p.splits) {
                v[sp] = __ldcg(src + sp * (split_stride / 4));
            }
        }
        float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int sp = 0; sp < skinny_gemm_max_splits; ++sp) {
            if (sp < p.splits) {
                sum[0] += v[sp].x;
                sum[1] += v[sp].y;
                sum[2] += v[sp].z;
                sum[3] += v[sp].w;
            }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            if (col + i < n) {
                store(col + i, tok, sum[i]);
            }
        }
    }
    if (tid == 0) {
        p.counters[blockIdx.x] = 0; // ready for the next launch (stream order)
    }
}

// One launch of one instance (rows p.m <= 64, fitting M_TILES): raises the instance's shared-memory limit on first
// use (allowed during stream capture: it is no stream operation). Errors are the caller's to check.
template <int M_TILES, int STAGES, bool OUT_F32>
void skinny_gemm_launch(const skinny_gemm_params & p, cudaStream_t stream) {
    constexpr int smem = skinny_gemm_smem_bytes<M_TILES, STAGES>();
    static const cudaError_t attr = cudaFuncSetAttribute(skinny_gemm_kernel<M_TILES, STAGES, OUT_F32>,
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    (void)attr; // a failure shows as the launch's error
    const dim3 grid(static_cast<unsigned int>((p.n + skinny_gemm_block_n - 1) / skinny_gemm_block_n),
                    static_cast<unsigned int>(p.splits));
    skinny_gemm_kernel<M_TILES, STAGES, OUT_F32><<<grid, skinny_gemm_threads, smem, stream>>>(p);
}

} // namespace specattn
