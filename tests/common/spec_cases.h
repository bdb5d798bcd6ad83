// The cases the lossless speculative-decoding tests share (tests/unit/spec, tests/unit/tp): every selector, budgets
// small enough that drafts on short contexts are sparse, and a batch of two requests for the tiny checkpoints.
#pragma once

#include "engine/engine.h"

#include <vector>

namespace specattn {

inline const std::vector<spec_method> & all_selectors() {
    static const std::vector<spec_method> s = {spec_method::spec_method_dense,  spec_method::spec_method_streaming,
                                               spec_method::spec_method_quest,  spec_method::spec_method_specextend,
                                               spec_method::spec_method_pillar, spec_method::spec_method_specattn};
    return s;
}

inline spec_params sparse_spec(spec_method m, int64_t gamma, double ratio) {
    spec_params sp;
    sp.method = m;
    sp.draft_len = gamma;
    sp.ratio = ratio;
    sp.min_tokens = 4; // small, so drafts really are sparse on these short contexts
    sp.block_size = 4;
    return sp;
}

// Two prompts of different lengths and -n, finishing at different times; EOS ignored so every run has the same length.
inline std::vector<request> two_requests(const engine & eng) {
    request a;
    a.prompt = eng.get_tokenizer().encode("Once upon a time, in a small town, there lived a curious engineer", true);
    a.max_tokens = 40;
    a.ignore_eos = true;
    request b = a;
    b.prompt.resize(7);
    b.max_tokens = 25;
    return {a, b};
}

} // namespace specattn
