// The POD parameter structs of the draft-selection and sampling kernels (score_reduce.cuh, top_k.cuh, quest.cuh,
// sample.cuh). Like kernel_params.h: no engine headers, so host code fills them without nvcc. Jobs are arrays in
// device memory filled by a host-side plan; one launch runs many jobs (CUDA-graph friendly: the launch shape
// depends only on capacities the host passes, never on device data).
//
// Dimensions used in the shape comments:
//   H  query heads   HK  KV heads   G = H / HK   D  head_dim   P  n_pages   S  page_size   L  n_layer
//   C  collected verify rows (collect index)   V  n_vocab   R  rows (one distribution each)   N  sequences
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace specattn {

using bf16 = __nv_bfloat16;

// ---- score reduce (score_reduce.cuh) --------------------------------------------------------------------------

// How one collected logit s (natural units, q·k/√D) of a row with log-sum-exp lse enters a score.
enum class score_reduce_mode : int32_t {
    score_reduce_mode_logit = 0,  // Σ s
    score_reduce_mode_weight = 1, // Σ exp(s − lse)
    // Σ of fp32 partial rows the attention kernel summed already (attention_params::sum_partial): collect0 and
    // n_rows name partial slots, and the "heads" of a group are KV heads (all HK when n_groups = 1, else g alone).
    score_reduce_mode_partials = 2,
};

// One score sink: the sum over n_rows consecutive collected rows and over query heads, per KV-head group.
//     scores[out_offset + layer * layer_stride + g * group_stride + p] = Σ_{c, h in group g} f(logits[c][h][p])
// for p < domain; g < n_groups; n_groups = 1: all H heads in one group; n_groups = HK: heads h / G == g.
// Written, not accumulated: every row of a sink is in the same launch.
struct score_reduce_job {
    int32_t collect0 = 0; // first collect index
    int32_t n_rows = 0;   // consecutive collect indices
    int32_t domain = 0;   // positions [0, domain)
    score_reduce_mode mode = score_reduce_mode::score_reduce_mode_logit;
    int32_t n_groups = 1;   // 1 or HK
    int32_t reserved = 0;   // keeps out_offset 8-byte aligned and the struct 24 bytes
    int64_t out_offset = 0; // element offset into scores
};

struct score_reduce_params {
    const bf16 * logits = nullptr;    // [C][H][...]: (c, h, p) at c * collect_row_stride + h * collect_head_stride + p
    const float * lse = nullptr;      // [C][H]: natural-log log-sum-exp of each (c, h) row (weight mode)
    const float * partials = nullptr; // [slots][HK][partial_kv_stride] (partials mode)
    int64_t partial_kv_stride = 0;    // floats; a multiple of 4 for 16-byte loads
    int64_t collect_row_stride = 0;   // elements; 16-byte vector loads when both strides are multiples of 8
    int64_t collect_head_stride = 0;  // elements
    const score_reduce_job * jobs = nullptr; // [n_jobs]
    float * scores = nullptr;                // see score_reduce_job
    int64_t n_jobs = 0;
    int64_t n_head = 0;    // H
    int64_t n_head_kv = 0; // HK (G = H / HK heads per group when n_groups = HK)
    int64_t layer = 0;     // this launch's layer
    int64_t layer_stride = 0;
    int64_t group_stride = 0;
    int64_t max_domain = 0; // capacity: every job's domain <= max_domain (sizes the grid)
    int64_t max_groups = 1; // capacity: every job's n_groups <= max_groups
    // The rows are read for the last time: whole 128-byte lines of them are dropped from L2 once read, without
    // being written back (their contents become undefined). With the attention kernel's KV copies evict-first
    // (attention_params::stream_kv) rows written just before stay in L2, and then never reach HBM at all. Only
    // where every row (collect index, or partial slot) is read by one job: two sinks of the same rows (a shared
    // and a per-KV-head one) would read each other's dropped lines.
    bool discard = false;
};

// ---- top-k (top_k.cuh) ------------------------------------------------------------------------------------------

// The k highest of scores[score_offset, +n), ties to the lower position (spec/selector.cpp's top_k_positions),
// written as min(k, n) ascending positions to lists[list_offset + c * copy_stride + i] for c < n_copies.
// -inf scores are ordinary values (they lose to everything finite and tie among themselves by position);
// -0.0 equals +0.0. NaN is not a valid score (the CPU comparator is not a strict weak order with NaN); the kernel
// ranks it below -inf.
struct top_k_job {
    int64_t score_offset = 0;
    int32_t n = 0; // domain
    int32_t k = 0; // k >= n selects all
    int64_t list_offset = 0;
    int32_t n_copies = 1; // head-shared selections replicated to each KV head's list
    int32_t reserved = 0;
    int64_t copy_stride = 0;
};

struct top_k_params {
    const float * scores = nullptr;   // see top_k_job
    const top_k_job * jobs = nullptr; // [n_jobs], one CTA each
    int32_t * lists = nullptr;        // see top_k_job
    int64_t n_jobs = 0;
    int64_t max_n = 0; // capacity: every job's n <= max_n (picks the shared-memory path)
};

// ---- quest (quest.cuh) ------------------------------------------------------------------------------------------

// Page metadata of MagicDec-Quest: channel-wise min and max of each page's keys, per KV head, stored in bf16
// (exact: the min/max of bf16 keys is one of them). Recomputed for a host-given list of pages over their slots
// [0, n_valid); a page with n_valid = 0 gets kmin = +inf, kmax = -inf.
//     kmin, kmax: [L'][P][HK][D]        k_pool: [L'][P][HK][S][D] (paged_kv.h), L' = n_layer layers from the bases
struct quest_meta_params {
    const bf16 * k_pool = nullptr;
    bf16 * kmin = nullptr;
    bf16 * kmax = nullptr;
    const int32_t * pages = nullptr;   // [n_entries] physical page
    const int32_t * n_valid = nullptr; // [n_entries] valid slots of that page, <= S
    int64_t n_entries = 0;
    int64_t n_layer = 1; // layers updated by this launch (1: pass this layer's bases)
    int64_t n_pages = 0; // P of the pools (layer stride)
    int64_t n_head_kv = 0;
    int64_t page_size = 0;
    int64_t head_dim = 0; // even
};

// One draft row of one sequence: select among the sequence's pages [0, n_pages_before) (logical page j holds
// positions [j*S, (j+1)*S), all valid) the k_pages with the highest Quest bound, per KV head h:
//     bound(j) = max over g < G of Σ_c max(q_c · kmin_c, q_c · kmax_c),  q = query head h*G + g of the row
// ties to the lower page; write the selected pages' positions ascending (k_pages * S of them, all pages when
// k_pages >= n_pages_before) to sel_pos[slot][layer][h][0 ...]. The page holding the row's own position and the
// positions after it are the attention kernel's recent range, not part of the selection.
struct quest_job {
    int32_t row = 0;               // batch row of the query
    int32_t page_table_offset = 0; // the sequence's pages: page_table[page_table_offset + j]
    int32_t n_pages_before = 0;
    int32_t k_pages = 0;
    int32_t slot = 0; // selection slot in sel_pos
    int32_t reserved = 0;
};

struct quest_select_params {
    const bf16 * q = nullptr;    // [R, q_row_stride]: head h of row r at q + r * q_row_stride + h * D
    int64_t q_row_stride = 0;    // elements
    const bf16 * kmin = nullptr; // [P][HK][D] this layer's metadata
    const bf16 * kmax = nullptr; // [P][HK][D]
    const int32_t * page_table = nullptr;
    const quest_job * jobs = nullptr; // [n_jobs], one CTA per (job, KV head)
    int32_t * sel_pos = nullptr;      // [n_sel][L][HK][sel_cap]
    int64_t n_jobs = 0;
    int64_t layer = 0;
    int64_t n_layer = 0;
    int64_t sel_cap = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0; // even, <= 256
    int64_t page_size = 0;
    int64_t max_pages_before = 0; // capacity: every job's n_pages_before <= this (bounds live in shared memory)
};

// ---- sampling (sample.cuh) --------------------------------------------------------------------------------------

// A row's sampling parameters (sampling/sampler.h's sampling_params without the seed: draws come as uniforms).
struct sample_config {
    float temperature = 0.0f; // <= 0: greedy, a one-hot at the argmax
    int32_t top_k = 0;        // 0: off
    float top_p = 1.0f;       // 1: off
    float min_p = 0.0f;       // 0: off
};

// probs[r] = sampling_probs(logits[r], V, configs[r]): temperature → top-k → top-p → min-p → renormalize, with
// the CPU's tie rules (equal logits by lower id). Weights exp(x/T − max/T) in fp64 as on the CPU; the top-p
// cut is decided on 2^-40 fixed-point sums of those weights (see sample.cuh). A row with no finite candidate (all
// -inf or NaN), where the CPU throws, gets all zeros.
struct sample_probs_params {
    const float * logits = nullptr;          // [R, logits_row_stride]
    int64_t logits_row_stride = 0;           // elements
    const sample_config * configs = nullptr; // [R]
    float * probs = nullptr;                 // [R, probs_row_stride]
    int64_t probs_row_stride = 0;
    double * work = nullptr; // [R, V] fp64 weights (scratch)
    int64_t n_rows = 0;
    int64_t n_vocab = 0;
};

// out[r] = sampler::sample_from(probs[r]) with the uniform u[r] in [0, 1): the first id whose running sum (in id
// order, fp64) exceeds u · total; the last id with mass when rounding leaves none. Rows must be finite and >= 0;
// an all-zero row gives -1 (the CPU throws).
struct sample_from_params {
    const float * probs = nullptr; // [R, row_stride]
    int64_t row_stride = 0;
    const double * uniforms = nullptr; // [R]
    int32_t * out = nullptr;           // [R]
    int64_t n_rows = 0;
    int64_t n_vocab = 0;
};

// One sequence of speculative sampling (spec/verify.cpp's accept_sampled): target rows p[p_row0 ... + n_drafts],
// draft rows q[q_row0 ... + n_drafts - 1] with the draft token of q row i at drafts[q_row0 + i], uniforms
// uniforms[p_row0 ... + n_drafts]: the same uniforms in the same order as the CPU's rng.uniform() calls
// (acceptance tests, then one for the residual or bonus draw).
struct accept_seq {
    int32_t p_row0 = 0;
    int32_t q_row0 = 0;
    int32_t n_drafts = 0;
    int32_t reserved = 0;
};

struct accept_sampled_params {
    const float * p = nullptr; // [n_p_rows, row_stride] target distributions
    const float * q = nullptr; // [n_q_rows, row_stride] draft distributions
    int64_t row_stride = 0;
    const int32_t * drafts = nullptr;  // [n_q_rows]
    const double * uniforms = nullptr; // [n_p_rows]
    const accept_seq * seqs = nullptr; // [N]
    int32_t * n_accepted = nullptr;    // [N]
    int32_t * next = nullptr;          // [N] corrected or bonus token
    int64_t n_seqs = 0;
    int64_t n_vocab = 0;
};

// accept_greedy: accept drafts while each equals the argmax of its target row; next = argmax of the first
// rejected (or the bonus) row. Argmax ids come from argmax_kernel (lowest id among ties, NaN never wins).
struct accept_greedy_params {
    const int32_t * argmax_ids = nullptr; // [n_p_rows] argmax of each target row
    const int32_t * drafts = nullptr;     // [n_q_rows]
    const accept_seq * seqs = nullptr;    // [N] (uniforms unused)
    int32_t * n_accepted = nullptr;       // [N]
    int32_t * next = nullptr;             // [N]
    int64_t n_seqs = 0;
};

} // namespace specattn
