// Top-k of many score rows in one launch: one CTA per job, a radix select over order-preserving 64-bit
// (score, position) keys (radix_select.cuh), then an ordered compaction that writes the selected positions
// ascending, once per copy.
//
// Shared-memory path: a job whose n fits (top_k_smem_keys) copies its 32-bit score keys into shared memory once
// and walks them there; larger jobs re-read the scores from global memory at each level (L2-resident at the
// sizes in use). The compaction reads keys once more, in position order, tile by tile with a block scan.
#pragma once

#include "kernels/radix_select.cuh"
#include "kernels/select_params.h"

namespace specattn {

constexpr int top_k_threads = 1024;
// Jobs with n at most this keep their keys in dynamic shared memory (4 bytes each, 160 KiB).
constexpr int64_t top_k_smem_keys = 40960;

struct top_k_smem {
    radix_walk_smem<top_k_threads> walk;
    typename cub::BlockScan<uint32_t, top_k_threads>::TempStorage scan;
};

// grid: [n_jobs]  block: top_k_threads  dynamic shared memory: min(max_n, top_k_smem_keys) * 4 bytes.
__global__ void __launch_bounds__(top_k_threads) top_k_kernel(const top_k_params p) {
    __shared__ top_k_smem sm;
    extern __shared__ uint32_t s_keys[]; // [min(max_n, top_k_smem_keys)]
    const top_k_job job = p.jobs[blockIdx.x];
    const int32_t n = job.n;
    const int32_t k = job.k;
    int32_t * out = p.lists + job.list_offset;
    if (n <= 0 || k <= 0) {
        return;
    }
    if (k >= n) {
        for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += top_k_threads) {
            for (int32_t c = 0; c < job.n_copies; ++c) {
                out[c * job.copy_stride + i] = i;
            }
        }
        return;
    }
    const float * row = p.scores + job.score_offset;
    const auto emit = [&](int32_t pos, int32_t rank) {
        for (int32_t c = 0; c < job.n_copies; ++c) {
            out[c * job.copy_stride + rank] = pos;
        }
    };
    if (n <= top_k_smem_keys && n <= p.max_n) {
        for_each_score<top_k_threads>(row, n, [&](int32_t i, float s) { s_keys[i] = float_order_key(s); });
        __syncthreads();
        const radix_cut cut = radix_walk<top_k_threads, false>(
            [&](auto f) {
                for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n; i += top_k_threads) {
                    f(rank_key(s_keys[i], static_cast<uint32_t>(i)), 1ull);
                }
            },
            static_cast<unsigned long long>(k), sm.walk);
        ordered_compact<top_k_threads>(
            [&](int32_t i) { return cut.keeps(rank_key(s_keys[i], static_cast<uint32_t>(i))); }, n, emit, sm.scan);
    } else {
        const radix_cut cut = radix_walk<top_k_threads, false>(
            [&](auto f) {
                for_each_score<top_k_threads>(row, n, [&](int32_t i, float s) {
                    f(rank_key(float_order_key(s), static_cast<uint32_t>(i)), 1ull);
                });
            },
            static_cast<unsigned long long>(k), sm.walk);
        ordered_compact<top_k_threads>(
            [&](int32_t i) { return cut.keeps(rank_key(float_order_key(row[i]), static_cast<uint32_t>(i))); }, n, emit,
            sm.scan);
    }
}

} // namespace specattn
