// The combine pass of the paged attention kernel (attention.cuh): merges the partial results of split KV chunks
// (flash-decoding) with their log-sum-exp, in split order, and writes the LSE of collected rows that were split.
#pragma once

#include "kernels/attention.cuh"

namespace specattn {

constexpr int attention_combine_threads = 256;

// Merges the chunks of split tiles, one CTA per (row, head): out = Σ_s 2^(lse_s - M) o_s / Σ_s 2^(lse_s - M),
// M = max_s lse_s. Four groups of 64 threads take interleaved chunks (2 dims a thread, 128 a pass), unrolled so
// their loads are in flight together. Rows of unsplit tiles were written by attention_kernel and are left alone.
// Collected rows get their natural-log LSE here.
// grid: [R, H]  block: attention_combine_threads
__global__ void __launch_bounds__(attention_combine_threads) attention_combine_kernel(const attention_params p) {
    constexpr int GT = 64;                             // threads per group
    constexpr int NG = attention_combine_threads / GT; // chunk groups
    __shared__ float red[NG][256];
    __shared__ float red_den[NG];
    __shared__ float red_max[attention_combine_threads / warp_size];
    pdl_wait();
    pdl_launch_dependents();
    const int64_t r = blockIdx.x;
    const int64_t h = blockIdx.y;
    const int n_split = p.row_n_split[r];
    if (n_split <= 1) {
        return;
    }
    const int hd = static_cast<int>(p.head_dim);
    const int gl = static_cast<int>(threadIdx.x) % GT;
    const int grp = static_cast<int>(threadIdx.x) / GT;
    const int64_t slot0 = p.row_slot[r];
    const float * lse = p.partial_lse + slot0 * p.n_head + h;
    // M over the chunks: one load per thread, then a block reduction.
    float mx = -CUDART_INF_F;
    for (int s = static_cast<int>(threadIdx.x); s < n_split; s += attention_combine_threads) {
        mx = fmaxf(mx, lse[static_cast<int64_t>(s) * p.n_head]);
    }
    mx = warp_max(mx);
    if (threadIdx.x % warp_size == 0) {
        red_max[threadIdx.x / warp_size] = mx;
    }
    __syncthreads();
    mx = -CUDART_INF_F;
    for (int w = 0; w < attention_combine_threads / warp_size; ++w) {
        mx = fmaxf(mx, red_max[w]);
    }
    const float m_use = mx == -CUDART_INF_F ? 0.0f : mx;
    float den = 0.0f;
    for (int d0 = 0; d0 < hd; d0 += 2 * GT) {
        const int d = d0 + 2 * gl;
        const int dc = min(d, hd - 2); // always a valid address: the loop stays branch-free and unrolls
        float2 num = make_float2(0.0f, 0.0f);
        den = 0.0f;
#pragma unroll 8
        for (int s = grp; s < n_split; s += NG) {
            const float wgt = exp2f(lse[static_cast<int64_t>(s) * p.n_head] - m_use);
            const float2 o = *reinterpret_cast<const float2 *>(p.partial_o + ((slot0 + s) * p.n_head + h) * hd + dc);
            num.x += wgt * o.x;
            num.y += wgt * o.y;
            den += wgt;
        }
        if (d < hd) {
            red[grp][d] = num.x;
            red[grp][d + 1] = num.y;
        }
    }
    if (gl == 0) {
        red_den[grp] = den;
    }
    __syncthreads();
    float total = 0.0f;
    for (int g = 0; g < NG; ++g) {
        total += red_den[g];
    }
    for (int d = static_cast<int>(threadIdx.x); d < hd; d += attention_combine_threads) {
        float num = 0.0f;
        for (int g = 0; g < NG; ++g) {
            num += red[g][d];
        }
        p.out[(r * p.n_head + h) * hd + d] = __float2bfloat16(num / total);
    }
    if (threadIdx.x == 0 && p.collect_lse != nullptr) {
        // The row's segment: the last one starting at or before r (segments are in row order).
        int64_t lo = 0;
        int64_t hi = p.n_seg - 1;
        while (lo < hi) {
            const int64_t mid = (lo + hi + 1) / 2;
            if (p.segs[mid].row0 <= r) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        const attention_segment sg = p.segs[lo];
        const int ci = attention_detail::collect_index(sg, static_cast<int>(r - sg.row0));
        if (ci >= 0) {
            p.collect_lse[static_cast<int64_t>(ci) * p.n_head + h] = (mx + log2f(total)) * attention_detail::ln2;
        }
    }
}

} // namespace specattn
