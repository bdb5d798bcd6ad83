// Random and constant fills of device memory: the weights of model-shape presets (model/presets.h) and synthetic
// benchmark contexts. A counter-based hash (splitmix64 of seed and index) so every element is independent of the
// launch shape and a fill is reproducible.
#pragma once

#include "kernels/common.cuh"

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

} // namespace specattn
