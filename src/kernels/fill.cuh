// Random and constant fills of device memory: the weights of model-shape presets (model/presets.h) and synthetic
// benchmark contexts. A counter-based hash (splitmix64 of seed and index) so every element is independent of the
// launch shape and a fill is reproducible.
#pragma once

#include "kernels/common.cuh"
#include "kernels/paged_kv.h"

namespace specattn {

__device__ __forceinline__ uint64_t fill_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Uniform in [-scale, scale).
__device__ __forceinline__ float fill_uniform(uint64_t seed, int64_t i, float scale) {
    const uint64_t h = fill_mix(seed ^ fill_mix(static_cast<uint64_t>(i)));
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f); // 24 bits: [0, 1)
    return (2.0f * u - 1.0f) * scale;
}

// grid-stride; any grid.
__global__ void fill_uniform_bf16_kernel(bf16 * p, int64_t n, uint64_t seed, float scale) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        p[i] = __float2bfloat16(fill_uniform(seed, i, scale));
    }
}

__global__ void fill_f32_kernel(float * p, int64_t n, float value) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        p[i] = value;
    }
}

// Element e of the logical [L][n_pos][HK_total][D] K/V of one sequence: K gets hash (seed, 2e), V (seed, 2e + 1).
// The pool holds KV heads [head_begin, head_begin + n_head_kv) of them (all of them, or a tensor-parallel rank's),
// each written at its page: a rank's values are therefore the one-rank model's.
__global__ void fill_kv_synthetic_kernel(bf16 * k_pool, bf16 * v_pool, const int32_t * pages, int64_t n_pos,
                                         int64_t n_layer, int64_t layer_elems, int64_t n_head_kv_total,
                                         int64_t head_begin, int64_t n_head_kv, int64_t page_size, int64_t head_dim,
                                         uint64_t seed) {
    const int64_t n = n_layer * n_pos * n_head_kv * head_dim; // the pool's own elements
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t d = i % head_dim;
        const int64_t h = i / head_dim % n_head_kv;
        const int64_t p = i / (head_dim * n_head_kv) % n_pos;
        const int64_t l = i / (head_dim * n_head_kv * n_pos);
        const int64_t e = ((l * n_pos + p) * n_head_kv_total + head_begin + h) * head_dim + d; // logical element
        const paged_kv_place<int64_t> at = paged_kv_place_of(p, page_size);
        const int64_t off =
            l * layer_elems + paged_kv_page_offset(pages[at.index], h, at.slot, n_head_kv, page_size, head_dim) + d;
        k_pool[off] = __float2bfloat16(fill_uniform(seed, 2 * e, 1.0f));
        v_pool[off] = __float2bfloat16(fill_uniform(seed, 2 * e + 1, 1.0f));
    }
}

} // namespace specattn
