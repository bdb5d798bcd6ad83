// Launchers of the draft-selection kernels: score reduce, top-k, Quest metadata and Quest selection
// (src/kernels/{score_reduce,top_k,quest}.cuh). Own translation unit, so they compile beside ops.cu and
// ops_attention.cu.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pdl_launch.h"
#include "backend/cuda/select_ops.h"
#include "core/check.h"
#include "kernels/quest.cuh"
#include "kernels/score_reduce.cuh"
#include "kernels/top_k.cuh"

#include <climits>

namespace specattn {

namespace {

unsigned int grid_dim(int64_t n, int64_t limit, const char * what) {
    SPECATTN_CHECK(n > 0 && n <= limit, "%s: %lld blocks do not fit a CUDA grid dimension", what,
                   static_cast<long long>(n));
    return static_cast<unsigned int>(n);
}

// Raises a kernel's dynamic shared-memory limit to `bytes` the first time a launch needs more than before. Always
// through the attribute: static + dynamic above 48 KiB needs it even when the dynamic part alone is small.
template <typename Kernel> void allow_smem(Kernel kernel, size_t bytes, size_t & allowed) {
    if (bytes > allowed) {
        SPECATTN_CUDA_CHECK(
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
        allowed = bytes;
    }
}

} // namespace

void launch_score_reduce(const score_reduce_params & p, cudaStream_t stream) {
    if (p.n_jobs == 0 || p.max_domain == 0) {
        return;
    }
    SPECATTN_CHECK(p.n_head > 0 && p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0,
                   "score reduce: %lld query heads do not split into %lld KV-head groups",
                   static_cast<long long>(p.n_head), static_cast<long long>(p.n_head_kv));
    SPECATTN_CHECK(p.max_groups == 1 || p.max_groups == p.n_head_kv,
                   "score reduce: max_groups %lld must be 1 or n_head_kv %lld", static_cast<long long>(p.max_groups),
                   static_cast<long long>(p.n_head_kv));
    SPECATTN_CHECK(p.partials == nullptr ||
                       (p.partial_kv_stride % 4 == 0 && reinterpret_cast<uintptr_t>(p.partials) % 16 == 0),
                   "score reduce: partial rows must be 16-byte aligned");
    SPECATTN_CHECK(p.max_domain <= INT32_MAX - score_reduce_span, "score reduce: domain %lld does not fit int32",
                   static_cast<long long>(p.max_domain));
    constexpr int64_t per_block = score_reduce_span;
    const dim3 grid(grid_dim((p.max_domain + per_block - 1) / per_block, INT32_MAX, "score reduce"),
                    grid_dim(p.n_jobs, 65535, "score reduce jobs"), grid_dim(p.max_groups, 64, "score reduce groups"));
    // A programmatic dependent (unless SPECATTN_PDL=0): its launch overlaps the attention's combine.
    launch_kernel(pdl_enabled(), score_reduce_kernel, grid, dim3(score_reduce_threads), 0, stream, p);
}

void launch_top_k(const top_k_params & p, cudaStream_t stream) {
    if (p.n_jobs == 0) {
        return;
    }
    SPECATTN_CHECK(p.max_n >= 0 && p.max_n <= top_k_max_n, "top-k: domain %lld beyond the supported %lld",
                   static_cast<long long>(p.max_n), static_cast<long long>(top_k_max_n));
    static size_t allowed = 0;
    const size_t smem = static_cast<size_t>(p.max_n < top_k_smem_keys ? p.max_n : top_k_smem_keys) * sizeof(uint32_t);
    allow_smem(top_k_kernel, smem, allowed);
    top_k_kernel<<<grid_dim(p.n_jobs, INT32_MAX, "top-k"), top_k_threads, smem, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_quest_meta(const quest_meta_params & p, cudaStream_t stream) {
    if (p.n_entries == 0 || p.n_layer == 0) {
        return;
    }
    SPECATTN_CHECK(p.head_dim % 2 == 0 && p.head_dim > 0, "quest metadata: head_dim %lld must be even",
                   static_cast<long long>(p.head_dim));
    const dim3 grid(grid_dim(p.n_entries, INT32_MAX, "quest metadata"), grid_dim(p.n_layer, 65535, "quest layers"));
    quest_meta_kernel<<<grid, quest_meta_threads, 0, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_quest_select(const quest_select_params & p, cudaStream_t stream) {
    if (p.n_jobs == 0 || p.max_pages_before == 0) {
        return;
    }
    SPECATTN_CHECK(p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0 && p.n_head / p.n_head_kv <= quest_max_group,
                   "quest select: GQA group %lld / %lld unsupported (at most %d query heads per KV head)",
                   static_cast<long long>(p.n_head), static_cast<long long>(p.n_head_kv), quest_max_group);
    SPECATTN_CHECK(p.head_dim % 2 == 0 && p.head_dim > 0 && p.head_dim <= quest_max_head_dim,
                   "quest select: head_dim %lld must be even and at most %d", static_cast<long long>(p.head_dim),
                   quest_max_head_dim);
    const size_t smem = static_cast<size_t>(p.max_pages_before) * sizeof(float);
    SPECATTN_CHECK(smem + sizeof(quest_select_smem) <= 227 * 1024,
                   "quest select: %lld pages before the row do not fit shared memory (raise the page size)",
                   static_cast<long long>(p.max_pages_before));
    static size_t allowed = 0;
    allow_smem(quest_select_kernel, smem, allowed);
    const dim3 grid(grid_dim(p.n_jobs, INT32_MAX, "quest select"), grid_dim(p.n_head_kv, 65535, "quest heads"));
    quest_select_kernel<<<grid, quest_select_threads, smem, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

} // namespace specattn
