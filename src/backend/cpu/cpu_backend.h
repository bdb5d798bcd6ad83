// The CPU reference backend: the llama-family forward pass as straight-line code over backend/cpu/ops.h, with
// the K/V pools laid out as src/kernels/paged_kv.h defines. Clarity first; it is the oracle for every other backend.
//
// It can also be one rank of a tensor-parallel group (src/tp, docs/tensor_parallel.md): constructed from the rank's
// shard, it holds K/V for the rank's KV heads only and calls the group's collectives where the partial results of
// the heads, MLP rows and vocabulary meet. Without tensor parallelism the group has one rank and they do nothing.
#pragma once

#include "backend/backend.h"
#include "kernels/paged_kv.h"
#include "model/model.h"
#include "tp/collectives.h"
#include "tp/tp_plan.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace specattn {

// Called with each named intermediate of the forward pass (per layer; layer -1 for model-level tensors), so a
// test can dump and diff it against transformers.  data: [n_rows, n]
using tensor_callback = std::function<void(const char * name, int64_t layer, const float * data, int64_t n_rows,
                                           int64_t n)>;

class cpu_backend : public backend {
  public:
    // Allocates K/V pools for n_pages pages of page_size tokens (the block manager must use the same numbers).
    cpu_backend(const model & m, int64_t n_pages, int64_t page_size);
    // One tensor-parallel rank: `shard` is shard_model(m, rank); `comm` is the rank's end of the group and must
    // outlive the backend. forward() is then a collective: every rank of the group runs it with the same batch.
    cpu_backend(const model & shard, const tp_rank_plan & rank, collectives & comm, int64_t n_pages,
                int64_t page_size);

    const char * name() const override { return "cpu"; }
    void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) override;
    void set_selection(int32_t seq, const std::vector<int32_t> & positions) override;
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) override;
    void release_selection(int32_t seq) override;
    void synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) override;

    void set_tensor_callback(tensor_callback cb) { callback_ = std::move(cb); }
    // Inspection, for tests: the scores [n_layer, groups, domain] of a held sink (nullptr if none), a held list.
    // On a tensor-parallel rank, groups and KV heads are the rank's own.
    const std::vector<float> * sink_scores(int32_t seq, int32_t id) const;
    const std::vector<int32_t> & held_list(int32_t seq, int64_t layer, int64_t kv_head) const;
    // The positions a draft row attends to in one layer and KV head.  q_group: [G, head_dim], the row's queries.
    void draft_positions(const draft_attention & d, int32_t seq, int64_t layer, int64_t kv_head, int64_t pos,
                         const float * q_group, const paged_kv_seq & view, std::vector<int64_t> & out) const;
    const paged_kv_layout & layout() const { return layout_; }

  private:
    // What a sequence holds for speculative decoding (backend/selection.h).
    struct held_sink {
        int32_t id = 0;
        bool per_kv_head = false;
        int64_t domain = 0;
        std::vector<float> score; // [n_layer, groups, domain]
    };
    struct held_selection {
        std::vector<std::vector<int32_t>> lists; // [n_layer * n_head_kv], ascending
        std::vector<held_sink> sinks;
    };
    // The scaled logits and log-sum-exp of the rows a score sink reads, for the current layer.
    struct row_scores {
        std::vector<std::vector<float>> logits; // [n_rows][n_head * (pos + 1)]; empty for rows no sink reads
        std::vector<std::vector<float>> lse;    // [n_rows][n_head]
    };

    // Causal attention of every row over its own sequence (all heads), reading K/V from the pools; draft rows over
    // their selection. Fills `scores` for the rows it has room for.
    // q: [n_rows, n_head, head_dim]  out: [n_rows, n_head, head_dim]
    void attention(const forward_batch & batch, const kv_block_manager & kv, int64_t layer, const float * q,
                   float * out, row_scores & scores) const;
    // Checks the batch's sinks and gives each a zeroed score vector in its sequence's held state.
    void begin_sinks(const forward_batch & batch, row_scores & scores);
    // The held sink `id` of a sequence, or nullptr.
    held_sink * find_sink(int32_t seq, int32_t id);
    const held_sink * find_sink(int32_t seq, int32_t id) const;
    void reduce_sinks(const forward_batch & batch, int64_t layer, const row_scores & scores);
    // After the last layer: a sink shared by all heads sums over every rank's heads (an all-reduce); a per-KV-head
    // sink is the rank's own. Every rank then holds what its select_top_k needs.
    void finish_sinks(const forward_batch & batch);
    void write_kv(const forward_batch & batch, const kv_block_manager & kv, int64_t layer, const float * k,
                  const float * v);
    void emit(const char * name, int64_t layer, const float * data, int64_t n_rows, int64_t n) const;
    // The embedding rows of the batch's tokens: this rank's vocabulary rows, zeros for other ids, summed over ranks.
    // x: [n_rows, n_embd]
    void embed(const forward_batch & batch, float * x);
    // The LM head over n_out normed rows: this rank's vocabulary block, gathered from every rank in rank order.
    // h: [n_out, n_embd]  logits: [n_out, n_vocab]
    void lm_head(const float * h, int64_t n_out, std::vector<float> & logits);

    const model & model_; // the whole model, or a tensor-parallel rank's shard
    tp_rank_plan rank_;
    single_rank_collectives no_tp_;
    collectives * comm_; // &no_tp_ without tensor parallelism
    paged_kv_layout layout_;
    std::vector<float> k_pool_; // [n_layer, n_pages, n_head_kv, page_size, head_dim]; the rank's KV heads
    std::vector<float> v_pool_; // same
    std::vector<float> inv_freq_; // [head_dim / 2]
    tensor_callback callback_;
    std::map<int32_t, held_selection> held_; // by kv sequence
};

} // namespace specattn
