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
// CTA: 4 warps x 2 row tiles of 16 = 128 output features, one K range (split) of 64-wide stages. W is streamed
// through a STAGES-deep cp.async pipeline in shared memory, each lane reading back exactly the 16-byte pieces it
// copied; x's stage (<= 64 rows x 64 k) is shared by the 4 warps. Split K: partial sums go to a workspace and the
// CTA of a row block that finishes last (a counter) adds them in split order 0, 1, ..., so the result is the same
// whichever CTA that is. Output rows >= R and features >= N are neither computed from garbage (zero-filled
// copies) nor written.
#pragma once

#include "kernels/kernel_params.h"
#include "kernels/mma.cuh"

#include <cuda_runtime.h>

#include <cstdint>

namespace specattn {

constexpr int skinny_gemm_threads = 128;   // 4 warps
constexpr int skinny_gemm_block_n = 128;   // output features per CTA (4 warps x 2 tiles of 16)
constexpr int skinny_gemm_stage_k = 64;    // k per pipeline stage
constexpr int skinny_gemm_max_rows = 64;   // rows of x per launch (8 mma n-tiles)
constexpr int skinny_gemm_w_loads = 8;     // 16-B W copies per lane per stage: 2 tiles x 2 row halves x 2 k chunks

template <int M_TILES, int STAGES> constexpr int skinny_gemm_smem_bytes() {
    return STAGES * (skinny_gemm_w_loads * skinny_gemm_threads * 16 + M_TILES * 8 * skinny_gemm_stage_k * 2);
}

// x stage layout: [M_TILES * 8 rows][8 pieces of 16 B], piece u of row t stored at u ^ 4 (t odd): lanes g and g+1
// of a quarter warp then read opposite halves of the 32 banks.
__device__ __forceinline__ int skinny_x_piece(int row, int piece) {
    return row * 8 + (piece ^ ((row & 1) << 2));
}

template <int M_TILES, int STAGES, bool OUT_F32>
__global__ void __launch_bounds__(skinny_gemm_threads) skinny_gemm_kernel(const skinny_gemm_params p) {
    extern __shared__ uint4 skinny_smem[];
    uint4 * w_s = skinny_smem;                                                  // [STAGES][8][threads]
    uint4 * x_s = skinny_smem + STAGES * skinny_gemm_w_loads * skinny_gemm_threads; // [STAGES][M_TILES * 8][8]

    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % 32;
    const int warp = tid / 32;
    const int g = lane / 4;
    const int c = lane % 4;
    const int m = static_cast<int>(p.m); // <= 64 (launcher)
    const int64_t k = p.k;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) * skinny_gemm_block_n;
    const int split = static_cast<int>(blockIdx.y);
    const int n_stage = static_cast<int>(k / skinny_gemm_stage_k);
    const int t_begin = static_cast<int>(static_cast<int64_t>(split) * n_stage / p.splits);
    const int t_end = static_cast<int>(static_cast<int64_t>(split + 1) * n_stage / p.splits);

    // The 4 W rows this lane copies (tile r, half h: feature row0 + 32 warp + 16 r + 8 h + g); rows >= N read
    // row 0 with 0 source bytes (zero fill).
    const bf16 * w_row[2][2];
    int w_bytes[2][2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int64_t row = row0 + warp * 32 + r * 16 + h * 8 + g;
            w_row[r][h] = p.w + (row < p.n ? row : 0) * k + c * 8;
            w_bytes[r][h] = row < p.n ? 16 : 0;
        }
    }

    const auto load_stage = [&](int t, int slot) {
        const int64_t k0 = static_cast<int64_t>(t) * skinny_gemm_stage_k;
#pragma unroll
        for (int l = 0; l < skinny_gemm_w_loads; ++l) {
            const int r = l / 4;
            const int h = (l / 2) % 2;
            const int j = l % 2;
            cp_async_16(smem_addr(&w_s[(slot * skinny_gemm_w_loads + l) * skinny_gemm_threads + tid]),
                        w_row[r][h] + k0 + j * 32, w_bytes[r][h]);
        }
#pragma unroll
        for (int e = tid; e < M_TILES * 64; e += skinny_gemm_threads) {
            const int row = e / 8;
            const int piece = e % 8;
            const bf16 * src = p.x + (row < m ? row : 0) * k + k0 + piece * 8;
            cp_async_16(smem_addr(&x_s[slot * M_TILES * 64 + skinny_x_piece(row, piece)]), src, row < m ? 16 : 0);
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

        const int slot = (t - t_begin) % STAGES;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            uint4 wv[2][2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    wv[r][h] = w_s[(slot * skinny_gemm_w_loads + (r * 2 + h) * 2 + j) * skinny_gemm_threads + tid];
                }
            }
            uint4 xv[M_TILES];
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
                xv[mt] = x_s[slot * M_TILES * 64 + skinny_x_piece(mt * 8 + g, j * 4 + c)];
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

    // acc[r][mt][i]: feature row0 + 32 warp + 16 r + g + 8 (i / 2), x row 8 mt + 2c + i % 2.
    const auto store = [&](int64_t row, int tok, float v) {
        if (OUT_F32) {
            static_cast<float *>(p.y)[tok * p.n + row] = v;
        } else {
            static_cast<bf16 *>(p.y)[tok * p.n + row] = __float2bfloat16(v);
        }
    };
    if (p.splits == 1) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
#pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int64_t row = row0 + warp * 32 + r * 16 + g + 8 * (i / 2);
                    const int tok = mt * 8 + 2 * c + i % 2;
                    if (row < p.n && tok < m) {
                        store(row, tok, acc[r][mt][i]);
                    }
                }
            }
        }
        return;
    }

    float * part = p.partial + static_cast<int64_t>(split) * skinny_gemm_max_rows * p.n; // [64, N]
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int mt = 0; mt < M_TILES; ++mt) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int64_t row = row0 + warp * 32 + r * 16 + g + 8 * (i / 2);
                const int tok = mt * 8 + 2 * c + i % 2;
                if (row < p.n && tok < m) {
                    __stcg(&part[tok * p.n + row], acc[r][mt][i]);
                }
            }
        }
    }
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
    const int n_rows = static_cast<int>(p.n - row0 < skinny_gemm_block_n ? p.n - row0 : skinny_gemm_block_n);
    for (int e = tid; e < m * skinny_gemm_block_n; e += skinny_gemm_threads) {
        const int tok = e / skinny_gemm_block_n;
        const int col = e % skinny_gemm_block_n;
        if (col < n_rows) {
            const int64_t at = tok * p.n + row0 + col;
            float v = 0.0f;
            for (int s = 0; s < p.splits; ++s) {
                v += __ldcg(&p.partial[s * skinny_gemm_max_rows * p.n + at]);
            }
            store(row0 + col, tok, v);
        }
    }
    if (tid == 0) {
        p.counters[blockIdx.x] = 0; // ready for the next launch (stream order)
    }
}

// One launch of one instance (rows p.m <= 64, fitting M_TILES): raises the instance's shared-memory limit on first
// use (allowed during stream capture: it is no stream operation). Errors are the caller's to check.
template <int M_TILES, int STAGES, bool OUT_F32> void skinny_gemm_launch(const skinny_gemm_params & p, cudaStream_t stream) {
    constexpr int smem = skinny_gemm_smem_bytes<M_TILES, STAGES>();
    static const cudaError_t attr = cudaFuncSetAttribute(skinny_gemm_kernel<M_TILES, STAGES, OUT_F32>,
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    (void)attr; // a failure shows as the launch's error
    const dim3 grid(static_cast<unsigned int>((p.n + skinny_gemm_block_n - 1) / skinny_gemm_block_n),
                    static_cast<unsigned int>(p.splits));
    skinny_gemm_kernel<M_TILES, STAGES, OUT_F32><<<grid, skinny_gemm_threads, smem, stream>>>(p);
}

} // namespace specattn
