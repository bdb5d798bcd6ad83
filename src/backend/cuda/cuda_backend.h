// The CUDA backend: the llama-family forward pass in bf16 (fp32 accumulation, fp32 residual stream) over bf16
// paged K/V pools with the shared layout of src/kernels/paged_kv.h. Same contract as the CPU oracle
// (backend/backend.h): for every layer each row's K/V is written first, then each row attends causally to
// [0, pos] of its own sequence (within the sliding window, if any).
//
// Precision: matrices (embeddings, projections, LM head) are uploaded as bf16, norm weights, biases and the
// RoPE table stay fp32 (they are tiny); activations between kernels are bf16 except the residual stream and the
// logits (fp32). Expect bf16-level agreement with the CPU backend, not bit equality.
//
// Decode, draft and verify passes are batch-invariant and replayed as CUDA graphs; selections and score sinks stay
// on the device (selection_state.h). A pass synchronizes once, at its end, to copy back its logits or, through
// forward_argmax, only its greedy token ids.
#pragma once

#include "backend/backend.h"
#include "model/model.h"
#include "tp/collectives.h"
#include "tp/tp_plan.h"

#include <memory>

namespace specattn {

class cuda_backend : public backend {
  public:
    // Uploads the model's weights, allocates K/V pools of n_pages pages of page_size tokens (the block manager must
    // use the same numbers) and workspaces for max_rows rows per pass; larger batches run in several passes.
    // decode_rows: the sequences the engine decodes together, for which the batch-invariant GEMM algorithms are
    // chosen (gemm.h). Throws specattn::error when there is no CUDA device or memory runs out.
    cuda_backend(const model & m, int64_t n_pages, int64_t page_size, int64_t max_rows, int64_t decode_rows = 1);
    // One tensor-parallel rank (docs/tensor_parallel.md), on the current CUDA device: `shard` is shard_model(m, rank),
    // `comm` the rank's end of a cuda_collectives_group (cuda_collectives.h); both must outlive the backend. The
    // constructor (its warm-up pass) and forward() are then collectives: every rank of the group runs them, each on
    // its own thread (cuda_tp_backend).
    cuda_backend(const model & shard, const tp_rank_plan & rank, collectives & comm, int64_t n_pages, int64_t page_size,
                 int64_t max_rows, int64_t decode_rows = 1);
    ~cuda_backend() override;

    const char * name() const override { return "cuda"; }
    void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) override;
    void forward_argmax(const forward_batch & batch, const kv_block_manager & kv, std::vector<int32_t> & ids) override;
    void forward_sample(const forward_batch & batch, const kv_block_manager & kv,
                        const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                        std::vector<int32_t> & ids) override;
    bool samples_on_device() const override;
    void forward_sample_held(const forward_batch & batch, const kv_block_manager & kv,
                             const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                             const std::vector<int32_t> & holds, std::vector<int32_t> & ids) override;
    void forward_accept(const forward_batch & batch, const kv_block_manager & kv,
                        const std::vector<sampling_params> & params, const std::vector<held_verification> & v,
                        std::vector<accept_outcome> & out) override;
    void set_selection(int32_t seq, const std::vector<int32_t> & positions) override;
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) override;
    void release_selection(int32_t seq) override;
    void synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) override;

    // Inspection, for tests (synchronous): the scores [n_layer, groups, domain] of a held sink (empty if none),
    // and the first n entries of a held list (queued selections are made first).
    std::vector<float> sink_scores(int32_t seq, int32_t id) const;
    std::vector<int32_t> held_list(int32_t seq, int64_t layer, int64_t kv_head, int64_t n);

  private:
    // What a forward returns per logit row (indexed by output row): its logits; a token id — the argmax, or, with
    // params and uniforms, drawn on the device (and its distribution held in slot holds[j]); or, with params and
    // neither logits nor ids, nothing but the target distributions of a verification, kept on the device.
    struct outputs {
        float * logits = nullptr;                 // [logit rows, n_vocab]
        int32_t * ids = nullptr;                  // [logit rows]
        const sampling_params * params = nullptr; // [logit rows] or nullptr: argmax
        const double * uniforms = nullptr;        // [logit rows]
        const int32_t * holds = nullptr;          // [logit rows] or nullptr
        int64_t n_total = 0;                      // target distributions: the batch's logit rows
    };
    // forward_sample (holds nullptr) and forward_sample_held.
    void sample(const forward_batch & batch, const kv_block_manager & kv, const std::vector<sampling_params> & params,
                const std::vector<double> & uniforms, const int32_t * holds, std::vector<int32_t> & ids);
    void run(const forward_batch & batch, const kv_block_manager & kv, const outputs & out);

    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace specattn
