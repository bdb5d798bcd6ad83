// The CPU backend's selection state (the reference for every backend): score sinks against scores formed here from
// the forward pass's own q and k (the tensor callback), in both score modes, shared and per KV head; the held
// top-k lists; Quest's blocks from the cached keys. A real (tiny, GQA) Llama checkpoint made by transformers.
#include "common/test_tokens.h"
#include "backend/cpu/cpu_backend.h"
#include "core/check.h"
#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace specattn;

namespace {

struct captured {
    std::vector<std::vector<float>> q, k; // per layer: [n_rows, n_head * D], [n_rows, n_head_kv * D]
};

// score[l][g][p] over `rows` as backend/selection.h defines it, from the captured q and k.
std::vector<float> reference_scores(const model_hparams & hp, const captured & c, const std::vector<int32_t> & rows,
                                    score_mode mode, bool per_kv_head, int64_t domain) {
    const int64_t hd = hp.head_dim;
    const int64_t group = hp.n_head / hp.n_head_kv;
    const int64_t groups = per_kv_head ? hp.n_head_kv : 1;
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    std::vector<float> out(static_cast<size_t>(hp.n_layer * groups * domain), 0.0f);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        for (int32_t r : rows) {
            for (int64_t h = 0; h < hp.n_head; ++h) {
                const int64_t kvh = h / group;
                const float * qv = c.q[static_cast<size_t>(l)].data() + (r * hp.n_head + h) * hd;
                std::vector<double> s(static_cast<size_t>(r + 1)); // the prefill row r sits at position r
                double mx = -INFINITY;
                for (int64_t p = 0; p <= r; ++p) {
                    const float * kv = c.k[static_cast<size_t>(l)].data() + (p * hp.n_head_kv + kvh) * hd;
                    double dot = 0;
                    for (int64_t d = 0; d < hd; ++d) {
                        dot += static_cast<double>(qv[d]) * kv[d];
                    }
                    s[static_cast<size_t>(p)] = dot * scale;
                    mx = std::max(mx, s[static_cast<size_t>(p)]);
                }
                double z = 0;
                for (double v : s) {
                    z += std::exp(v - mx);
                }
                const double lse = mx + std::log(z);
                float * acc = out.data() + (l * groups + (per_kv_head ? kvh : 0)) * domain;
                for (int64_t p = 0; p < domain; ++p) {
                    const double v = s[static_cast<size_t>(p)];
                    acc[p] += static_cast<float>(mode == score_mode::score_mode_logit ? v : std::exp(v - lse));
                }
            }
        }
    }
    return out;
}

void expect_close(const std::vector<float> & got, const std::vector<float> & want, const char * what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    float scale = 0;
    for (float w : want) {
        scale = std::max(scale, std::abs(w));
    }
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 2e-5f * scale + 1e-6f) << what << " at " << i;
    }
}

} // namespace

TEST(cpu_selection, sinks_top_k_and_quest_match_scores_formed_from_q_and_k) {
    const model m = load_model(std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/llama_gqa_llama3rope_bf16");
    const model_hparams & hp = m.hp;
    ASSERT_GT(hp.n_head, hp.n_head_kv) << "the case needs GQA";
    kv_block_manager kv(16, 4);
    cpu_backend be(m, 16, 4);
    captured c;
    c.q.resize(static_cast<size_t>(hp.n_layer));
    c.k.resize(static_cast<size_t>(hp.n_layer));
    be.set_tensor_callback([&](const char * name, int64_t layer, const float * data, int64_t n_rows, int64_t n) {
        if (std::string(name) == "q") {
            c.q[static_cast<size_t>(layer)].assign(data, data + n_rows * n);
        } else if (std::string(name) == "k") {
            c.k[static_cast<size_t>(layer)].assign(data, data + n_rows * n);
        }
    });

    const int32_t seq = kv.add_sequence();
    const int64_t n = 23;
    kv.append(seq, n);
    const std::vector<int32_t> toks = test::spread_tokens(n, hp.n_vocab);
    forward_batch batch;
    batch.add_sequence_rows(seq, toks.data(), n, 0, true);
    score_sink a; // logit mode, one row, shared by the KV heads
    a.seq = seq;
    a.id = 0;
    a.mode = score_mode::score_mode_logit;
    a.domain = n;
    a.rows = {22};
    score_sink b = a; // weight mode, two rows, per KV head, a shorter domain
    b.id = 7;
    b.mode = score_mode::score_mode_weight;
    b.per_kv_head = true;
    b.domain = 10;
    b.rows = {9, 22};
    batch.sinks = {a, b};
    std::vector<float> logits;
    be.forward(batch, kv, logits);

    const std::vector<float> ref_a = reference_scores(hp, c, a.rows, a.mode, false, a.domain);
    const std::vector<float> ref_b = reference_scores(hp, c, b.rows, b.mode, true, b.domain);
    ASSERT_NE(be.sink_scores(seq, 0), nullptr);
    ASSERT_NE(be.sink_scores(seq, 7), nullptr);
    expect_close(*be.sink_scores(seq, 0), ref_a, "logit sink");
    expect_close(*be.sink_scores(seq, 7), ref_b, "weight sink");

    // Held lists: the top k of each layer (shared) or of each layer and KV head.
    EXPECT_EQ(be.select_top_k(seq, 0, 5), 5);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const std::vector<int64_t> want = top_k_positions(be.sink_scores(seq, 0)->data() + l * n, n, 5);
        for (int64_t h = 0; h < hp.n_head_kv; ++h) {
            EXPECT_EQ(std::vector<int64_t>(be.held_list(seq, l, h).begin(), be.held_list(seq, l, h).end()), want);
        }
    }
    EXPECT_EQ(be.select_top_k(seq, 7, 50), 10) << "k is clamped to the domain";
    EXPECT_EQ(be.held_list(seq, 0, 0).size(), 10u);
    EXPECT_EQ(be.select_top_k(seq, 7, 3), 3);
    bool heads_differ = false;
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        for (int64_t h = 0; h < hp.n_head_kv; ++h) {
            const std::vector<int64_t> want =
                top_k_positions(be.sink_scores(seq, 7)->data() + (l * hp.n_head_kv + h) * 10, 10, 3);
            EXPECT_EQ(std::vector<int64_t>(be.held_list(seq, l, h).begin(), be.held_list(seq, l, h).end()), want);
            heads_differ |= be.held_list(seq, l, h) != be.held_list(seq, l, 0);
        }
    }
    EXPECT_TRUE(heads_differ) << "per-KV-head selections should differ somewhere on real weights";
    EXPECT_THROW(be.select_top_k(seq, 3, 5), error) << "no such sink";

    // Quest: the row at position 22 in blocks of 4 picks 2 of the 5 whole blocks before its own by the key bound.
    draft_attention d;
    d.active = true;
    d.quest_block = 4;
    d.quest_blocks = 2;
    d.n_list = 8;
    d.recent_from = 20;
    const int64_t hd = hp.head_dim;
    const int64_t group = hp.n_head / hp.n_head_kv;
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        for (int64_t h = 0; h < hp.n_head_kv; ++h) {
            const float * qg = c.q[static_cast<size_t>(l)].data() + (22 * hp.n_head + h * group) * hd;
            std::vector<float> bound;
            for (int64_t blk = 0; blk < 5; ++blk) {
                std::vector<float> kmin(static_cast<size_t>(hd), INFINITY);
                std::vector<float> kmax(static_cast<size_t>(hd), -INFINITY);
                for (int64_t t = blk * 4; t < blk * 4 + 4; ++t) {
                    for (int64_t e = 0; e < hd; ++e) {
                        const float v = c.k[static_cast<size_t>(l)][static_cast<size_t>((t * hp.n_head_kv + h) * hd + e)];
                        kmin[static_cast<size_t>(e)] = std::min(kmin[static_cast<size_t>(e)], v);
                        kmax[static_cast<size_t>(e)] = std::max(kmax[static_cast<size_t>(e)], v);
                    }
                }
                bound.push_back(quest_block_bound(qg, group, hd, kmin.data(), kmax.data()));
            }
            std::vector<int64_t> want;
            for (int64_t blk : top_k_positions(bound.data(), 5, 2)) {
                for (int64_t t = blk * 4; t < blk * 4 + 4; ++t) {
                    want.push_back(t);
                }
            }
            for (int64_t t = 20; t <= 22; ++t) {
                want.push_back(t);
            }
            std::vector<int64_t> got;
            be.draft_positions(d, seq, l, h, 22, qg, kv.view(seq), got);
            EXPECT_EQ(got, want) << "layer " << l << " KV head " << h;
        }
    }
    be.release_selection(seq);
    EXPECT_EQ(be.sink_scores(seq, 0), nullptr);
}
