// cuBLASLt GEMM (see gemm.h).
//
// Row-major y[m, n] = x[m, k] · W[n, k]ᵀ is, in cuBLAS's column-major terms, the "TN" product
//     Y (n × m, ld n) = op(A)(n × k) · B (k × m),  A = W seen as k × n (ld k) transposed,  B = x seen as k × m (ld k),
// the layout cuBLASLt's tensor-core kernels like best. No bias or activation epilogue: the fused kernels around
// the GEMMs (qkv_prep, swiglu, rmsnorm's residual add) do that work.
#include "backend/cuda/gemm.h"

#include "backend/cuda/cuda_check.h"
#include "core/check.h"

namespace specattn {

cublaslt_gemm::cublaslt_gemm(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
    SPECATTN_CUDA_CHECK(cublasLtCreate(&handle_));
    SPECATTN_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

cublaslt_gemm::~cublaslt_gemm() {
    // Destructors do not throw: errors here are ignored (the context may already be gone at exit).
    for (auto & [key, p] : plans_) {
        cublasLtMatrixLayoutDestroy(p.a);
        cublasLtMatrixLayoutDestroy(p.b);
        cublasLtMatrixLayoutDestroy(p.c);
        cublasLtMatmulDescDestroy(p.op);
    }
    cudaFree(workspace_);
    cublasLtDestroy(handle_);
}

const cublaslt_gemm::plan & cublaslt_gemm::get_plan(gemm_out out, int64_t m, int64_t n, int64_t k) {
    const auto key = std::make_tuple(static_cast<int32_t>(out), m, n, k);
    auto it = plans_.find(key);
    if (it != plans_.end()) {
        return it->second;
    }
    cudaDataType_t y_type = CUDA_R_32F;
    switch (out) {
    case gemm_out::gemm_out_bf16:
        y_type = CUDA_R_16BF;
        break;
    case gemm_out::gemm_out_f32:
        y_type = CUDA_R_32F;
        break;
    }
    plan p;
    SPECATTN_CUDA_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans = CUBLAS_OP_T;
    SPECATTN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans));
    SPECATTN_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
    SPECATTN_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(m), k));
    SPECATTN_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&p.c, y_type, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n));

    cublasLtMatmulPreference_t pref = nullptr;
    SPECATTN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    SPECATTN_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &workspace_bytes_, sizeof workspace_bytes_));
    cublasLtMatmulHeuristicResult_t result{};
    int n_result = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &n_result);
    cublasLtMatmulPreferenceDestroy(pref);
    SPECATTN_CUDA_CHECK(st);
    SPECATTN_CHECK(n_result > 0, "cuBLASLt has no algorithm for a bf16 GEMM of m %lld, n %lld, k %lld",
                   static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k));
    p.algo = result.algo;
    return plans_.emplace(key, p).first->second;
}

void cublaslt_gemm::run(const bf16 * x, const bf16 * w, void * y, gemm_out out, int64_t m, int64_t n, int64_t k,
                        cudaStream_t stream) {
    SPECATTN_CHECK(m > 0 && n > 0 && k > 0, "GEMM with an empty dimension (m %lld, n %lld, k %lld)",
                   static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k));
    const plan & p = get_plan(out, m, n, k);
    const float alpha = 1.0f;
    const float beta = 0.0f;
    SPECATTN_CUDA_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo,
                                       workspace_, workspace_bytes_, stream));
}

} // namespace specattn
