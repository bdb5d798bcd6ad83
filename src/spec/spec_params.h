// Speculative decoding: which draft selector, and its knobs (CLI: --spec, --draft-len, --spec-ratio,
// --spec-min-tokens, --spec-score). The method is described in docs/spec_decoding.md and
// ../shared/reference/specattn.md.
#pragma once

#include "backend/selection.h" // score_mode

#include <cstdint>
#include <string>

namespace specattn {

// The closed set of draft selectors. A new selector is one file in spec/selectors plus one value here.
enum class spec_method : int32_t {
    spec_method_none,       // plain autoregressive decoding (the baseline)
    spec_method_dense,      // drafts attend to everything: a sanity mode, greedy acceptance must be 100%
    spec_method_streaming,  // MagicDec-Stream: attention sinks + a recent window, block-granular
    spec_method_quest,      // MagicDec-Quest: top pages by a query-aware key bound, re-selected every draft step
    spec_method_specextend, // layer-wise top tokens by the last accepted token's attention weights
    spec_method_pillar,     // SparseSpec/PillarAttn: weights averaged over all verify rows, top-k per KV head
    spec_method_specattn,   // SpecAttn: Collect-2-Query (first and last verify rows), top-k per layer
};

// Which verify rows SpecAttn reduces (the official code's reduce_entry: 0 both, 1 first only, 2 last only).
enum class collect_rows : int32_t {
    collect_rows_both,  // Collect-2-Query: the first and the last verify row (the paper)
    collect_rows_first, // the pending token's row only
    collect_rows_last,  // the last draft's row only
};

struct spec_params {
    spec_method method = spec_method::spec_method_none;
    int64_t draft_len = 6;     // γ: draft steps per iteration
    double ratio = 0.07;       // selected KV entries / context length
    int64_t min_tokens = 256;  // budget floor
    // The released code's default. On our code model logit loses badly: τ 3.28 against 5.28 (scripts/acceptance.sh's
    // prompt, ratio 0.07, γ 6, CPU, 2026-11-29), although only logit sinks are summed in the CUDA verify kernel.
    score_mode mode = score_mode::score_mode_weight;
    int64_t block_size = 16;   // streaming and quest granularity (tokens)
    collect_rows collect = collect_rows::collect_rows_both; // specattn only
};

const char * spec_method_name(spec_method m);
// Parses a --spec value; throws specattn::error listing the valid names.
spec_method parse_spec_method(const std::string & s);
score_mode parse_score_mode(const std::string & s);
collect_rows parse_collect_rows(const std::string & s);
const char * collect_rows_name(collect_rows c);
const char * score_mode_name(score_mode m);
// Throws specattn::error naming the flag of a bad value.
void validate(const spec_params & p);

// The selection budget k of SpecAttn (and every selector, for like-for-like runs):
//   max_tokens = max(ceil(n_ctx · ratio), min_tokens)
//   k          = min(clamp(ceil(seqlen_k · ratio), min_tokens, max_tokens), domain)
int64_t spec_budget(const spec_params & p, int64_t n_ctx, int64_t seqlen_k, int64_t domain);

} // namespace specattn
