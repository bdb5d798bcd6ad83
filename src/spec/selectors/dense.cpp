// dense: drafts attend to every cached position, through the same sparse path as the real selectors. A sanity
// mode: with exact arithmetic the drafts equal the target, so greedy acceptance must be 100%.
#include "spec/selector.h"

namespace specattn {

namespace {

class dense_selector final : public draft_selector {
  public:
    spec_method method() const override { return spec_method::spec_method_dense; }
    draft_attention draft_view(int64_t) const override {
        draft_attention d;
        d.active = true; // through the draft path, with nothing selected and everything recent
        return d;
    }
    void update(const verify_view &, backend &) override {}
};

} // namespace

std::unique_ptr<draft_selector> make_dense_selector(const spec_params &, const model_hparams &, int64_t) {
    return std::make_unique<dense_selector>();
}

} // namespace specattn
