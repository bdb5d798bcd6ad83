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
    capture_rows needs() const override { return capture_rows::capture_rows_none; }
    void update(const verify_view &) override {}

    void positions(const attention_query & q, std::vector<int64_t> & out) const override {
        const int64_t block = p_.block_size;
        const int64_t seq_len = q.pos + 1;
        const int64_t n_blocks = (seq_len + block - 1) / block;
        const int64_t budget = spec_budget(p_, n_ctx_, seq_len, seq_len);
        const int64_t k_blocks = std::min((budget + block - 1) / block, n_blocks);

        std::vector<float> bound(static_cast<size_t>(n_blocks));
        std::vector<float> kmin(static_cast<size_t>(q.head_dim));
        std::vector<float> kmax(static_cast<size_t>(q.head_dim));
        for (int64_t b = 0; b < n_blocks; ++b) {
            std::fill(kmin.begin(), kmin.end(), INFINITY);
            std::fill(kmax.begin(), kmax.end(), -INFINITY);
            for (int64_t t = b * block; t < std::min((b + 1) * block, seq_len); ++t) {
                const float * k = q.key(t);
                for (int64_t c = 0; c < q.head_dim; ++c) {
                    kmin[static_cast<size_t>(c)] = std::min(kmin[static_cast<size_t>(c)], k[c]);
                    kmax[static_cast<size_t>(c)] = std::max(kmax[static_cast<size_t>(c)], k[c]);
                }
            }
            float best = -INFINITY;
            for (int64_t g = 0; g < q.group; ++g) {
                const float * qg = q.q + g * q.head_dim;
                float s = 0.0f;
                for (int64_t c = 0; c < q.head_dim; ++c) {
                    s += std::max(qg[c] * kmin[static_cast<size_t>(c)], qg[c] * kmax[static_cast<size_t>(c)]);
                }
                best = std::max(best, s);
            }
            bound[static_cast<size_t>(b)] = best;
        }
        // The current block is always attended: make it win.
        bound[static_cast<size_t>(n_blocks - 1)] = INFINITY;
        const std::vector<int64_t> blocks = top_k_positions(bound.data(), n_blocks, k_blocks);
        out.clear();
        for (int64_t b : blocks) {
            for (int64_t t = b * block; t < std::min((b + 1) * block, seq_len); ++t) {
                out.push_back(t);
            }
        }
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
