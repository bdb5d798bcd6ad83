#include "spec/selector.h"

#include "core/check.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

std::vector<int64_t> top_k_positions(const float * score, int64_t n, int64_t k) {
    k = std::clamp<int64_t>(k, 0, n);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    // Higher score first; equal scores (and -inf) by lower position, so the CPU result is deterministic.
    auto better = [score](int64_t a, int64_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); };
    std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
    idx.resize(static_cast<size_t>(k));
    std::sort(idx.begin(), idx.end());
    return idx;
}

void accumulate_scores(const attention_capture & cap, const model_hparams & hp, int64_t layer, int64_t h0, int64_t h1,
                       score_mode mode, int64_t n, float * acc) {
    SPECATTN_CHECK(n <= cap.n_pos, "score domain %lld beyond the captured %lld positions", static_cast<long long>(n),
                   static_cast<long long>(cap.n_pos));
    for (int64_t h = h0; h < h1; ++h) {
        const float * row = cap.logits.data() + (layer * hp.n_head + h) * cap.n_pos;
        const float lse = cap.lse[static_cast<size_t>(layer * hp.n_head + h)];
        switch (mode) {
            case score_mode::score_mode_logit:
                for (int64_t p = 0; p < n; ++p) {
                    acc[p] += row[p];
                }
                break;
            case score_mode::score_mode_weight:
                for (int64_t p = 0; p < n; ++p) {
                    acc[p] += std::exp(row[p] - lse);
                }
                break;
        }
    }
}

list_selector::list_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx, bool per_kv_head)
    : p_(p), n_ctx_(n_ctx), hp_(hp), per_kv_head_(per_kv_head),
      lists_(static_cast<size_t>(hp.n_layer * (per_kv_head ? hp.n_head_kv : 1))) {}

std::vector<int64_t> & list_selector::list(int64_t layer, int64_t kv_head) {
    return lists_[static_cast<size_t>(per_kv_head_ ? layer * hp_.n_head_kv + kv_head : layer)];
}

void list_selector::select_top_k(const std::vector<const attention_capture *> & rows, score_mode mode,
                                 int64_t domain, int64_t k) {
    const int64_t n_groups = per_kv_head_ ? hp_.n_head_kv : 1;
    const int64_t heads_per_group = hp_.n_head / n_groups;
    std::vector<float> score(static_cast<size_t>(domain));
    for (int64_t il = 0; il < hp_.n_layer; ++il) {
        for (int64_t g = 0; g < n_groups; ++g) {
            std::fill(score.begin(), score.end(), 0.0f);
            for (const attention_capture * cap : rows) {
                accumulate_scores(*cap, hp_, il, g * heads_per_group, (g + 1) * heads_per_group, mode, domain,
                                  score.data());
            }
            list(il, g) = top_k_positions(score.data(), domain, k);
        }
    }
    recent_from_ = domain;
}

void list_selector::positions(const attention_query & q, std::vector<int64_t> & out) const {
    const auto i = static_cast<size_t>(per_kv_head_ ? q.layer * hp_.n_head_kv + q.kv_head : q.layer);
    out = lists_[i];
    for (int64_t t = recent_from_; t <= q.pos; ++t) {
        out.push_back(t);
    }
}

} // namespace specattn
