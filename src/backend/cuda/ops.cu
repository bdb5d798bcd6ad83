// Launchers of the element-wise and row-wise kernels (embedding, RMSNorm, QKV prep with the KV append, SwiGLU,
// argmax), and the programmatic-dependent-launch switches (pdl_launch.h).
// Attention has its own translation unit (ops_attention.cu) so its instances compile in parallel with these.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/pdl_launch.h"
#include "core/check.h"
#include "kernels/act.cuh"
#include "kernels/embed.cuh"
#include "kernels/fill.cuh"
#include "kernels/norm.cuh"
#include "kernels/rope.cuh"
#include "kernels/sampling.cuh"

#include <climits>
#include <cstdlib>

namespace specattn {

namespace {

// A grid dimension: checked narrowing of a count to the x-dimension limit.
unsigned int grid_of(int64_t n, const char * what) {
    SPECATTN_CHECK(n > 0 && n <= INT32_MAX, "%s: %lld blocks do not fit a CUDA grid", what, static_cast<long long>(n));
    return static_cast<unsigned int>(n);
}

} // namespace

bool pdl_supported() {
    static const bool supported = cuda_compute_capability() >= 90;
    return supported;
}

bool pdl_enabled() {
    static const bool on = [] {
        const char * e = std::getenv("SPECATTN_PDL");
        return e == nullptr || e[0] != '0';
    }();
    return on && pdl_supported();
}

void launch_embed(const embed_params & p, cudaStream_t stream) {
    SPECATTN_CHECK(p.n_embd % 2 == 0, "embedding: n_embd %lld must be even", static_cast<long long>(p.n_embd));
    embed_kernel<<<grid_of(p.n_rows, "embedding"), 128, 0, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_rmsnorm(const rmsnorm_params & p, cudaStream_t stream) {
    launch_kernel(pdl_enabled(), rmsnorm_kernel, dim3(grid_of(p.n_rows, "rmsnorm")), dim3(rmsnorm_threads), 0, stream,
                  p);
}

void launch_qkv_prep(const qkv_prep_params & p, cudaStream_t stream) {
    SPECATTN_CHECK(p.head_dim % 2 == 0 && p.head_dim > 0 && p.head_dim <= qkv_prep_max_head_dim,
                   "qkv prep: unsupported head_dim %lld (even, at most %d)", static_cast<long long>(p.head_dim),
                   qkv_prep_max_head_dim);
    SPECATTN_CHECK((p.q_norm == nullptr) == (p.k_norm == nullptr), "qkv prep: q_norm and k_norm go together");
    SPECATTN_CHECK(p.k_pool == nullptr ||
                       (p.v_pool != nullptr && p.page != nullptr && p.slot != nullptr && p.page_size > 0),
                   "qkv prep: the KV append needs both pools, pages, slots and the page size");
    constexpr int64_t heads_per_cta = qkv_prep_threads / warp_size;
    const int64_t head_blocks = (p.n_head + 2 * p.n_head_kv + heads_per_cta - 1) / heads_per_cta;
    const dim3 grid(grid_of(p.n_rows, "qkv prep"), grid_of(head_blocks, "qkv prep heads"));
    launch_kernel(pdl_enabled(), qkv_prep_kernel, grid, dim3(qkv_prep_threads), 0, stream, p);
}

void launch_swiglu(const swiglu_params & p, cudaStream_t stream) {
    constexpr int threads = 256;
    const int64_t n = p.n_rows * p.n_ff;
    launch_kernel(pdl_enabled(), swiglu_kernel, dim3(grid_of((n + threads - 1) / threads, "swiglu")), dim3(threads), 0,
                  stream, p);
}

void launch_argmax(const argmax_params & p, cudaStream_t stream) {
    SPECATTN_CHECK(p.n_vocab > 0 && p.n_vocab <= INT32_MAX, "argmax: vocabulary of %lld does not fit int32",
                   static_cast<long long>(p.n_vocab));
    launch_kernel(pdl_enabled(), argmax_kernel, dim3(grid_of(p.n_rows, "argmax")), dim3(argmax_threads), 0, stream, p);
}

void launch_fill_uniform_bf16(bf16 * p, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
    if (n > 0) {
        fill_uniform_bf16_kernel<<<1024, 256, 0, stream>>>(p, n, seed, scale);
        SPECATTN_CUDA_CHECK(cudaGetLastError());
    }
}

void launch_fill_kv_synthetic(bf16 * k_pool, bf16 * v_pool, const int32_t * pages, int64_t n_pos, int64_t n_layer,
                              int64_t layer_elems, int64_t n_head_kv_total, int64_t head_begin, int64_t n_head_kv,
                              int64_t page_size, int64_t head_dim, uint64_t seed, cudaStream_t stream) {
    SPECATTN_CHECK(head_begin >= 0 && head_begin + n_head_kv <= n_head_kv_total,
                   "synthetic K/V: heads [%lld, %lld) outside the model's %lld", static_cast<long long>(head_begin),
                   static_cast<long long>(head_begin + n_head_kv), static_cast<long long>(n_head_kv_total));
    fill_kv_synthetic_kernel<<<2048, 256, 0, stream>>>(k_pool, v_pool, pages, n_pos, n_layer, layer_elems,
                                                       n_head_kv_total, head_begin, n_head_kv, page_size, head_dim,
                                                       seed);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_fill_f32(float * p, int64_t n, float value, cudaStream_t stream) {
    if (n > 0) {
        fill_f32_kernel<<<256, 256, 0, stream>>>(p, n, value);
        SPECATTN_CUDA_CHECK(cudaGetLastError());
    }
}

} // namespace specattn
