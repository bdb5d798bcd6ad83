// SPECATTN_CUDA_CHECK(expr): the one error check for CUDA runtime (cudaError_t) and cuBLAS / cuBLASLt
// (cublasStatus_t) status codes (STYLE.md §10). On failure it throws specattn::error naming the status, the
// statement, the function, the file and the line, e.g.
//     CUDA error cudaErrorMemoryAllocation (out of memory) in `cudaMalloc(&p, bytes)` at cuda_backend.cpp:42
//     (cuda_backend): lower --ctx-size or --batch
// After a kernel launch, check cudaGetLastError(): SPECATTN_CUDA_CHECK(cudaGetLastError()).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

namespace specattn {

[[noreturn]] void cuda_fail(const char * kind, const char * name, const char * detail, const char * stmt,
                            const char * func, const char * file, int line);

inline void cuda_check_status(cudaError_t e, const char * stmt, const char * func, const char * file, int line) {
    if (e != cudaSuccess) {
        cuda_fail("CUDA", cudaGetErrorName(e), cudaGetErrorString(e), stmt, func, file, line);
    }
}

inline void cuda_check_status(cublasStatus_t s, const char * stmt, const char * func, const char * file, int line) {
    if (s != CUBLAS_STATUS_SUCCESS) {
        cuda_fail("cuBLAS", cublasLtGetStatusName(s), cublasLtGetStatusString(s), stmt, func, file, line);
    }
}

} // namespace specattn

#define SPECATTN_CUDA_CHECK(expr) ::specattn::cuda_check_status((expr), #expr, __func__, __FILE__, __LINE__)
