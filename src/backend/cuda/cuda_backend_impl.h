// The CUDA backend's private state (cuda_backend::impl), shared by its source files: cuda_backend.cpp (construction,
// passes, graphs, outputs), cuda_weights.cpp (weights: uploaded or generated) and cuda_layers.cpp (the launches of a
// pass). Not for use outside src/backend/cuda.
#pragma once

#include "backend/cuda/cuda_backend.h"

#include "backend/cuda/attention_plan.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_sampler.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/select_ops.h"
#include "backend/cuda/selection_state.h"
#include "backend/cuda/stage_timer.h"
#include "backend/cuda/tp_ops.h"
#include "core/check.h"
#include "core/dtype.h"
#include "kernels/paged_kv.h"
#include "model/rope.h"

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

namespace specattn {

// A layer's weights on the device. Q, K and V are fused into one [H*D + 2*HK*D, E] matrix, gate and up into one
// [2F, E] matrix (gpt-fast's load-time fusion), so each is one GEMM.
struct cuda_layer {
    const bf16 * wqkv = nullptr;       // [(H + 2 HK) * D, E]
    const bf16 * wo = nullptr;         // [E, H * D]
    const bf16 * w_gate_up = nullptr;  // [2F, E]
    const bf16 * w_down = nullptr;     // [E, F]
    const float * attn_norm = nullptr; // [E]
    const float * ffn_norm = nullptr;  // [E]
    const float * bqkv = nullptr;      // [(H + 2 HK) * D] or nullptr
    const float * q_norm = nullptr;    // [D] or nullptr
    const float * k_norm = nullptr;    // [D] or nullptr
};

struct cuda_backend::impl {
    const model & m; // the whole model, or a tensor-parallel rank's shard
    model_hparams hp;
    // Tensor parallelism (docs/tensor_parallel.md). A group (comm != &no_tp) is called after the embedding, the O
    // and down projections, the LM head and for shared score sinks; with more than one rank (tp) the projections'
    // partial sums are fp32 and the all-reduce rounds their sum to bf16 once, as one rank's GEMM does.
    tp_rank_plan rank;
    single_rank_collectives no_tp;
    collectives * comm = &no_tp;
    bool tp = false;
    paged_kv_layout layout;
    int64_t max_rows = 0;
    int64_t n_sm = 0;
    int64_t slot_capacity = 0;

    cudaStream_t stream = nullptr;
    std::unique_ptr<cublaslt_gemm> gemm;
    std::vector<device_buffer> owned; // every weight tensor

    const bf16 * tok_embd = nullptr;  // [V, E]; a tensor-parallel rank's vocabulary rows [vocab_chunk, E], zero-padded
    const bf16 * lm_head = nullptr;   // [V, E] (tok_embd when tied); the same rows under tensor parallelism
    const float * out_norm = nullptr; // [E]
    const float * inv_freq = nullptr; // [D / 2]
    std::vector<cuda_layer> layers;

    device_buffer k_pool; // [n_layer, P, HK, S, D] bf16
    device_buffer v_pool; // same

    // Workspaces for max_rows rows.
    device_buffer x;           // [R, E] fp32 residual stream
    device_buffer xn;          // [R, E] bf16 normed block input
    device_buffer qkv;         // [R, (H + 2 HK) * D] bf16
    device_buffer attn;        // [R, H * D] bf16
    device_buffer proj;        // [R, E] bf16 output of the O and down projections (the residual delta)
    device_buffer gate_up;     // [R, 2F] bf16
    device_buffer act;         // [R, F] bf16
    device_buffer logits;      // [R, V] fp32
    device_buffer partial_o;   // [slot_capacity, H, D] fp32
    device_buffer partial_lse; // [slot_capacity, H] fp32

    // Per-pass metadata packed as int32 words (meta_words, run_pass), host staging and device copy.
    pinned_buffer meta_host;
    device_buffer meta_dev;
    pinned_buffer logits_host;               // [R, V] fp32
    device_buffer proj_partial;              // [R, E] fp32 a rank's partial O / down projection (tp)
    device_buffer logits_local;              // [R, vocab_chunk] fp32 a rank's LM-head block (tp)
    device_buffer logits_gather;             // [N, R, vocab_chunk] fp32 every rank's block (tp)
    device_buffer ids;                       // [R] int32 token ids (forward_argmax, forward_sample)
    pinned_buffer ids_host;                  // [R]
    std::unique_ptr<device_sampler> sampler; // forward_sample, forward_sample_held, forward_accept
    // SPECATTN_HOST_SAMPLING=1: return logits and sample on the host, as the CPU backend does (tests compare the
    // two; a user can rule the device sampler out).
    bool host_sampling = false;

    // Offsets (int32 elements) of the metadata arrays of the current pass.
    struct meta_offsets {
        size_t tokens, positions, kv_page, kv_slot, out_rows, row_slot, row_n_split, page_table, segs, work;
    } off{};
    attention_plan plan;
    std::vector<attention_plan_row> plan_rows;
    std::unique_ptr<cuda_selection> sel_state; // speculative decoding: lists, sinks, collection, Quest
    int64_t invariant_splits = 1; // the invariant attention plan's KV splits per row, fixed at construction
    stage_timer timer;            // SPECATTN_CUDA_PROFILE=1
    // CUDA graphs of decode / draft / verify passes (SPECATTN_CUDA_GRAPHS=0 turns them off), keyed by everything
    // their launches depend on besides the metadata's contents (see run_pass).
    bool use_graphs = true;
    bool decode_mpw1 = false;    // attention_plan_config::single_tile_mpw1 (attention_decode_mpw1_from_env)
    bool split_d = false;        // attention_plan_config::split_d (attention_split_d_from_env)
    int64_t wgmma_row_tiles = 0; // attention_plan_config::wgmma_row_tiles (attention_wgmma_from_env)
    static constexpr size_t max_graphs = 64;
    std::map<std::vector<int64_t>, cudaGraphExec_t> graph_cache;

    impl(const model & mod, const tp_rank_plan & rk, collectives * c, int64_t n_pages, int64_t page_size, int64_t rows);
    ~impl() {
        clear_graphs();
        cudaStreamDestroy(stream);
    }

    template <typename T> const T * upload(const T * src, int64_t n) {
        owned.emplace_back(static_cast<size_t>(n) * sizeof(T));
        SPECATTN_CUDA_CHECK(
            cudaMemcpy(owned.back().as<void>(), src, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice));
        return owned.back().as<T>();
    }
    // fp32 matrices (concatenated row-wise when several) rounded to bf16 and uploaded, then `zeros` zero elements.
    const bf16 * upload_bf16(std::initializer_list<const matrix *> parts, int64_t zeros = 0) {
        std::vector<uint16_t> h;
        size_t n = 0;
        for (const matrix * p : parts) {
            n += p->w.size();
        }
        h.reserve(n);
        for (const matrix * p : parts) {
            for (float f : p->w) {
                h.push_back(f32_to_bf16(f));
            }
        }
        h.resize(h.size() + static_cast<size_t>(zeros), 0);
        return reinterpret_cast<const bf16 *>(upload(h.data(), static_cast<int64_t>(h.size())));
    }

    // Rows [r_begin, r_end) of the batch; their logit rows' outputs go to `out` at their index in the whole batch.
    void run_pass(const forward_batch & batch, const kv_block_manager & kv, int64_t r_begin, int64_t r_end,
                  const outputs & out);
    // outs: (output index in the batch, row of the pass) of the pass's logit rows.
    void finish_pass(const outputs & out, const std::vector<std::pair<int64_t, int32_t>> & outs, double host_s);
    void warm_up(int64_t n_pages, int64_t page_size);
    void upload_weights();
    void init_random_weights();
    void init_random_shard();
    void reduce_sinks_across_ranks(const forward_batch & batch);
    // What decode, draft and verify passes run, fixed for the backend's life from the batch the engine decodes:
    // the attention plan's KV splits per row (attention_invariant_splits_for; a row's chunk follows from its
    // position) and the GEMM algorithm of every weight shape, timed on the weights (cublaslt_gemm::tune_invariant).
    // The context a sequence can reach is its share of the KV pool (n_pages of page_size positions).
    void fix_invariant_kernels(int64_t decode_rows, int64_t n_pages, int64_t page_size) {
        const int64_t rows = std::clamp<int64_t>(decode_rows, 1, max_rows);
        // The whole model's KV heads, so that every tensor-parallel rank splits KV as one rank would (TP = N then
        // computes each head's attention exactly as TP = 1 does).
        invariant_splits = attention_invariant_splits_for(rows, rank.n_head_kv_total, n_pages * page_size / rows, n_sm,
                                                          attention_plan_config{}.ctas_per_sm);
        const int64_t n_qkv = hp.n_embd_q() + 2 * hp.n_embd_kv();
        const cuda_layer & l = layers.front();
        gemm->tune_invariant(gemm_out::gemm_out_bf16, n_qkv, hp.n_embd, l.wqkv, stream, rows);
        gemm->tune_invariant(proj_out(), hp.n_embd, hp.n_embd_q(), l.wo, stream, rows);
        gemm->tune_invariant(gemm_out::gemm_out_bf16, 2 * hp.n_ff, hp.n_embd, l.w_gate_up, stream, rows);
        gemm->tune_invariant(proj_out(), hp.n_embd, hp.n_ff, l.w_down, stream, rows);
        gemm->tune_invariant(gemm_out::gemm_out_f32, lm_rows(), hp.n_embd, lm_head, stream, rows);
    }
    // The O and down projections' output type: bf16, or fp32 partial sums on a tensor-parallel rank (reduce_proj
    // rounds their sum once).
    gemm_out proj_out() const { return tp ? gemm_out::gemm_out_f32 : gemm_out::gemm_out_bf16; }
    // The LM head's output rows on this rank: the vocabulary, or the rank's block of it.
    int64_t lm_rows() const { return tp ? rank.vocab_chunk : hp.n_vocab; }
    // A projection's output (bf16 [n, E]) after the all-reduce over the ranks; src is proj (one rank) or
    // proj_partial (tp).
    void reduce_proj(int64_t n, bool invariant) {
        const coll_exec ex{stream, invariant};
        if (tp) {
            comm->all_reduce_sum(proj_partial.as<void>(), tp_dtype::tp_dtype_f32, proj.as<void>(),
                                 tp_dtype::tp_dtype_bf16, n * hp.n_embd, ex);
        } else if (comm != &no_tp) {
            comm->all_reduce_sum(proj.as<void>(), tp_dtype::tp_dtype_bf16, proj.as<void>(), tp_dtype::tp_dtype_bf16,
                                 n * hp.n_embd, ex);
        }
    }
    void enqueue_layers(int64_t n, int64_t n_out, const int32_t * md, const attention_plan_config & pc, bool invariant);
    void clear_graphs() {
        for (auto & [k, exec] : graph_cache) {
            cudaGraphExecDestroy(exec);
        }
        graph_cache.clear();
    }
};

} // namespace specattn
