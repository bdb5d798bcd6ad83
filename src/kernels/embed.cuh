// Embedding gather into the fp32 residual stream. One CTA per row; bf16x2 loads.
#pragma once

#include "kernels/common.cuh"

namespace specattn {

// grid: [R]  block: any multiple of 32.  Requires E even.
__global__ void embed_kernel(const embed_params p) {
    const int64_t r = blockIdx.x;
    const int64_t tok = p.tokens[r];
    const __nv_bfloat162 * src = reinterpret_cast<const __nv_bfloat162 *>(p.table + tok * p.n_embd); // [E / 2]
    float2 * dst = reinterpret_cast<float2 *>(p.out + r * p.n_embd);                                 // [E / 2]
    for (int64_t i = threadIdx.x; i < p.n_embd / 2; i += blockDim.x) {
        dst[i] = __bfloat1622float2(src[i]);
    }
}

} // namespace specattn
