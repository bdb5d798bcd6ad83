#include "spec/selector.h"

#include "core/check.h"

namespace specattn {

std::unique_ptr<draft_selector> make_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx) {
    switch (p.method) {
        case spec_method::spec_method_none: break;
        case spec_method::spec_method_dense: return make_dense_selector(p, hp, n_ctx);
        case spec_method::spec_method_streaming: return make_streaming_selector(p, hp, n_ctx);
        case spec_method::spec_method_quest: return make_quest_selector(p, hp, n_ctx);
        case spec_method::spec_method_specextend: return make_specextend_selector(p, hp, n_ctx);
        case spec_method::spec_method_pillar: return make_pillar_selector(p, hp, n_ctx);
        case spec_method::spec_method_specattn: return make_specattn_selector(p, hp, n_ctx);
    }
    SPECATTN_ABORT("no selector for --spec %s", spec_method_name(p.method));
}

void draft_selector::add_sinks(const verify_view &, forward_batch &) const {}

draft_attention top_k_selector::draft_view(int64_t) const {
    draft_attention d;
    d.active = true;
    d.n_list = n_list_;
    d.recent_from = recent_from_;
    return d;
}

void top_k_selector::add_sink(const verify_view & v, forward_batch & batch, int32_t id, std::vector<int64_t> rows,
                              score_mode mode, bool per_kv_head) const {
    score_sink s;
    s.seq = v.seq;
    s.id = id;
    s.mode = mode;
    s.per_kv_head = per_kv_head;
    s.domain = v.domain;
    for (int64_t r : rows) {
        s.rows.push_back(static_cast<int32_t>(v.first_row + r));
    }
    batch.sinks.push_back(std::move(s));
}

void top_k_selector::hold_top_k(const verify_view & v, backend & be, int32_t id) {
    n_list_ = be.select_top_k(v.seq, id, spec_budget(p_, n_ctx_, v.seqlen_k, v.domain));
    recent_from_ = v.domain;
}

} // namespace specattn
