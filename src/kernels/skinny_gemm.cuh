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
// CTA tile: 4 warps x 2 row tiles of 16 = 128 output features ("row block") x 64 k ("unit", 16 KB of W), pipelined
// with cp.async in shared memory. NOTE(gemm): copies are laid out for HBM, reads for the mma fragments: each warp
// copy is 4 whole rows x 128 B (full lines; a first version copied lane-private 64-B pieces of 8 rows and its SMs
// stalled at ~22 GB/s each). Tiles are swizzled (piece ^ 4 on odd rows): copies and fragment reads are free of
// bank conflicts. x's unit (<= 64 rows x 64 k) is copied the same way.
//
// Stream-K. An SM streams W at ~30 GB/s at most (measured, second version: one CTA per 128 rows x K range), about
// the copy bandwidth / 132, so every SM must stay busy to the end: a grid of exactly n_cta = 2 per SM (the shared
// memory is padded so a third never fits) where CTA c takes units [c U / n_cta, (c+1) U / n_cta) of the U = row
// blocks x K units, walking K within a row block, then the next row block. A row block wholly inside one CTA is
// written directly; one shared by several CTAs gets one partial sum per CTA (slot 2c for a CTA's first row block,
// 2c+1 for its last) and the CTA that finishes it last (a counter) adds them in CTA order. n_cta depends on
// (N, K) and the device only, so every row's arithmetic is the same whatever R is. Output rows >= R and features
// >= N are never written; K need only be a multiple of 8 (missing pieces of the last unit are zeros).
#pragma once

#include "kernels/kernel_params.h"
#include "kernels/mma.cuh"

#include <cuda_runtime.h>

#include <cstdint>

namespace specattn {

constexpr int skinny_gemm_threads = 128;  // 4 warps
constexpr int skinny_gemm_block_n = 128;  // output features per row block (4 warps x 2 tiles of 16)
constexpr int skinny_gemm_stage_k = 64;   // k per unit (pipeline stage): 128 B of each W row
constexpr int skinny_gemm_pieces = 8;     // 16-B pieces per row and unit
constexpr int skinny_gemm_max_rows = 64;  // rows of x per launch (8 mma n-tiles)
// Below this much shared memory a third CTA would fit an SM and unbalance the grid of 2 per SM.
constexpr int skinny_gemm_min_smem = 80 * 1024;

template <int M_TILES, int STAGES> constexpr int skinny_gemm_smem_bytes() {
    constexpr int need = STAGES * (skinny_gemm_block_n + M_TILES * 8) * skinny_gemm_pieces * 16;
    return need > skinny_gemm_min_smem ? need : skinny_gemm_min_smem;
}

// Partial sums: [2 n_cta slots][64 rows][128 features] fp32.
constexpr int64_t skinny_gemm_slot_floats = int64_t{skinny_gemm_max_rows} * skinny_gemm_block_n;

// A tile row's piece u (16 B) is stored at u ^ 4 on odd rows: a quarter warp reading pieces 4j..4j+3 of two
// adjacent rows (128 B apart: same banks) then covers all 32 banks once.
__device__ __forceinline__ int skinny_piece(int row, int piece) {
    return row * skinny_gemm_pieces + (piece ^ ((row & 1) << 2));
}

// The CTA whose unit range holds unit u (inverse of start(c) = c U / n_cta).
__device__ __forceinline__ int skinny_cta_of(int64_t u, int64_t n_unit, int n_cta) {
    return static_cast<int>(((u + 1) * n_cta - 1) / n_unit);
}

template <int M_TILES, int STAGES, bool OUT_F32>
__global__ void __launch_bounds__(skinny_gemm_threads) skinny_gemm_kernel(const skinny_gemm_params p) {
    constexpr int w_stage = skinny_gemm_block_n * skinny_gemm_pieces; // uint4 per stage
    constexpr int x_stage = M_TILES * 8 * skinny_gemm_pieces;
    extern __shared__ uint4 skinny_smem[];
    uint4 * w_s = skinny_smem;                    // [STAGES][128 rows][8 pieces] swizzled
    uint4 * x_s = skinny_smem + STAGES * w_stage; // [STAGES][M_TILES * 8 rows][8 pieces] swizzled
    __shared__ bool is_last;

    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % 32;
    const int warp = tid / 32;
    const int g = lane / 4;
    const int c = lane % 4;
    const int m = static_cast<int>(p.m); // <= 64 (launcher)
    const int64_t n = p.n;
    const int64_t k = p.k;
    const int cta = static_cast<int>(blockIdx.x);
    const int64_t n_k_unit = (k + skinny_gemm_stage_k - 1) / skinny_gemm_stage_k; // units per row block
    const int64_t n_unit = (n + skinny_gemm_block_n - 1) / skinny_gemm_block_n * n_k_unit;
    const int64_t u_begin = static_cast<int64_t>(cta) * n_unit / p.n_cta;
    const int64_t u_end = static_cast<int64_t>(cta + 1) * n_unit / p.n_cta;

    // Copy mapping: thread tid copies piece tid % 8 of rows tid / 8 + 16 i (i < 8 for W, i < M_TILES / 2 for x).
    const int cp_piece = tid % skinny_gemm_pieces;
    const int cp_row = tid / skinny_gemm_pieces;
    const int cp_dst = skinny_piece(cp_row, cp_piece); // + 16 i rows keeps the parity
    const auto load_unit = [&](int64_t u, int slot) {
        const int64_t row0 = u / n_k_unit * skinny_gemm_block_n;
        const int64_t kk = u % n_k_unit * skinny_gemm_stage_k + cp_piece * 8;
        const bool k_ok = kk < k;
#pragma unroll
        for (int i = 0; i < skinny_gemm_block_n / 16; ++i) {
            const int64_t row = row0 + cp_row + 16 * i;
            const bool ok = k_ok && row < n;
            cp_async_16(smem_addr(&w_s[slot * w_stage + cp_dst + 16 * i * skinny_gemm_pieces]),
                        p.w + (ok ? row * k + kk : 0), ok ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < (M_TILES + 1) / 2; ++i) {
            const int row = cp_row + 16 * i;
            if (row < M_TILES * 8) {
                const bool ok = k_ok && row < m;
                cp_async_16(smem_addr(&x_s[slot * x_stage + cp_dst + 16 * i * skinny_gemm_pieces]),
                            p.x + (ok ? row * k + kk : 0), ok ? 16 : 0);
            }
        }
    };

    float acc[2][M_TILES][4];
    const auto zero_acc = [&] {
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
    };
    const auto store = [&](int64_t row, int tok, float v) {
        if (OUT_F32) {
            static_cast<float *>(p.y)[tok * n + row] = v;
        } else {
            static_cast<bf16 *>(p.y)[tok * n + row] = __float2bfloat16(v);
        }
    };

    // A row block's segment ends: acc holds its sum over this CTA's units of it.
    const auto flush = [&](int64_t rb) {
        const int64_t row0 = rb * skinny_gemm_block_n;
        const int c_first = skinny_cta_of(rb * n_k_unit, n_unit, p.n_cta);
        const int c_last = skinny_cta_of(rb * n_k_unit + n_k_unit - 1, n_unit, p.n_cta);
        // acc[r][mt][i]: feature row0 + 32 warp + 16 r + g + 8 (i / 2), x row 8 mt + 2c + i % 2.
        if (c_first == c_last) {
#pragma unroll
            for (int r = 0; r < 2; ++r) {
#pragma unroll
                for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const int col = warp * 32 + r * 16 + g + 8 * (i / 2);
                        const int tok = mt * 8 + 2 * c + i % 2;
                        if (row0 + col < n && tok < m) {
                            store(row0 + col, tok, acc[r][mt][i]);
                        }
                    }
                }
            }
            return;
        }
        const int slot_of_first = 2 * cta + (rb == u_begin / n_k_unit ? 0 : 1);
        float * part = p.partial + slot_of_first * skinny_gemm_slot_floats; // [64][128]
#pragma unroll
        for (int r = 0; r < 2; ++r) {
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int col = warp * 32 + r * 16 + g + 8 * (i / 2);
                    const int tok = mt * 8 + 2 * c + i % 2;
                    if (tok < m) {
                        __stcg(&part[tok * skinny_gemm_block_n + col], acc[r][mt][i]);
                    }
                }
            }
        }
        // The threadFenceReduction pattern: the counter elects who adds, never the order of the sum.
        __threadfence();
        __syncthreads();
        if (tid == 0) {
            is_last = atomicAdd(&p.counters[rb], 1) == c_last - c_first;
        }
        __syncthreads();
        if (!is_last) {
            return;
        }
        __threadfence();
        constexpr int vec_per_row = skinny_gemm_block_n / 4;
        constexpr int batch = 8; // contributors' loads in flight before their in-order sum
        for (int e = tid; e < m * vec_per_row; e += skinny_gemm_threads) {
            const int tok = e / vec_per_row;
            const int col = (e % vec_per_row) * 4;
            const int64_t at = tok * skinny_gemm_block_n + col;
            float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int c0 = c_first; c0 <= c_last; c0 += batch) {
                float4 v[batch];
#pragma unroll
                for (int b = 0; b < batch; ++b) {
                    const int cc = c0 + b;
                    if (cc <= c_last) {
                        const int64_t cc_first_rb = static_cast<int64_t>(cc) * n_unit / p.n_cta / n_k_unit;
                        const int slot = 2 * cc + (rb == cc_first_rb ? 0 : 1);
                        v[b] = __ldcg(reinterpret_cast<const float4 *>(p.partial + slot * skinny_gemm_slot_floats + at));
                    }
                }
#pragma unroll
                for (int b = 0; b < batch; ++b) {
                    if (c0 + b <= c_last) {
                        sum[0] += v[b].x;
                        sum[1] += v[b].y;
                        sum[2] += v[b].z;
                        sum[3] += v[b].w;
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (row0 + col + i < n) {
                    store(row0 + col + i, tok, sum[i]);
                }
            }
        }
        if (tid == 0) {
            p.counters[rb] = 0; // ready for the next launch (stream order)
        }
    };

    zero_acc();
#pragma unroll
    for (int i = 0; i < STAGES - 1; ++i) {
        if (u_begin + i < u_end) {
            load_unit(u_begin + i, i);
        }
        cp_async_commit(); // empty groups keep the wait count uniform
    }
    for (int64_t u = u_begin; u < u_end; ++u) {
        cp_async_wait<STAGES - 2>();
        __syncthreads(); // unit u is visible to all; the slot refilled below was consumed by everyone
        const int64_t u_next = u + STAGES - 1;
        if (u_next < u_end) {
            load_unit(u_next, static_cast<int>((u_next - u_begin) % STAGES));
        }
        cp_async_commit();

        const uint4 * ws = w_s + static_cast<int>((u - u_begin) % STAGES) * w_stage;
        const uint4 * xs = x_s + static_cast<int>((u - u_begin) % STAGES) * x_stage;
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
        if (u + 1 == u_end || (u + 1) % n_k_unit == 0) {
            flush(u / n_k_unit);
            zero_acc();
        }
    }
}

// One launch of one instance (rows p.m <= 64, fitting M_TILES): raises the instance's shared-memory limit on first
// use (allowed during stream capture: it is no stream operation). Errors are the caller's to check.
template <int M_TILES, int STAGES, bool OUT_F32> void skinny_gemm_launch(const skinny_gemm_params & p, cudaStream_t stream) {
    constexpr int smem = skinny_gemm_smem_bytes<M_TILES, STAGES>();
    static const cudaError_t attr = cudaFuncSetAttribute(skinny_gemm_kernel<M_TILES, STAGES, OUT_F32>,
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    (void)attr; // a failure shows as the launch's error
    skinny_gemm_kernel<M_TILES, STAGES, OUT_F32><<<p.n_cta, skinny_gemm_threads, smem, stream>>>(p);
}

} // namespace specattn
