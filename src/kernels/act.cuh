// SwiGLU over the fused gate/up projection: out = silu(gate) * up, in fp32 from bf16.
#pragma once

#include "kernels/common.cuh"

namespace specattn {

// grid: ceil(R * F / blockDim)  (one thread per output element; the launcher checks R * F fits the grid)
__global__ void swiglu_kernel(const swiglu_params p) {
    pdl_wait(); // launched as a programmatic dependent: gate/up come from the grid before
    pdl_launch_dependents();
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= p.n_rows * p.n_ff) {
        return;
    }
    const int64_t r = i / p.n_ff;
    const int64_t c = i - r * p.n_ff;
    const float g = __bfloat162float(p.gate_up[r * 2 * p.n_ff + c]);
    const float u = __bfloat162float(p.gate_up[r * 2 * p.n_ff + p.n_ff + c]);
    p.out[i] = __float2bfloat16(g / (1.0f + expf(-g)) * u);
}

} // namespace specattn
