// Sampling on the device, matching sampling/sampler.cpp and spec/verify.cpp (the CPU definitions):
//
// sample_probs_kernel (one CTA per row): sampling_probs. Pass 1 finds the max logit and counts the candidates
//   (> -inf, not NaN); top-k is a counting radix walk (top_k.cuh) over keys (logit, lower id first), which is the
//   CPU's partial_sort order, so exactly k survive with its tie rule; the fp64 weights exp(x/T − max/T) (1 for the
//   max, as on the CPU) go to a scratch row; top-p is a weighted radix walk over the same keys whose values are
//   the weights in fixed point (2^s, s = 63 − bits(V), so a row's sum cannot overflow): the walk finds the
//   first key, in the CPU's sorted order, at which the running sum reaches top_p × total; min-p compares the fp64
//   weights; the kept weights are renormalized in fp64 and written as fp32. The only departure from the CPU is
//   summation order (fp64 sums here, fixed-point sums for the top-p cut), so a token can fall on the other side
//   of a top-p cut only when the CPU's running sum is within ~1e-12 relative of top_p × total.
// sample_from_kernel (one CTA per row): sampler::sample_from with a given uniform: the first id whose fp64
//   running sum exceeds u · total, found in three levels (warp chunk sums, sub-chunk sums, one warp scanning 32
//   ids at a time); the last id with mass when rounding leaves none.
// accept_sampled_kernel (one CTA per sequence): accept_sampled with the uniforms in the CPU's draw order.
// accept_greedy_kernel: accept_greedy from precomputed argmax ids (argmax_kernel of sampling.cuh, launch_argmax).
#pragma once

#include "kernels/common.cuh"
#include "kernels/select_params.h"
#include "kernels/radix_select.cuh"

#include <cub/block/block_reduce.cuh>

namespace specattn {

constexpr int sample_threads = 512;
constexpr int sample_warps = sample_threads / warp_size;

// sampling.cuh's argmax rule (larger value, then lower index; NaN never wins; anything beats index -1), repeated
// here because that header defines argmax_kernel, which only ops.cu may include.
__device__ __forceinline__ bool greedy_better(float v, int32_t i, float best_v, int32_t best_i) {
    if (i < 0 || isnan(v)) {
        return false;
    }
    return best_i < 0 || v > best_v || (v == best_v && i < best_i);
}

// ---- sample_from ------------------------------------------------------------------------------------------------

__device__ __forceinline__ double warp_sum_f64(double v) {
#pragma unroll
    for (int o = warp_size / 2; o > 0; o /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

struct sample_from_smem {
    double sum[sample_warps];
    int32_t last[sample_warps];
    double carry;
    double target;
    int32_t chunk; // index of the chunk that holds the crossing (level 1, then level 2)
    int32_t last_nz;
    int32_t result;
};

// The id sampler::sample_from draws from the non-negative values get(i), i < n, with uniform u: the first id whose
// running sum exceeds u · Σ values; if rounding leaves none, the last id with a non-zero value; -1 when every value
// is zero. All threads of the block call it and get the result; it synchronizes.
template <typename Get> __device__ int32_t sample_from_values(Get get, int32_t n, double u, sample_from_smem & sm) {
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;
    // Level 1: warp w sums the w-th chunk of the row.
    const int32_t chunk1 = (n + sample_warps - 1) / sample_warps;
    {
        const int32_t lo = warp * chunk1;
        const int32_t hi = min(n, lo + chunk1);
        double s = 0.0;
        int32_t last = -1;
        for (int32_t i = lo + lane; i < hi; i += warp_size) {
            const float v = get(i);
            s += v;
            last = v > 0.0f ? i : last;
        }
        for (int o = warp_size / 2; o > 0; o /= 2) {
            s += __shfl_xor_sync(0xffffffffu, s, o);
            last = max(last, __shfl_xor_sync(0xffffffffu, last, o));
        }
        if (lane == 0) {
            sm.sum[warp] = s;
            sm.last[warp] = last;
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        int32_t last = -1;
        for (int w = 0; w < sample_warps; ++w) {
            total += sm.sum[w];
            last = max(last, sm.last[w]);
        }
        sm.last_nz = last;
        sm.target = u * total;
        sm.result = -2; // not found yet
        sm.chunk = -1;
        double carry = 0.0;
        for (int w = 0; w < sample_warps; ++w) {
            if (sm.target < carry + sm.sum[w]) {
                sm.chunk = w;
                break;
            }
            carry += sm.sum[w];
        }
        sm.carry = carry;
        if (last < 0 || sm.chunk < 0) {
            sm.result = last; // all zero (-1), or rounding put the target at the very end
        }
    }
    __syncthreads();
    if (sm.result != -2) {
        const int32_t r = sm.result;
        __syncthreads();
        return r;
    }
    // Level 2: warp w sums the w-th sub-chunk of that chunk.
    const int32_t base1 = sm.chunk * chunk1;
    const int32_t end1 = min(n, base1 + chunk1);
    const int32_t chunk2 = (end1 - base1 + sample_warps - 1) / sample_warps;
    {
        const int32_t lo = base1 + warp * chunk2;
        const int32_t hi = min(end1, lo + chunk2);
        double s = 0.0;
        for (int32_t i = lo + lane; i < hi; i += warp_size) {
            s += get(i);
        }
        s = warp_sum_f64(s);
        if (lane == 0) {
            sm.sum[warp] = s;
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double carry = sm.carry;
        int c = -1;
        double carry_last = carry;
        for (int w = 0; w < sample_warps; ++w) {
            if (sm.target < carry + sm.sum[w]) {
                c = w;
                break;
            }
            carry_last = carry;
            carry += sm.sum[w];
        }
        if (c < 0) { // rounding between the levels: walk on from the last sub-chunk's start
            c = sample_warps - 1;
            carry = carry_last;
        }
        sm.chunk = c;
        sm.carry = carry;
    }
    __syncthreads();
    // Level 3: warp 0 scans from the sub-chunk's start, 32 ids at a time, on to the end of the row if need be.
    if (warp == 0) {
        const double target = sm.target;
        double carry = sm.carry;
        int32_t found = -1;
        for (int32_t t = base1 + sm.chunk * chunk2; t < n; t += warp_size) {
            const int32_t i = t + lane;
            double incl = i < n ? static_cast<double>(get(i)) : 0.0;
            for (int o = 1; o < warp_size; o *= 2) {
                const double y = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) {
                    incl += y;
                }
            }
            const unsigned hit = __ballot_sync(0xffffffffu, i < n && target < carry + incl);
            if (hit != 0u) {
                found = t + __ffs(hit) - 1;
                break;
            }
            carry += __shfl_sync(0xffffffffu, incl, warp_size - 1);
        }
        if (lane == 0) {
            sm.result = found >= 0 ? found : sm.last_nz;
        }
    }
    __syncthreads();
    const int32_t r = sm.result;
    __syncthreads();
    return r;
}

// grid: [R]  block: sample_threads.
__global__ void __launch_bounds__(sample_threads) sample_from_kernel(const sample_from_params p) {
    __shared__ sample_from_smem sm;
    const float * row = p.probs + static_cast<int64_t>(blockIdx.x) * p.row_stride;
    const int32_t id = sample_from_values([&](int32_t i) { return row[i]; }, static_cast<int32_t>(p.n_vocab),
                                          p.uniforms[blockIdx.x], sm);
    if (threadIdx.x == 0) {
        p.out[blockIdx.x] = id;
    }
}

// ---- accept ----------------------------------------------------------------------------------------------------

// grid: [N]  block: sample_threads.
__global__ void __launch_bounds__(sample_threads) accept_sampled_kernel(const accept_sampled_params p) {
    __shared__ sample_from_smem sm;
    const accept_seq s = p.seqs[blockIdx.x];
    const int32_t n = static_cast<int32_t>(p.n_vocab);
    const double * u = p.uniforms + s.p_row0;
    int32_t a = 0;
    while (a < s.n_drafts) {
        const int64_t d = p.drafts[s.q_row0 + a];
        const double pd = p.p[(s.p_row0 + a) * p.row_stride + d];
        const double qd = p.q[(s.q_row0 + a) * p.row_stride + d];
        if (u[a] * qd < pd) {
            ++a;
            continue;
        }
        break;
    }
    int32_t next = -1;
    const float * pa = p.p + (s.p_row0 + a) * p.row_stride;
    if (a < s.n_drafts) {
        const float * qa = p.q + (s.q_row0 + a) * p.row_stride;
        next = sample_from_values([&](int32_t i) { return fmaxf(0.0f, pa[i] - qa[i]); }, n, u[a + 1], sm);
        if (next < 0) { // no residual mass (p ≈ q up to rounding): p itself
            next = sample_from_values([&](int32_t i) { return pa[i]; }, n, u[a + 1], sm);
        }
    } else {
        next = sample_from_values([&](int32_t i) { return pa[i]; }, n, u[a], sm);
    }
    if (threadIdx.x == 0) {
        p.n_accepted[blockIdx.x] = a;
        p.next[blockIdx.x] = next;
    }
}

// grid: [ceil(N / 128)]  block: 128; one thread per sequence.
__global__ void accept_greedy_kernel(const accept_greedy_params p) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= p.n_seqs) {
        return;
    }
    const accept_seq s = p.seqs[i];
    int32_t a = 0;
    while (a < s.n_drafts && p.drafts[s.q_row0 + a] == p.argmax_ids[s.p_row0 + a]) {
        ++a;
    }
    p.n_accepted[i] = a;
    p.next[i] = p.argmax_ids[s.p_row0 + a];
}

// ---- sampling_probs ---------------------------------------------------------------------------------------------

struct sample_probs_smem {
    radix_walk_smem<sample_threads> walk;
    union {
        typename cub::BlockReduce<double, sample_threads>::TempStorage red_f64;
        typename cub::BlockReduce<unsigned long long, sample_threads>::TempStorage red_u64;
        typename cub::BlockReduce<float, sample_threads>::TempStorage red_f32;
        typename cub::BlockReduce<int32_t, sample_threads>::TempStorage red_i32;
    };
    float f32;
    int32_t i32;
    unsigned long long u64;
    double f64;
    float best_v[sample_warps];
    int32_t best_i[sample_warps];
};

// The candidate test of sampling_probs: NaN and -inf logits never enter.
__device__ __forceinline__ bool sample_candidate(float x) {
    return x > -INFINITY;
}

// grid: [R]  block: sample_threads.  p.work holds R rows of V doubles.
__global__ void __launch_bounds__(sample_threads) sample_probs_kernel(const sample_probs_params p) {
    __shared__ sample_probs_smem sm;
    const sample_config cfg = p.configs[blockIdx.x];
    const int32_t n = static_cast<int32_t>(p.n_vocab);
    const float * x = p.logits + static_cast<int64_t>(blockIdx.x) * p.logits_row_stride; // [V]
    float * out = p.probs + static_cast<int64_t>(blockIdx.x) * p.probs_row_stride;       // [V]
    double * w = p.work + static_cast<int64_t>(blockIdx.x) * p.n_vocab;                  // [V]
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;

    // Pass 1: max logit and candidate count (temperature > 0), or the argmax (greedy).
    float best_v = 0.0f;
    int32_t best_i = -1;
    float mx = -INFINITY;
    int32_t n_cand = 0;
    for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
        const float v = x[i];
        if (greedy_better(v, i, best_v, best_i)) {
            best_v = v;
            best_i = i;
        }
        if (sample_candidate(v)) {
            mx = fmaxf(mx, v);
            ++n_cand;
        }
    }
    if (!(cfg.temperature > 0.0f)) {
        for (int o = warp_size / 2; o > 0; o /= 2) {
            const float v = __shfl_xor_sync(0xffffffffu, best_v, o);
            const int32_t i = __shfl_xor_sync(0xffffffffu, best_i, o);
            if (greedy_better(v, i, best_v, best_i)) {
                best_v = v;
                best_i = i;
            }
        }
        if (lane == 0) {
            sm.best_v[warp] = best_v;
            sm.best_i[warp] = best_i;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int wi = 1; wi < sample_warps; ++wi) {
                if (greedy_better(sm.best_v[wi], sm.best_i[wi], best_v, best_i)) {
                    best_v = sm.best_v[wi];
                    best_i = sm.best_i[wi];
                }
            }
            sm.i32 = best_i;
        }
        __syncthreads();
        const int32_t am = sm.i32;
        for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
            out[i] = i == am ? 1.0f : 0.0f;
        }
        return;
    }
    mx = cub::BlockReduce<float, sample_threads>(sm.red_f32).Reduce(mx, [](float a, float b) { return fmaxf(a, b); });
    if (threadIdx.x == 0) {
        sm.f32 = mx;
    }
    __syncthreads();
    mx = sm.f32;
    n_cand = cub::BlockReduce<int32_t, sample_threads>(sm.red_i32).Sum(n_cand);
    if (threadIdx.x == 0) {
        sm.i32 = n_cand;
    }
    __syncthreads();
    n_cand = sm.i32;
    if (n_cand == 0) {
        for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
            out[i] = 0.0f;
        }
        return;
    }
    const auto key_of = [&](int32_t i) { return rank_key(float_order_key(x[i]), static_cast<uint32_t>(i)); };

    // Top-k: the k largest keys among the candidates.
    radix_cut cut_k; // keeps everything
    if (cfg.top_k > 0 && cfg.top_k < n_cand) {
        cut_k = radix_walk<sample_threads, false>(
            [&](auto f) {
                for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
                    if (sample_candidate(x[i])) {
                        f(key_of(i), 1ull);
                    }
                }
            },
            static_cast<unsigned long long>(cfg.top_k), sm.walk);
    }

    // Weights of the survivors (-1 marks the rest), and their fixed-point total.
    const double t = cfg.temperature;
    const double m = static_cast<double>(mx) / t;
    int fp_bits = 0;
    while ((1ll << fp_bits) <= p.n_vocab) {
        ++fp_bits;
    }
    const double fp_scale = ldexp(1.0, 63 - fp_bits);
    unsigned long long fp_total = 0;
    for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
        const float v = x[i];
        double wi = -1.0;
        if (sample_candidate(v) && cut_k.keeps(key_of(i))) {
            const double xi = static_cast<double>(v) / t;
            wi = xi == m ? 1.0 : exp(xi - m);
            fp_total += __double2ull_rn(wi * fp_scale);
        }
        w[i] = wi;
    }
    __syncthreads();

    // Top-p: the first key, in descending order, at which the running sum reaches top_p × total.
    radix_cut cut_p;
    if (cfg.top_p < 1.0f) {
        fp_total = cub::BlockReduce<unsigned long long, sample_threads>(sm.red_u64).Sum(fp_total);
        if (threadIdx.x == 0) {
            sm.u64 = fp_total;
        }
        __syncthreads();
        fp_total = sm.u64;
        const double threshold = static_cast<double>(cfg.top_p) * static_cast<double>(fp_total);
        unsigned long long need = static_cast<unsigned long long>(ceil(threshold));
        need = need < 1ull ? 1ull : (need > fp_total ? fp_total : need);
        cut_p = radix_walk<sample_threads, true>(
            [&](auto f) {
                for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
                    const unsigned long long v = w[i] > 0.0 ? __double2ull_rn(w[i] * fp_scale) : 0ull;
                    if (v > 0ull) {
                        f(key_of(i), v);
                    }
                }
            },
            need, sm.walk);
    }

    // Min-p and the kept total.
    const double min_p = cfg.min_p;
    const auto kept = [&](int32_t i) { return w[i] >= 0.0 && w[i] >= min_p && cut_p.keeps(key_of(i)); };
    double total = 0.0;
    for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
        if (kept(i)) {
            total += w[i];
        }
    }
    total = cub::BlockReduce<double, sample_threads>(sm.red_f64).Sum(total);
    if (threadIdx.x == 0) {
        sm.f64 = total;
    }
    __syncthreads();
    total = sm.f64;
    for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += sample_threads) {
        out[i] = kept(i) ? static_cast<float>(w[i] / total) : 0.0f;
    }
}

} // namespace specattn
