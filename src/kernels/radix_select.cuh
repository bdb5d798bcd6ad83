// The block-level radix walk shared by top_k.cuh (top-k of score rows), sample.cuh (top-k and top-p of a
// vocabulary row) and quest.cuh (top pages), and the ordered compaction that writes a selection in position order.
//
// Why 64-bit keys: the CPU rule is "higher score first, equal scores by lower position" (spec/selector.cpp's
// top_k_positions; sampling/sampler.cpp sorts logits the same way). key = (order-preserving bits of the score)
// << 32 | (0xffffffff - position) makes every key distinct and puts exactly that order on them, so the boundary
// key is unique and a selection is {key >= boundary}: no separate tie pass. The walk takes 11 bits per level (a
// 2048-bin shared-memory histogram) over levels of 11, 11, 10 (score) and 11, 11, 10 (position) bits, and stops
// as soon as the boundary's bucket is taken whole, so distinct scores need at most the three score levels; ties
// among equal scores walk on into the position bits.
#pragma once

#include "kernels/common.cuh"

#include <cub/block/block_scan.cuh>

namespace specattn {

constexpr int radix_bits = 11;
constexpr int radix_bins = 1 << radix_bits;
constexpr int radix_levels = 6;

// The bit offset and width of each level of the walk over a 64-bit key.
__device__ __forceinline__ int radix_shift(int level) {
    constexpr int shifts[radix_levels] = {53, 42, 32, 21, 10, 0};
    return shifts[level];
}
__device__ __forceinline__ int radix_width(int level) {
    return (level == 2 || level == 5) ? 10 : 11;
}

// Order-preserving map of a float to uint32: larger float, larger key. -0.0 maps like +0.0 (they compare equal);
// NaN maps to 0, below -inf.
__device__ __forceinline__ uint32_t float_order_key(float f) {
    if (isnan(f)) {
        return 0u;
    }
    const uint32_t b = __float_as_uint(f == 0.0f ? 0.0f : f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// The composite key: score first, then lower position first.
__device__ __forceinline__ unsigned long long rank_key(uint32_t score_key, uint32_t pos) {
    return (static_cast<unsigned long long>(score_key) << 32) | (0xffffffffu - pos);
}

// Shared state of radix_walk.
template <int THREADS> struct radix_walk_smem {
    unsigned long long sum[radix_bins]; // value sums per digit (weighted walks only)
    uint32_t count[radix_bins];         // elements per digit
    union {
        typename cub::BlockScan<unsigned long long, THREADS>::TempStorage scan64;
        typename cub::BlockScan<uint32_t, THREADS>::TempStorage scan32;
    };
    unsigned long long found_need;
    uint32_t found_digit;
    uint32_t found_count;
};

// The selection {x : (x & mask) >= prefix} of a radix walk.
struct radix_cut {
    unsigned long long prefix = 0;
    unsigned long long mask = 0;
    __device__ __forceinline__ bool keeps(unsigned long long key) const { return (key & mask) >= prefix; }
};

// Walks distinct 64-bit keys from the largest down and returns the cut that keeps every key down to and including
// the boundary: the first key at which the running total of values reaches `need` (1 <= need <= total). Counting
// walks (WEIGHTED false) give every key the value 1, so the cut keeps the `need` largest keys; weighted walks use
// the values passed (top-p: fixed-point probabilities). for_each(f) must call f(key, value) once for every element
// of the set, each element from exactly one thread. All threads of the block call this; it synchronizes.
template <int THREADS, bool WEIGHTED, typename ForEach>
__device__ radix_cut radix_walk(ForEach for_each, unsigned long long need, radix_walk_smem<THREADS> & sm) {
    static_assert(radix_bins % THREADS == 0, "each thread owns whole bins");
    constexpr int per_thread = radix_bins / THREADS;
    radix_cut cut;
    for (int level = 0; level < radix_levels; ++level) {
        const int shift = radix_shift(level);
        const uint32_t digit_mask = (1u << radix_width(level)) - 1u;
        for (int b = static_cast<int>(threadIdx.x); b < radix_bins; b += THREADS) {
            sm.count[b] = 0;
            if (WEIGHTED) {
                sm.sum[b] = 0;
            }
        }
        __syncthreads();
        const radix_cut cur = cut;
        for_each([&](unsigned long long key, unsigned long long value) {
            if ((key & cur.mask) == cur.prefix) {
                const uint32_t d = static_cast<uint32_t>(key >> shift) & digit_mask;
                atomicAdd(&sm.count[d], 1u);
                if (WEIGHTED) {
                    atomicAdd(&sm.sum[d], value);
                }
            }
        });
        __syncthreads();
        // Thread t owns digits radix_bins-1-t*per_thread downwards, so an exclusive scan over threads gives the
        // total of all larger digits.
        unsigned long long v[per_thread];
        unsigned long long local = 0;
#pragma unroll
        for (int j = 0; j < per_thread; ++j) {
            const int d = radix_bins - 1 - (static_cast<int>(threadIdx.x) * per_thread + j);
            v[j] = WEIGHTED ? sm.sum[d] : sm.count[d];
            local += v[j];
        }
        unsigned long long above = 0;
        if (WEIGHTED) {
            cub::BlockScan<unsigned long long, THREADS>(sm.scan64).ExclusiveSum(local, above);
        } else {
            uint32_t above32 = 0;
            cub::BlockScan<uint32_t, THREADS>(sm.scan32).ExclusiveSum(static_cast<uint32_t>(local), above32);
            above = above32;
        }
#pragma unroll
        for (int j = 0; j < per_thread; ++j) {
            if (above < need && above + v[j] >= need) {
                const int d = radix_bins - 1 - (static_cast<int>(threadIdx.x) * per_thread + j);
                sm.found_digit = static_cast<uint32_t>(d);
                sm.found_need = need - above;
                sm.found_count = sm.count[d];
            }
            above += v[j];
        }
        __syncthreads();
        const uint32_t digit = sm.found_digit;
        need = sm.found_need;
        const uint32_t bucket = sm.found_count;
        cut.prefix |= static_cast<unsigned long long>(digit) << shift;
        cut.mask |= static_cast<unsigned long long>(digit_mask) << shift;
        __syncthreads(); // found_* and the histograms are rewritten by the next level
        // The boundary's bucket is taken whole: a counting walk that needs all of it, or a bucket of one key.
        if (bucket == 1u || (!WEIGHTED && bucket == need)) {
            break;
        }
    }
    return cut;
}

// Calls emit(pos, rank) for every position of [0, n) that keep(pos) accepts, rank = the number of accepted
// positions below pos (so emitting to out[rank] writes them ascending). Tiles of THREADS * 4 positions, one block
// scan each.
template <int THREADS, typename Keep, typename Emit>
__device__ void ordered_compact(Keep keep, int32_t n, Emit emit,
                                typename cub::BlockScan<uint32_t, THREADS>::TempStorage & scan) {
    constexpr int items = 4;
    uint32_t base = 0;
    for (int32_t tile = 0; tile < n; tile += THREADS * items) {
        const int32_t first = tile + static_cast<int32_t>(threadIdx.x) * items;
        bool flag[items];
        uint32_t cnt = 0;
#pragma unroll
        for (int j = 0; j < items; ++j) {
            flag[j] = first + j < n && keep(first + j);
            cnt += flag[j] ? 1u : 0u;
        }
        uint32_t offset = 0;
        uint32_t tile_total = 0;
        cub::BlockScan<uint32_t, THREADS>(scan).ExclusiveSum(cnt, offset, tile_total);
#pragma unroll
        for (int j = 0; j < items; ++j) {
            if (flag[j]) {
                emit(first + j, static_cast<int32_t>(base + offset));
                ++offset;
            }
        }
        base += tile_total;
        __syncthreads(); // scan storage is reused by the next tile
    }
}

// Calls f(i, score) for i in [0, n) of a global score row, each from one thread, 16-byte loads where aligned.
template <int THREADS, typename F> __device__ __forceinline__ void for_each_score(const float * row, int32_t n, F f) {
    const int32_t misalign = static_cast<int32_t>(((16 - (reinterpret_cast<uintptr_t>(row) & 15)) & 15) / 4);
    const int32_t head = misalign < n ? misalign : n;
    if (static_cast<int32_t>(threadIdx.x) < head) {
        f(static_cast<int32_t>(threadIdx.x), row[threadIdx.x]);
    }
    const int32_t n_vec = (n - head) / 4;
    const float4 * v = reinterpret_cast<const float4 *>(row + head);
    for (int32_t i = static_cast<int32_t>(threadIdx.x); i < n_vec; i += THREADS) {
        const float4 x = v[i];
        const int32_t p = head + 4 * i;
        f(p, x.x);
        f(p + 1, x.y);
        f(p + 2, x.z);
        f(p + 3, x.w);
    }
    for (int32_t i = head + 4 * n_vec + static_cast<int32_t>(threadIdx.x); i < n; i += THREADS) {
        f(i, row[i]);
    }
}

} // namespace specattn
