// The launches of one CUDA pass (cuda_backend_impl.h): embedding, every layer, the final norm and the LM head, as a
// graph captures them; and the cross-rank reduction of shared score sinks after a tensor-parallel forward.
#include "backend/cuda/cuda_backend_impl.h"

#include <cmath>

namespace specattn {

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

    // xn = RMSNorm(x += residual) · weight over n_rows rows (those `rows` names, when given); the stream's residual
    // deltas (attention and MLP outputs) join x here.
    const auto norm = [&](const float * weight, const bf16 * residual, const int32_t * rows, int64_t n_rows) {
        rmsnorm_params np;
        np.x = x_d;
        np.residual = residual;
        np.weight = weight;
        np.rows = rows;
        np.out = xn_d;
        np.n_rows = n_rows;
        np.n = n_embd;
        np.eps = hp.norm_eps;
        launch_rmsnorm(np, stream);
    };

    // The launches' parameters that every layer shares; the loop sets the layer's weights and KV pools.
    qkv_prep_params qp;
    qp.qkv = qkv_d;
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
    qp.page = md + off.kv_page; // the KV append, fused into the same kernel
    qp.slot = md + off.kv_slot;
    qp.page_size = layout.page_size;
    attention_plan_device apd;
    apd.page_table = md + off.page_table;
    apd.segs = reinterpret_cast<const attention_segment *>(md + off.segs);
    apd.work = reinterpret_cast<const attention_work *>(md + off.work);
    apd.row_slot = md + off.row_slot;
    apd.row_n_split = md + off.row_n_split;
    const attention_params ap_pass = [&] {
        attention_params ap = attention_params_from_plan(plan, pc, apd);
        ap.q = qkv_d;
        ap.q_row_stride = n_qkv;
        ap.partial_o = partial_o.as<float>();
        ap.partial_lse = partial_lse.as<float>();
        ap.out = attn.as<bf16>();
        ap.head_dim = hd;
        ap.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        return ap;
    }();
    // The O and down projections write the residual delta: bf16, or a rank's fp32 partial sums (reduce_proj).
    void * proj_dst = tp ? proj_partial.as<void>() : proj_d;

    const int64_t layer_elems = layout.layer_elems();
    for (int64_t il = 0; il < hp.n_layer; ++il) {
        const cuda_layer & l = layers[static_cast<size_t>(il)];
        bf16 * k_layer = k_pool.as<bf16>() + il * layer_elems; // [P, HK, S, D]
        bf16 * v_layer = v_pool.as<bf16>() + il * layer_elems;

        norm(l.attn_norm, il == 0 ? nullptr : proj_d, nullptr, n); // the previous layer's MLP output joins here
        timer.mark("norm", stream);
        gemm->run(xn_d, l.wqkv, qkv_d, gemm_out::gemm_out_bf16, n, n_qkv, n_embd, stream, invariant);
        timer.mark("gemm qkv", stream);

        qp.bias = l.bqkv;
        qp.q_norm = l.q_norm;
        qp.k_norm = l.k_norm;
        qp.k_pool = k_layer;
        qp.v_pool = v_layer;
        launch_qkv_prep(qp, stream);
        sel.after_kv_append(il, k_layer, stream);
        timer.mark("rope+append", stream);

        sel.before_attention(il, qkv_d, n_qkv, apd.page_table, stream);
        timer.mark("quest", stream);
        attention_params ap = ap_pass;
        ap.k_pool = k_layer;
        ap.v_pool = v_layer;
        sel.attention_fields(il, ap);
        launch_attention(ap, stream);
        timer.mark("attention", stream);
        sel.after_attention(il, stream);
        timer.mark("score reduce", stream);

        gemm->run(attn.as<bf16>(), l.wo, proj_dst, proj_out(), n, n_embd, hp.n_embd_q(), stream, invariant);
        timer.mark("gemm o", stream);
        reduce_proj(n, invariant); // the heads' partial O projections
        timer.mark("all-reduce", stream);

        norm(l.ffn_norm, proj_d, nullptr, n);
        timer.mark("norm", stream);
        gemm->run(xn_d, l.w_gate_up, gate_up.as<bf16>(), gemm_out::gemm_out_bf16, n, 2 * hp.n_ff, n_embd, stream,
                  invariant);
        timer.mark("gemm gate/up", stream);
        swiglu_params sp;
        sp.gate_up = gate_up.as<bf16>();
        sp.out = act.as<bf16>();
        sp.n_rows = n;
        sp.n_ff = hp.n_ff;
        launch_swiglu(sp, stream);
        timer.mark("swiglu", stream);
        gemm->run(act.as<bf16>(), l.w_down, proj_dst, proj_out(), n, n_embd, hp.n_ff, stream, invariant);
        timer.mark("gemm down", stream);
        reduce_proj(n, invariant); // the MLP rows' partial down projections
        timer.mark("all-reduce", stream);
    }

    if (n_out == 0) {
        return;
    }
    // Only the rows whose logits are wanted: the last MLP's output joins them, they are normed and projected.
    norm(out_norm, proj_d, md + off.out_rows, n_out);
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
        const tp_range block = tp_vocab_block(hp.n_vocab, chunk, r);
        if (block.size() > 0) {
            SPECATTN_CUDA_CHECK(cudaMemcpy2DAsync(
                logits.as<float>() + block.begin, static_cast<size_t>(hp.n_vocab) * sizeof(float),
                logits_gather.as<float>() + r * n_out * chunk, static_cast<size_t>(chunk) * sizeof(float),
                static_cast<size_t>(block.size()) * sizeof(float), static_cast<size_t>(n_out), cudaMemcpyDeviceToDevice,
                stream));
        }
    }
    timer.mark("logits all-gather", stream);
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

} // namespace specattn
