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
        : list_selector(p, hp, n_ctx, /*per_kv_head=*/false) {}
    spec_method method() const override { return spec_method::spec_method_specextend; }
    capture_rows needs() const override { return capture_rows::capture_rows_all; }

    void update(const verify_view & v) override {
        select_top_k({v.rows[static_cast<size_t>(v.n_accepted)]}, score_mode::score_mode_weight, v.domain,
                     budget(v));
    }
};

} // namespace

std::unique_ptr<draft_selector> make_specextend_selector(const spec_params & p, const model_hparams & hp,
                                                         int64_t n_ctx) {
    return std::make_unique<specextend_selector>(p, hp, n_ctx);
}

} // namespace specattn
