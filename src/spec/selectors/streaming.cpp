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
    capture_rows needs() const override { return capture_rows::capture_rows_none; }
    void update(const verify_view &) override {}

    void positions(const attention_query & q, std::vector<int64_t> & out) const override {
        const int64_t block = p_.block_size;
        const int64_t seq_len = q.pos + 1;
        const auto budget = std::max(static_cast<int64_t>(std::ceil(static_cast<double>(seq_len) * p_.ratio)),
                                     p_.min_tokens);
        const int64_t n_recent_blocks = (budget + block - 1) / block;
        // Recent blocks end with the block holding pos; the sink block is always kept.
        const int64_t first_recent = std::max<int64_t>(q.pos / block - n_recent_blocks + 1, 0) * block;
        out.clear();
        for (int64_t t = 0; t < std::min(block, first_recent); ++t) {
            out.push_back(t);
        }
        for (int64_t t = first_recent; t <= q.pos; ++t) {
            out.push_back(t);
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
