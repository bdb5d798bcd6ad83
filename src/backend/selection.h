// What a backend must know of speculative decoding (spec/): where a draft row attends, and which verification rows
// score the prefix for the next selection. Backend-neutral definitions; the selection state itself (the position
// lists a draft row reads, the score vectors a verification fills) lives in the backend, next to its attention
// (host vectors on the CPU, device buffers on CUDA), so a selection never has to cross to the host.
#pragma once

#include <cstdint>
#include <vector>

namespace specattn {

// How a verification row scores a prefix position (docs/spec_decoding.md).
enum class score_mode : int32_t {
    score_mode_logit,  // raw scaled q·k after masking (the v1 paper)
    score_mode_weight, // softmax weights exp(logit - lse) (the released code's default)
};

// Where a draft row attends: the first n_list positions of its sequence's held selection (per layer and KV head,
// ascending, all < recent_from), then every position in [recent_from, pos]. Dense: n_list 0, recent_from 0.
// Quest (quest_block > 0): the held list is replaced per layer and KV head, from the row's own queries, by the
// quest_blocks blocks of quest_block positions before the row's block with the highest key bound (ties to the
// lower block); n_list = quest_blocks * quest_block and recent_from is the row's block start.
struct draft_attention {
    bool active = false; // false: ordinary dense causal attention
    int64_t n_list = 0;
    int64_t recent_from = 0;
    int64_t quest_block = 0;
    int64_t quest_blocks = 0;
};

// A score vector a verification fills, per layer (and per KV head when per_kv_head) over positions [0, domain):
//     score[l][g][p] = Σ over `rows` Σ over the query heads h of group g  f(h, row, p)
// f = the scaled logit (logit mode) or the softmax weight (weight mode). Groups: one (all query heads) or n_head_kv.
// The mean over rows and heads is a constant factor and is not formed: it cannot change a top k.
struct score_sink {
    int32_t seq = -1;           // kv_block_manager sequence of the rows
    int32_t id = 0;             // the sink's number within its sequence (select_top_k names it)
    score_mode mode = score_mode::score_mode_weight;
    bool per_kv_head = false;
    int64_t domain = 0;         // <= position + 1 of every row
    std::vector<int32_t> rows;  // batch rows, dense ones of `seq`
};

// The k highest of score[0, n), ties to the lower position, in ascending position order; k >= n gives all.
// The reference every backend's top-k must reproduce (up to ties between equal scores on the GPU).
std::vector<int64_t> top_k_positions(const float * score, int64_t n, int64_t k);

// The quest key bound of one block for a group of query heads: max over the group of
// Σ_c max(q_c · kmin_c, q_c · kmax_c).  q: [group, head_dim]
float quest_block_bound(const float * q, int64_t group, int64_t head_dim, const float * kmin, const float * kmax);

} // namespace specattn
