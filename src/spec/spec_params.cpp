#include "spec/spec_params.h"

#include "core/check.h"

#include <algorithm>
#include <cmath>

namespace specattn {

const char * spec_method_name(spec_method m) {
    switch (m) {
        case spec_method::spec_method_none: return "none";
        case spec_method::spec_method_dense: return "dense";
        case spec_method::spec_method_streaming: return "streaming";
        case spec_method::spec_method_quest: return "quest";
        case spec_method::spec_method_specextend: return "specextend";
        case spec_method::spec_method_pillar: return "pillar";
        case spec_method::spec_method_specattn: return "specattn";
    }
    SPECATTN_ABORT("bad spec_method %d", static_cast<int>(m));
}

spec_method parse_spec_method(const std::string & s) {
    for (int i = 0; i <= static_cast<int>(spec_method::spec_method_specattn); ++i) {
        const auto m = static_cast<spec_method>(i);
        if (s == spec_method_name(m)) {
            return m;
        }
    }
    throw error(string_format("unknown --spec '%s' (valid: none, dense, streaming, quest, specextend, pillar, "
                              "specattn)",
                              s.c_str()));
}

const char * score_mode_name(score_mode m) {
    switch (m) {
        case score_mode::score_mode_logit: return "logit";
        case score_mode::score_mode_weight: return "weight";
    }
    SPECATTN_ABORT("bad score_mode %d", static_cast<int>(m));
}

score_mode parse_score_mode(const std::string & s) {
    if (s == "logit") {
        return score_mode::score_mode_logit;
    }
    if (s == "weight") {
        return score_mode::score_mode_weight;
    }
    throw error(string_format("unknown --spec-score '%s' (valid: logit, weight)", s.c_str()));
}

const char * collect_rows_name(collect_rows c) {
    switch (c) {
        case collect_rows::collect_rows_both: return "both";
        case collect_rows::collect_rows_first: return "first";
        case collect_rows::collect_rows_last: return "last";
    }
    SPECATTN_ABORT("bad collect_rows %d", static_cast<int>(c));
}

collect_rows parse_collect_rows(const std::string & s) {
    for (int i = 0; i <= static_cast<int>(collect_rows::collect_rows_last); ++i) {
        const auto c = static_cast<collect_rows>(i);
        if (s == collect_rows_name(c)) {
            return c;
        }
    }
    throw error(string_format("unknown --spec-collect '%s' (valid: both, first, last)", s.c_str()));
}

void validate(const spec_params & p) {
    SPECATTN_CHECK(p.draft_len >= 1 && p.draft_len <= 32, "--draft-len must be in [1, 32], got %lld",
                   static_cast<long long>(p.draft_len));
    SPECATTN_CHECK(p.ratio > 0.0 && p.ratio <= 1.0, "--spec-ratio must be in (0, 1], got %g", p.ratio);
    SPECATTN_CHECK(p.min_tokens >= 1, "--spec-min-tokens must be positive, got %lld",
                   static_cast<long long>(p.min_tokens));
    SPECATTN_CHECK(p.block_size >= 1, "--spec-block must be positive");
}

int64_t spec_budget(const spec_params & p, int64_t n_ctx, int64_t seqlen_k, int64_t domain) {
    const auto ceil_ratio = [&](int64_t n) { return static_cast<int64_t>(std::ceil(static_cast<double>(n) * p.ratio)); };
    const int64_t max_tokens = std::max(ceil_ratio(n_ctx), p.min_tokens);
    const int64_t k = std::clamp(ceil_ratio(seqlen_k), p.min_tokens, max_tokens);
    return std::min(k, domain);
}

} // namespace specattn
