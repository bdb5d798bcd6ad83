// streaming (MagicDec-Stream): StreamingLLM's KV as the draft's view: the first block (attention sinks) plus the
// most recent ceil(max(seq_len · ratio, min_tokens) / block) blocks, block-aligned, sliding with the draft position.
// Learns nothing from verification; the cheapest drafter and the strongest baseline of the paper.
#include "spec/selector.h"

#include <algorithm>
#include <cmath>

namespace specattn {

namespace {

class streaming_selector final : public draft_selector {
  public:
    explicit streaming_selector(const spec_params & p) : p_(p) {}
    spec_method method() const override { return spec_method::spec_method_streaming; }

    draft_attention draft_view(int64_t pos) const override {
        const int64_t block = p_.block_size;
        const int64_t seq_len = pos + 1;
        const auto budget = std::max(static_cast<int64_t>(std::ceil(static_cast<double>(seq_len) * p_.ratio)),
                                     p_.min_tokens);
        const int64_t n_recent_blocks = (budget + block - 1) / block;
        // Recent blocks end with the block holding pos; the sink block (the held list) is always kept.
        draft_attention d;
        d.active = true;
        d.recent_from = std::max<int64_t>(pos / block - n_recent_blocks + 1, 0) * block;
        d.n_list = std::min(block, d.recent_from);
        return d;
    }
    // The held list is the sink block, once.
    void update(const verify_view & v, backend & be) override {
        if (v.prefill) {
            std::vector<int32_t> sinks(static_cast<size_t>(p_.block_size));
            for (int64_t t = 0; t < p_.block_size; ++t) {
                sinks[static_cast<size_t>(t)] = static_cast<int32_t>(t);
            }
            be.set_selection(v.seq, sinks);
        }
    }

  private:
    spec_params p_;
};

} // namespace

std::unique_ptr<draft_selector> make_streaming_selector(const spec_params & p, const model_hparams &, int64_t) {
    return std::make_unique<streaming_selector>(p);
}

} // namespace specattn
