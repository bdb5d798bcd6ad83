// quest (MagicDec-Quest): Quest as the draft selector. For every block of `block` positions and every KV head the
// channel-wise min and max of the keys bound q·k from above: Σ_c max(q_c·kmin_c, q_c·kmax_c). The top blocks by
// that bound, up to the token budget, are attended, and the block holding the current position always is.
// Re-selected at every draft step and layer (its cost in the paper). For GQA the bounds of a group's query heads are
// combined by max. The CPU reference recomputes the min/max from the cache each time; the CUDA backend keeps them
// as per-page metadata updated at KV append.
#include "spec/selector.h"

#include <algorithm>
#include <cmath>

namespace specattn {

namespace {

class quest_selector final : public draft_selector {
  public:
    quest_selector(const spec_params & p, int64_t n_ctx) : p_(p), n_ctx_(n_ctx) {}
    spec_method method() const override { return spec_method::spec_method_quest; }
    void update(const verify_view &, backend &) override {}

    // The budget in blocks, one of which is the row's own block; the backend picks the others per layer and KV
    // head from the row's queries.
    draft_attention draft_view(int64_t pos) const override {
        const int64_t block = p_.block_size;
        const int64_t seq_len = pos + 1;
        const int64_t n_blocks = (seq_len + block - 1) / block;
        const int64_t budget = spec_budget(p_, n_ctx_, seq_len, seq_len);
        const int64_t k_blocks = std::min((budget + block - 1) / block, n_blocks);
        draft_attention d;
        d.active = true;
        d.quest_block = block;
        d.recent_from = pos / block * block;
        d.quest_blocks = std::min(k_blocks - 1, pos / block);
        d.n_list = d.quest_blocks * block;
        return d;
    }

  private:
    spec_params p_;
    int64_t n_ctx_;
};

} // namespace

std::unique_ptr<draft_selector> make_quest_selector(const spec_params & p, const model_hparams &, int64_t n_ctx) {
    return std::make_unique<quest_selector>(p, n_ctx);
}

} // namespace specattn
