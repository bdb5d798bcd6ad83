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
#include <vector>

namespace specattn {

struct forward_batch {
    std::vector<int32_t> tokens;    // [n_rows]
    std::vector<int32_t> seq_ids;   // [n_rows] kv_block_manager sequence ids
    std::vector<int64_t> positions; // [n_rows]
    std::vector<int32_t> logit_rows; // rows whose logits are wanted, in output order

    int64_t n_rows() const { return static_cast<int64_t>(tokens.size()); }
    void clear() {
        tokens.clear();
        seq_ids.clear();
        positions.clear();
        logit_rows.clear();
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
