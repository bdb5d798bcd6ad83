// pillar (SparseSpec / PillarAttn style): attention weights averaged over ALL verify rows and the query heads of
// each KV head's group choose the top k positions per layer AND per KV head. Budget as for every selector here
// (like-for-like runs); SparseSpec's own defaults (5%, floor 128) are a --spec-ratio / --spec-min-tokens away.
#include "spec/selector.h"

namespace specattn {

namespace {

class pillar_selector final : public top_k_selector {
  public:
    using top_k_selector::top_k_selector;
    spec_method method() const override { return spec_method::spec_method_pillar; }

    void add_sinks(const verify_view & v, forward_batch & batch) const override {
        std::vector<int64_t> rows(static_cast<size_t>(v.n_rows));
        for (int64_t r = 0; r < v.n_rows; ++r) {
            rows[static_cast<size_t>(r)] = r;
        }
        add_sink(v, batch, 0, rows, score_mode::score_mode_weight, /*per_kv_head=*/true);
    }
    void update(const verify_view & v, backend & be) override { hold_top_k(v, be, 0); }
};

} // namespace

std::unique_ptr<draft_selector> make_pillar_selector(const spec_params & p, const model_hparams &, int64_t n_ctx) {
    return std::make_unique<pillar_selector>(p, n_ctx);
}

} // namespace specattn
