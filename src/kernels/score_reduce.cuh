// Score reduce of Collect-2-Query (reference/specattn.md §5.4-5.5): after each layer's verify attention, sum the
// collected bf16 logits of a sink's rows and query heads into one fp32 score per position, in logit mode (Σ s) or
// weight mode (Σ exp(s − lse)). Bandwidth-bound: each thread owns 8 consecutive positions, reads them with one
// 16-byte load per (row, head) and accumulates in fp32 registers; the sum order is rows, then heads (the CPU
// reference's order is heads, then rows: the same terms, fp32 rounding apart).
//
// grid: [ceil(max_domain / (score_reduce_threads * 8)), n_jobs, max_groups]; a CTA beyond its job's domain or
// groups returns at once. Every score is written (never accumulated), so no clearing pass is needed.
#pragma once

#include "kernels/common.cuh"
#include "kernels/select_params.h"

#include <cuda_bf16.h>

namespace specattn {

constexpr int score_reduce_threads = 128;
constexpr int score_reduce_vec = 8; // positions per thread: one 16-byte load of bf16

__global__ void __launch_bounds__(score_reduce_threads) score_reduce_kernel(const score_reduce_params p) {
    const score_reduce_job job = p.jobs[blockIdx.y];
    const int32_t g = static_cast<int32_t>(blockIdx.z);
    const int32_t p0 = (static_cast<int32_t>(blockIdx.x) * score_reduce_threads + static_cast<int32_t>(threadIdx.x)) *
                       score_reduce_vec;
    if (g >= job.n_groups || p0 >= job.domain) {
        return;
    }
    const int32_t heads_per_group = static_cast<int32_t>(job.n_groups == 1 ? p.n_head : p.n_head / p.n_head_kv);
    const int32_t h0 = g * heads_per_group;
    const bool weight = job.mode == score_reduce_mode::score_reduce_mode_weight;
    const bool full = p0 + score_reduce_vec <= job.domain;
    // 16-byte loads need every (row, head) start and p0 on a 16-byte boundary.
    const bool vec = full && p.collect_row_stride % score_reduce_vec == 0 &&
                     p.collect_head_stride % score_reduce_vec == 0 &&
                     (reinterpret_cast<uintptr_t>(p.logits) & 15) == 0;
    constexpr float log2e = 1.4426950408889634f;

    float acc[score_reduce_vec];
#pragma unroll
    for (int j = 0; j < score_reduce_vec; ++j) {
        acc[j] = 0.0f;
    }
    for (int32_t r = 0; r < job.n_rows; ++r) {
        const int64_t c = job.collect0 + r;
        const bf16 * base = p.logits + c * p.collect_row_stride + p0;
#pragma unroll 4
        for (int32_t hh = 0; hh < heads_per_group; ++hh) {
            const int64_t h = h0 + hh;
            const bf16 * src = base + h * p.collect_head_stride;
            float s[score_reduce_vec];
            if (vec) {
                const uint4 raw = *reinterpret_cast<const uint4 *>(src);
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
                    s[j] = p0 + j < job.domain ? __bfloat162float(src[j]) : 0.0f;
                }
            }
            if (weight) {
                const float l2 = p.lse[c * p.n_head + h] * log2e;
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
        }
    }
    float * out = p.scores + job.out_offset + p.layer * p.layer_stride + g * p.group_stride + p0;
    if (full && (reinterpret_cast<uintptr_t>(out) & 15) == 0) {
        reinterpret_cast<float4 *>(out)[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
        reinterpret_cast<float4 *>(out)[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
    } else {
#pragma unroll
        for (int j = 0; j < score_reduce_vec; ++j) {
            if (p0 + j < job.domain) {
                out[j] = acc[j];
            }
        }
    }
}

} // namespace specattn
