// Greedy sampling on the device: argmax per row, lowest index among ties, NaN never wins (sampling/sampler.cpp's
// rule). One CTA per row.
#pragma once

#include "kernels/common.cuh"

namespace specattn {

// One CTA per row: at batch 1 the argmax is one SM reading a whole vocabulary, so its time is the number of
// dependent load rounds (a 128K vocabulary strided over 256 threads took 210 us under Nsight Compute; 1024 threads
// with 16-byte loads make it 32 rounds, independent of one another).
constexpr int argmax_threads = 1024;

// Whether (v, i) beats (best_v, best_i): larger value, then lower index; a NaN value never wins, and any number
// beats the empty candidate (index -1). A total order, so the result does not depend on the order of visits.
__device__ __forceinline__ bool argmax_better(float v, int32_t i, float best_v, int32_t best_i) {
    if (i < 0 || isnan(v)) {
        return false;
    }
    return best_i < 0 || v > best_v || (v == best_v && i < best_i);
}

__device__ __forceinline__ void argmax_visit(float v, int64_t i, float & best_v, int32_t & best_i) {
    if (argmax_better(v, static_cast<int32_t>(i), best_v, best_i)) {
        best_v = v;
        best_i = static_cast<int32_t>(i);
    }
}

// grid: [R]  block: argmax_threads.  The launcher checks V fits int32. All-NaN rows give -1.
__global__ void __launch_bounds__(argmax_threads) argmax_kernel(const argmax_params p) {
    __shared__ float s_val[argmax_threads / warp_size];
    __shared__ int32_t s_idx[argmax_threads / warp_size];
    pdl_wait(); // launched as a programmatic dependent: the logits come from the grid before
    pdl_launch_dependents();
    const float * row = p.logits + static_cast<int64_t>(blockIdx.x) * p.n_vocab; // [V]
    float best_v = 0.0f;
    int32_t best_i = -1;
    if (p.n_vocab % 4 == 0 && (reinterpret_cast<uintptr_t>(p.logits) & 15u) == 0) { // every row 16-byte aligned
        const float4 * row4 = reinterpret_cast<const float4 *>(row);
#pragma unroll 4
        for (int64_t i = threadIdx.x; i < p.n_vocab / 4; i += blockDim.x) {
            const float4 q = row4[i];
            argmax_visit(q.x, 4 * i, best_v, best_i);
            argmax_visit(q.y, 4 * i + 1, best_v, best_i);
            argmax_visit(q.z, 4 * i + 2, best_v, best_i);
            argmax_visit(q.w, 4 * i + 3, best_v, best_i);
        }
    } else {
        for (int64_t i = threadIdx.x; i < p.n_vocab; i += blockDim.x) {
            argmax_visit(row[i], i, best_v, best_i);
        }
    }
    for (int o = warp_size / 2; o > 0; o /= 2) {
        const float v = __shfl_xor_sync(0xffffffffu, best_v, o);
        const int32_t i = __shfl_xor_sync(0xffffffffu, best_i, o);
        if (argmax_better(v, i, best_v, best_i)) {
            best_v = v;
            best_i = i;
        }
    }
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;
    if (lane == 0) {
        s_val[warp] = best_v;
        s_idx[warp] = best_i;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < argmax_threads / warp_size; ++w) {
            if (argmax_better(s_val[w], s_idx[w], best_v, best_i)) {
                best_v = s_val[w];
                best_i = s_idx[w];
            }
        }
        p.out[blockIdx.x] = best_i;
    }
}

} // namespace specattn
