// pillar (SparseSpec / PillarAttn style): attention weights averaged over ALL verify rows and the query heads of
// each KV head's group choose the top k positions per layer AND per KV head. Budget as for every selector here
// (like-for-like runs); SparseSpec's own defaults (5%, floor 128) are a --spec-ratio / --spec-min-tokens away.
#include "spec/selector.h"

namespace specattn {

namespace {

class pillar_selector final : public list_selector {
  public:
    pillar_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx)
        : list_selector(hp, /*per_kv_head=*/true), p_(p), n_ctx_(n_ctx) {}
    spec_method method() const override { return spec_method::spec_method_pillar; }
    capture_rows needs() const override { return capture_rows::capture_rows_all; }

    void update(const verify_view & v) override {
        const int64_t k = spec_budget(p_, n_ctx_, v.seqlen_k, v.domain);
        const int64_t group = hp_.n_head / hp_.n_head_kv;
        std::vector<float> score(static_cast<size_t>(v.domain));
        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            for (int64_t kvh = 0; kvh < hp_.n_head_kv; ++kvh) {
                std::fill(score.begin(), score.end(), 0.0f);
                for (const attention_capture * cap : v.rows) {
                    accumulate_scores(*cap, hp_, il, kvh * group, (kvh + 1) * group, score_mode::score_mode_weight,
                                      v.domain, score.data());
                }
                list(il, kvh) = top_k_positions(score.data(), v.domain, k);
            }
        }
        recent_from_ = v.domain;
    }

  private:
    spec_params p_;
    int64_t n_ctx_;
};

} // namespace

std::unique_ptr<draft_selector> make_pillar_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx) {
    return std::make_unique<pillar_selector>(p, hp, n_ctx);
}

} // namespace specattn
