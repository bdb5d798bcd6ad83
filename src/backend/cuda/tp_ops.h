// The few kernels tensor parallelism adds to the CUDA backend (docs/tensor_parallel.md): the rank-ordered sum that
// finishes an all-reduce and the embedding of a vocabulary slice.
// NOTE(tp): the kernels live in ops_tp.cu rather than src/kernels/: they are a few lines each, used only here, and
// their params are these launchers' arguments.
#pragma once

#include "kernels/kernel_params.h"
#include "tp/collectives.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace specattn {

constexpr int32_t tp_max_ranks = 16;

// out[i] = Σ_{r = 0 .. n_src-1} src[r][i], added in r order in fp32, stored as out_type. out may be one of the src
// when the types agree (each element is read before it is written, by the same thread).
struct tp_sum_params {
    const void * src[tp_max_ranks] = {}; // each [n], of src_type
    int32_t n_src = 0;
    tp_dtype src_type = tp_dtype::tp_dtype_f32;
    void * out = nullptr; // [n], of out_type
    tp_dtype out_type = tp_dtype::tp_dtype_f32;
    int64_t n = 0;
};
void launch_tp_sum(const tp_sum_params & p, cudaStream_t stream);

// The embedding rows of a vocabulary slice [vocab_begin, vocab_end): out[r] = table[tokens[r] - vocab_begin] for
// the slice's ids, zeros for the others (an all-reduce over the ranks then gives every row exactly).
// table: [vocab_end - vocab_begin, n_embd] bf16  tokens: [n_rows]  out: [n_rows, n_embd] fp32
void launch_tp_embed(const bf16 * table, const int32_t * tokens, int64_t vocab_begin, int64_t vocab_end, float * out,
                     int64_t n_rows, int64_t n_embd, cudaStream_t stream);

} // namespace specattn
