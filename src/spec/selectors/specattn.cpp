// specattn: verification-guided selection (Collect-2-Query). The verify pass's attention of its first row (the
// pending token) and last row (the last draft, whose output is the bonus distribution), averaged over both rows
// and all query heads, scores every prefix position per layer; the top k (token-granular, shared by all heads of
// the layer) plus every position since that verification are what the next drafts read. After prefill the last
// prompt row seeds the selection. ../shared/reference/specattn.md §5.
#include "spec/selector.h"

namespace specattn {

namespace {

class specattn_selector final : public list_selector {
  public:
    specattn_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx)
        : list_selector(hp, /*per_kv_head=*/false), p_(p), n_ctx_(n_ctx) {}
    spec_method method() const override { return spec_method::spec_method_specattn; }
    capture_rows needs() const override { return capture_rows::capture_rows_first_last; }

    void update(const verify_view & v) override {
        // Rows 0 and γ; one row when the segment has one (prefill, or a verification without drafts).
        std::vector<const attention_capture *> rows = {v.rows.front()};
        if (v.rows.size() > 1) {
            rows.push_back(v.rows.back());
        }
        const int64_t k = spec_budget(p_, n_ctx_, v.seqlen_k, v.domain);
        std::vector<float> score(static_cast<size_t>(v.domain));
        for (int64_t il = 0; il < hp_.n_layer; ++il) {
            std::fill(score.begin(), score.end(), 0.0f);
            for (const attention_capture * cap : rows) {
                accumulate_scores(*cap, hp_, il, 0, hp_.n_head, p_.mode, v.domain, score.data());
            }
            // The mean over rows and heads is a constant factor: it does not change the top k, so it is skipped.
            list(il, 0) = top_k_positions(score.data(), v.domain, k);
        }
        recent_from_ = v.domain;
    }

  private:
    spec_params p_;
    int64_t n_ctx_;
};

} // namespace

std::unique_ptr<draft_selector> make_specattn_selector(const spec_params & p, const model_hparams & hp,
                                                       int64_t n_ctx) {
    return std::make_unique<specattn_selector>(p, hp, n_ctx);
}

} // namespace specattn
