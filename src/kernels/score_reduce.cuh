// Score reduce of Collect-2-Query (reference/specattn.md §5.4-5.5): after each layer's verify attention, sum the
// collected bf16 logits of a sink's rows and query heads into one fp32 score per position, in logit mode (Σ s) or
// weight mode (Σ exp(s − lse)); or, for logit sinks the attention kernel summed itself, its fp32 partial rows per KV
// head (32 B per position at 8 KV heads, a quarter of the two rows' logits of 32 heads). The rows are in L2 (or HBM),
// and with a few dozen instructions per 16-byte load the issue rate bounds it as much as the bytes do. A CTA owns
// 256 positions of one (job, group); each of its 8 warps takes every 8th (row, head) pair of the sink, a lane reading 8
// positions with one 16-byte load per pair into fp32 registers; the 8 warp partials are summed through shared memory
// and written coalesced. Splitting the pairs over warps (rather than looping over all of them in one thread) keeps many
// independent loads in flight even for one sequence (B 1, 32K: 128 CTAs × 8 warps × 8 loads each).
//
// grid: [ceil(max_domain / score_reduce_span), n_jobs, max_groups]; a CTA beyond its job's domain or groups
// returns at once. Every score is written (never accumulated), so no clearing pass is needed. The sum order
// (pairs split over warps) differs from the CPU reference's (heads, then rows): the same terms, fp32 rounding apart.
#pragma once

#include "kernels/common.cuh"
#include "kernels/mma.cuh"
#include "kernels/select_params.h"

#include <cuda_bf16.h>

#include <type_traits>

namespace specattn {

constexpr int score_reduce_threads = 256;
constexpr int score_reduce_warps = score_reduce_threads / warp_size;
constexpr int score_reduce_vec = 8;                             // positions per lane: one 16-byte load of bf16
constexpr int score_reduce_span = warp_size * score_reduce_vec; // positions per CTA

// A lane's 8 values of one pair at positions p0 .. p0 + 7, 0 past the domain (n_left = domain - p0): where `vec`, one
// 16-byte load of bf16 logits or two of fp32 partials; else element by element (the domain's end, unaligned rows).
template <bool PARTIALS>
__device__ __forceinline__ void score_reduce_load(const void * at, bool vec, int32_t n_left,
                                                  float (&s)[score_reduce_vec]) {
    if (PARTIALS && vec) {
        const float * part = static_cast<const float *>(at);
#pragma unroll
        for (int j = 0; j < score_reduce_vec; j += 4) {
            const float4 f = *reinterpret_cast<const float4 *>(part + j);
            s[j] = f.x;
            s[j + 1] = f.y;
            s[j + 2] = f.z;
            s[j + 3] = f.w;
        }
    } else if (vec) {
        const uint4 raw = *static_cast<const uint4 *>(at);
        const __nv_bfloat162 * b2 = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
        for (int j = 0; j < score_reduce_vec / 2; ++j) {
            const float2 f = __bfloat1622float2(b2[j]);
            s[2 * j] = f.x;
            s[2 * j + 1] = f.y;
        }
    } else {
#pragma unroll
        for (int j = 0; j < score_reduce_vec; ++j) {
            s[j] = j >= n_left ? 0.0f
                   : PARTIALS  ? static_cast<const float *>(at)[j]
                               : __bfloat162float(static_cast<const bf16 *>(at)[j]);
        }
    }
}

// Sums a lane's 8 positions over the pairs t = warp, warp + 8, ... of its group into acc. Pair t is row
// collect0 + t / heads_per_group, head h0 + t % heads_per_group: the loop steps the head by 8 and wraps it into the
// next row, so it divides once, and each mode has its own loop, since issuing the per-pair instructions is what
// bounds the kernel (docs/perf_attention.md, session 20).
template <score_reduce_mode M>
__device__ __forceinline__ void score_reduce_pairs(const score_reduce_params & p, const score_reduce_job & job,
                                                   int32_t heads_per_group, int32_t h0, int warp, int lane, int32_t p0,
                                                   float (&acc)[score_reduce_vec]) {
    constexpr bool partials = M == score_reduce_mode::score_reduce_mode_partials;
    constexpr float log2e = 1.4426950408889634f;
    const int32_t n_left = job.domain - p0;
    const int64_t row_stride = partials ? p.n_head_kv * p.partial_kv_stride : p.collect_row_stride;
    const int64_t head_stride = partials ? p.partial_kv_stride : p.collect_head_stride;
    // 16-byte loads need every (row, head) start and p0 on a 16-byte boundary (partial rows: checked at launch).
    const bool vec = n_left >= score_reduce_vec &&
                     (partials || (row_stride % score_reduce_vec == 0 && head_stride % score_reduce_vec == 0 &&
                                   (reinterpret_cast<uintptr_t>(p.logits) & 15) == 0));
    // The lane at the start of a whole 128-byte line of the row (64 logits or 32 partials: 8 or 4 lanes' loads)
    // drops it once the warp is past its loads (the discard is a write in the memory model: the barrier orders the
    // other lanes' loads of the line before it); lines at the domain's end stay. The caller makes sure no other job
    // reads the row (score_reduce_params::discard).
    constexpr int32_t per_line = partials ? 32 : 64;
    const bool drops = p.discard && lane % (per_line / score_reduce_vec) == 0 && n_left >= per_line;
    // This lane's place in pair t's row (elements) and its LSE index; stepping t by 8 moves both on by 8 heads,
    // and a wrap past the group's last head moves them into the next row.
    int32_t h = warp % heads_per_group; // head within the group
    const int64_t c = job.collect0 + warp / heads_per_group;
    int64_t off = c * row_stride + (h0 + h) * head_stride + p0;
    int64_t li = c * p.n_head + h0 + h;
    const int64_t head_step = score_reduce_warps * head_stride;
    const int64_t wrap_step = row_stride - heads_per_group * head_stride;
    const int32_t n_pairs = job.n_rows * heads_per_group;
    for (int32_t t = warp; t < n_pairs; t += score_reduce_warps) {
        const void * at =
            partials ? static_cast<const void *>(p.partials + off) : static_cast<const void *>(p.logits + off);
        float s[score_reduce_vec];
        score_reduce_load<partials>(at, vec, n_left, s);
        if constexpr (M == score_reduce_mode::score_reduce_mode_weight) {
            const float l2 = p.lse[li] * log2e;
#pragma unroll
            for (int j = 0; j < score_reduce_vec; ++j) {
                acc[j] += exp2f(fmaf(s[j], log2e, -l2));
            }
        } else {
#pragma unroll
            for (int j = 0; j < score_reduce_vec; ++j) {
                acc[j] += s[j];
            }
        }
        if (p.discard) {
            __syncwarp();
            if (drops && (reinterpret_cast<uintptr_t>(at) & 127u) == 0) {
                l2_discard_line(at);
            }
        }
        h += score_reduce_warps;
        off += head_step;
        li += score_reduce_warps;
        while (h >= heads_per_group) {
            h -= heads_per_group;
            off += wrap_step;
            li += p.n_head - heads_per_group;
        }
    }
}

__global__ void __launch_bounds__(score_reduce_threads) score_reduce_kernel(const score_reduce_params p) {
    __shared__ float red[score_reduce_warps][score_reduce_span];
    pdl_wait(); // launched as a programmatic dependent: the rows and LSEs come from the attention grids before
    pdl_launch_dependents();
    const score_reduce_job job = p.jobs[blockIdx.y];
    const int32_t g = static_cast<int32_t>(blockIdx.z);
    const int32_t pos0 = static_cast<int32_t>(blockIdx.x) * score_reduce_span;
    if (g >= job.n_groups || pos0 >= job.domain) {
        return;
    }
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;
    const int32_t p0 = pos0 + lane * score_reduce_vec;
    const bool partials = job.mode == score_reduce_mode::score_reduce_mode_partials;
    // Per group: query heads of the logit rows, or KV heads of the partial rows.
    const int32_t heads_per_group = static_cast<int32_t>(
        partials ? (job.n_groups == 1 ? p.n_head_kv : 1) : (job.n_groups == 1 ? p.n_head : p.n_head / p.n_head_kv));
    const int32_t h0 = g * heads_per_group;

    float acc[score_reduce_vec];
#pragma unroll
    for (int j = 0; j < score_reduce_vec; ++j) {
        acc[j] = 0.0f;
    }
    const auto sum_pairs = [&](auto m) {
        score_reduce_pairs<decltype(m)::value>(p, job, heads_per_group, h0, warp, lane, p0, acc);
    };
    using mode = score_reduce_mode;
    switch (job.mode) {
    case mode::score_reduce_mode_weight:
        sum_pairs(std::integral_constant<mode, mode::score_reduce_mode_weight>{});
        break;
    case mode::score_reduce_mode_partials:
        sum_pairs(std::integral_constant<mode, mode::score_reduce_mode_partials>{});
        break;
    default:
        sum_pairs(std::integral_constant<mode, mode::score_reduce_mode_logit>{});
        break;
    }
#pragma unroll
    for (int j = 0; j < score_reduce_vec; ++j) {
        red[warp][lane * score_reduce_vec + j] = acc[j];
    }
    __syncthreads();
    const int32_t pos = pos0 + static_cast<int32_t>(threadIdx.x);
    if (pos < job.domain) {
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < score_reduce_warps; ++w) {
            sum += red[w][threadIdx.x];
        }
        p.scores[job.out_offset + p.layer * p.layer_stride + g * p.group_stride + pos] = sum;
    }
}

} // namespace specattn
