// Attention of many rows over the paged KV cache, GQA-packed and split over KV (flash-decoding).
//
// One CTA owns one KV head and a tile of rows of one sequence segment with ALL G query heads of that KV head:
// up to attention_tile_queries (row, head) query vectors. It streams the tile's causal KV range [kv_begin, kv_end)
// in blocks of attention_kv_block positions, so each KV page is read once per tile and pass: once for a decode step
// or a verify pass (all their rows fit one tile), once per tile of a prefill chunk. Long ranges are split into
// chunks, one CTA each (the host plan in backend/cuda/attention_plan.cpp chooses them); each chunk leaves its
// normalized output and log-sum-exp, and attention_combine_kernel merges them. Unsplit tiles write `out` directly.
//
// Per CTA, for each KV block: K, V -> shared memory (fp32); S = Q Kᵀ with the causal / sliding-window mask per
// row; an online softmax in log2 units (the scale carries log2 e); O = O * alpha + P V in registers.
// Positions outside [kv_begin, kv_end) are never read from the pools, so unwritten (NaN) slots cannot leak in.
//
// NOTE(cuda): this is the reference-correct CUDA-core kernel. Prefill and long verify tiles are compute-heavy;
// a tensor-core (wgmma / mma.sync) prefill kernel is future work, as is a faster decode path (bf16 smem, cp.async).
//
// HD is the padded head dim (64, 128 or 256): instantiated for exactly 64 and 128 (the fast paths), and used
// padded for any other even head dim <= 256 (runtime head_dim, zero-padded in shared memory).
#pragma once

#include "kernels/common.cuh"

#include <math_constants.h>

namespace specattn {

constexpr int attention_threads = 128;

// Dynamic shared memory of attention_kernel<HD>.
constexpr size_t attention_smem_bytes(int hd) {
    const size_t qt = static_cast<size_t>(attention_tile_queries);
    const size_t kt = attention_kv_block;
    const size_t ks = static_cast<size_t>(hd) + 1; // padded row stride of Q and K: conflict-free S loop
    return sizeof(float) * (qt * ks + kt * ks + kt * static_cast<size_t>(hd) + qt * (kt + 1) + 3 * qt);
}

// grid: [n_work]  block: attention_threads  dynamic smem: attention_smem_bytes(HD)
template <int HD> __global__ void __launch_bounds__(attention_threads) attention_kernel(const attention_params p) {
    constexpr int QT = static_cast<int>(attention_tile_queries);
    constexpr int KT = attention_kv_block;
    constexpr int NW = attention_threads / warp_size;
    constexpr int KS = HD + 1;
    constexpr int TPR = HD / 2;                 // threads per query row in the PV product (2 dims each)
    constexpr int QG = attention_threads / TPR; // query rows handled side by side in the PV product
    static_assert(KT == warp_size, "one KV position per lane");
    static_assert(attention_threads % TPR == 0 && QT % QG == 0 && QT % NW == 0, "tile shape");

    extern __shared__ float smem[];
    float * q_s = smem;                // [QT, KS] queries, pre-scaled, zero-padded
    float * k_s = q_s + QT * KS;       // [KT, KS]
    float * v_s = k_s + KT * KS;       // [KT, HD]
    float * p_s = v_s + KT * HD;       // [QT, KT + 1] probabilities of the current KV block
    float * m_s = p_s + QT * (KT + 1); // [QT] running max (log2 units)
    float * l_s = m_s + QT;            // [QT] running sum
    float * a_s = l_s + QT;            // [QT] rescale factor of the current block

    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % warp_size;
    const int warp = tid / warp_size;
    const attention_work w = p.work[blockIdx.x];
    const attention_segment sg = p.segs[w.seg];
    // Narrowing checked by the launcher: H, D, S and row counts fit int32.
    const int group = static_cast<int>(p.n_head / p.n_head_kv);
    const int hd = static_cast<int>(p.head_dim);
    const int nq = w.n_rows * group; // valid query vectors: qi = row_in_tile * G + g
    const int window = static_cast<int>(p.sliding_window);
    const int page_size = static_cast<int>(p.page_size);
    const float qscale = p.scale * 1.4426950408889634f; // log2 e: exp2 instead of exp

    // Queries in, K and V blocks zeroed (their padding columns stay zero), softmax state reset.
    for (int e = tid; e < QT * HD; e += attention_threads) {
        const int qi = e / HD;
        const int d = e % HD;
        float val = 0.0f;
        if (qi < nq && d < hd) {
            const int64_t row = sg.row0 + w.row0 + qi / group;
            const int64_t h = static_cast<int64_t>(w.kv_head) * group + qi % group;
            val = __bfloat162float(p.q[row * p.q_row_stride + h * hd + d]) * qscale;
        }
        q_s[qi * KS + d] = val;
    }
    for (int e = tid; e < KT * KS; e += attention_threads) {
        k_s[e] = 0.0f;
    }
    for (int e = tid; e < KT * HD; e += attention_threads) {
        v_s[e] = 0.0f;
    }
    for (int e = tid; e < QT; e += attention_threads) {
        m_s[e] = -CUDART_INF_F;
        l_s[e] = 0.0f;
    }

    constexpr int n_acc = QT / QG;
    float acc[n_acc][2];
#pragma unroll
    for (int j = 0; j < n_acc; ++j) {
        acc[j][0] = 0.0f;
        acc[j][1] = 0.0f;
    }
    const int pv_d = 2 * (tid % TPR);
    const int pv_q = tid / TPR;
    const int half = hd / 2;
    const int32_t * pages = p.page_table + sg.page0;
    const int64_t kv_head_off = static_cast<int64_t>(w.kv_head) * page_size;

    for (int t0 = w.kv_begin; t0 < w.kv_end; t0 += KT) {
        __syncthreads(); // the previous block's K, V and P are consumed
        // K and V of positions t0 .. t0 + KT - 1 (zeros past kv_end).
        for (int e = tid; e < KT * half; e += attention_threads) {
            const int j = e / half;
            const int d = 2 * (e - j * half);
            const int t = t0 + j;
            float2 kf = make_float2(0.0f, 0.0f);
            float2 vf = kf;
            if (t < w.kv_end) {
                const int64_t page = pages[t / page_size];
                const int64_t off = ((page * p.n_head_kv * page_size) + kv_head_off + t % page_size) * hd + d;
                kf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(p.k_pool + off));
                vf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(p.v_pool + off));
            }
            k_s[j * KS + d] = kf.x;
            k_s[j * KS + d + 1] = kf.y;
            v_s[j * HD + d] = vf.x;
            v_s[j * HD + d + 1] = vf.y;
        }
        __syncthreads();

        // S and the online softmax: warp `warp` owns query vectors warp, warp + NW, ...; lane = KV position.
        const int t = t0 + lane;
        for (int qi = warp; qi < nq; qi += NW) {
            const float * qv = q_s + qi * KS;
            const float * kv = k_s + lane * KS;
            float s = 0.0f;
#pragma unroll 8
            for (int d = 0; d < HD; ++d) {
                s += qv[d] * kv[d];
            }
            const int pos = sg.pos0 + w.row0 + qi / group;
            const int lo = window > 0 ? max(0, pos - window + 1) : 0;
            const bool valid = t < w.kv_end && t <= pos && t >= lo;
            s = valid ? s : -CUDART_INF_F;
            const float m_old = m_s[qi];
            const float m_new = fmaxf(m_old, warp_max(s));
            const float pe = valid ? exp2f(s - m_new) : 0.0f;
            const float sum = warp_sum(pe);
            p_s[qi * (KT + 1) + lane] = pe;
            // Every lane has read m_s[qi] above; lane 0 overwrites it next. The shuffles already order this in
            // practice; __syncwarp makes it an explicit memory barrier (compute-sanitizer racecheck flagged it).
            __syncwarp();
            if (lane == 0) {
                const float alpha = m_old == -CUDART_INF_F ? 0.0f : exp2f(m_old - m_new);
                m_s[qi] = m_new;
                l_s[qi] = l_s[qi] * alpha + sum;
                a_s[qi] = alpha;
            }
        }
        __syncthreads();

        // O = O * alpha + P V: thread owns dims (pv_d, pv_d + 1) of query vectors pv_q, pv_q + QG, ...
#pragma unroll
        for (int j = 0; j < n_acc; ++j) {
            const int qi = pv_q + QG * j;
            if (qi < nq) {
                const float alpha = a_s[qi];
                float o0 = acc[j][0] * alpha;
                float o1 = acc[j][1] * alpha;
                const float * pr = p_s + qi * (KT + 1);
#pragma unroll 8
                for (int tt = 0; tt < KT; ++tt) {
                    const float pe = pr[tt];
                    const float2 vv = *reinterpret_cast<const float2 *>(v_s + tt * HD + pv_d);
                    o0 += pe * vv.x;
                    o1 += pe * vv.y;
                }
                acc[j][0] = o0;
                acc[j][1] = o1;
            }
        }
    }
    __syncthreads(); // m_s, l_s final

#pragma unroll
    for (int j = 0; j < n_acc; ++j) {
        const int qi = pv_q + QG * j;
        if (qi < nq && pv_d < hd) {
            const int64_t row = sg.row0 + w.row0 + qi / group;
            const int64_t h = static_cast<int64_t>(w.kv_head) * group + qi % group;
            const float l = l_s[qi];
            const float inv = l > 0.0f ? 1.0f / l : 0.0f;
            if (w.n_split == 1) {
                bf16 * o = p.out + (row * p.n_head + h) * hd + pv_d;
                *reinterpret_cast<__nv_bfloat162 *>(o) = __floats2bfloat162_rn(acc[j][0] * inv, acc[j][1] * inv);
            } else {
                const int64_t slot = static_cast<int64_t>(p.row_slot[row]) + w.split;
                float * o = p.partial_o + (slot * p.n_head + h) * hd + pv_d;
                o[0] = acc[j][0] * inv;
                o[1] = acc[j][1] * inv;
                if (pv_d == 0) {
                    p.partial_lse[slot * p.n_head + h] = l > 0.0f ? m_s[qi] + log2f(l) : -CUDART_INF_F;
                }
            }
        }
    }
}

constexpr int attention_combine_threads = 128;

// Merges the chunks of split tiles: out = Σ_s 2^(lse_s - M) o_s / Σ_s 2^(lse_s - M), M = max_s lse_s.
// Rows of unsplit tiles were written by attention_kernel and are left alone.
// grid: [R]  block: attention_combine_threads
__global__ void __launch_bounds__(attention_combine_threads) attention_combine_kernel(const attention_params p) {
    const int64_t r = blockIdx.x;
    const int n_split = p.row_n_split[r];
    if (n_split <= 1) {
        return;
    }
    const int64_t slot0 = p.row_slot[r];
    for (int64_t e = threadIdx.x; e < p.n_head * p.head_dim; e += blockDim.x) {
        const int64_t h = e / p.head_dim;
        float m = -CUDART_INF_F;
        for (int s = 0; s < n_split; ++s) {
            m = fmaxf(m, p.partial_lse[(slot0 + s) * p.n_head + h]);
        }
        float num = 0.0f;
        float den = 0.0f;
        for (int s = 0; s < n_split; ++s) {
            const float lse = p.partial_lse[(slot0 + s) * p.n_head + h];
            const float wgt = lse == -CUDART_INF_F ? 0.0f : exp2f(lse - m);
            num += wgt * p.partial_o[(slot0 + s) * p.n_head * p.head_dim + e];
            den += wgt;
        }
        p.out[r * p.n_head * p.head_dim + e] = __float2bfloat16(num / den);
    }
}

} // namespace specattn
