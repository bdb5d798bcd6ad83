// RMSNorm with an optional fused residual add (see rmsnorm_params). One CTA per output row; fp32 statistics.
#pragma once

#include "kernels/common.cuh"

namespace specattn {

// grid: [R]  block: rmsnorm_threads
constexpr int rmsnorm_threads = 256;

__global__ void __launch_bounds__(rmsnorm_threads) rmsnorm_kernel(const rmsnorm_params p) {
    __shared__ float scratch[warp_size];
    const int64_t src = p.rows != nullptr ? p.rows[blockIdx.x] : static_cast<int64_t>(blockIdx.x);
    float * x = p.x + src * p.n;                                                 // [E]
    const bf16 * res = p.residual != nullptr ? p.residual + src * p.n : nullptr; // [E]
    bf16 * y = p.out + static_cast<int64_t>(blockIdx.x) * p.n;                   // [E]

    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) {
        float v = x[i];
        if (res != nullptr) {
            v += __bfloat162float(res[i]);
            x[i] = v; // each element is read and written by the same thread: no race
        }
        ss += v * v;
    }
    ss = block_sum(ss, scratch);
    const float scale = rsqrtf(ss / static_cast<float>(p.n) + p.eps);
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) {
        y[i] = __float2bfloat16(p.weight[i] * (x[i] * scale));
    }
}

} // namespace specattn
