// specextend (layer-wise, self-speculative adaptation of SpecExtend): after a verification, the attention weights
// of the row of the last committed token (verify row a, query position first_pos + a), averaged over the query
// heads, choose the top k positions per layer; decided once before drafting, never updated during it. It needs
// every row captured because a is known only after acceptance. After prefill the last prompt row decides.
#include "spec/selector.h"

namespace specattn {

namespace {

class specextend_selector final : public list_selector {
  public:
    specextend_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx)
        : list_selector(hp, /*per_kv_head=*/false), p_(p), n_ctx_(n_ctx) {}
    spec_method method() const override { return spec_method::spec_method_specextend; }
    capture_rows needs() const override { return capture_rows::capture_rows_all; }

    void update(const verify_view & v) override {
        const attention_capture & cap = *v.rows[static_cast<size_t>(v.n_accepted)];
        const int64_t k = spec_budget(p_, n_ctx_, v.seqlen_k, v.domain);
        std::vector<float> score(static_cast<size_t>(v.domain));
        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            std::fill(score.begin(), score.end(), 0.0f);
            accumulate_scores(cap, hp_, il, 0, hp_.n_head, score_mode::score_mode_weight, v.domain, score.data());
            list(il, 0) = top_k_positions(score.data(), v.domain, k);
        }
        recent_from_ = v.domain;
    }

  private:
    spec_params p_;
    int64_t n_ctx_;
};

} // namespace

std::unique_ptr<draft_selector> make_specextend_selector(const spec_params & p, const model_hparams & hp,
                                                         int64_t n_ctx) {
    return std::make_unique<specextend_selector>(p, hp, n_ctx);
}

} // namespace specattn
