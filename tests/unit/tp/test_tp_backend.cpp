// The CPU-simulated tensor-parallel backend against the one-rank CPU backend, pass by pass, on the tiny checkpoints
// and stories15M (6 heads over 3 ranks: an uneven vocabulary split): logits of a prefill, of draft rows reading held
// selections and of Quest rows, and of a decode over a synthetic context, all within 1e-5 of the logits' scale; the
// SpecAttn score sinks: a shared (all-heads) sink equal to TP=1's after the cross-rank reduction, a per-KV-head
// sink of each rank equal to its KV heads' part of TP=1's; and the top-k lists every rank then holds.
#include "common/test_tokens.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_tp_backend.h"
#include "common/model_reference.h"
#include "common/tp_sinks.h"
#include "core/check.h"
#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace specattn;

namespace {

constexpr double logits_tol = 1e-5; // fp32: the partial sums only change the order of additions

struct tp_case {
    const char * path; // under the source directory
    int32_t n_ranks;
};

const std::vector<tp_case> cases = {
    {"tests/fixtures/models/llama_gqa_llama3rope_bf16", 2},
    {"tests/fixtures/models/mistral_gqa4_f32", 2},
    {"tests/fixtures/models/qwen2_bias_tied_f16", 2},
    {"tests/fixtures/models/qwen3_qknorm_bf16_sharded", 2},
    {"tests/fixtures/models/llama_mha_tied_f32_oldconfig", 2},
    {"tests/fixtures/models/llama_mha_tied_f32_oldconfig", 4},
    {"data/stories15M/stories15M.bin", 3},
};

std::string case_name(const tp_case & c) {
    return std::string(c.path) + " tp " + std::to_string(c.n_ranks);
}

// max |a - b| / max |b| over every element.
void expect_close(const std::vector<float> & got, const std::vector<float> & want, double tol,
                  const std::string & what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    EXPECT_LE(max_rel_error(got.data(), want), tol) << what;
}

} // namespace

TEST(tp_backend, logits_sinks_and_selections_equal_one_rank) {
    for (const tp_case & c : cases) {
        SCOPED_TRACE(case_name(c));
        const model m = load_model(std::string(SPECATTN_SOURCE_DIR) + "/" + c.path);
        const model_hparams & hp = m.hp;
        constexpr int64_t n_pages = 16;
        constexpr int64_t page_size = 4;
        kv_block_manager kv(n_pages, page_size); // one block manager: the ranks share page ids
        cpu_backend one(m, n_pages, page_size);
        cpu_tp_backend tp(m, c.n_ranks, n_pages, page_size);

        // A prefill of 23 rows, logits of all, three sinks: logit mode shared, weight mode per KV head over a
        // shorter domain, weight mode shared over two rows.
        const int32_t seq = kv.add_sequence();
        const int64_t n = 23;
        kv.append(seq, n);
        const std::vector<int32_t> toks = test::spread_tokens(n, hp.n_vocab);
        forward_batch batch;
        batch.add_sequence_rows(seq, toks.data(), n, 0, true);
        batch.logit_rows.clear();
        for (int32_t r = 0; r < n; ++r) {
            batch.logit_rows.push_back(r);
        }
        score_sink shared_logit;
        shared_logit.seq = seq;
        shared_logit.id = 0;
        shared_logit.mode = score_mode::score_mode_logit;
        shared_logit.domain = n;
        shared_logit.rows = {22};
        score_sink per_kv = shared_logit;
        per_kv.id = 7;
        per_kv.mode = score_mode::score_mode_weight;
        per_kv.per_kv_head = true;
        per_kv.domain = 10;
        per_kv.rows = {9, 22};
        score_sink shared_weight = per_kv;
        shared_weight.id = 3;
        shared_weight.per_kv_head = false;
        shared_weight.domain = 20;
        shared_weight.rows = {21, 22};
        batch.sinks = {shared_logit, per_kv, shared_weight};
        std::vector<float> want;
        std::vector<float> got;
        one.forward(batch, kv, want);
        tp.forward(batch, kv, got);
        expect_close(got, want, logits_tol, "prefill logits");

        for (int32_t r = 0; r < c.n_ranks; ++r) {
            const cpu_backend & rank = tp.rank(r);
            for (int32_t id : {0, 3}) {
                expect_close(*rank.sink_scores(seq, id), *one.sink_scores(seq, id), 1e-5,
                             "shared sink " + std::to_string(id) + " on rank " + std::to_string(r));
            }
            const std::vector<float> part =
                test::kv_head_part(*one.sink_scores(seq, 7), hp.n_layer, hp.n_head_kv, tp.plan(r).kv_heads, 10);
            expect_close(*rank.sink_scores(seq, 7), part, 1e-5, "per-KV-head sink on rank " + std::to_string(r));
        }

        // Held lists: a shared sink gives every rank TP=1's list; a per-KV-head sink each rank its heads' lists.
        for (int32_t id : {0, 7}) {
            const int64_t k = 3;
            ASSERT_EQ(tp.select_top_k(seq, id, k), one.select_top_k(seq, id, k));
            for (int32_t r = 0; r < c.n_ranks; ++r) {
                const tp_range kvh = tp.plan(r).kv_heads;
                for (int64_t l = 0; l < hp.n_layer; ++l) {
                    for (int64_t h = 0; h < kvh.size(); ++h) {
                        EXPECT_EQ(tp.rank(r).held_list(seq, l, h), one.held_list(seq, l, kvh.begin + h))
                            << "sink " << id << " rank " << r << " layer " << l << " KV head " << h;
                    }
                }
            }
        }

        // A draft row at position 23 reading the per-KV-head lists (3 positions) and [20, 23].
        kv.append(seq, 1);
        batch.clear();
        batch.add_sequence_rows(seq, &toks[5], 1, n, true);
        batch.draft.resize(1);
        batch.draft[0].active = true;
        batch.draft[0].n_list = 3;
        batch.draft[0].recent_from = 20;
        one.forward(batch, kv, want);
        tp.forward(batch, kv, got);
        expect_close(got, want, logits_tol, "draft row logits");

        // A Quest row at position 24: 2 of its 6 earlier blocks of 4, chosen per rank from its own KV heads.
        kv.append(seq, 1);
        batch.clear();
        batch.add_sequence_rows(seq, &toks[6], 1, n + 1, true);
        batch.draft.resize(1);
        batch.draft[0].active = true;
        batch.draft[0].quest_block = 4;
        batch.draft[0].quest_blocks = 2;
        batch.draft[0].n_list = 8;
        batch.draft[0].recent_from = 24;
        one.forward(batch, kv, want);
        tp.forward(batch, kv, got);
        expect_close(got, want, logits_tol, "quest row logits");

        // A decode over a synthetic context: each rank keeps its own KV heads of the same pseudo-random values.
        const int32_t syn = kv.add_sequence();
        kv.append(syn, 30);
        one.synthetic_kv(kv, syn, 29, 1234);
        tp.synthetic_kv(kv, syn, 29, 1234);
        batch.clear();
        batch.add_sequence_rows(syn, &toks[0], 1, 29, true);
        one.forward(batch, kv, want);
        tp.forward(batch, kv, got);
        expect_close(got, want, logits_tol, "decode over a synthetic context");

        tp.release_selection(seq);
        for (int32_t r = 0; r < c.n_ranks; ++r) {
            EXPECT_EQ(tp.rank(r).sink_scores(seq, 0), nullptr);
        }
    }
}

TEST(tp_backend, a_bad_token_fails_every_rank_with_one_error) {
    const model m = load_model(std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/mistral_gqa4_f32");
    kv_block_manager kv(4, 4);
    cpu_tp_backend tp(m, 2, 4, 4);
    const int32_t seq = kv.add_sequence();
    kv.append(seq, 1);
    forward_batch batch;
    const int32_t bad = static_cast<int32_t>(m.hp.n_vocab);
    batch.add_sequence_rows(seq, &bad, 1, 0, true);
    std::vector<float> logits;
    EXPECT_THROW(tp.forward(batch, kv, logits), error);
}
