// dense: drafts attend to every cached position, through the same sparse path as the real selectors. A sanity
// mode: with exact arithmetic the drafts equal the target, so greedy acceptance must be 100%.
#include "spec/selector.h"

namespace specattn {

namespace {

class dense_selector final : public draft_selector {
  public:
    spec_method method() const override { return spec_method::spec_method_dense; }
    capture_rows needs() const override { return capture_rows::capture_rows_none; }
    void update(const verify_view &) override {}
    void positions(const attention_query & q, std::vector<int64_t> & out) const override {
        out.clear();
        for (int64_t t = 0; t <= q.pos; ++t) {
            out.push_back(t);
        }
    }
};

} // namespace

std::unique_ptr<draft_selector> make_dense_selector(const spec_params &, const model_hparams &, int64_t) {
    return std::make_unique<dense_selector>();
}

} // namespace specattn
