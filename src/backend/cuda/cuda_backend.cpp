// The CUDA backend's forward pass (see cuda_backend.h). Host code only: it translates the model and the batch
// into kernel params and launches; the kernels live in src/kernels/, their launchers in cuda_ops.h.
//
// Per pass (at most max_rows rows):
//   host: tokens, positions, KV (page, slot) per row, the attention plan, the selection jobs and the logit rows ->
//         one pinned buffer, one cudaMemcpyAsync; then the queued top-k jobs
//   embed -> per layer [ rmsnorm(+residual) -> QKV GEMM -> qkv_prep (bias, q/k norm, RoPE) -> KV append (+ Quest
//            metadata) -> (Quest selection) -> attention -> (score reduce) -> O GEMM -> rmsnorm(+residual) ->
//            gate/up GEMM -> SwiGLU -> down GEMM ]
//   -> final rmsnorm(+residual, gathering the logit rows) -> LM head GEMM (fp32) -> copy back, one synchronize.
// Decode, draft and verify passes replay a CUDA graph of that device part when one was captured for the same
// launches. Workspaces that depend on the batch (metadata, partial slots, selection buffers) grow, rarely, between
// passes while the stream is idle.
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
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>

namespace specattn {

namespace {

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

} // namespace

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
    pinned_buffer logits_host; // [R, V] fp32
    device_buffer proj_partial;  // [R, E] fp32 a rank's partial O / down projection (tp)
    device_buffer logits_local;  // [R, vocab_chunk] fp32 a rank's LM-head block (tp)
    device_buffer logits_gather; // [N, R, vocab_chunk] fp32 every rank's block (tp)
    device_buffer ids;         // [R] int32 token ids (forward_argmax, forward_sample)
    pinned_buffer ids_host;    // [R]
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
    stage_timer timer;                         // SPECATTN_CUDA_PROFILE=1
    // CUDA graphs of decode / draft / verify passes (SPECATTN_CUDA_GRAPHS=0 turns them off), keyed by everything
    // their launches depend on besides the metadata's contents (see run_pass).
    bool use_graphs = true;
    static constexpr size_t max_graphs = 64;
    std::map<std::vector<int64_t>, cudaGraphExec_t> graph_cache;

    impl(const model & mod, const tp_rank_plan & rk, collectives * c, int64_t n_pages, int64_t page_size,
         int64_t rows);
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
    void warm_up(int64_t n_pages, int64_t page_size);
    void upload_weights();
    void init_random_weights();
    void init_random_shard();
    void reduce_sinks_across_ranks(const forward_batch & batch);
    // The batch-invariant GEMM algorithm of every weight shape, timed on the weights (cublaslt_gemm::tune_invariant).
    void tune_gemms() {
        const int64_t n_qkv = hp.n_embd_q() + 2 * hp.n_embd_kv();
        const cuda_layer & l = layers.front();
        const gemm_out proj_out = tp ? gemm_out::gemm_out_f32 : gemm_out::gemm_out_bf16;
        gemm->tune_invariant(gemm_out::gemm_out_bf16, n_qkv, hp.n_embd, l.wqkv, stream);
        gemm->tune_invariant(proj_out, hp.n_embd, hp.n_embd_q(), l.wo, stream);
        gemm->tune_invariant(gemm_out::gemm_out_bf16, 2 * hp.n_ff, hp.n_embd, l.w_gate_up, stream);
        gemm->tune_invariant(proj_out, hp.n_embd, hp.n_ff, l.w_down, stream);
        gemm->tune_invariant(gemm_out::gemm_out_f32, lm_rows(), hp.n_embd, lm_head, stream);
    }
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

cuda_backend::impl::impl(const model & mod, const tp_rank_plan & rk, collectives * c, int64_t n_pages,
                         int64_t page_size, int64_t rows)
    : m(mod), hp(mod.hp), rank(rk), comm(c != nullptr ? c : &no_tp), tp(rk.n_ranks > 1), max_rows(rows) {
    int n_dev = 0;
    const cudaError_t e = cudaGetDeviceCount(&n_dev);
    SPECATTN_CHECK(e == cudaSuccess && n_dev > 0, "no CUDA device found (%s); run with --device cpu",
                   e == cudaSuccess ? "0 devices" : cudaGetErrorString(e));
    SPECATTN_CHECK(max_rows > 0, "cuda backend: max_rows must be positive");
    SPECATTN_CHECK(hp.head_dim % 2 == 0 && hp.head_dim <= 256,
                   "the CUDA backend supports even head dims up to 256, not %lld", static_cast<long long>(hp.head_dim));
    SPECATTN_CHECK(hp.n_embd % 2 == 0, "the CUDA backend needs an even hidden size, not %lld",
                   static_cast<long long>(hp.n_embd));
    int dev = 0;
    int sms = 0;
    SPECATTN_CUDA_CHECK(cudaGetDevice(&dev));
    SPECATTN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    n_sm = sms;
    SPECATTN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    gemm = std::make_unique<cublaslt_gemm>();

    SPECATTN_CHECK(comm->n_ranks() == rank.n_ranks && comm->rank() == rank.rank && rank.heads.size() == hp.n_head,
                   "cuda backend: rank %d of %d does not match its shard or its collectives", rank.rank, rank.n_ranks);
    if (m.random_weights && tp) {
        init_random_shard();
    } else if (m.random_weights) {
        init_random_weights();
    } else {
        upload_weights();
    }

    // KV pools, the layout shared with the CPU backend and the block manager.
    layout.n_layer = hp.n_layer;
    layout.n_pages = n_pages;
    layout.n_head_kv = hp.n_head_kv;
    layout.page_size = page_size;
    layout.head_dim = hp.head_dim;
    const size_t pool_bytes = static_cast<size_t>(layout.total_elems()) * sizeof(bf16);
    k_pool = device_buffer(pool_bytes);
    v_pool = device_buffer(pool_bytes);
    sel_state = std::make_unique<cuda_selection>(hp, layout);
    sampler = std::make_unique<device_sampler>(hp.n_vocab);
    const char * host_sampling_env = std::getenv("SPECATTN_HOST_SAMPLING");
    host_sampling = host_sampling_env != nullptr && host_sampling_env[0] == '1';
    const char * graphs_env = std::getenv("SPECATTN_CUDA_GRAPHS");
    use_graphs = (graphs_env == nullptr || graphs_env[0] != '0') && comm->capturable();

    // Workspaces.
    const auto rows_bytes = [&](int64_t n, size_t elem) { return static_cast<size_t>(max_rows * n) * elem; };
    const int64_t n_qkv = hp.n_embd_q() + 2 * hp.n_embd_kv();
    x = device_buffer(rows_bytes(hp.n_embd, sizeof(float)));
    xn = device_buffer(rows_bytes(hp.n_embd, sizeof(bf16)));
    qkv = device_buffer(rows_bytes(n_qkv, sizeof(bf16)));
    attn = device_buffer(rows_bytes(hp.n_embd_q(), sizeof(bf16)));
    proj = device_buffer(rows_bytes(hp.n_embd, sizeof(bf16)));
    gate_up = device_buffer(rows_bytes(2 * hp.n_ff, sizeof(bf16)));
    act = device_buffer(rows_bytes(hp.n_ff, sizeof(bf16)));
    logits = device_buffer(rows_bytes(hp.n_vocab, sizeof(float)));
    logits_host = pinned_buffer(rows_bytes(hp.n_vocab, sizeof(float)));
    if (tp) {
        proj_partial = device_buffer(rows_bytes(hp.n_embd, sizeof(float)));
        logits_local = device_buffer(rows_bytes(rank.vocab_chunk, sizeof(float)));
        logits_gather = device_buffer(rows_bytes(rank.n_ranks * rank.vocab_chunk, sizeof(float)));
    }
    ids = device_buffer(rows_bytes(1, sizeof(int32_t)));
    ids_host = pinned_buffer(rows_bytes(1, sizeof(int32_t)));
    slot_capacity = 4 * std::max(max_rows, 2 * n_sm);
    partial_o = device_buffer(static_cast<size_t>(slot_capacity * hp.n_embd_q()) * sizeof(float));
    partial_lse = device_buffer(static_cast<size_t>(slot_capacity * hp.n_head) * sizeof(float));

    // Metadata bound: 7 arrays of rows, the page lists of the batch's sequences (pages are owned by one sequence,
    // so at most n_pages), segments (at most one per row) and work items (at most one per row tile and KV head,
    // or about 2 per multiprocessor when KV is split; see attention_plan_build).
    // A first size; run_pass grows both when a pass needs more.
    const int64_t max_work = max_rows * hp.n_head_kv + 4 * n_sm;
    const size_t words = static_cast<size_t>(7 * max_rows + n_pages) +
                         static_cast<size_t>(max_rows) * sizeof(attention_segment) / sizeof(int32_t) +
                         static_cast<size_t>(max_work) * sizeof(attention_work) / sizeof(int32_t);
    meta_host = pinned_buffer(words * sizeof(int32_t));
    meta_dev = device_buffer(words * sizeof(int32_t));
}

// The model's fp32 weights rounded to bf16 and uploaded, Q/K/V and gate/up fused.
void cuda_backend::impl::upload_weights() {
    const model_weights & w = m.w;
    // A tensor-parallel rank's vocabulary rows, padded to the common chunk (the logits all-gather's block).
    const int64_t pad = (lm_rows() - w.tok_embd.n_out) * hp.n_embd;
    tok_embd = upload_bf16({&w.tok_embd}, pad);
    lm_head = w.output.empty() ? tok_embd : upload_bf16({&w.output}, pad);
    out_norm = upload(w.out_norm.data(), hp.n_embd);
    const std::vector<float> freq = rope_inv_freq(hp.rope, hp.head_dim);
    inv_freq = upload(freq.data(), static_cast<int64_t>(freq.size()));
    for (const layer_weights & lw : w.layers) {
        cuda_layer l;
        l.wqkv = upload_bf16({&lw.wq, &lw.wk, &lw.wv});
        l.wo = upload_bf16({&lw.wo});
        l.w_gate_up = upload_bf16({&lw.w_gate, &lw.w_up});
        l.w_down = upload_bf16({&lw.w_down});
        l.attn_norm = upload(lw.attn_norm.data(), hp.n_embd);
        l.ffn_norm = upload(lw.ffn_norm.data(), hp.n_embd);
        if (hp.qkv_bias) {
            std::vector<float> b(lw.bq);
            b.insert(b.end(), lw.bk.begin(), lw.bk.end());
            b.insert(b.end(), lw.bv.begin(), lw.bv.end());
            l.bqkv = upload(b.data(), static_cast<int64_t>(b.size()));
        }
        if (hp.qk_norm) {
            l.q_norm = upload(lw.q_norm.data(), hp.head_dim);
            l.k_norm = upload(lw.k_norm.data(), hp.head_dim);
        }
        layers.push_back(l);
    }
}

// A preset's weights (model/presets.h), generated here: uniform with unit output variance for a unit-variance input
// (±sqrt(3 / fan_in)), embeddings ±1, norms 1, biases 0.
void cuda_backend::impl::init_random_weights() {
    uint64_t seed = m.seed;
    const auto random = [&](int64_t n_out, int64_t n_in, float scale) {
        const int64_t n = n_out * n_in;
        owned.emplace_back(static_cast<size_t>(n) * sizeof(bf16));
        launch_fill_uniform_bf16(owned.back().as<bf16>(), n, seed++, scale, stream);
        return static_cast<const bf16 *>(owned.back().as<bf16>());
    };
    const auto constant = [&](int64_t n, float value) {
        owned.emplace_back(static_cast<size_t>(n) * sizeof(float));
        launch_fill_f32(owned.back().as<float>(), n, value, stream);
        return static_cast<const float *>(owned.back().as<float>());
    };
    const auto linear = [&](int64_t n_out, int64_t n_in) {
        return random(n_out, n_in, std::sqrt(3.0f / static_cast<float>(n_in)));
    };
    const int64_t e = hp.n_embd;
    tok_embd = random(hp.n_vocab, e, 1.0f);
    lm_head = hp.tied_embeddings ? tok_embd : linear(hp.n_vocab, e);
    out_norm = constant(e, 1.0f);
    const std::vector<float> freq = rope_inv_freq(hp.rope, hp.head_dim);
    inv_freq = upload(freq.data(), static_cast<int64_t>(freq.size()));
    const int64_t n_qkv = hp.n_embd_q() + 2 * hp.n_embd_kv();
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        cuda_layer l;
        l.wqkv = linear(n_qkv, e);
        l.wo = linear(e, hp.n_embd_q());
        l.w_gate_up = linear(2 * hp.n_ff, e);
        l.w_down = linear(e, hp.n_ff);
        l.attn_norm = constant(e, 1.0f);
        l.ffn_norm = constant(e, 1.0f);
        if (hp.qkv_bias) {
            l.bqkv = constant(n_qkv, 0.0f);
        }
        if (hp.qk_norm) {
            l.q_norm = constant(hp.head_dim, 1.0f);
            l.k_norm = constant(hp.head_dim, 1.0f);
        }
        layers.push_back(l);
    }
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// A preset's tensor-parallel rank: each matrix of the whole model is generated exactly as init_random_weights does
// (same seeds, same order) into a scratch buffer, and the rank's rows or columns are copied out, so that TP=N runs
// the TP=1 model.
void cuda_backend::impl::init_random_shard() {
    uint64_t seed = m.seed;
    const int64_t e = hp.n_embd;
    const int64_t d = hp.head_dim;
    const int64_t n_head_all = rank.heads.size() * rank.n_ranks;
    const int64_t n_kv_all = rank.n_head_kv_total;
    const int64_t n_ff_all = rank.n_ff_total;
    const int64_t n_qkv_all = (n_head_all + 2 * n_kv_all) * d;
    const int64_t full_elems = std::max({hp.n_vocab * e, n_qkv_all * e, 2 * n_ff_all * e});
    device_buffer full(static_cast<size_t>(full_elems) * sizeof(bf16)); // one whole matrix at a time
    const auto generate = [&](int64_t n_out, int64_t n_in, float scale) {
        launch_fill_uniform_bf16(full.as<bf16>(), n_out * n_in, seed++, scale, stream);
    };
    const auto linear_scale = [](int64_t n_in) { return std::sqrt(3.0f / static_cast<float>(n_in)); };
    const auto alloc = [&](int64_t n) {
        owned.emplace_back(static_cast<size_t>(n) * sizeof(bf16));
        return owned.back().as<bf16>();
    };
    // Rows [r0, r0 + n_rows) and columns [c0, c0 + n_cols) of the whole [*, n_in] matrix to dst [n_rows, n_cols].
    const auto copy = [&](bf16 * dst, int64_t r0, int64_t n_rows, int64_t n_in, int64_t c0, int64_t n_cols) {
        SPECATTN_CUDA_CHECK(cudaMemcpy2DAsync(dst, static_cast<size_t>(n_cols) * sizeof(bf16),
                                              full.as<bf16>() + r0 * n_in + c0, static_cast<size_t>(n_in) * sizeof(bf16),
                                              static_cast<size_t>(n_cols) * sizeof(bf16), static_cast<size_t>(n_rows),
                                              cudaMemcpyDeviceToDevice, stream));
    };
    const auto constant = [&](int64_t n, float value) {
        owned.emplace_back(static_cast<size_t>(n) * sizeof(float));
        launch_fill_f32(owned.back().as<float>(), n, value, stream);
        return static_cast<const float *>(owned.back().as<float>());
    };
    const auto vocab_block = [&](float scale) { // the rank's vocabulary rows, zero-padded to the chunk
        generate(hp.n_vocab, e, scale);
        bf16 * dst = alloc(rank.vocab_chunk * e);
        SPECATTN_CUDA_CHECK(cudaMemsetAsync(dst, 0, static_cast<size_t>(rank.vocab_chunk * e) * sizeof(bf16), stream));
        copy(dst, rank.vocab.begin, rank.vocab.size(), e, 0, e);
        return static_cast<const bf16 *>(dst);
    };
    tok_embd = vocab_block(1.0f);
    lm_head = hp.tied_embeddings ? tok_embd : vocab_block(linear_scale(e));
    out_norm = constant(e, 1.0f);
    const std::vector<float> freq = rope_inv_freq(hp.rope, hp.head_dim);
    inv_freq = upload(freq.data(), static_cast<int64_t>(freq.size()));
    const int64_t q0 = rank.heads.begin * d;
    const int64_t n_q = rank.heads.size() * d;
    const int64_t k0 = rank.kv_heads.begin * d;
    const int64_t n_k = rank.kv_heads.size() * d;
    const int64_t f0 = rank.ff.begin;
    const int64_t n_f = rank.ff.size();
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        cuda_layer l;
        generate(n_qkv_all, e, linear_scale(e)); // [Q of all heads; K; V]
        bf16 * w_qkv = alloc((n_q + 2 * n_k) * e);
        copy(w_qkv, q0, n_q, e, 0, e);
        copy(w_qkv + n_q * e, n_head_all * d + k0, n_k, e, 0, e);
        copy(w_qkv + (n_q + n_k) * e, (n_head_all + n_kv_all) * d + k0, n_k, e, 0, e);
        l.wqkv = w_qkv;
        generate(e, n_head_all * d, linear_scale(n_head_all * d));
        bf16 * wo = alloc(e * n_q);
        copy(wo, 0, e, n_head_all * d, q0, n_q);
        l.wo = wo;
        generate(2 * n_ff_all, e, linear_scale(e)); // [gate; up]
        bf16 * w_gu = alloc(2 * n_f * e);
        copy(w_gu, f0, n_f, e, 0, e);
        copy(w_gu + n_f * e, n_ff_all + f0, n_f, e, 0, e);
        l.w_gate_up = w_gu;
        generate(e, n_ff_all, linear_scale(n_ff_all));
        bf16 * down = alloc(e * n_f);
        copy(down, 0, e, n_ff_all, f0, n_f);
        l.w_down = down;
        l.attn_norm = constant(e, 1.0f);
        l.ffn_norm = constant(e, 1.0f);
        if (hp.qkv_bias) {
            l.bqkv = constant(n_q + 2 * n_k, 0.0f);
        }
        if (hp.qk_norm) {
            l.q_norm = constant(hp.head_dim, 1.0f);
            l.k_norm = constant(hp.head_dim, 1.0f);
        }
        layers.push_back(l);
    }
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream)); // before `full` is freed
}

// Every launch of a pass after the metadata upload, up to the LM head: what a graph captures.
void cuda_backend::impl::enqueue_layers(int64_t n, int64_t n_out, const int32_t * md, const attention_plan_config & pc,
                                        bool invariant) {
    const int64_t n_embd = hp.n_embd;
    const int64_t hd = hp.head_dim;
    const int64_t n_qkv = hp.n_embd_q() + 2 * hp.n_embd_kv();
    cuda_selection & sel = *sel_state;
    float * x_d = x.as<float>();
    bf16 * xn_d = xn.as<bf16>();
    bf16 * qkv_d = qkv.as<bf16>();
    bf16 * proj_d = proj.as<bf16>();

    if (tp) { // the rank's vocabulary rows, zeros for other ids, summed over the ranks (exact: one non-zero term)
        launch_tp_embed(tok_embd, md + off.tokens, rank.vocab.begin, rank.vocab.end, x_d, n, n_embd, stream);
        comm->all_reduce_sum(x_d, tp_dtype::tp_dtype_f32, x_d, tp_dtype::tp_dtype_f32, n * n_embd, {stream, invariant});
    } else {
        embed_params ep;
        ep.table = tok_embd;
        ep.tokens = md + off.tokens;
        ep.out = x_d;
        ep.n_rows = n;
        ep.n_embd = n_embd;
        launch_embed(ep, stream);
    }
    timer.mark("embed", stream);

    const int64_t layer_elems = layout.layer_elems();
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        const cuda_layer & l = layers[static_cast<size_t>(il)];

        rmsnorm_params np;
        np.x = x_d;
        np.residual = il == 0 ? nullptr : proj_d; // the previous layer's MLP output joins the stream here
        np.weight = l.attn_norm;
        np.out = xn_d;
        np.n_rows = n;
        np.n = n_embd;
        np.eps = hp.norm_eps;
        launch_rmsnorm(np, stream);

        timer.mark("norm", stream);
        gemm->run(xn_d, l.wqkv, qkv_d, gemm_out::gemm_out_bf16, n, n_qkv, n_embd, stream, invariant);
        timer.mark("gemm qkv", stream);

        qkv_prep_params qp;
        qp.qkv = qkv_d;
        qp.bias = l.bqkv;
        qp.q_norm = l.q_norm;
        qp.k_norm = l.k_norm;
        qp.inv_freq = inv_freq;
        qp.positions = md + off.positions;
        qp.n_rows = n;
        qp.n_head = hp.n_head;
        qp.n_head_kv = hp.n_head_kv;
        qp.head_dim = hd;
        switch (hp.rope.layout) {
        case rope_layout::rope_layout_interleaved:
            qp.pairs = rope_pairs::rope_pairs_interleaved;
            break;
        case rope_layout::rope_layout_half_split:
            qp.pairs = rope_pairs::rope_pairs_half_split;
            break;
        }
        qp.eps = hp.norm_eps;
        launch_qkv_prep(qp, stream);

        bf16 * k_layer = k_pool.as<bf16>() + il * layer_elems; // [P, HK, S, D]
        bf16 * v_layer = v_pool.as<bf16>() + il * layer_elems;
        kv_append_params kp;
        kp.k = qkv_d + hp.n_embd_q();
        kp.v = qkv_d + hp.n_embd_q() + hp.n_embd_kv();
        kp.row_stride = n_qkv;
        kp.k_pool = k_layer;
        kp.v_pool = v_layer;
        kp.page = md + off.kv_page;
        kp.slot = md + off.kv_slot;
        kp.n_rows = n;
        kp.n_head_kv = hp.n_head_kv;
        kp.page_size = layout.page_size;
        kp.head_dim = hd;
        launch_kv_append(kp, stream);
        sel.after_kv_append(il, k_layer, stream);

        attention_plan_device apd;
        apd.page_table = md + off.page_table;
        apd.segs = reinterpret_cast<const attention_segment *>(md + off.segs);
        apd.work = reinterpret_cast<const attention_work *>(md + off.work);
        apd.row_slot = md + off.row_slot;
        apd.row_n_split = md + off.row_n_split;
        attention_params ap = attention_params_from_plan(plan, pc, apd);
        ap.q = qkv_d;
        ap.q_row_stride = n_qkv;
        ap.k_pool = k_layer;
        ap.v_pool = v_layer;
        ap.partial_o = partial_o.as<float>();
        ap.partial_lse = partial_lse.as<float>();
        ap.out = attn.as<bf16>();
        ap.head_dim = hd;
        ap.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        timer.mark("rope+append", stream);
        sel.before_attention(il, qkv_d, n_qkv, apd.page_table, stream);
        timer.mark("quest", stream);
        sel.attention_fields(il, ap);
        launch_attention(ap, stream);
        timer.mark("attention", stream);
        sel.after_attention(il, stream);
        timer.mark("score reduce", stream);

        gemm->run(attn.as<bf16>(), l.wo, tp ? proj_partial.as<void>() : proj_d,
                  tp ? gemm_out::gemm_out_f32 : gemm_out::gemm_out_bf16, n, n_embd, hp.n_embd_q(), stream, invariant);
        timer.mark("gemm o", stream);
        reduce_proj(n, invariant); // the heads' partial O projections
        timer.mark("all-reduce", stream);

        np.residual = proj_d;
        np.weight = l.ffn_norm;
        launch_rmsnorm(np, stream);

        timer.mark("norm", stream);
        gemm->run(xn_d, l.w_gate_up, gate_up.as<bf16>(), gemm_out::gemm_out_bf16, n, 2 * hp.n_ff, n_embd, stream, invariant);
        timer.mark("gemm gate/up", stream);
        swiglu_params sp;
        sp.gate_up = gate_up.as<bf16>();
        sp.out = act.as<bf16>();
        sp.n_rows = n;
        sp.n_ff = hp.n_ff;
        launch_swiglu(sp, stream);
        timer.mark("swiglu", stream);
        gemm->run(act.as<bf16>(), l.w_down, tp ? proj_partial.as<void>() : proj_d,
                  tp ? gemm_out::gemm_out_f32 : gemm_out::gemm_out_bf16, n, n_embd, hp.n_ff, stream, invariant);
        timer.mark("gemm down", stream);
        reduce_proj(n, invariant); // the MLP rows' partial down projections
        timer.mark("all-reduce", stream);
    }

    if (n_out == 0) {
        return;
    }
    // Only the rows whose logits are wanted: the last MLP's output joins them, they are normed and projected.
    rmsnorm_params fp;
    fp.x = x_d;
    fp.residual = proj_d;
    fp.weight = out_norm;
    fp.rows = md + off.out_rows;
    fp.out = xn_d;
    fp.n_rows = n_out;
    fp.n = n_embd;
    fp.eps = hp.norm_eps;
    launch_rmsnorm(fp, stream);
    timer.mark("norm", stream);
    if (!tp) {
        gemm->run(xn_d, lm_head, logits.as<float>(), gemm_out::gemm_out_f32, n_out, hp.n_vocab, n_embd, stream,
                  invariant);
        timer.mark("lm head", stream);
        return;
    }
    // Every rank's [n_out, vocab_chunk] block (the last one padded), gathered in rank order, unpadded into the logits.
    const int64_t chunk = rank.vocab_chunk;
    gemm->run(xn_d, lm_head, logits_local.as<float>(), gemm_out::gemm_out_f32, n_out, chunk, n_embd, stream, invariant);
    timer.mark("lm head", stream);
    comm->all_gather(logits_local.as<void>(), logits_gather.as<void>(), tp_dtype::tp_dtype_f32, n_out * chunk,
                     {stream, invariant});
    for (int32_t r = 0; r < rank.n_ranks; ++r) {
        const int64_t begin = std::min(hp.n_vocab, r * chunk);
        const int64_t size = std::min(hp.n_vocab, (r + 1) * chunk) - begin;
        if (size > 0) {
            SPECATTN_CUDA_CHECK(cudaMemcpy2DAsync(logits.as<float>() + begin, static_cast<size_t>(hp.n_vocab) * sizeof(float),
                                                  logits_gather.as<float>() + r * n_out * chunk,
                                                  static_cast<size_t>(chunk) * sizeof(float),
                                                  static_cast<size_t>(size) * sizeof(float), static_cast<size_t>(n_out),
                                                  cudaMemcpyDeviceToDevice, stream));
        }
    }
    timer.mark("logits all-gather", stream);
}

void cuda_backend::impl::run_pass(const forward_batch & batch, const kv_block_manager & kv, int64_t r_begin,
                                  int64_t r_end, const outputs & out) {
    const int64_t n = r_end - r_begin;
    cuda_selection & sel = *sel_state;
    const bool invariant = !batch.prefill; // batch-invariant GEMMs and attention plan (forward_batch::prefill)
    const auto t_host = std::chrono::steady_clock::now();

    // ---- host: the pass's metadata, one upload ----
    meta_words meta;
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    std::vector<int32_t> positions(static_cast<size_t>(n));
    std::vector<int32_t> kv_page(static_cast<size_t>(n));
    std::vector<int32_t> kv_slot(static_cast<size_t>(n));
    plan_rows.assign(static_cast<size_t>(n), attention_plan_row{});
    for (int64_t i = 0; i < n; ++i) {
        const auto r = static_cast<size_t>(r_begin + i);
        const int32_t tok = batch.tokens[r];
        SPECATTN_CHECK(tok >= 0 && tok < hp.n_vocab, "token id %d is outside the vocabulary of %lld", tok,
                       static_cast<long long>(hp.n_vocab));
        const int32_t seq = batch.seq_ids[r];
        const int64_t pos = batch.positions[r];
        const std::vector<int32_t> & pages = kv.pages(seq);
        SPECATTN_CHECK(pos >= 0 && pos < kv.length(seq),
                       "row %lld writes position %lld beyond its sequence's %lld reserved positions",
                       static_cast<long long>(r), static_cast<long long>(pos), static_cast<long long>(kv.length(seq)));
        tokens[static_cast<size_t>(i)] = tok;
        positions[static_cast<size_t>(i)] = checked_i32(pos, "position");
        kv_page[static_cast<size_t>(i)] = pages[static_cast<size_t>(pos / layout.page_size)];
        kv_slot[static_cast<size_t>(i)] = static_cast<int32_t>(pos % layout.page_size);
        attention_plan_row & pr = plan_rows[static_cast<size_t>(i)];
        pr.pages = &pages;
        pr.seq = seq;
        pr.pos = pos;
    }
    off.tokens = meta.put(tokens);
    off.positions = meta.put(positions);
    off.kv_page = meta.put(kv_page);
    off.kv_slot = meta.put(kv_slot);
    // Output rows of this pass, in the batch's output order.
    std::vector<std::pair<int64_t, int32_t>> outs; // (output index, row in this pass)
    std::vector<int32_t> out_rows;
    for (size_t j = 0; j < batch.logit_rows.size(); ++j) {
        const int32_t r = batch.logit_rows[j];
        SPECATTN_CHECK(r >= 0 && r < batch.n_rows(), "logit row %d outside the batch", r);
        if (r >= r_begin && r < r_end) {
            outs.emplace_back(static_cast<int64_t>(j), static_cast<int32_t>(r - r_begin));
            out_rows.push_back(static_cast<int32_t>(r - r_begin));
        }
    }
    const auto n_out = static_cast<int64_t>(outs.size());
    off.out_rows = meta.put(out_rows);

    attention_plan_config pc;
    pc.n_head = hp.n_head;
    pc.n_head_kv = hp.n_head_kv;
    pc.page_size = layout.page_size;
    pc.sliding_window = hp.sliding_window;
    pc.n_sm = n_sm;
    pc.slot_capacity = slot_capacity;
    pc.invariant = invariant;
    sel.plan_rows(batch, r_begin, r_end, plan_rows, pc); // draft rows' selections, collected verify rows
    attention_plan_build(plan_rows, pc, plan);
    if (plan.n_slots > slot_capacity) { // a batch-invariant plan splits by position, not by the workspace
        slot_capacity = plan.n_slots + plan.n_slots / 2;
        partial_o = device_buffer(static_cast<size_t>(slot_capacity * hp.n_embd_q()) * sizeof(float));
        partial_lse = device_buffer(static_cast<size_t>(slot_capacity * hp.n_head) * sizeof(float));
    }
    // Layout: arrays whose sizes the graph key holds first; the page table (it grows by a page every page_size
    // tokens) and the queued top-k jobs (launched outside the graph) last, so neither moves anything else.
    off.row_slot = meta.put(plan.row_slot);
    off.row_n_split = meta.put(plan.row_n_split);
    off.segs = meta.put(plan.segs);
    off.work = meta.put(plan.work);
    sel.put_jobs(batch, kv, r_begin, r_end, plan_rows, plan, meta);
    off.page_table = meta.put(plan.page_table);
    sel.put_top_k_jobs(meta);

    // The stream is idle here (every pass ends with a synchronization), so the buffers may grow.
    const size_t bytes = meta.words.size() * sizeof(int32_t);
    if (meta_host.bytes() < bytes) {
        meta_host = pinned_buffer(bytes + bytes / 2);
        meta_dev = device_buffer(bytes + bytes / 2);
    }
    std::memcpy(meta_host.as<void>(), meta.words.data(), bytes);
    const double host_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_host).count();
    timer.begin(stream);
    SPECATTN_CUDA_CHECK(cudaMemcpyAsync(meta_dev.as<void>(), meta_host.as<void>(), bytes, cudaMemcpyHostToDevice, stream));
    const int32_t * md = meta_dev.as<int32_t>();
    sel.bind(md);
    sel.run_queued_top_k(stream); // the selections queued since the last forward, before any draft row reads them
    timer.mark("upload+top-k", stream);

    // ---- device: replay the pass's graph when one was captured for the same launches, else capture or launch ----
    const bool graphs = invariant && use_graphs && !timer.on();
    std::vector<int64_t> key;
    if (graphs) {
        key = sel.launch_signature();
        const int64_t fixed[] = {n, n_out, static_cast<int64_t>(plan.segs.size()), static_cast<int64_t>(plan.work.size()),
                                 plan.n_slots, plan.n_collect, slot_capacity,
                                 static_cast<int64_t>(reinterpret_cast<intptr_t>(md)),
                                 static_cast<int64_t>(reinterpret_cast<intptr_t>(partial_o.as<void>())),
                                 static_cast<int64_t>(reinterpret_cast<intptr_t>(partial_lse.as<void>())),
                                 static_cast<int64_t>(off.page_table), static_cast<int64_t>(off.work)};
        key.insert(key.end(), std::begin(fixed), std::end(fixed));
    }
    const auto it = graphs ? graph_cache.find(key) : graph_cache.end();
    if (it != graph_cache.end()) {
        SPECATTN_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
    } else if (graphs) {
        if (graph_cache.size() >= max_graphs) {
            clear_graphs();
        }
        cudaGraph_t g = nullptr;
        SPECATTN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
        try {
            enqueue_layers(n, n_out, md, pc, invariant);
        } catch (...) {
            cudaStreamEndCapture(stream, &g); // leave the stream usable
            if (g != nullptr) {
                cudaGraphDestroy(g);
            }
            throw;
        }
        SPECATTN_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
        cudaGraphExec_t exec = nullptr;
        SPECATTN_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
        cudaGraphDestroy(g);
        graph_cache.emplace(key, exec);
        SPECATTN_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    } else {
        enqueue_layers(n, n_out, md, pc, invariant);
    }

    if (n_out == 0) {
        SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream)); // the next pass reuses the metadata buffer
        timer.end(host_s);
        sel.end_pass();
        return;
    }
    // The one host synchronization of a pass: the logits, or only their argmax ids (greedy decoding).
    const size_t row_bytes = static_cast<size_t>(hp.n_vocab) * sizeof(float);
    if (out.params != nullptr) { // sampled on the device: ids, or a verification's target distributions
        std::vector<sampling_params> pp;
        std::vector<double> pu;
        std::vector<int32_t> ph;
        for (const auto & [j, r] : outs) {
            pp.push_back(out.params[j]);
            if (out.ids != nullptr) {
                pu.push_back(out.uniforms[j]);
            }
            if (out.holds != nullptr) {
                ph.push_back(out.holds[j]);
            }
        }
        if (out.ids == nullptr) {
            for (size_t k = 0; k < outs.size(); ++k) {
                SPECATTN_CHECK(outs[k].first == outs[0].first + static_cast<int64_t>(k),
                               "a verification's logit rows must be in batch order");
            }
            sampler->target_probs(logits.as<float>(), pp, outs[0].first, out.n_total, stream);
            timer.mark("target probs", stream);
        } else {
            sampler->sample(logits.as<float>(), pp, pu, out.holds != nullptr ? &ph : nullptr, ids.as<int32_t>(), stream);
            SPECATTN_CUDA_CHECK(cudaMemcpyAsync(ids_host.as<void>(), ids.as<void>(),
                                                static_cast<size_t>(n_out) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                                stream));
            timer.mark("sample+d2h", stream);
        }
    } else if (out.ids != nullptr) {
        argmax_params am;
        am.logits = logits.as<float>();
        am.out = ids.as<int32_t>();
        am.n_rows = n_out;
        am.n_vocab = hp.n_vocab;
        launch_argmax(am, stream);
        SPECATTN_CUDA_CHECK(cudaMemcpyAsync(ids_host.as<void>(), ids.as<void>(), static_cast<size_t>(n_out) * sizeof(int32_t),
                                            cudaMemcpyDeviceToHost, stream));
        timer.mark("argmax+d2h", stream);
    } else {
        SPECATTN_CUDA_CHECK(cudaMemcpyAsync(logits_host.as<void>(), logits.as<void>(),
                                            static_cast<size_t>(n_out) * row_bytes, cudaMemcpyDeviceToHost, stream));
        timer.mark("logits d2h", stream);
    }
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    timer.end(host_s);
    sel.end_pass();
    // Row k of the LM head's output belongs to output index outs[k].first of the whole batch.
    for (size_t k = 0; k < outs.size(); ++k) {
        if (out.ids != nullptr) {
            const int32_t id = ids_host.as<int32_t>()[k];
            SPECATTN_CHECK(id >= 0, "logit row %lld has no finite logit to sample from",
                           static_cast<long long>(outs[k].first));
            out.ids[outs[k].first] = id;
        } else if (out.logits != nullptr) {
            std::memcpy(out.logits + outs[k].first * hp.n_vocab,
                        logits_host.as<float>() + static_cast<int64_t>(k) * hp.n_vocab, row_bytes);
        }
    }
}

// One single-row pass at construction, so that lazy kernel loading, cuBLASLt's first-call set-up and the attention
// kernel's shared-memory opt-in are paid while loading rather than inside the first timed prefill. It writes the
// K/V of one position into a page no sequence owns yet; that is harmless, because a sequence writes every position
// it owns before anything reads it.
void cuda_backend::impl::warm_up(int64_t n_pages, int64_t page_size) {
    kv_block_manager kv(n_pages, page_size);
    const int32_t s = kv.add_sequence();
    kv.append(s, 1);
    forward_batch b;
    const int32_t tok = 0;
    b.add_sequence_rows(s, &tok, 1, 0, true);
    int32_t id = 0;
    outputs o;
    o.ids = &id;
    run_pass(b, kv, 0, 1, o);
}

cuda_backend::cuda_backend(const model & m, int64_t n_pages, int64_t page_size, int64_t max_rows)
    : impl_(std::make_unique<impl>(m, whole_model_plan(m.hp), nullptr, n_pages, page_size, max_rows)) {
    impl_->tune_gemms();
    impl_->warm_up(n_pages, page_size);
}

cuda_backend::cuda_backend(const model & shard, const tp_rank_plan & rank, collectives & comm, int64_t n_pages,
                           int64_t page_size, int64_t max_rows)
    : impl_(std::make_unique<impl>(shard, rank, &comm, n_pages, page_size, max_rows)) {
    impl_->tune_gemms();
    impl_->warm_up(n_pages, page_size);
}

// After a forward's last pass: a sink shared by all query heads is partial on each rank (its heads' scores) and is
// summed over the ranks, in the batch's sink order (the same on every rank); a per-KV-head sink is the rank's own.
// Once per verification, outside the graphs.
void cuda_backend::impl::reduce_sinks_across_ranks(const forward_batch & batch) {
    if (!tp || batch.sinks.empty()) {
        return;
    }
    for (const score_sink & s : batch.sinks) {
        if (!s.per_kv_head) {
            int64_t n = 0;
            float * block = sel_state->sink_block(s.seq, s.id, n);
            comm->all_reduce_sum(block, tp_dtype::tp_dtype_f32, block, tp_dtype::tp_dtype_f32, n, {stream, true});
        }
    }
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream)); // inspection (sink_scores) copies on another stream
}

cuda_backend::~cuda_backend() = default;

void cuda_backend::forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) {
    logits.resize(batch.logit_rows.size() * static_cast<size_t>(impl_->hp.n_vocab));
    outputs o;
    o.logits = logits.data();
    run(batch, kv, o);
}

void cuda_backend::forward_argmax(const forward_batch & batch, const kv_block_manager & kv, std::vector<int32_t> & ids) {
    if (impl_->host_sampling) {
        backend::forward_argmax(batch, kv, ids);
        return;
    }
    ids.resize(batch.logit_rows.size());
    outputs o;
    o.ids = ids.data();
    run(batch, kv, o);
}

void cuda_backend::forward_sample(const forward_batch & batch, const kv_block_manager & kv,
                                  const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                                  std::vector<int32_t> & ids) {
    if (impl_->host_sampling) {
        backend::forward_sample(batch, kv, params, uniforms, ids);
        return;
    }
    sample(batch, kv, params, uniforms, nullptr, ids);
}

bool cuda_backend::samples_on_device() const { return !impl_->host_sampling; }

void cuda_backend::forward_sample_held(const forward_batch & batch, const kv_block_manager & kv,
                                       const std::vector<sampling_params> & params,
                                       const std::vector<double> & uniforms, const std::vector<int32_t> & holds,
                                       std::vector<int32_t> & ids) {
    SPECATTN_CHECK(holds.size() == batch.logit_rows.size(), "forward_sample_held: %zu held slots for %zu logit rows",
                   holds.size(), batch.logit_rows.size());
    sample(batch, kv, params, uniforms, holds.data(), ids);
}

void cuda_backend::sample(const forward_batch & batch, const kv_block_manager & kv,
                          const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                          const int32_t * holds, std::vector<int32_t> & ids) {
    const size_t n_out = batch.logit_rows.size();
    SPECATTN_CHECK(params.size() == n_out && uniforms.size() == n_out,
                   "forward_sample: %zu sampling parameters and %zu uniforms for %zu logit rows", params.size(),
                   uniforms.size(), n_out);
    for (const sampling_params & p : params) {
        validate(p);
    }
    ids.resize(n_out);
    outputs o;
    o.ids = ids.data();
    o.params = params.data();
    o.uniforms = uniforms.data();
    o.holds = holds;
    run(batch, kv, o);
}

void cuda_backend::forward_accept(const forward_batch & batch, const kv_block_manager & kv,
                                  const std::vector<sampling_params> & params, const std::vector<held_verification> & v,
                                  std::vector<accept_outcome> & out) {
    SPECATTN_CHECK(params.size() == batch.logit_rows.size(), "forward_accept: %zu sampling parameters for %zu logit rows",
                   params.size(), batch.logit_rows.size());
    for (const sampling_params & p : params) {
        validate(p);
    }
    outputs o;
    o.params = params.data();
    o.n_total = static_cast<int64_t>(params.size());
    run(batch, kv, o);
    impl_->sampler->accept(v, out, impl_->stream);
}

void cuda_backend::run(const forward_batch & batch, const kv_block_manager & kv, const outputs & out) {
    const int64_t n_rows = batch.n_rows();
    SPECATTN_CHECK(n_rows > 0, "empty forward batch");
    SPECATTN_CHECK(batch.draft.empty() || static_cast<int64_t>(batch.draft.size()) == n_rows,
                   "forward batch: %zu draft views for %lld rows", batch.draft.size(), static_cast<long long>(n_rows));
    impl_->sel_state->begin_forward(batch);
    // Batches beyond the workspaces run in passes of at most max_rows rows. Each pass runs every layer, so a later
    // pass's rows see the K/V an earlier pass wrote: the result is the same as one pass. A pass never splits the
    // rows of a score sink (their scores are reduced in one pass).
    std::vector<int32_t> sink_first(static_cast<size_t>(n_rows), -1); // row -> first row of a sink spanning it
    for (const score_sink & s : batch.sinks) {
        const auto [lo, hi] = std::minmax_element(s.rows.begin(), s.rows.end());
        for (int32_t r = *lo + 1; r <= *hi; ++r) {
            int32_t & f = sink_first[static_cast<size_t>(r)];
            f = f < 0 ? *lo : std::min(f, *lo);
        }
    }
    for (int64_t r0 = 0; r0 < n_rows;) {
        int64_t r1 = std::min(n_rows, r0 + impl_->max_rows);
        while (r1 < n_rows && sink_first[static_cast<size_t>(r1)] >= 0 && sink_first[static_cast<size_t>(r1)] < r1) {
            r1 = sink_first[static_cast<size_t>(r1)]; // move the cut before the sink that spans it
        }
        SPECATTN_CHECK(r1 > r0, "a score sink spans more than the %lld rows of one pass",
                       static_cast<long long>(impl_->max_rows));
        impl_->run_pass(batch, kv, r0, r1, out);
        r0 = r1;
    }
    impl_->reduce_sinks_across_ranks(batch);
}

void cuda_backend::set_selection(int32_t seq, const std::vector<int32_t> & positions) {
    impl_->sel_state->set_selection(seq, positions);
}

int64_t cuda_backend::select_top_k(int32_t seq, int32_t sink, int64_t k) {
    return impl_->sel_state->select_top_k(seq, sink, k);
}

void cuda_backend::release_selection(int32_t seq) { impl_->sel_state->release(seq); }

std::vector<float> cuda_backend::sink_scores(int32_t seq, int32_t id) const {
    return impl_->sel_state->sink_scores(seq, id);
}

std::vector<int32_t> cuda_backend::held_list(int32_t seq, int64_t layer, int64_t kv_head, int64_t n) {
    impl_->sel_state->flush(impl_->stream);
    return impl_->sel_state->held_list(seq, layer, kv_head, n);
}

void cuda_backend::synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) {
    SPECATTN_CHECK(n <= kv.length(seq), "synthetic context of %lld positions beyond the sequence's %lld",
                   static_cast<long long>(n), static_cast<long long>(kv.length(seq)));
    if (n == 0) {
        return;
    }
    const std::vector<int32_t> & pages = kv.pages(seq);
    device_buffer pages_dev(pages.size() * sizeof(int32_t));
    SPECATTN_CUDA_CHECK(cudaMemcpy(pages_dev.as<void>(), pages.data(), pages.size() * sizeof(int32_t),
                                   cudaMemcpyHostToDevice));
    const paged_kv_layout & l = impl_->layout;
    if (!impl_->tp) {
        launch_fill_kv_synthetic(impl_->k_pool.as<bf16>(), impl_->v_pool.as<bf16>(), pages_dev.as<int32_t>(), n,
                                 l.n_layer, l.layer_elems(), l.n_head_kv, l.page_size, l.head_dim, seed, impl_->stream);
        SPECATTN_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
        return;
    }
    // A tensor-parallel rank: the context of all the model's KV heads on scratch pages 0, 1, ... (the values are a
    // function of the logical element, so the same as TP=1's), then its own heads copied to the sequence's pages.
    const tp_rank_plan & rk = impl_->rank;
    const int64_t n_src_pages = (n + l.page_size - 1) / l.page_size;
    const int64_t src_layer_elems = n_src_pages * rk.n_head_kv_total * l.page_size * l.head_dim;
    std::vector<int32_t> src_pages(static_cast<size_t>(n_src_pages));
    for (int64_t p = 0; p < n_src_pages; ++p) {
        src_pages[static_cast<size_t>(p)] = checked_i32(p, "synthetic context page");
    }
    device_buffer src_pages_dev(src_pages.size() * sizeof(int32_t));
    SPECATTN_CUDA_CHECK(cudaMemcpy(src_pages_dev.as<void>(), src_pages.data(), src_pages.size() * sizeof(int32_t),
                                   cudaMemcpyHostToDevice));
    device_buffer k_src(static_cast<size_t>(l.n_layer * src_layer_elems) * sizeof(bf16));
    device_buffer v_src(k_src.bytes());
    launch_fill_kv_synthetic(k_src.as<bf16>(), v_src.as<bf16>(), src_pages_dev.as<int32_t>(), n, l.n_layer,
                             src_layer_elems, rk.n_head_kv_total, l.page_size, l.head_dim, seed, impl_->stream);
    for (int i = 0; i < 2; ++i) {
        launch_tp_kv_scatter(i == 0 ? k_src.as<bf16>() : v_src.as<bf16>(),
                             i == 0 ? impl_->k_pool.as<bf16>() : impl_->v_pool.as<bf16>(), pages_dev.as<int32_t>(), n,
                             l.n_layer, n_src_pages, rk.n_head_kv_total, rk.kv_heads.begin, l.n_head_kv,
                             l.layer_elems(), l.page_size, l.head_dim, impl_->stream);
    }
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

} // namespace specattn
