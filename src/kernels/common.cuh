// Small device helpers shared by the kernels: warp and block reductions. Framework-free; no engine includes.
#pragma once

#include "kernels/kernel_params.h"

#include <cuda_runtime.h>

namespace specattn {

constexpr int warp_size = 32;

// Programmatic dependent launch (Hopper; no-ops before sm_90, and when the grid was launched without the attribute
// or has no dependent): pdl_wait blocks until the preceding grid in the stream has completed and its memory is
// visible, so a kernel may do only work that reads no mutable data (weights, its own parameters) before it;
// pdl_launch_dependents lets the next grid be scheduled before this one ends (it still waits at its pdl_wait).
// Rule: every kernel calls pdl_launch_dependents only after its pdl_wait. Then a grid that has begun knows that
// the grid ahead has passed its own wait, so every grid before that one has ended: data those wrote (the K/V rows
// of earlier passes, attention_work::early_copy) may also be read before pdl_wait.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Barrier of the `threads` threads (a multiple of 32) of the warps that call it with the same id (1-15: 0 is
// __syncthreads'), so groups of warps of one CTA synchronize without waiting for each other.
__device__ __forceinline__ void named_barrier(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = warp_size / 2; o > 0; o /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = warp_size / 2; o > 0; o /= 2) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024). Every thread gets the result.
// scratch: [32] floats of shared memory; the call synchronizes the block.
__device__ __forceinline__ float block_sum(float v, float * scratch) {
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;
    const int n_warp = static_cast<int>(blockDim.x) / warp_size;
    v = warp_sum(v);
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    v = lane < n_warp ? scratch[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads(); // scratch may be reused right after
    return v;
}

} // namespace specattn
