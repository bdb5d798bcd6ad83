// The CUDA backend's side of speculative decoding (backend/selection.h): the draft selections its attention reads
// (position lists per sequence slot, layer and KV head, on the device), the score sinks verification fills, the
// collected logits of the verify rows, and Quest's page metadata. Host code that plans and launches the selection
// kernels (select_ops.h) around the attention kernel; nothing here waits for the device.
//
// Backend operations between forwards (select_top_k) only queue work: the top-k jobs run at the start of the next
// forward, all sequences in one launch, before anything reads the lists. A forward's score sinks replace the
// previous forward's (once its queued top-k jobs have read them).
#pragma once

#include "backend/backend.h"
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/device_buffer.h"
#include "kernels/kernel_params.h"
#include "kernels/paged_kv.h"
#include "kernels/select_params.h"
#include "model/hparams.h"

#include <cstring>
#include <map>
#include <set>
#include <vector>

namespace specattn {

// A pass's metadata as int32 words (one upload); arrays of structs start 8-byte aligned.
struct meta_words {
    std::vector<int32_t> words;
    template <typename T> size_t put(const T * data, size_t n) {
        static_assert(sizeof(T) % sizeof(int32_t) == 0, "metadata structs are whole words");
        if (words.size() % 2 != 0) {
            words.push_back(0);
        }
        const size_t at = words.size();
        words.resize(at + n * sizeof(T) / sizeof(int32_t));
        if (n > 0) {
            std::memcpy(words.data() + at, data, n * sizeof(T));
        }
        return at;
    }
    template <typename T> size_t put(const std::vector<T> & v) { return put(v.data(), v.size()); }
};

class cuda_selection {
  public:
    cuda_selection(const model_hparams & hp, const paged_kv_layout & layout);

    // ---- backend operations ----
    void set_selection(int32_t seq, const std::vector<int32_t> & positions);
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k);
    void release(int32_t seq);

    // ---- inspection, for tests (synchronous) ----
    // Runs the queued top-k jobs now.
    void flush(cudaStream_t stream);
    // Scores [L][groups][domain] of a held sink (empty if none); the first n entries of a held list.
    std::vector<float> sink_scores(int32_t seq, int32_t id) const;
    std::vector<int32_t> held_list(int32_t seq, int64_t layer, int64_t kv_head, int64_t n) const;
    // Tensor parallelism: the device block of a held sink, n = n_layer · layer stride floats (padding included), that
    // a shared sink's cross-rank all-reduce sums in place; nullptr if the sink is not held.
    float * sink_block(int32_t seq, int32_t id, int64_t & n);

    // ---- one forward ----
    // Checks the batch's sinks against its rows, pins the queued top-k requests to the sinks they name (their jobs
    // are made once the pass's capacities are final, in put_top_k_jobs), then lays out the batch's sinks.
    void begin_forward(const forward_batch & batch);
    // A pass over rows [r_begin, r_end): the rows' draft / collect fields (rows[i] is batch row r_begin + i, its
    // pages, seq and pos already set) and the capacities the plan needs.
    void plan_rows(const forward_batch & batch, int64_t r_begin, int64_t r_end, std::vector<attention_plan_row> & rows,
                   attention_plan_config & cfg);
    // The pass's jobs into its metadata, after the plan is built from `rows` (plan_rows' output).
    void put_jobs(const forward_batch & batch, const kv_block_manager & kv, int64_t r_begin, int64_t r_end,
                  const std::vector<attention_plan_row> & rows, const attention_plan & plan, meta_words & meta);
    // The queued top-k jobs, last in the metadata: they run outside a captured graph, so their count may change
    // without changing the graph's parameters.
    void put_top_k_jobs(meta_words & meta);
    // Everything the pass's selection launches depend on besides the metadata's contents: equal signatures (and
    // metadata layouts) mean a captured graph of the pass can be replayed.
    std::vector<int64_t> launch_signature() const;
    // Device address of the uploaded metadata words.
    void bind(const int32_t * meta_dev) { meta_dev_ = meta_dev; }

    // ---- launches, in stream order ----
    void run_queued_top_k(cudaStream_t stream);                                     // before the first layer
    void after_kv_append(int64_t layer, const bf16 * k_layer, cudaStream_t stream); // Quest metadata
    void before_attention(int64_t layer, const bf16 * q, int64_t q_row_stride, const int32_t * page_table,
                          cudaStream_t stream);                        // Quest selection
    void attention_fields(int64_t layer, attention_params & ap) const; // lists and collect buffers
    void after_attention(int64_t layer, cudaStream_t stream);          // score reduce
    // After the pass (the stream is idle): buffers retired by growth are freed.
    void end_pass() { retired_.clear(); }

  private:
    struct sink_layout {
        int32_t id = 0;
        int32_t n_groups = 1;
        int64_t domain = 0;
        int64_t offset = 0; // scores of layer l, group g at offset + l * layer_stride_ + g * group_stride_
    };
    struct queued_top_k {
        int32_t seq;
        int32_t sink;
        int64_t k;
    };
    // A queued request pinned to its sink's place in the arena of the forward that filled it (that arena's strides:
    // the next forward may lay out its own sinks before the job runs).
    struct pending_top_k {
        int32_t seq;
        sink_layout sink;
        int64_t layer_stride;
        int64_t group_stride;
        int64_t k;
    };

    const sink_layout * find_sink(int32_t seq, int32_t id) const;
    int32_t slot_of(int32_t seq);
    void ensure_lists(int64_t n_slots, int64_t cap);
    // Slots and list capacity for the pending top-k requests.
    void reserve_pending();
    template <typename T> const T * dev(size_t word) const { return reinterpret_cast<const T *>(meta_dev_ + word); }

    model_hparams hp_;
    paged_kv_layout layout_;

    // Selection lists [n_slots][L][HK][sel_cap].
    std::map<int32_t, int32_t> slots_; // seq -> slot
    std::vector<int32_t> free_slots_;
    int64_t n_slots_ = 0;
    int64_t sel_cap_ = 0;
    device_buffer lists_;

    // Score sinks of the last forward that had some: [offset ...] in one arena.
    std::map<int32_t, std::vector<sink_layout>> sinks_; // seq -> its sinks
    int64_t layer_stride_ = 0;
    int64_t group_stride_ = 0;
    device_buffer arena_;
    std::vector<device_buffer> retired_;

    std::vector<queued_top_k> queued_;       // select_top_k calls since the last forward
    std::vector<pending_top_k> pending_;     // the same, pinned by begin_forward
    const float * pending_scores_ = nullptr; // the arena they read (a grown arena is retired until the pass ends)
    std::vector<top_k_job> top_k_jobs_;      // pending_ as jobs of this pass
    int64_t top_k_max_n_ = 0;

    // Collected verify logits of one pass: [n_collect][H][collect_cap] bf16 and [n_collect][H] fp32; collect_cap_
    // is 0 when the pass collects nothing.
    device_buffer collect_logits_;
    device_buffer collect_lse_;
    int64_t collect_cap_ = 0;
    // Logit-mode sinks summed by the attention kernel itself (attention_plan_row::sum_target = the sink's index in
    // the batch): no per-head logit rows, only fp32 partial rows per KV head [slots][HK][sum_cap], which the score
    // reduce adds up. SPECATTN_FUSED_COLLECT=0 turns this off (A/B against the logit rows).
    bool fuse_logit_sinks_ = true;
    // This pass's logit and partial rows stay in L2 for the score reduce (attention_side_rows_in_l2): the attention
    // copies KV evict-first and the reduce drops the rows once read (nothing reads them later).
    bool side_rows_in_l2_ = false;
    int64_t l2_bytes_ = 0;
    device_buffer sum_partial_;
    int64_t sum_cap_ = 0;

    // Quest: page key bounds [L][P][HK][D] bf16 each, kept for the sequences that have drafted with Quest.
    device_buffer kmin_, kmax_;
    std::set<int32_t> quest_seqs_;

    // This pass's jobs (word offsets into the metadata) and their extents.
    const int32_t * meta_dev_ = nullptr;
    size_t w_top_k_ = 0, w_reduce_ = 0, w_quest_meta_pages_ = 0, w_quest_meta_valid_ = 0, w_quest_ = 0;
    int64_t n_reduce_ = 0, reduce_max_domain_ = 0, reduce_max_groups_ = 1;
    int64_t n_quest_meta_ = 0, n_quest_ = 0, quest_max_pages_ = 0;
};

} // namespace specattn
