// MagicDec-Quest on the GPU (CPU reference: spec/selectors/quest.cpp; page = Quest block).
//
// quest_meta_kernel: after KV append, recompute the channel-wise min/max of the keys of a host-given list of
//   pages over slots [0, n_valid). One CTA per (page entry, layer); a thread owns a pair of channels of one KV
//   head and walks the slots (consecutive threads read consecutive channels: coalesced). bf16 min/max is exact.
// quest_select_kernel: per (draft row job, KV head), the Quest bound of every page before the row's own page
//   (one warp per page: lanes split the channels, G partial dot products reduced by shuffles), kept in shared
//   memory; then radix_select.cuh's radix walk over (bound, page) keys with the CPU's tie rule (lower page first) and
//   an ordered compaction that writes each selected page's S positions ascending into sel_pos.
#pragma once

#include "kernels/common.cuh"
#include "kernels/select_params.h"
#include "kernels/radix_select.cuh"

#include <cuda_bf16.h>

namespace specattn {

constexpr int quest_meta_threads = 256;
constexpr int quest_select_threads = 256;
constexpr int quest_max_group = 16; // G = H / HK at most this
constexpr int quest_max_head_dim = 256;

// grid: [n_entries, n_layer]  block: quest_meta_threads.
__global__ void __launch_bounds__(quest_meta_threads) quest_meta_kernel(const quest_meta_params p) {
    const int64_t layer = blockIdx.y;
    const int64_t page = p.pages[blockIdx.x];
    const int32_t n_valid = p.n_valid[blockIdx.x];
    const int64_t half = p.head_dim / 2;
    const int64_t page_elems = p.n_head_kv * p.page_size * p.head_dim;
    const __nv_bfloat162 * k = reinterpret_cast<const __nv_bfloat162 *>(
        p.k_pool + (layer * p.n_pages + page) * page_elems); // [HK, S, D/2] pairs
    const int64_t meta = (layer * p.n_pages + page) * p.n_head_kv * p.head_dim;
    __nv_bfloat162 * kmin = reinterpret_cast<__nv_bfloat162 *>(p.kmin + meta); // [HK, D/2] pairs
    __nv_bfloat162 * kmax = reinterpret_cast<__nv_bfloat162 *>(p.kmax + meta);
    const __nv_bfloat162 pos_inf = __float2bfloat162_rn(INFINITY);
    const __nv_bfloat162 neg_inf = __float2bfloat162_rn(-INFINITY);
    for (int64_t i = threadIdx.x; i < p.n_head_kv * half; i += quest_meta_threads) {
        const int64_t h = i / half;
        const int64_t c = i % half;
        const __nv_bfloat162 * src = k + h * p.page_size * half + c;
        __nv_bfloat162 lo = pos_inf;
        __nv_bfloat162 hi = neg_inf;
        for (int32_t s = 0; s < n_valid; ++s) {
            const __nv_bfloat162 v = src[s * half];
            lo = __hmin2(lo, v);
            hi = __hmax2(hi, v);
        }
        kmin[i] = lo;
        kmax[i] = hi;
    }
}

struct quest_select_smem {
    radix_walk_smem<quest_select_threads> walk;
    typename cub::BlockScan<uint32_t, quest_select_threads>::TempStorage scan;
    float q[quest_max_group * quest_max_head_dim]; // [G, D] the row's query heads of this KV head
};

// grid: [n_jobs, HK]  block: quest_select_threads  dynamic shared memory: max_pages_before * 4 bytes.
// The launcher checks G <= quest_max_group, D even and <= quest_max_head_dim.
__global__ void __launch_bounds__(quest_select_threads) quest_select_kernel(const quest_select_params p) {
    __shared__ quest_select_smem sm;
    extern __shared__ float s_bound[]; // [max_pages_before]
    const quest_job job = p.jobs[blockIdx.x];
    const int64_t h = blockIdx.y;
    const int32_t group = static_cast<int32_t>(p.n_head / p.n_head_kv);
    const int32_t d = static_cast<int32_t>(p.head_dim);
    const int32_t s_page = static_cast<int32_t>(p.page_size);
    const int32_t n =
        job.n_pages_before < p.max_pages_before ? job.n_pages_before : static_cast<int32_t>(p.max_pages_before);
    int32_t * out = p.sel_pos + ((job.slot * p.n_layer + p.layer) * p.n_head_kv + h) * p.sel_cap;
    const int32_t cap = static_cast<int32_t>(p.sel_cap);
    if (n <= 0 || job.k_pages <= 0) {
        return;
    }
    const auto emit = [&](int32_t page, int32_t rank) {
        for (int32_t t = 0; t < s_page; ++t) {
            const int32_t i = rank * s_page + t;
            if (i < cap) {
                out[i] = page * s_page + t;
            }
        }
    };
    if (job.k_pages >= n) {
        for (int32_t j = static_cast<int32_t>(threadIdx.x); j < n; j += quest_select_threads) {
            emit(j, j);
        }
        return;
    }

    const bf16 * q = p.q + static_cast<int64_t>(job.row) * p.q_row_stride + h * group * p.head_dim;
    for (int32_t i = static_cast<int32_t>(threadIdx.x); i < group * d; i += quest_select_threads) {
        sm.q[i] = __bfloat162float(q[i]);
    }
    __syncthreads();

    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;
    constexpr int n_warps = quest_select_threads / warp_size;
    const int64_t meta_head = h * p.head_dim;
    const int64_t meta_page = p.n_head_kv * p.head_dim;
    for (int32_t j = warp; j < n; j += n_warps) {
        const int64_t page = p.page_table[job.page_table_offset + j];
        const __nv_bfloat162 * lo2 = reinterpret_cast<const __nv_bfloat162 *>(p.kmin + page * meta_page + meta_head);
        const __nv_bfloat162 * hi2 = reinterpret_cast<const __nv_bfloat162 *>(p.kmax + page * meta_page + meta_head);
        float part[quest_max_group];
#pragma unroll
        for (int g = 0; g < quest_max_group; ++g) {
            part[g] = 0.0f;
        }
        for (int32_t c2 = lane; c2 < d / 2; c2 += warp_size) {
            const float2 lo = __bfloat1622float2(lo2[c2]);
            const float2 hi = __bfloat1622float2(hi2[c2]);
#pragma unroll
            for (int g = 0; g < quest_max_group; ++g) {
                if (g < group) {
                    const float q0 = sm.q[g * d + 2 * c2];
                    const float q1 = sm.q[g * d + 2 * c2 + 1];
                    part[g] += fmaxf(q0 * lo.x, q0 * hi.x) + fmaxf(q1 * lo.y, q1 * hi.y);
                }
            }
        }
        float best = -INFINITY;
#pragma unroll
        for (int g = 0; g < quest_max_group; ++g) {
            if (g < group) {
                best = fmaxf(best, warp_sum(part[g]));
            }
        }
        if (lane == 0) {
            s_bound[j] = best;
        }
    }
    __syncthreads();

    const radix_cut cut = radix_walk<quest_select_threads, false>(
        [&](auto f) {
            for (int32_t j = static_cast<int32_t>(threadIdx.x); j < n; j += quest_select_threads) {
                f(rank_key(float_order_key(s_bound[j]), static_cast<uint32_t>(j)), 1ull);
            }
        },
        static_cast<unsigned long long>(job.k_pages), sm.walk);
    ordered_compact<quest_select_threads>(
        [&](int32_t j) { return cut.keeps(rank_key(float_order_key(s_bound[j]), static_cast<uint32_t>(j))); }, n, emit,
        sm.scan);
}

} // namespace specattn
