// The speculative decoding loop, batched over sequences that each keep their own state:
//   draft   γ steps of the same model, each row attending to what its sequence's selector chose; draft K/V are
//           written at their positions in the paged cache (provisionally);
//   verify  one pass over the γ+1 rows [pending, d1..dγ] with full attention, rewriting their K/V exactly and
//           capturing the attention the selector learns from;
//   accept  the lossless rule (spec/verify.h), then emit the accepted drafts and the corrected/bonus token;
//   rollback truncate the sequence to its committed length;
//   select  the selector chooses the next drafts' KV from the verification.
// γ shrinks near the end of a request so no token beyond -n or the context is ever produced.
#pragma once

#include "backend/backend.h"
#include "sampling/sampler.h"
#include "spec/selector.h"
#include "spec/spec_stats.h"

#include <functional>
#include <memory>
#include <vector>

namespace specattn {

struct spec_sequence {
    int32_t kv_seq = -1;
    int32_t pending = -1;   // sampled, already emitted, K/V not yet written; sits at position kv.length(kv_seq)
    int64_t remaining = 0;  // tokens the request may still produce
    sampler * target = nullptr; // acceptance uniforms, residual and bonus tokens
    sampler * draft = nullptr;  // draft tokens (its own stream)
    draft_selector * selector = nullptr;
    bool running = true;
};

// Emits one token of sequence i; returns false once the sequence has finished (EOS, stop string, -n).
using emit_fn = std::function<bool(size_t i, int32_t token)>;

void spec_decode(backend & be, kv_block_manager & kv, const model_hparams & hp, const spec_params & p,
                 std::vector<spec_sequence> & seqs, const emit_fn & emit, spec_stats & stats);

// What the selector sees of the prefill: its last row (batch row last_row, position n_prompt - 1) over the domain
// [0, n_prompt).
verify_view prefill_view(int32_t seq, int64_t last_row, int64_t n_prompt);

} // namespace specattn
