// Tensor parallelism simulated on the CPU (docs/tensor_parallel.md): N cpu_backend ranks, each on its shard of the
// model with K/V pools for its own KV heads, in one process. A forward runs every rank on its own thread; they meet
// in the collectives (tp/collectives.h) exactly where the NCCL calls of the GPU version will be, which sum in rank
// order, so the results are the same in every run. The block manager (page ids) is shared by all ranks.
//
// It is the oracle for the NCCL backend to come, and the proof that the partition, the collectives and SpecAttn's
// cross-rank score reduction reproduce the one-rank model: tests/unit/tp.
#pragma once

#include "backend/cpu/cpu_backend.h"
#include "tp/collectives.h"
#include "tp/tp_plan.h"

#include <memory>
#include <vector>

namespace specattn {

class cpu_tp_backend : public backend {
  public:
    // Throws specattn::error when n_ranks does not divide the model's heads (tp/tp_plan.h).
    cpu_tp_backend(const model & m, int32_t n_ranks, int64_t n_pages, int64_t page_size);
    ~cpu_tp_backend() override;

    const char * name() const override { return "cpu-tp"; }
    void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) override;
    void synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) override;
    // Rank-local: every rank holds the same lists (a shared sink was all-reduced in the forward that filled it),
    // or its own KV heads' (a per-KV-head sink).
    void set_selection(int32_t seq, const std::vector<int32_t> & positions) override;
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) override;
    void release_selection(int32_t seq) override;

    int32_t n_ranks() const { return static_cast<int32_t>(ranks_.size()); }
    const tp_rank_plan & plan(int32_t r) const { return plan_[static_cast<size_t>(r)]; }
    // Inspection, for tests: rank r's backend (its sinks and lists are over its own KV heads).
    const cpu_backend & rank(int32_t r) const { return *ranks_[static_cast<size_t>(r)]; }

  private:
    std::vector<tp_rank_plan> plan_;
    std::vector<model> shards_; // ranks_ refer to them: filled once, never resized
    cpu_collectives_group group_;
    std::vector<std::unique_ptr<cpu_backend>> ranks_;
    std::vector<std::vector<float>> rank_logits_; // every rank gathers all logits; rank 0's are returned
};

} // namespace specattn
