// The combine pass of the paged attention kernel (attention.cuh): merges the partial results of split KV chunks
// (flash-decoding) with their log-sum-exp, in split order, and writes the LSE of collected rows that were split.
#pragma once

#include "kernels/attention.cuh"

namespace specattn {

constexpr int attention_combine_threads = 256;

// Merges the chunks of split tiles, one CTA per (row, head): out = Σ_s 2^(lse_s - M) o_s / Σ_s 2^(lse_s - M),
// M = max_s lse_s. Four groups of 64 threads take interleaved chunks (2 dims a thread, 128 a pass) and merge them
// online (running max per group), so each chunk's LSE and partial are loaded together, unrolled so the loads are in
// flight together: one round trip to memory after pdl_wait instead of one for the maxima and one for the partials.
// The groups are then merged against their common max. The order is fixed by n_split alone, so a row's bits do
// not depend on the batch. Rows of unsplit tiles were written by the attention kernel and are left alone. Collected
// rows get their natural-log LSE here.
// grid: [R, H]  block: attention_combine_threads
__global__ void __launch_bounds__(attention_combine_threads) attention_combine_kernel(const attention_params p) {
    constexpr int GT = 64;                             // threads per group
    constexpr int NG = attention_combine_threads / GT; // chunk groups
    __shared__ float red[NG][256];
    __shared__ float red_max[NG];
    __shared__ float red_den[NG];
    const int64_t r = blockIdx.x;
    const int64_t h = blockIdx.y;
    // The plan's arrays were uploaded before the forward's first grid: read before pdl_wait.
    const int n_split = p.row_n_split[r];
    const int64_t slot0 = p.row_slot[r];
    pdl_wait();
    pdl_launch_dependents();
    if (n_split <= 1) {
        return;
    }
    const int hd = static_cast<int>(p.head_dim);
    const int gl = static_cast<int>(threadIdx.x) % GT;
    const int grp = static_cast<int>(threadIdx.x) / GT;
    const float * lse = p.partial_lse + slot0 * p.n_head + h;
    float m = -CUDART_INF_F; // this group's running max (the same in all its threads)
    float den = 0.0f;
    for (int d0 = 0; d0 < hd; d0 += 2 * GT) {
        const int d = d0 + 2 * gl;
        const int dc = min(d, hd - 2); // always a valid address: the loop stays branch-free and unrolls
        float2 num = make_float2(0.0f, 0.0f);
        m = -CUDART_INF_F;
        den = 0.0f;
#pragma unroll 8
        for (int s = grp; s < n_split; s += NG) {
            const float ls = lse[static_cast<int64_t>(s) * p.n_head];
            const float2 o = *reinterpret_cast<const float2 *>(p.partial_o + ((slot0 + s) * p.n_head + h) * hd + dc);
            const float m_new = fmaxf(m, ls);
            const float m_use = m_new == -CUDART_INF_F ? 0.0f : m_new; // empty chunks so far (lse -inf): weight 0
            const float alpha = exp2f(m - m_use);
            const float wgt = exp2f(ls - m_use);
            num.x = num.x * alpha + wgt * o.x;
            num.y = num.y * alpha + wgt * o.y;
            den = den * alpha + wgt;
            m = m_new;
        }
        if (d < hd) {
            red[grp][d] = num.x;
            red[grp][d + 1] = num.y;
        }
    }
    if (gl == 0) {
        red_max[grp] = m;
        red_den[grp] = den;
    }
    __syncthreads();
    float mx = -CUDART_INF_F;
    for (int g = 0; g < NG; ++g) {
        mx = fmaxf(mx, red_max[g]);
    }
    const float m_use = mx == -CUDART_INF_F ? 0.0f : mx;
    float scale[NG];
    float total = 0.0f;
    for (int g = 0; g < NG; ++g) {
        scale[g] = exp2f(red_max[g] - m_use);
        total += red_den[g] * scale[g];
    }
    for (int d = static_cast<int>(threadIdx.x); d < hd; d += attention_combine_threads) {
        float num = 0.0f;
        for (int g = 0; g < NG; ++g) {
            num += red[g][d] * scale[g];
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
