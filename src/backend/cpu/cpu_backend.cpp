#include "backend/cpu/cpu_backend.h"

#include "backend/cpu/ops.h"
#include "core/check.h"
#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace specattn {

cpu_backend::cpu_backend(const model & m, int64_t n_pages, int64_t page_size)
    : cpu_backend(m, whole_model_plan(m.hp), no_tp_, n_pages, page_size) {}

cpu_backend::cpu_backend(const model & m, const tp_rank_plan & rank, collectives & comm, int64_t n_pages,
                         int64_t page_size)
    : model_(m), rank_(rank), comm_(&comm) {
    SPECATTN_CHECK(!m.random_weights, "%s has random weights generated on the GPU: run it with --device cuda",
                   m.path.c_str());
    SPECATTN_CHECK(comm.n_ranks() == rank.n_ranks && comm.rank() == rank.rank && rank.heads.size() == m.hp.n_head,
                   "cpu backend: rank %d of %d does not match its shard or its collectives", rank.rank,
                   rank.n_ranks);
    const model_hparams & hp = m.hp;
    layout_.n_layer = hp.n_layer;
    layout_.n_pages = n_pages;
    layout_.n_head_kv = hp.n_head_kv;
    layout_.page_size = page_size;
    layout_.head_dim = hp.head_dim;
    const size_t n = static_cast<size_t>(layout_.total_elems());
    try {
        k_pool_.assign(n, 0.0f);
        v_pool_.assign(n, 0.0f);
    } catch (const std::bad_alloc &) {
        throw error(string_format("out of memory allocating a %.1f GiB KV cache; lower --ctx-size or --batch",
                                  2.0 * static_cast<double>(n) * sizeof(float) / (1 << 30)));
    }
    inv_freq_ = rope_inv_freq(hp.rope, hp.head_dim);
}

void cpu_backend::synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) {
    const paged_kv_seq view = kv.view(seq);
    SPECATTN_CHECK(n <= view.len, "synthetic context of %lld positions beyond the sequence's %lld",
                   static_cast<long long>(n), static_cast<long long>(view.len));
    // Walks (layer, position, head) over all the model's KV heads in logical order: independent of the pages and
    // of how the heads are split among tensor-parallel ranks (a rank keeps its own heads' values).
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int64_t l = 0; l < layout_.n_layer; ++l) {
        for (int64_t p = 0; p < n; ++p) {
            for (int64_t h = 0; h < rank_.n_head_kv_total; ++h) {
                const bool mine = rank_.kv_heads.contains(h);
                const int64_t off = mine ? paged_kv_offset(layout_, view, l, h - rank_.kv_heads.begin, p) : 0;
                for (int64_t d = 0; d < layout_.head_dim; ++d) {
                    const float kd = u(rng);
                    const float vd = u(rng);
                    if (mine) {
                        k_pool_[static_cast<size_t>(off + d)] = kd;
                        v_pool_[static_cast<size_t>(off + d)] = vd;
                    }
                }
            }
        }
    }
}

void cpu_backend::emit(const char * name, int64_t layer, const float * data, int64_t n_rows, int64_t n) const {
    if (callback_) {
        callback_(name, layer, data, n_rows, n);
    }
}

void cpu_backend::write_kv(const forward_batch & batch, const kv_block_manager & kv, int64_t layer, const float * k,
                           const float * v) {
    const int64_t hd = layout_.head_dim;
    const int64_t n_kv = layout_.n_head_kv * hd;
    for (int64_t r = 0; r < batch.n_rows(); ++r) {
        const paged_kv_seq seq = kv.view(batch.seq_ids[static_cast<size_t>(r)]);
        const int64_t pos = batch.positions[static_cast<size_t>(r)];
        SPECATTN_CHECK(pos < seq.len, "row %lld writes position %lld beyond its sequence's %lld reserved positions",
                       static_cast<long long>(r), static_cast<long long>(pos), static_cast<long long>(seq.len));
        for (int64_t h = 0; h < layout_.n_head_kv; ++h) {
            const int64_t off = paged_kv_offset(layout_, seq, layer, h, pos);
            std::copy_n(k + r * n_kv + h * hd, hd, k_pool_.data() + off);
            std::copy_n(v + r * n_kv + h * hd, hd, v_pool_.data() + off);
        }
    }
}

void cpu_backend::attention(const forward_batch & batch, const kv_block_manager & kv, int64_t layer, const float * q,
                            float * out, row_scores & row_sc) const {
    const model_hparams & hp = model_.hp;
    const int64_t hd = hp.head_dim;
    const int64_t group = hp.n_head / hp.n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int64_t n_rows = batch.n_rows();
#pragma omp parallel
    {
        std::vector<float> scores;
        std::vector<int64_t> list;
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t r = 0; r < n_rows; ++r) {
            for (int64_t kvh = 0; kvh < hp.n_head_kv; ++kvh) {
                const paged_kv_seq seq = kv.view(batch.seq_ids[static_cast<size_t>(r)]);
                const int64_t pos = batch.positions[static_cast<size_t>(r)];
                const float * q_group = q + (r * hp.n_head + kvh * group) * hd; // [group, head_dim]
                auto key = [&](int64_t t) { return k_pool_.data() + paged_kv_offset(layout_, seq, layer, kvh, t); };
                auto value = [&](int64_t t) { return v_pool_.data() + paged_kv_offset(layout_, seq, layer, kvh, t); };

                // The attended positions: a draft row's selection, or causal [lo, pos] where a sliding window
                // drops everything more than window-1 back.
                const draft_attention * draft = batch.draft_of(r);
                const int64_t lo = hp.sliding_window > 0 ? std::max<int64_t>(0, pos - hp.sliding_window + 1) : 0;
                if (draft != nullptr) {
                    draft_positions(*draft, batch.seq_ids[static_cast<size_t>(r)], layer, kvh, pos, q_group, seq, list);
                    for (int64_t t : list) {
                        if (t < lo || t > pos) {
                            SPECATTN_ABORT("draft selection gave position %lld outside [%lld, %lld]",
                                           static_cast<long long>(t), static_cast<long long>(lo),
                                           static_cast<long long>(pos));
                        }
                    }
                }
                const int64_t n = draft != nullptr ? static_cast<int64_t>(list.size()) : pos - lo + 1;
                auto position = [&](int64_t i) { return draft != nullptr ? list[static_cast<size_t>(i)] : lo + i; };
                std::vector<float> & cap_logits = row_sc.logits[static_cast<size_t>(r)];
                const bool cap = !cap_logits.empty();

                // All G query heads of this KV head in one sweep over the positions, so each cached K and V row
                // is read once per (row, KV head) rather than once per query head.
                scores.resize(static_cast<size_t>(group * n)); // [group, n]
                for (int64_t i = 0; i < n; ++i) {
                    const float * kt = key(position(i));
                    for (int64_t g = 0; g < group; ++g) {
                        scores[static_cast<size_t>(g * n + i)] = cpu_dot(q_group + g * hd, kt, hd) * scale;
                    }
                }
                for (int64_t g = 0; g < group; ++g) {
                    float * sg = scores.data() + g * n;
                    float mx = -INFINITY;
                    for (int64_t i = 0; i < n; ++i) {
                        mx = std::max(mx, sg[i]);
                    }
                    float sum = 0.0f;
                    for (int64_t i = 0; i < n; ++i) {
                        sum += std::exp(sg[i] - mx);
                    }
                    const int64_t h = kvh * group + g;
                    if (cap) {
                        float * row = cap_logits.data() + h * (pos + 1);
                        std::fill_n(row, pos + 1, -INFINITY); // masked positions
                        for (int64_t i = 0; i < n; ++i) {
                            row[position(i)] = sg[i];
                        }
                        row_sc.lse[static_cast<size_t>(r)][static_cast<size_t>(h)] = mx + std::log(sum);
                    }
                    for (int64_t i = 0; i < n; ++i) {
                        sg[i] = std::exp(sg[i] - mx) / sum; // scores become softmax weights
                    }
                    std::fill_n(out + (r * hp.n_head + h) * hd, hd, 0.0f);
                }
                for (int64_t i = 0; i < n; ++i) {
                    const float * vt = value(position(i));
                    for (int64_t g = 0; g < group; ++g) {
                        const float wgt = scores[static_cast<size_t>(g * n + i)];
                        float * oh = out + (r * hp.n_head + kvh * group + g) * hd;
                        for (int64_t d = 0; d < hd; ++d) {
                            oh[d] += wgt * vt[d];
                        }
                    }
                }
            }
        }
    }
}

void cpu_backend::forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) {
    const model_hparams & hp = model_.hp;
    const model_weights & w = model_.w;
    const int64_t n_rows = batch.n_rows();
    const int64_t n_embd = hp.n_embd;
    const int64_t n_q = hp.n_embd_q();
    const int64_t n_kv = hp.n_embd_kv();
    SPECATTN_CHECK(n_rows > 0, "empty forward batch");

    std::vector<float> x(static_cast<size_t>(n_rows * n_embd));  // [n_rows, n_embd] residual stream
    std::vector<float> xn(x.size());                              // [n_rows, n_embd] normed input of a block
    std::vector<float> q(static_cast<size_t>(n_rows * n_q));      // [n_rows, n_head, head_dim]
    std::vector<float> k(static_cast<size_t>(n_rows * n_kv));     // [n_rows, n_head_kv, head_dim]
    std::vector<float> v(k.size());                               // [n_rows, n_head_kv, head_dim]
    std::vector<float> attn(q.size());                            // [n_rows, n_head, head_dim]
    std::vector<float> proj(x.size());                            // [n_rows, n_embd]
    std::vector<float> gate(static_cast<size_t>(n_rows * hp.n_ff)); // [n_rows, n_ff]
    std::vector<float> up(gate.size());                           // [n_rows, n_ff]

    SPECATTN_CHECK(batch.draft.empty() || static_cast<int64_t>(batch.draft.size()) == n_rows,
                   "forward batch: %zu draft views for %lld rows", batch.draft.size(), static_cast<long long>(n_rows));
    row_scores row_sc;
    begin_sinks(batch, row_sc);
    embed(batch, x.data());
    emit("embd", -1, x.data(), n_rows, n_embd);

    for (int64_t il = 0; il < hp.n_layer; ++il) {
        const layer_weights & lw = w.layers[static_cast<size_t>(il)];

        cpu_rmsnorm(x.data(), n_rows, n_embd, lw.attn_norm.data(), hp.norm_eps, xn.data());
        emit("attn_norm", il, xn.data(), n_rows, n_embd);
        cpu_matmul(xn.data(), n_rows, lw.wq, hp.qkv_bias ? lw.bq.data() : nullptr, q.data());
        cpu_matmul(xn.data(), n_rows, lw.wk, hp.qkv_bias ? lw.bk.data() : nullptr, k.data());
        cpu_matmul(xn.data(), n_rows, lw.wv, hp.qkv_bias ? lw.bv.data() : nullptr, v.data());
        if (hp.qk_norm) {
            cpu_rmsnorm(q.data(), n_rows * hp.n_head, hp.head_dim, lw.q_norm.data(), hp.norm_eps, q.data());
            cpu_rmsnorm(k.data(), n_rows * hp.n_head_kv, hp.head_dim, lw.k_norm.data(), hp.norm_eps, k.data());
        }
        for (int64_t r = 0; r < n_rows; ++r) {
            const int64_t pos = batch.positions[static_cast<size_t>(r)];
            cpu_rope(q.data() + r * n_q, hp.n_head, hp.head_dim, pos, inv_freq_.data(), hp.rope.layout);
            cpu_rope(k.data() + r * n_kv, hp.n_head_kv, hp.head_dim, pos, inv_freq_.data(), hp.rope.layout);
        }
        emit("q", il, q.data(), n_rows, n_q);
        emit("k", il, k.data(), n_rows, n_kv);
        emit("v", il, v.data(), n_rows, n_kv);

        write_kv(batch, kv, il, k.data(), v.data());
        attention(batch, kv, il, q.data(), attn.data(), row_sc);
        reduce_sinks(batch, il, row_sc);
        emit("attn_out", il, attn.data(), n_rows, n_q);
        cpu_matmul(attn.data(), n_rows, lw.wo, nullptr, proj.data());
        comm_->all_reduce_sum(proj.data(), n_rows * n_embd); // the heads' partial O projections
        cpu_add(x.data(), proj.data(), n_rows * n_embd);

        cpu_rmsnorm(x.data(), n_rows, n_embd, lw.ffn_norm.data(), hp.norm_eps, xn.data());
        emit("ffn_norm", il, xn.data(), n_rows, n_embd);
        cpu_matmul(xn.data(), n_rows, lw.w_gate, nullptr, gate.data());
        cpu_matmul(xn.data(), n_rows, lw.w_up, nullptr, up.data());
        cpu_swiglu(gate.data(), up.data(), n_rows * hp.n_ff, gate.data());
        cpu_matmul(gate.data(), n_rows, lw.w_down, nullptr, proj.data());
        comm_->all_reduce_sum(proj.data(), n_rows * n_embd); // the MLP rows' partial down projections
        cpu_add(x.data(), proj.data(), n_rows * n_embd);
        emit("l_out", il, x.data(), n_rows, n_embd);
    }
    finish_sinks(batch);

    // Only the rows whose logits are wanted go through the final norm and the LM head.
    const int64_t n_out = static_cast<int64_t>(batch.logit_rows.size());
    std::vector<float> h(static_cast<size_t>(n_out * n_embd)); // [n_out, n_embd]
    for (int64_t i = 0; i < n_out; ++i) {
        const int32_t r = batch.logit_rows[static_cast<size_t>(i)];
        SPECATTN_CHECK(r >= 0 && r < n_rows, "logit row %d outside the batch", r);
        std::copy_n(x.data() + r * n_embd, n_embd, h.data() + i * n_embd);
    }
    cpu_rmsnorm(h.data(), n_out, n_embd, w.out_norm.data(), hp.norm_eps, h.data());
    emit("result_norm", -1, h.data(), n_out, n_embd);
    lm_head(h.data(), n_out, logits);
}

void cpu_backend::embed(const forward_batch & batch, float * x) {
    const model_hparams & hp = model_.hp;
    const int64_t n_embd = hp.n_embd;
    for (int64_t r = 0; r < batch.n_rows(); ++r) {
        const int32_t tok = batch.tokens[static_cast<size_t>(r)];
        SPECATTN_CHECK(tok >= 0 && tok < hp.n_vocab, "token id %d is outside the vocabulary of %lld", tok,
                       static_cast<long long>(hp.n_vocab));
        if (rank_.vocab.contains(tok)) {
            std::copy_n(model_.w.tok_embd.row(tok - rank_.vocab.begin), n_embd, x + r * n_embd);
        } else {
            std::fill_n(x + r * n_embd, n_embd, 0.0f);
        }
    }
    // Exact: one rank adds the row, the others add zeros.
    comm_->all_reduce_sum(x, batch.n_rows() * n_embd);
}

void cpu_backend::lm_head(const float * h, int64_t n_out, std::vector<float> & logits) {
    const int64_t n_vocab = model_.hp.n_vocab;
    logits.resize(static_cast<size_t>(n_out * n_vocab));
    if (rank_.n_ranks == 1) {
        cpu_matmul(h, n_out, model_.w.lm_head(), nullptr, logits.data());
        return;
    }
    // Every rank sends an [n_out, vocab_chunk] block (the last rank's padded): an all-gather needs equal counts.
    const int64_t chunk = rank_.vocab_chunk;
    std::vector<float> mine(static_cast<size_t>(n_out * rank_.vocab.size())); // [n_out, vocab.size()]
    cpu_matmul(h, n_out, model_.w.lm_head(), nullptr, mine.data());
    std::vector<float> send(static_cast<size_t>(n_out * chunk), 0.0f); // [n_out, chunk]
    for (int64_t i = 0; i < n_out; ++i) {
        std::copy_n(mine.data() + i * rank_.vocab.size(), rank_.vocab.size(), send.data() + i * chunk);
    }
    std::vector<float> recv(static_cast<size_t>(rank_.n_ranks * n_out * chunk)); // [n_ranks, n_out, chunk]
    comm_->all_gather(send.data(), n_out * chunk, recv.data());
    for (int32_t r = 0; r < rank_.n_ranks; ++r) {
        const tp_range block = tp_vocab_block(n_vocab, chunk, r);
        for (int64_t i = 0; i < n_out; ++i) {
            std::copy_n(recv.data() + (r * n_out + i) * chunk, block.size(), logits.data() + i * n_vocab + block.begin);
        }
    }
}

} // namespace specattn
