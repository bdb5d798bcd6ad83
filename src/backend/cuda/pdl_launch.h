// Kernel launches as programmatic dependents (Hopper): the grid may be scheduled while the preceding grid in the
// stream finishes, and waits in the kernel (pdl_wait, kernels/common.cuh) before it touches that grid's results.
// Included by the .cu launchers only (cudaLaunchKernelEx's typed form needs nvcc).
//
// The attention combine always launches this way (it waits at its first line). The other decode-step kernels
// (RMSNorm, qkv prep, SwiGLU, GEMV, attention, score reduce, argmax) do so unless SPECATTN_PDL=0: on the H200
// (2026-11-29, scripts/gpu_session.sh pdl) it took Llama-8B batch-1 decoding from 191.0 to 200.9 tok/s at 4K and
// 160.8 to 164.0 at 32K (the next kernel's launch and prologue overlap the previous one's tail). Each of them waits
// before its first read of mutable data, so launching it either way computes the same bits.
#pragma once

#include "backend/cuda/cuda_check.h"

#include <cuda_runtime.h>

#include <utility>

namespace specattn {

// Whether the current device supports programmatic dependent launch (compute capability 9.0 or later).
bool pdl_supported();
// Whether the decode-step kernels launch as programmatic dependents: the device can, and SPECATTN_PDL is not 0.
bool pdl_enabled();

template <typename... Params, typename... Args>
void launch_kernel(bool programmatic, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, Args &&... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = programmatic && pdl_supported() ? 1 : 0;
    SPECATTN_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

} // namespace specattn
