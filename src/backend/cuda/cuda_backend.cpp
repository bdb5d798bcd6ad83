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
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/device_info.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace specattn {

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
    n_sm = cuda_sm_count();
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
    decode_mpw1 = attention_decode_mpw1_from_env();
    split_d = attention_split_d_from_env();
    wgmma_row_tiles = attention_wgmma_from_env();

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
        const paged_kv_place<int64_t> at = paged_kv_place_of(pos, layout.page_size);
        kv_page[static_cast<size_t>(i)] = pages[static_cast<size_t>(at.index)];
        kv_slot[static_cast<size_t>(i)] = static_cast<int32_t>(at.slot);
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
    pc.invariant_splits = invariant_splits;
    pc.single_tile_mpw1 = decode_mpw1;
    pc.split_d = split_d;
    pc.wgmma_row_tiles = wgmma_row_tiles;
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
    SPECATTN_CUDA_CHECK(
        cudaMemcpyAsync(meta_dev.as<void>(), meta_host.as<void>(), bytes, cudaMemcpyHostToDevice, stream));
    const int32_t * md = meta_dev.as<int32_t>();
    sel.bind(md);
    sel.run_queued_top_k(stream); // the selections queued since the last forward, before any draft row reads them
    timer.mark("upload+top-k", stream);

    // ---- device: replay the pass's graph when one was captured for the same launches, else capture or launch ----
    const bool graphs = invariant && use_graphs && !timer.on();
    std::vector<int64_t> key;
    if (graphs) {
        key = sel.launch_signature();
        const int64_t fixed[] = {n,
                                 n_out,
                                 static_cast<int64_t>(plan.segs.size()),
                                 static_cast<int64_t>(plan.work.size()),
                                 plan.n_slots,
                                 plan.n_collect,
                                 plan.n_sum_slots, // and with it the kernel instance (attention.cuh's SUMS)
                                 slot_capacity,
                                 plan.mtiles_per_warp,
                                 plan.split_d_row_tiles,
                                 static_cast<int64_t>(reinterpret_cast<intptr_t>(md)),
                                 static_cast<int64_t>(reinterpret_cast<intptr_t>(partial_o.as<void>())),
                                 static_cast<int64_t>(reinterpret_cast<intptr_t>(partial_lse.as<void>())),
                                 static_cast<int64_t>(off.page_table),
                                 static_cast<int64_t>(off.work)};
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

    finish_pass(out, outs, host_s);
}

// The pass's outputs, after its launches: nothing (no logit rows), the logits, token ids (argmax or drawn), or a
// verification's target distributions kept on the device; then the pass's one host synchronization.
void cuda_backend::impl::finish_pass(const outputs & out, const std::vector<std::pair<int64_t, int32_t>> & outs,
                                     double host_s) {
    const auto n_out = static_cast<int64_t>(outs.size());
    const size_t row_bytes = static_cast<size_t>(hp.n_vocab) * sizeof(float);
    if (n_out > 0 && out.params != nullptr) { // sampled on the device: the rows' parameters etc. in pass order
        std::vector<sampling_params> pp;
        std::vector<double> pu;
        std::vector<int32_t> ph;
        for (const auto & [j, r] : outs) {
            pp.push_back(out.params[j]);
            if (out.uniforms != nullptr) {
                pu.push_back(out.uniforms[j]);
            }
            if (out.holds != nullptr) {
                ph.push_back(out.holds[j]);
            }
        }
        if (out.ids == nullptr) { // a verification's target distributions, kept on the device
            for (size_t k = 0; k < outs.size(); ++k) {
                SPECATTN_CHECK(outs[k].first == outs[0].first + static_cast<int64_t>(k),
                               "a verification's logit rows must be in batch order");
            }
            sampler->target_probs(logits.as<float>(), pp, outs[0].first, out.n_total, stream);
            timer.mark("target probs", stream);
        } else {
            sampler->sample(logits.as<float>(), pp, pu, out.holds != nullptr ? &ph : nullptr, ids.as<int32_t>(),
                            stream);
        }
    } else if (n_out > 0 && out.ids != nullptr) { // greedy
        argmax_params am;
        am.logits = logits.as<float>();
        am.out = ids.as<int32_t>();
        am.n_rows = n_out;
        am.n_vocab = hp.n_vocab;
        launch_argmax(am, stream);
    }
    if (n_out > 0 && out.ids != nullptr) {
        SPECATTN_CUDA_CHECK(cudaMemcpyAsync(ids_host.as<void>(), ids.as<void>(),
                                            static_cast<size_t>(n_out) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                            stream));
        timer.mark("tokens+d2h", stream);
    } else if (n_out > 0 && out.logits != nullptr) {
        SPECATTN_CUDA_CHECK(cudaMemcpyAsync(logits_host.as<void>(), logits.as<void>(),
                                            static_cast<size_t>(n_out) * row_bytes, cudaMemcpyDeviceToHost, stream));
        timer.mark("logits d2h", stream);
    }
    // The pass's one host synchronization (the next pass also reuses the metadata buffer).
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    timer.end(host_s);
    sel_state->end_pass();
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

cuda_backend::cuda_backend(const model & m, int64_t n_pages, int64_t page_size, int64_t max_rows, int64_t decode_rows)
    : impl_(std::make_unique<impl>(m, whole_model_plan(m.hp), nullptr, n_pages, page_size, max_rows)) {
    impl_->fix_invariant_kernels(decode_rows, n_pages, page_size);
    impl_->warm_up(n_pages, page_size);
}

cuda_backend::cuda_backend(const model & shard, const tp_rank_plan & rank, collectives & comm, int64_t n_pages,
                           int64_t page_size, int64_t max_rows, int64_t decode_rows)
    : impl_(std::make_unique<impl>(shard, rank, &comm, n_pages, page_size, max_rows)) {
    impl_->fix_invariant_kernels(decode_rows, n_pages, page_size);
    impl_->warm_up(n_pages, page_size);
}

cuda_backend::~cuda_backend() = default;

void cuda_backend::forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) {
    logits.resize(batch.logit_rows.size() * static_cast<size_t>(impl_->hp.n_vocab));
    outputs o;
    o.logits = logits.data();
    run(batch, kv, o);
}

void cuda_backend::forward_argmax(const forward_batch & batch, const kv_block_manager & kv,
                                  std::vector<int32_t> & ids) {
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

bool cuda_backend::samples_on_device() const {
    return !impl_->host_sampling;
}

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
    check_sampling_rows(batch, params, &uniforms);
    ids.resize(batch.logit_rows.size());
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
    check_sampling_rows(batch, params, nullptr);
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

void cuda_backend::release_selection(int32_t seq) {
    impl_->sel_state->release(seq);
}

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
    SPECATTN_CUDA_CHECK(
        cudaMemcpy(pages_dev.as<void>(), pages.data(), pages.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    const paged_kv_layout & l = impl_->layout;
    const tp_rank_plan & rk = impl_->rank; // the whole model's heads, of which this backend holds kv_heads
    launch_fill_kv_synthetic(impl_->k_pool.as<bf16>(), impl_->v_pool.as<bf16>(), pages_dev.as<int32_t>(), n, l.n_layer,
                             l.layer_elems(), rk.n_head_kv_total, rk.kv_heads.begin, l.n_head_kv, l.page_size,
                             l.head_dim, seed, impl_->stream);
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

} // namespace specattn
