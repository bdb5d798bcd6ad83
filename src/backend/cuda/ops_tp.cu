// Kernels and launchers of tp_ops.h. Grid-stride loops: any grid, element-wise, no shared memory.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tp_ops.h"
#include "core/check.h"

#include <algorithm>

namespace specattn {

namespace {

constexpr int tp_threads = 256;

unsigned int tp_grid(int64_t n) {
    return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>((n + tp_threads - 1) / tp_threads, 4096)));
}

__device__ __forceinline__ float tp_load(const void * p, tp_dtype t, int64_t i) {
    return t == tp_dtype::tp_dtype_f32 ? static_cast<const float *>(p)[i]
                                       : __bfloat162float(static_cast<const bf16 *>(p)[i]);
}

__global__ void tp_sum_kernel(tp_sum_params p) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        float s = tp_load(p.src[0], p.src_type, i);
        for (int32_t r = 1; r < p.n_src; ++r) {
            s += tp_load(p.src[r], p.src_type, i);
        }
        if (p.out_type == tp_dtype::tp_dtype_f32) {
            static_cast<float *>(p.out)[i] = s;
        } else {
            static_cast<bf16 *>(p.out)[i] = __float2bfloat16(s);
        }
    }
}

__global__ void tp_embed_kernel(const bf16 * table, const int32_t * tokens, int64_t vocab_begin, int64_t vocab_end,
                                float * out, int64_t n_rows, int64_t n_embd) {
    const int64_t n = n_rows * n_embd;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t tok = tokens[i / n_embd];
        const bool mine = tok >= vocab_begin && tok < vocab_end;
        out[i] = mine ? __bfloat162float(table[(tok - vocab_begin) * n_embd + i % n_embd]) : 0.0f;
    }
}

} // namespace

void launch_tp_sum(const tp_sum_params & p, cudaStream_t stream) {
    SPECATTN_CHECK(p.n_src >= 1 && p.n_src <= tp_max_ranks, "tensor-parallel sum over %d ranks (1 to %d)", p.n_src,
                   tp_max_ranks);
    if (p.n == 0) {
        return;
    }
    tp_sum_kernel<<<tp_grid(p.n), tp_threads, 0, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_tp_embed(const bf16 * table, const int32_t * tokens, int64_t vocab_begin, int64_t vocab_end, float * out,
                     int64_t n_rows, int64_t n_embd, cudaStream_t stream) {
    tp_embed_kernel<<<tp_grid(n_rows * n_embd), tp_threads, 0, stream>>>(table, tokens, vocab_begin, vocab_end, out,
                                                                         n_rows, n_embd);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

} // namespace specattn
