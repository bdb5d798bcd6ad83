#include "backend/cpu/cpu_tp_backend.h"

namespace specattn {

cpu_tp_backend::cpu_tp_backend(const model & m, int32_t n_ranks, int64_t n_pages, int64_t page_size)
    : plan_(make_tp_plan(m.hp, n_ranks)), group_(n_ranks) {
    shards_.reserve(plan_.size());
    for (const tp_rank_plan & r : plan_) {
        shards_.push_back(shard_model(m, r));
    }
    for (const tp_rank_plan & r : plan_) {
        ranks_.push_back(std::make_unique<cpu_backend>(shards_[static_cast<size_t>(r.rank)], r, group_.rank(r.rank),
                                                       n_pages, page_size));
    }
    rank_logits_.resize(plan_.size());
}

cpu_tp_backend::~cpu_tp_backend() = default;

void cpu_tp_backend::forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) {
    group_.run_ranks([&](int32_t r) {
        ranks_[static_cast<size_t>(r)]->forward(batch, kv, r == 0 ? logits : rank_logits_[static_cast<size_t>(r)]);
    });
}

void cpu_tp_backend::synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) {
    for (const std::unique_ptr<cpu_backend> & r : ranks_) {
        r->synthetic_kv(kv, seq, n, seed);
    }
}

void cpu_tp_backend::set_selection(int32_t seq, const std::vector<int32_t> & positions) {
    for (const std::unique_ptr<cpu_backend> & r : ranks_) {
        r->set_selection(seq, positions);
    }
}

int64_t cpu_tp_backend::select_top_k(int32_t seq, int32_t sink, int64_t k) {
    int64_t n = 0;
    for (const std::unique_ptr<cpu_backend> & r : ranks_) {
        n = r->select_top_k(seq, sink, k); // the same on every rank: it depends on k and the domain only
    }
    return n;
}

void cpu_tp_backend::release_selection(int32_t seq) {
    for (const std::unique_ptr<cpu_backend> & r : ranks_) {
        r->release_selection(seq);
    }
}

} // namespace specattn
