// What the engine asks of a compute backend: run the model over a batch of rows against the paged KV cache.
// The CPU backend (backend/cpu) is the oracle; the CUDA backend implements the same interface.
//
// A batch is a list of rows (token, sequence, position). Rows of one sequence are consecutive and have
// consecutive positions. For every layer the backend writes each row's K/V at (sequence, position) first, then
// each row attends causally to positions [0, position] of its own sequence (within the sliding window, if any),
// so a prefill chunk, a decode step and a speculative verify pass are the same call.
#pragma once

#include "kv/block_manager.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace specattn {

// The query of one (row, layer, KV head) as a sparse-attention source sees it.
struct attention_query {
    int64_t layer = 0;
    int64_t kv_head = 0;
    int64_t pos = 0;            // the row's own position
    const float * q = nullptr;  // [group, head_dim]: the query heads that share this KV head, RoPE applied
    int64_t group = 0;
    int64_t head_dim = 0;
    // Reads the cached key of a position of this row's sequence (this layer, this KV head): [head_dim]. CPU only.
    std::function<const float *(int64_t pos)> key;
};

// Where a draft row attends: a sorted list of positions <= the row's position, per (layer, KV head). Every draft
// selector (spec/) implements this; dense causal attention is the absence of a source.
class kv_position_source {
  public:
    virtual ~kv_position_source() = default;
    virtual void positions(const attention_query & q, std::vector<int64_t> & out) const = 0;
};

// What a verify row records of its attention, for selectors that learn from verification (spec/).
// Scaled logits s·scale over positions [0, pos] (masked: -inf) and each head's log-sum-exp, so both `logit` and
// `weight` (exp(logit - lse)) scores can be formed.
struct attention_capture {
    int64_t n_pos = 0;         // pos + 1
    std::vector<float> logits; // [n_layer, n_head, n_pos]
    std::vector<float> lse;    // [n_layer, n_head]
};

struct forward_batch {
    std::vector<int32_t> tokens;    // [n_rows]
    std::vector<int32_t> seq_ids;   // [n_rows] kv_block_manager sequence ids
    std::vector<int64_t> positions; // [n_rows]
    std::vector<int32_t> logit_rows; // rows whose logits are wanted, in output order
    // Optional, [n_rows] when not empty: a sparse source per row (nullptr: dense causal attention) and a capture
    // per row (nullptr: none).
    std::vector<const kv_position_source *> sparse;
    std::vector<attention_capture *> capture;

    int64_t n_rows() const { return static_cast<int64_t>(tokens.size()); }
    void clear() {
        tokens.clear();
        seq_ids.clear();
        positions.clear();
        logit_rows.clear();
        sparse.clear();
        capture.clear();
    }
    const kv_position_source * sparse_of(int64_t r) const {
        return sparse.empty() ? nullptr : sparse[static_cast<size_t>(r)];
    }
    attention_capture * capture_of(int64_t r) const {
        return capture.empty() ? nullptr : capture[static_cast<size_t>(r)];
    }
    // Appends n rows of one sequence at positions start..start+n-1; with_logits marks the last one for output.
    void add_sequence_rows(int32_t seq, const int32_t * toks, int64_t n, int64_t start, bool last_logits);
};

class backend {
  public:
    virtual ~backend() = default;
    virtual const char * name() const = 0;
    // Runs the batch. The caller has already appended the rows' positions to their sequences in `kv`.
    // logits: [batch.logit_rows.size(), n_vocab] fp32, resized by the callee.
    virtual void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) = 0;
};

} // namespace specattn
