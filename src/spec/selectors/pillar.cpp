// pillar (SparseSpec / PillarAttn style): attention weights averaged over ALL verify rows and the query heads of
// each KV head's group choose the top k positions per layer AND per KV head. Budget as for every selector here
// (like-for-like runs); SparseSpec's own defaults (5%, floor 128) are a --spec-ratio / --spec-min-tokens away.
#include "spec/selector.h"

namespace specattn {

namespace {

class pillar_selector final : public list_selector {
  public:
    pillar_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx)
        : list_selector(p, hp, n_ctx, /*per_kv_head=*/true) {}
    spec_method method() const override { return spec_method::spec_method_pillar; }
    capture_rows needs() const override { return capture_rows::capture_rows_all; }

    void update(const verify_view & v) override {
        select_top_k(v.rows, score_mode::score_mode_weight, v.domain, budget(v));
    }
};

} // namespace

std::unique_ptr<draft_selector> make_pillar_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx) {
    return std::make_unique<pillar_selector>(p, hp, n_ctx);
}

} // namespace specattn
