// What the tensor-parallel backends share (docs/tensor_parallel.md): cpu_tp_backend (ranks simulated on the CPU)
// and cuda_tp_backend (a GPU per rank) hold the plan, each rank's shard and one backend per rank, and run the calls
// of the backend interface on every rank:
//   forward       on the ranks' own threads, which meet in the collectives; every rank gathers all the logits and
//                 rank 0's are returned;
//   rank-local    synthetic_kv and the selections, one rank after another on the calling thread: every rank holds
//                 the same lists (a shared sink was all-reduced in the forward that filled it) or its own KV heads'
//                 (a per-KV-head sink).
// A derived class makes the ranks (its constructor) and says how they run (run_ranks, each_rank).
#pragma once

#include "backend/backend.h"
#include "tp/tp_plan.h"

#include <functional>
#include <memory>
#include <vector>

namespace specattn {

template <typename Rank> class tp_backend : public backend {
  public:
    void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) override {
        run_ranks([&](int32_t r) { rank(r).forward(batch, kv, r == 0 ? logits : rank_logits_[static_cast<size_t>(r)]); });
    }
    void synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) override {
        each_rank([&](int32_t r) { rank(r).synthetic_kv(kv, seq, n, seed); });
    }
    void set_selection(int32_t seq, const std::vector<int32_t> & positions) override {
        each_rank([&](int32_t r) { rank(r).set_selection(seq, positions); });
    }
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) override {
        int64_t n = 0;
        each_rank([&](int32_t r) { n = rank(r).select_top_k(seq, sink, k); }); // the same on every rank
        return n;
    }
    void release_selection(int32_t seq) override {
        each_rank([&](int32_t r) { rank(r).release_selection(seq); });
    }

    int32_t n_ranks() const { return static_cast<int32_t>(plan_.size()); }
    const tp_rank_plan & plan(int32_t r) const { return plan_[static_cast<size_t>(r)]; }
    // Inspection, for tests: rank r's backend (its sinks and lists are over its own KV heads).
    Rank & rank(int32_t r) { return *ranks_[static_cast<size_t>(r)]; }
    const Rank & rank(int32_t r) const { return *ranks_[static_cast<size_t>(r)]; }

  protected:
    // Throws specattn::error when n_ranks does not divide the model's heads (tp/tp_plan.h).
    tp_backend(const model & m, int32_t n_ranks) : plan_(make_tp_plan(m.hp, n_ranks)), rank_logits_(plan_.size()) {
        shards_.reserve(plan_.size());
        for (const tp_rank_plan & r : plan_) {
            shards_.push_back(shard_model(m, r));
        }
        ranks_.resize(plan_.size());
    }

    // fn(r) for every rank on its own thread; a rank's failure must release the others from their collectives.
    virtual void run_ranks(const std::function<void(int32_t)> & fn) = 0;
    // fn(r) for every rank in turn on the calling thread.
    virtual void each_rank(const std::function<void(int32_t)> & fn) {
        for (int32_t r = 0; r < n_ranks(); ++r) {
            fn(r);
        }
    }

    std::vector<tp_rank_plan> plan_;
    std::vector<model> shards_;               // ranks_ refer to them: filled once, never resized
    std::vector<std::unique_ptr<Rank>> ranks_; // [n_ranks], made by the derived class's constructor

  private:
    std::vector<std::vector<float>> rank_logits_; // every rank gathers all logits; rank 0's are returned
};

} // namespace specattn
