// The tensor-parallel partition (tp/tp_plan.h) on the 8B shapes and on real checkpoints: ranges that tile every
// dimension, one-line errors for bad --tp values, shards that put the whole model back together; and the CPU
// collectives group (tp/collectives.h): sums in rank order, gathers in rank order, a failing rank fails the group
// instead of hanging it.
#include "core/check.h"
#include "model/presets.h"
#include "tp/collectives.h"
#include "tp/tp_plan.h"

#include <gtest/gtest.h>

#include <atomic>

using namespace specattn;

namespace {

const std::string fixtures = std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/";

// The ranges of every rank tile [0, total) in rank order.
void expect_tiles(const std::vector<tp_rank_plan> & plan, tp_range tp_rank_plan::*field, int64_t total,
                  const char * what) {
    int64_t next = 0;
    for (const tp_rank_plan & r : plan) {
        EXPECT_EQ((r.*field).begin, next) << what << " rank " << r.rank;
        next = (r.*field).end;
    }
    EXPECT_EQ(next, total) << what;
}

std::string error_of(const model_hparams & hp, int32_t n) {
    try {
        make_tp_plan(hp, n);
    } catch (const error & e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST(tp_plan, ranges_tile_every_dimension_of_the_8b_shapes) {
    const model_hparams hp = preset_hparams("preset:llama-3.1-8b");
    for (int32_t n : {1, 2, 4, 8}) {
        const std::vector<tp_rank_plan> plan = make_tp_plan(hp, n);
        ASSERT_EQ(static_cast<int32_t>(plan.size()), n);
        expect_tiles(plan, &tp_rank_plan::heads, hp.n_head, "heads");
        expect_tiles(plan, &tp_rank_plan::kv_heads, hp.n_head_kv, "kv heads");
        expect_tiles(plan, &tp_rank_plan::ff, hp.n_ff, "ff");
        expect_tiles(plan, &tp_rank_plan::vocab, hp.n_vocab, "vocab");
        for (const tp_rank_plan & r : plan) {
            EXPECT_EQ(r.heads.size(), hp.n_head / n);
            // A rank's query heads read exactly its KV heads (GQA groups stay whole).
            EXPECT_EQ(r.heads.begin / (hp.n_head / hp.n_head_kv), r.kv_heads.begin);
            EXPECT_EQ(r.heads.end / (hp.n_head / hp.n_head_kv), r.kv_heads.end);
            EXPECT_LE(r.vocab.size(), r.vocab_chunk);
        }
    }
}

TEST(tp_plan, bad_rank_counts_give_one_line_errors) {
    const model_hparams hp = preset_hparams("preset:llama-3.1-8b");
    EXPECT_EQ(error_of(hp, 3), "--tp 3 does not divide the 8 KV heads of this model");
    EXPECT_EQ(error_of(hp, 6), "--tp 6 does not divide the 8 KV heads of this model");
    EXPECT_NE(error_of(hp, 16).find("exceeds the 8 KV heads"), std::string::npos);
    EXPECT_NE(error_of(hp, 0).find("at least 1"), std::string::npos);
    EXPECT_NE(error_of(hp, -2).find("at least 1"), std::string::npos);
}

TEST(tp_plan, shards_put_the_whole_model_back_together) {
    for (const char * name : {"qwen2_bias_tied_f16", "llama_gqa_llama3rope_bf16"}) {
        const model m = load_model(fixtures + name);
        const std::vector<tp_rank_plan> plan = make_tp_plan(m.hp, 2);
        const model s0 = shard_model(m, plan[0]);
        const model s1 = shard_model(m, plan[1]);
        EXPECT_EQ(s0.hp.n_head, m.hp.n_head / 2);
        EXPECT_EQ(s1.hp.n_head_kv, m.hp.n_head_kv / 2);
        EXPECT_EQ(s0.hp.n_vocab, m.hp.n_vocab) << "the vocabulary stays whole: token ids and logits are global";
        EXPECT_EQ(s0.w.output.empty(), m.w.output.empty()) << "tied stays tied";
        for (size_t l = 0; l < m.w.layers.size(); ++l) {
            const layer_weights & w = m.w.layers[l];
            const layer_weights & a = s0.w.layers[l];
            const layer_weights & b = s1.w.layers[l];
            // Column-parallel: rows stacked.
            std::vector<float> wq = a.wq.w;
            wq.insert(wq.end(), b.wq.w.begin(), b.wq.w.end());
            EXPECT_EQ(wq, w.wq.w);
            std::vector<float> up = a.w_up.w;
            up.insert(up.end(), b.w_up.w.begin(), b.w_up.w.end());
            EXPECT_EQ(up, w.w_up.w);
            std::vector<float> bk = a.bk;
            bk.insert(bk.end(), b.bk.begin(), b.bk.end());
            EXPECT_EQ(bk, w.bk);
            // Row-parallel: columns side by side.
            for (int64_t o = 0; o < w.wo.n_out; ++o) {
                std::vector<float> row(a.wo.row(o), a.wo.row(o) + a.wo.n_in);
                row.insert(row.end(), b.wo.row(o), b.wo.row(o) + b.wo.n_in);
                ASSERT_EQ(row, std::vector<float>(w.wo.row(o), w.wo.row(o) + w.wo.n_in)) << name << " wo row " << o;
            }
            EXPECT_EQ(a.attn_norm, w.attn_norm) << "norms are replicated";
            EXPECT_EQ(b.w_down.n_in + a.w_down.n_in, w.w_down.n_in);
        }
        std::vector<float> embd = s0.w.tok_embd.w;
        embd.insert(embd.end(), s1.w.tok_embd.w.begin(), s1.w.tok_embd.w.end());
        EXPECT_EQ(embd, m.w.tok_embd.w);
    }
}

TEST(tp_collectives, all_reduce_sums_in_rank_order_and_all_gather_concatenates_in_rank_order) {
    for (int32_t n : {1, 2, 3, 4}) {
        cpu_collectives_group group(n);
        // Values whose float sum depends on the order: the result must be ((v0 + v1) + v2) + v3 on every rank.
        const float vals[4] = {1.0f, 1e8f, -1e8f, 1e-3f};
        float want = vals[0];
        for (int32_t r = 1; r < n; ++r) {
            want += vals[r];
        }
        std::vector<std::vector<float>> bufs(static_cast<size_t>(n));
        std::vector<std::vector<float>> gathered(static_cast<size_t>(n));
        group.run_ranks([&](int32_t r) {
            std::vector<float> & b = bufs[static_cast<size_t>(r)];
            b.assign(5, vals[r]);
            group.rank(r).all_reduce_sum(b.data(), 5);
            const float mine[2] = {static_cast<float>(r), static_cast<float>(10 * r)};
            gathered[static_cast<size_t>(r)].resize(static_cast<size_t>(2 * n));
            group.rank(r).all_gather(mine, 2, gathered[static_cast<size_t>(r)].data());
        });
        for (int32_t r = 0; r < n; ++r) {
            EXPECT_EQ(bufs[static_cast<size_t>(r)], std::vector<float>(5, want)) << n << " ranks, rank " << r;
            for (int32_t s = 0; s < n; ++s) {
                EXPECT_EQ(gathered[static_cast<size_t>(r)][static_cast<size_t>(2 * s + 1)], 10.0f * s);
            }
        }
    }
}

TEST(tp_collectives, a_failing_rank_fails_the_group_instead_of_hanging_it) {
    cpu_collectives_group group(3);
    std::atomic<int> released{0};
    auto run = [&] {
        group.run_ranks([&](int32_t r) {
            if (r == 1) {
                throw error("rank 1 is broken");
            }
            float x = 1.0f;
            try {
                group.rank(r).all_reduce_sum(&x, 1);
            } catch (const error &) {
                ++released;
                throw;
            }
        });
    };
    try {
        run();
        FAIL() << "no exception";
    } catch (const error & e) {
        EXPECT_STREQ(e.what(), "rank 1 is broken") << "the first failure, not the ranks it released";
    }
    EXPECT_EQ(released.load(), 2);
    // The group is usable again.
    std::vector<float> got(3);
    group.run_ranks([&](int32_t r) {
        float x = static_cast<float>(r + 1);
        group.rank(r).all_reduce_sum(&x, 1);
        got[static_cast<size_t>(r)] = x;
    });
    EXPECT_EQ(got, std::vector<float>(3, 6.0f));
}
