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
        : list_selector(p, hp, n_ctx, /*per_kv_head=*/false) {}
    spec_method method() const override { return spec_method::spec_method_specattn; }
    capture_rows needs() const override { return capture_rows::capture_rows_first_last; }

    void update(const verify_view & v) override {
        // Rows 0 and γ (or one of them, --spec-collect); one row when the segment has one (prefill, or a
        // verification without drafts).
        std::vector<const attention_capture *> rows;
        if (p_.collect != collect_rows::collect_rows_last || v.rows.size() == 1) {
            rows.push_back(v.rows.front());
        }
        if (p_.collect != collect_rows::collect_rows_first && v.rows.size() > 1) {
            rows.push_back(v.rows.back());
        }
        select_top_k(rows, p_.mode, v.domain, budget(v));
    }
};

} // namespace

std::unique_ptr<draft_selector> make_specattn_selector(const spec_params & p, const model_hparams & hp,
                                                       int64_t n_ctx) {
    return std::make_unique<specattn_selector>(p, hp, n_ctx);
}

} // namespace specattn
