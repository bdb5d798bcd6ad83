// The CUDA backend's weights (cuda_backend_impl.h): a model's tensors rounded to bf16 and uploaded, or a preset's
// generated on the device, whole or as a tensor-parallel rank's shard.
#include "backend/cuda/cuda_backend_impl.h"

#include <algorithm>
#include <cmath>

namespace specattn {

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
        SPECATTN_CUDA_CHECK(
            cudaMemcpy2DAsync(dst, static_cast<size_t>(n_cols) * sizeof(bf16), full.as<bf16>() + r0 * n_in + c0,
                              static_cast<size_t>(n_in) * sizeof(bf16), static_cast<size_t>(n_cols) * sizeof(bf16),
                              static_cast<size_t>(n_rows), cudaMemcpyDeviceToDevice, stream));
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

} // namespace specattn
