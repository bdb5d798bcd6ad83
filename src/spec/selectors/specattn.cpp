// specattn: verification-guided selection (Collect-2-Query). The verify pass's attention of its first row (the
// pending token) and last row (the last draft, whose output is the bonus distribution), averaged over both rows
// and all query heads, scores every prefix position per layer; the top k (token-granular, shared by all heads of
// the layer) plus every position since that verification are what the next drafts read. After prefill the last
// prompt row seeds the selection. ../shared/reference/specattn.md §5.
#include "spec/selector.h"

namespace specattn {

namespace {

class specattn_selector final : public top_k_selector {
  public:
    using top_k_selector::top_k_selector;
    spec_method method() const override { return spec_method::spec_method_specattn; }

    // Rows 0 and γ (or one of them, --spec-collect); the one row when the segment has one (prefill, or a
    // verification without drafts).
    void add_sinks(const verify_view & v, forward_batch & batch) const override {
        std::vector<int64_t> rows;
        if (p_.collect != collect_rows::collect_rows_last || v.n_rows == 1) {
            rows.push_back(0);
        }
        if (p_.collect != collect_rows::collect_rows_first && v.n_rows > 1) {
            rows.push_back(v.n_rows - 1);
        }
        add_sink(v, batch, 0, rows, p_.mode, /*per_kv_head=*/false);
    }
    void update(const verify_view & v, backend & be) override { hold_top_k(v, be, 0); }
};

} // namespace

std::unique_ptr<draft_selector> make_specattn_selector(const spec_params & p, const model_hparams &, int64_t n_ctx) {
    return std::make_unique<specattn_selector>(p, n_ctx);
}

} // namespace specattn
