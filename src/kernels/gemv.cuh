// GEMV for decoding at very small batches: y[R, N] = x[R, K] · W[N, K]ᵀ with R <= gemv_max_rows per launch, bf16 in,
// fp32 accumulate, bf16 or fp32 out. At these R a projection is a stream over W: what decides its speed is how
// much of W is in flight per SM, how soon the stream starts, and how little else the SMs do per byte.
//
// Tensor cores with the operands swapped, as in skinny_gemm.cuh: mma.m16n8k16's A (16 x 16) is a tile of W (16
// rows x 16 k), its B (16 x 8) is xᵀ (16 k x 8 rows of x; rows >= R are zeros). The cost is the same for every
// R <= 8 and there is no bf16 -> fp32 conversion: the FFMA GEMV this replaces did 8 R FMAs and R x conversions per
// 16 bytes of W, and ran at 34-45% of the copy bandwidth on QKV and O at R = 6-8, so the engine's tuning (which
// also times 6-row verifications) never picked it. K permutation: lane (g = lane / 4, t = lane % 4) loads 8
// consecutive k (16 bytes) of W rows g and g + 8 and of x row g, and feeds them to two mma k-steps (k 8t+0..3, then
// 8t+4..7 as the fragments' logical columns 2t, 2t+1, 2t+8, 2t+9): no ldmatrix, no shuffles, W goes from global
// memory straight into the fragment registers.
//
// Work: a CTA of gemv_mma_warps warps owns a tile of 16 W rows at a time (tiles dealt evenly over the grid); its
// warps split the tile's K into contiguous ranges of 32-k chunks and stream them in steps of gemv_unroll chunks
// (16 rows x 64 bytes per warp load, 4 KB per warp and step); the warps' partial tiles are added in warp order
// through shared memory, one barrier per tile. Programmatic dependent launch (SPECATTN_PDL): W does not depend on
// the preceding grid, x does, so each warp's first step of W is loaded before pdl_wait.
//
// NOTE(gemv): measured on the H200 (bench/gemm_bench.cu, 2026-11-29, m = 1, % of the 4.18 TB/s copy bandwidth,
// back-to-back launches / after the engine's RMSNorm or SwiGLU as in a decode step): QKV 81 / 86%, O 77 / 87%,
// gate/up 101 / 104%, down 91 / 96%, LM head 107 / 108%; 2-4 points less at 8 rows. A kernel that only reads W
// reaches 92% (QKV) and 88% (O) back to back: what remains there is launch and ramp-up. The FFMA GEMV before it:
// 64-76% for QKV and O at one row. Llama-8B batch-1 decoding (tuning picks it for all but the LM head): 196 -> 225
// tok/s at 4K, 164 -> 182 at 32K (72-76% -> 84% of the step's roofline). Tried and dropped: a register ring of
// 2-4 steps (software pipelining; no better: 3.93 against 3.89 ms of GEMV in a decode step), whole 256-byte row
// runs through a per-warp shared-memory transpose (the layout skinny_gemm.cuh's copies want; 4.1-4.6 ms), and, on
// the FFMA kernel, an L2 prefetch (cp.async.bulk.prefetch.L2) of W ahead of the loads or before pdl_wait (neutral
// up to 8 MB before the wait, 5-30% slower with more or with any lookahead while streaming).
//
// Batch invariance: a tile's k-order (the warps' ranges, their steps, the two mma k-steps of a 16-byte piece, the
// warp-order sum) depends on K only, and the mma's column c (x row c) never mixes with the other columns, so row i
// of a launch of R rows equals that row launched alone, bit for bit (tests/ops/test_cuda_gemm.cpp).
#pragma once

#include "kernels/common.cuh"
#include "kernels/mma.cuh"

#include <cuda_bf16.h>

namespace specattn {

constexpr int gemv_threads = 256;
constexpr int gemv_max_rows = 8;                         // the mma's N
constexpr int gemv_mma_warps = gemv_threads / warp_size; // K split of a tile
constexpr int gemv_mma_tile = 16;                        // W rows per tile (the mma's M)
constexpr int gemv_unroll = 4;                           // 32-k chunks of each tile row per warp step

// grid: any (CTAs stride over tiles)  block: gemv_threads.  Requires R <= 8, K % 8 == 0, 16-byte aligned x and W,
// and N, K / 8 < 2^31. Two CTAs fit an SM (__launch_bounds__: at most 128 registers).
template <bool OUT_F32> __global__ void __launch_bounds__(gemv_threads, 2) gemv_kernel(const gemv_params p) {
    constexpr int U = gemv_unroll;
    __shared__ float part[2][gemv_mma_warps][4][warp_size]; // the warps' partial tiles, by tile parity
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int wid = static_cast<int>(threadIdx.x) / warp_size;
    const int g = lane / 4;
    const int t = lane % 4;
    const auto n = static_cast<int32_t>(p.n);
    const auto rows = static_cast<int32_t>(p.m);
    const auto pieces = static_cast<int32_t>(p.k / 8);                          // 16-byte pieces per row
    const int32_t chunks = (pieces + 3) / 4;                                    // 32-k chunks per row
    const int32_t warp_chunks = (chunks + gemv_mma_warps - 1) / gemv_mma_warps; // per warp and tile
    const int32_t spt = (warp_chunks + U - 1) / U; // steps per tile, the same for every warp (barriers)
    const int32_t c0 = wid * warp_chunks;          // the warp's first chunk of a row
    const int32_t tiles = (n + gemv_mma_tile - 1) / gemv_mma_tile;
    const auto cta = static_cast<int32_t>(blockIdx.x);
    const auto n_cta = static_cast<int32_t>(gridDim.x);
    if (cta >= tiles) {
        return; // the whole CTA
    }
    const int32_t steps = ((tiles - 1 - cta) / n_cta + 1) * spt; // this CTA's tiles x steps per tile
    const uint4 * w4 = reinterpret_cast<const uint4 *>(p.w);
    const uint4 * x4 = reinterpret_cast<const uint4 *>(p.x);
    // Step st: tile cta + (st / spt) * n_cta, chunks c0 + (st % spt) * U + u of its rows. wv[u]: row g, wv[U + u]:
    // row g + 8 (rows past N read row N - 1 again and write nothing; pieces past the warp's range or K are zeros).
    uint4 wv[2 * U];
    const auto load = [&](int32_t st) {
        const int32_t tile = cta + st / spt * n_cta;
        const int32_t s = st % spt;
#pragma unroll
        for (int i = 0; i < 2 * U; ++i) {
            const int32_t pc = 4 * (i % U) + t;
            const int32_t gp = (c0 + s * U) * 4 + pc;
            const int32_t row = min(tile * gemv_mma_tile + (i < U ? g : g + 8), n - 1);
            const bool ok = s * U + pc / 4 < warp_chunks && gp < pieces;
            wv[i] = ok ? __ldcs(w4 + static_cast<int64_t>(row) * pieces + gp) : make_uint4(0, 0, 0, 0);
        }
    };

    // NOTE(gemv): steps > 0 always holds here, but with the test nvcc 13.0 emits the instructions measured above
    // (102 registers); without it, 100 registers and another schedule, which measured 2-6% slower on gate/up and
    // down in a later run on another machine (not separable from that machine's variance; keep until re-measured).
    if (steps > 0) {
        load(0);
    }
    pdl_wait(); // launched as a programmatic dependent: x comes from the grid before, W does not
    pdl_launch_dependents();

    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int32_t st = 0; st < steps; ++st) {
        const int32_t s = st % spt;
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int32_t gp = (c0 + s * U + u) * 4 + t;
            const bool ok = s * U + u < warp_chunks && gp < pieces && g < rows;
            const uint4 xv = ok ? __ldg(x4 + static_cast<int64_t>(g) * pieces + gp) : make_uint4(0, 0, 0, 0);
            const uint32_t a_lo[4] = {wv[u].x, wv[U + u].x, wv[u].y, wv[U + u].y}; // k 8t + 0..3
            const uint32_t a_hi[4] = {wv[u].z, wv[U + u].z, wv[u].w, wv[U + u].w}; // k 8t + 4..7
            mma_bf16_16816(acc, a_lo, xv.x, xv.y);
            mma_bf16_16816(acc, a_hi, xv.z, xv.w);
        }
        if (st + 1 < steps) {
            load(st + 1);
        }
        if (s == spt - 1) { // the tile's K is done: add the warps' partial tiles in warp order
            const int32_t tile = cta + st / spt * n_cta;
            const int par = (st / spt) & 1; // a barrier per tile: the buffer written next was read two tiles ago
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                part[par][wid][r][lane] = acc[r];
                acc[r] = 0.0f;
            }
            __syncthreads();
            if (threadIdx.x < gemv_mma_tile * gemv_max_rows) {
                const int i = static_cast<int>(threadIdx.x) / gemv_max_rows; // tile row
                const int c = static_cast<int>(threadIdx.x) % gemv_max_rows; // x row
                const int32_t row = tile * gemv_mma_tile + i;
                if (c < rows && row < n) {
                    // acc[r] of lane (g, t) holds tile row g (r < 2) or g + 8 (r >= 2), x row 2t + r % 2
                    const int src = (i % 8) * 4 + c / 2;
                    const int reg = (i / 8) * 2 + c % 2;
                    float v = part[par][0][reg][src];
#pragma unroll
                    for (int w = 1; w < gemv_mma_warps; ++w) {
                        v += part[par][w][reg][src];
                    }
                    const int64_t o = static_cast<int64_t>(c) * n + row;
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
