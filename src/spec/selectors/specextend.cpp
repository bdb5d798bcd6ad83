// specextend (layer-wise, self-speculative adaptation of SpecExtend): after a verification, the attention weights
// of the row of the last committed token (verify row a, query position first_pos + a), averaged over the query
// heads, choose the top k positions per layer; decided once before drafting, never updated during it. It needs
// every row captured because a is known only after acceptance. After prefill the last prompt row decides.
#include "spec/selector.h"

namespace specattn {

namespace {

class specextend_selector final : public top_k_selector {
  public:
    using top_k_selector::top_k_selector;
    spec_method method() const override { return spec_method::spec_method_specextend; }

    // One sink per row: which row decides is known only after acceptance.
    void add_sinks(const verify_view & v, forward_batch & batch) const override {
        for (int64_t r = 0; r < v.n_rows; ++r) {
            add_sink(v, batch, static_cast<int32_t>(r), {r}, score_mode::score_mode_weight, /*per_kv_head=*/false);
        }
    }
    void update(const verify_view & v, backend & be) override {
        hold_top_k(v, be, static_cast<int32_t>(v.n_accepted));
    }
};

} // namespace

std::unique_ptr<draft_selector> make_specextend_selector(const spec_params & p, const model_hparams &,
                                                         int64_t n_ctx) {
    return std::make_unique<specextend_selector>(p, n_ctx);
}

} // namespace specattn
