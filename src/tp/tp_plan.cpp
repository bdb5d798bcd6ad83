#include "tp/tp_plan.h"

#include "core/check.h"

#include <algorithm>

namespace specattn {

namespace {

// Part r of n of [0, total), balanced: sizes differ by at most one.
tp_range balanced_part(int64_t total, int32_t r, int32_t n) {
    return {total * r / n, total * (r + 1) / n};
}

// Rows [range) of a matrix.  m: [n_out, n_in] -> [range.size(), n_in]
matrix slice_rows(const matrix & m, tp_range range) {
    matrix s;
    s.n_out = range.size();
    s.n_in = m.n_in;
    s.w.assign(m.row(range.begin), m.row(range.begin) + s.n_out * s.n_in);
    return s;
}

// Columns [range) of a matrix.  m: [n_out, n_in] -> [n_out, range.size()]
matrix slice_cols(const matrix & m, tp_range range) {
    matrix s;
    s.n_out = m.n_out;
    s.n_in = range.size();
    s.w.resize(static_cast<size_t>(s.n_out * s.n_in));
    for (int64_t o = 0; o < m.n_out; ++o) {
        std::copy_n(m.row(o) + range.begin, s.n_in, s.w.data() + o * s.n_in);
    }
    return s;
}

std::vector<float> slice(const std::vector<float> & v, tp_range range) {
    return {v.begin() + range.begin, v.begin() + range.end};
}

// Heads [h) as element range of a [n_heads * head_dim] projection.
tp_range head_elems(tp_range h, int64_t head_dim) {
    return {h.begin * head_dim, h.end * head_dim};
}

} // namespace

tp_range tp_vocab_block(int64_t n_vocab, int64_t chunk, int32_t r) {
    return {std::min(n_vocab, r * chunk), std::min(n_vocab, (r + 1) * chunk)};
}

std::vector<tp_rank_plan> make_tp_plan(const model_hparams & hp, int32_t n_ranks) {
    SPECATTN_CHECK(n_ranks >= 1, "--tp must be at least 1 (got %d)", n_ranks);
    // NOTE(tp): replicating KV heads (vLLM's answer when N > HK) is future work; until then every rank owns whole
    // KV heads and the query heads that read them.
    SPECATTN_CHECK(n_ranks <= hp.n_head_kv,
                   "--tp %d exceeds the %lld KV heads of this model (replicating KV heads is not implemented)", n_ranks,
                   static_cast<long long>(hp.n_head_kv));
    SPECATTN_CHECK(hp.n_head_kv % n_ranks == 0 && hp.n_head % n_ranks == 0,
                   "--tp %d does not divide the %lld KV heads of this model", n_ranks,
                   static_cast<long long>(hp.n_head_kv));
    const int64_t vocab_chunk = (hp.n_vocab + n_ranks - 1) / n_ranks;
    std::vector<tp_rank_plan> plan(static_cast<size_t>(n_ranks));
    for (int32_t r = 0; r < n_ranks; ++r) {
        tp_rank_plan & p = plan[static_cast<size_t>(r)];
        p.rank = r;
        p.n_ranks = n_ranks;
        p.heads = balanced_part(hp.n_head, r, n_ranks);
        p.kv_heads = balanced_part(hp.n_head_kv, r, n_ranks);
        p.ff = balanced_part(hp.n_ff, r, n_ranks);
        p.vocab = tp_vocab_block(hp.n_vocab, vocab_chunk, r);
        p.vocab_chunk = vocab_chunk;
        p.n_head_kv_total = hp.n_head_kv;
        p.n_ff_total = hp.n_ff;
    }
    return plan;
}

tp_rank_plan whole_model_plan(const model_hparams & hp) {
    return make_tp_plan(hp, 1)[0];
}

model shard_model(const model & m, const tp_rank_plan & r) {
    const model_hparams & hp = m.hp;
    model s;
    s.path = m.path;
    s.hp = hp;
    s.hp.n_head = r.heads.size();
    s.hp.n_head_kv = r.kv_heads.size();
    s.hp.n_ff = r.ff.size();
    if (m.random_weights) {
        s.random_weights = true;
        s.seed = m.seed;
        return s;
    }
    const tp_range q = head_elems(r.heads, hp.head_dim);
    const tp_range kv = head_elems(r.kv_heads, hp.head_dim);

    s.w.tok_embd = slice_rows(m.w.tok_embd, r.vocab);
    if (!m.w.output.empty()) {
        s.w.output = slice_rows(m.w.output, r.vocab);
    }
    s.w.out_norm = m.w.out_norm;
    for (const layer_weights & l : m.w.layers) {
        layer_weights sl;
        sl.attn_norm = l.attn_norm;
        sl.wq = slice_rows(l.wq, q);
        sl.wk = slice_rows(l.wk, kv);
        sl.wv = slice_rows(l.wv, kv);
        sl.wo = slice_cols(l.wo, q); // row-parallel: partial sums, all-reduced after attention
        if (hp.qkv_bias) {
            sl.bq = slice(l.bq, q);
            sl.bk = slice(l.bk, kv);
            sl.bv = slice(l.bv, kv);
        }
        sl.q_norm = l.q_norm;
        sl.k_norm = l.k_norm;
        sl.ffn_norm = l.ffn_norm;
        sl.w_gate = slice_rows(l.w_gate, r.ff);
        sl.w_up = slice_rows(l.w_up, r.ff);
        sl.w_down = slice_cols(l.w_down, r.ff); // row-parallel: partial sums, all-reduced after the MLP
        s.w.layers.push_back(std::move(sl));
    }
    return s;
}

} // namespace specattn
