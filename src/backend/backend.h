// What the engine asks of a compute backend: run the model over a batch of rows against the paged KV cache.
// The CPU backend (backend/cpu) is the oracle; the CUDA backend implements the same interface.
//
// A batch is a list of rows (token, sequence, position). Rows of one sequence are consecutive and have
// consecutive positions. For every layer the backend writes each row's K/V at (sequence, position) first, then
// each row attends causally to positions [0, position] of its own sequence (within the sliding window, if any),
// so a prefill chunk, a decode step and a speculative verify pass are the same call.
#pragma once

#include "backend/selection.h"
#include "kv/block_manager.h"
#include "sampling/sampler.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specattn {

struct forward_batch {
    std::vector<int32_t> tokens;    // [n_rows]
    std::vector<int32_t> seq_ids;   // [n_rows] kv_block_manager sequence ids
    std::vector<int64_t> positions; // [n_rows]
    std::vector<int32_t> logit_rows; // rows whose logits are wanted, in output order
    // Prompt rows. Every other pass (decode, draft, verify) must compute each row exactly as it would in any other
    // such pass, whatever else is in the batch: a GPU backend uses batch-invariant kernels there, so that greedy
    // speculative output equals greedy autoregressive output token for token. Prefill may use faster kernels.
    bool prefill = false;
    // Speculative decoding (backend/selection.h): per row, where a draft row attends ([n_rows] or empty: all
    // dense); the score sinks the verification rows fill.
    std::vector<draft_attention> draft;
    std::vector<score_sink> sinks;

    int64_t n_rows() const { return static_cast<int64_t>(tokens.size()); }
    void clear() {
        tokens.clear();
        seq_ids.clear();
        positions.clear();
        logit_rows.clear();
        prefill = false;
        draft.clear();
        sinks.clear();
    }
    const draft_attention * draft_of(int64_t r) const {
        return draft.empty() || !draft[static_cast<size_t>(r)].active ? nullptr : &draft[static_cast<size_t>(r)];
    }
    // Appends n rows of one sequence at positions start..start+n-1; with_logits marks the last one for output.
    void add_sequence_rows(int32_t seq, const int32_t * toks, int64_t n, int64_t start, bool last_logits);
    // Throws specattn::error unless every score sink names dense rows of its own sequence that cover its domain.
    void check_sinks() const;
};

// One sequence's speculative sampling on the backend (backend::forward_accept).
struct held_verification {
    int64_t first_out = 0;         // its first verify row's index among the batch's logit rows
    int32_t first_hold = 0;        // slot of q_0; q_i is in first_hold + i
    std::vector<int32_t> drafts;   // [γ]
    std::vector<double> uniforms;  // [γ + 1] the acceptance tests', then the residual's or the bonus's
};
struct accept_outcome {
    int32_t n_accepted = 0;
    int32_t next = -1; // the corrected (n_accepted < γ) or bonus token
};

class backend {
  public:
    virtual ~backend() = default;
    virtual const char * name() const = 0;
    // Runs the batch. The caller has already appended the rows' positions to their sequences in `kv`.
    // logits: [batch.logit_rows.size(), n_vocab] fp32, resized by the callee. A batch with score sinks replaces
    // every sink held so far (of every sequence): select_top_k must be called before the next such forward.
    virtual void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) = 0;
    // The same pass for greedy decoding: ids[j] = argmax of logit row j (sampler.h's argmax: ties to the lower id,
    // NaN never wins), resized by the callee. A GPU backend picks the ids on the device and copies back only them,
    // not [rows, n_vocab] logits; the default runs forward() and takes the argmax on the host.
    virtual void forward_argmax(const forward_batch & batch, const kv_block_manager & kv, std::vector<int32_t> & ids);
    // The same pass for sampled decoding: ids[j] = draw_from(sampling_probs(logit row j, params[j]), uniforms[j])
    // (sampler.h), the token sampler::sample would draw on the host had it drawn uniforms[j]; greedy params give
    // the argmax (their uniform is unused). params, uniforms: [logit rows]. Throws where the host would (a row with
    // no finite logit). The default runs forward() and samples on the host; a GPU backend samples on the device.
    virtual void forward_sample(const forward_batch & batch, const kv_block_manager & kv,
                                const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                                std::vector<int32_t> & ids);

    // ---- speculative sampling where the logits are (spec/verify.h's rule) ----
    // Whether the backend implements the two calls below; if not, the speculative loop samples on the host from
    // forward()'s logits, as it always may.
    virtual bool samples_on_device() const { return false; }
    // forward_sample that also holds each logit row's distribution, q = sampling_probs(row j, params[j]), in slot
    // holds[j] (any int32 >= 0; a slot is overwritten by its next use) for a later forward_accept.
    virtual void forward_sample_held(const forward_batch & batch, const kv_block_manager & kv,
                                     const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                                     const std::vector<int32_t> & holds, std::vector<int32_t> & ids);
    // The verification pass followed by the acceptance rule of each sequence `v` (accept_sampled): target rows
    // p_i = sampling_probs(logit row v.first_out + i, params[...]), i = 0..γ; draft rows q_i from slots
    // v.first_hold + i; uniforms in accept_sampled's draw order. Each outcome is (accepted drafts, next token).
    virtual void forward_accept(const forward_batch & batch, const kv_block_manager & kv,
                                const std::vector<sampling_params> & params, const std::vector<held_verification> & v,
                                std::vector<accept_outcome> & out);

    // Benchmarks: positions [0, n) of `seq` get pseudo-random K/V in every layer, a function of (seed, layer,
    // position, head, dim) only (a synthetic context; see request::synthetic_prefill).
    virtual void synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) = 0;

    // ---- draft selections, held per KV sequence where the backend's attention reads them ----
    // Every layer and KV head of `seq` holds `positions` (ascending): streaming's attention sinks, say.
    virtual void set_selection(int32_t seq, const std::vector<int32_t> & positions) = 0;
    // Every layer (and KV head, if the sink is per KV head; else the layer's list is shared by its KV heads) of `seq`
    // holds the top k positions of score sink `sink` of the last forward that filled it, ties to lower positions.
    // Returns the list length, min(k, domain).
    virtual int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) = 0;
    // Forgets the selection and the sinks of a finished sequence (its id may be reused).
    virtual void release_selection(int32_t seq) = 0;

  protected:
    // Throws unless there is one sampling configuration (each valid) and, when given, one uniform per logit row of
    // the batch: what forward_sample and forward_accept take.
    static void check_sampling_rows(const forward_batch & batch, const std::vector<sampling_params> & params,
                                    const std::vector<double> * uniforms);
};

} // namespace specattn
