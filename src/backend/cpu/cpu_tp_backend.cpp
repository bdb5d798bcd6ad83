#include "backend/cpu/cpu_tp_backend.h"

namespace specattn {

cpu_tp_backend::cpu_tp_backend(const model & m, int32_t n_ranks, int64_t n_pages, int64_t page_size)
    : tp_backend(m, n_ranks), group_(n_ranks) {
    for (const tp_rank_plan & r : plan_) {
        const auto i = static_cast<size_t>(r.rank);
        ranks_[i] = std::make_unique<cpu_backend>(shards_[i], r, group_.rank(r.rank), n_pages, page_size);
    }
}

// The ranks refer to the group's endpoints: they go first.
cpu_tp_backend::~cpu_tp_backend() { ranks_.clear(); }

} // namespace specattn
