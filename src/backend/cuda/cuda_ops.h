// Launchers of the kernels in src/kernels/: they check what the kernels assume (even head dims, sizes that fit
// int32 grids), pick the template instance and launch on a stream. Host code only; tests/ops calls these directly.
// None of them allocates or synchronizes.
#pragma once

#include "kernels/kernel_params.h"

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace specattn {

void launch_embed(const embed_params & p, cudaStream_t stream);
void launch_rmsnorm(const rmsnorm_params & p, cudaStream_t stream);
void launch_qkv_prep(const qkv_prep_params & p, cudaStream_t stream);
void launch_swiglu(const swiglu_params & p, cudaStream_t stream);
// Runs attention_kernel over p.work, then the combine kernel for the rows of split tiles.
void launch_attention(const attention_params & p, cudaStream_t stream);
void launch_argmax(const argmax_params & p, cudaStream_t stream);
// Fills (kernels/fill.cuh): uniform in [-scale, scale) from a counter-based hash of (seed, index); a constant.
void launch_fill_uniform_bf16(bf16 * p, int64_t n, uint64_t seed, float scale, cudaStream_t stream);
void launch_fill_f32(float * p, int64_t n, float value, cudaStream_t stream);
// Synthetic K/V of positions [0, n_pos) of one sequence (its pages), every layer: uniform in [-1, 1) from a hash of
// (seed, logical element index over all n_head_kv_total heads), so the values depend neither on which pages the
// sequence holds nor on how the heads are split among tensor-parallel ranks; the pools hold heads
// [head_begin, head_begin + n_head_kv).
void launch_fill_kv_synthetic(bf16 * k_pool, bf16 * v_pool, const int32_t * pages, int64_t n_pos, int64_t n_layer,
                              int64_t layer_elems, int64_t n_head_kv_total, int64_t head_begin, int64_t n_head_kv,
                              int64_t page_size, int64_t head_dim, uint64_t seed, cudaStream_t stream);

// GEMV (kernels/gemv.cuh, ops_gemm.cu) for the batch-invariant projections of engines decoding 1-2 sequences:
// any R, in groups of 8 rows, each row computed as if alone. gemv_supported: K a multiple of 8. programmatic: as
// a programmatic dependent when pdl_enabled() (the engine's launches); false: plainly (benches).
bool gemv_supported(int64_t n, int64_t k);
void launch_gemv(const gemv_params & p, int n_sm, cudaStream_t stream, bool programmatic = true);

// Skinny GEMM (kernels/skinny_gemm.cuh, ops_gemm.cu) for the batch-invariant decode / draft / verify projections.
// Supported: K a multiple of 8, any N, any number of rows (chunks of 64 in stream order).
bool skinny_gemm_supported(int64_t n, int64_t k);
// The K split of (N, K) on a device of n_sm SMs, at most what max_partial_bytes of partial sums allow. Never a
// function of the rows: that is the batch invariance.
int32_t skinny_gemm_splits(int64_t n, int64_t k, int n_sm, size_t max_partial_bytes);
size_t skinny_gemm_partial_bytes(int64_t n, int32_t splits); // workspace p.partial needs
int64_t skinny_gemm_counters(int64_t n);                     // int32 counters p.counters needs (kept zeroed)
void launch_skinny_gemm(const skinny_gemm_params & p, cudaStream_t stream);

} // namespace specattn
