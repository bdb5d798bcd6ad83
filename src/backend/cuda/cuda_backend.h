// The CUDA backend: the llama-family forward pass in bf16 (fp32 accumulation, fp32 residual stream) over bf16
// paged K/V pools with the shared layout of src/kernels/paged_kv.h. Same contract as the CPU oracle
// (backend/backend.h): for every layer each row's K/V is written first, then each row attends causally to
// [0, pos] of its own sequence (within the sliding window, if any).
//
// Precision: matrices (embeddings, projections, LM head) are uploaded as bf16, norm weights, biases and the
// RoPE table stay fp32 (they are tiny); activations between kernels are bf16 except the residual stream and the
// logits (fp32). Expect bf16-level agreement with the CPU backend, not bit equality.
//
// Not yet: speculative decoding (sparse sources, attention captures) throws; CUDA graphs; tensor-core prefill.
#pragma once

#include "backend/backend.h"
#include "model/model.h"

#include <memory>

namespace specattn {

class cuda_backend : public backend {
  public:
    // Uploads the model's weights, allocates K/V pools of n_pages pages of page_size tokens (the block manager must
    // use the same numbers) and workspaces for max_rows rows per pass; larger batches run in several passes.
    // Throws specattn::error when there is no CUDA device or memory runs out.
    cuda_backend(const model & m, int64_t n_pages, int64_t page_size, int64_t max_rows);
    ~cuda_backend() override;

    const char * name() const override { return "cuda"; }
    void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) override;
    void set_selection(int32_t seq, const std::vector<int32_t> & positions) override;
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) override;
    void release_selection(int32_t seq) override;
    void synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) override;

    // Inspection, for tests (synchronous): the scores [n_layer, groups, domain] of a held sink (empty if none),
    // and the first n entries of a held list (queued selections are made first).
    std::vector<float> sink_scores(int32_t seq, int32_t id) const;
    std::vector<int32_t> held_list(int32_t seq, int64_t layer, int64_t kv_head, int64_t n);

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace specattn
