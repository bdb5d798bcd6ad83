// Selection rules against hand-computed cases: top-k with ties, the budget clamp, the recent window, streaming's
// sinks and window, Quest's bound, and SpecAttn's Collect-2-Query reduction.
#include "core/check.h"
#include "spec/selector.h"
#include "spec/spec_decode.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace specattn;

TEST(selection, top_k_ties_go_to_lower_positions_and_output_is_sorted) {
    const std::vector<float> s = {1.0f, 3.0f, 2.0f, 3.0f, -INFINITY, 2.0f, 3.0f};
    EXPECT_EQ(top_k_positions(s.data(), 7, 2), (std::vector<int64_t>{1, 3}));
    EXPECT_EQ(top_k_positions(s.data(), 7, 4), (std::vector<int64_t>{1, 2, 3, 6}));
    EXPECT_EQ(top_k_positions(s.data(), 7, 5), (std::vector<int64_t>{1, 2, 3, 5, 6}));
    EXPECT_EQ(top_k_positions(s.data(), 7, 7).size(), 7u);
    EXPECT_EQ(top_k_positions(s.data(), 7, 99).size(), 7u);
    EXPECT_TRUE(top_k_positions(s.data(), 7, 0).empty());
}

TEST(selection, budget_clamps_to_floor_cap_and_domain) {
    spec_params p;
    p.ratio = 0.07;
    p.min_tokens = 256;
    // max_tokens = max(ceil(32768 * 0.07), 256) = 2294
    EXPECT_EQ(spec_budget(p, 32768, 1000, 1000), 256);    // ceil(70) below the floor: 256
    EXPECT_EQ(spec_budget(p, 32768, 1000, 200), 200);     // never more than the domain
    EXPECT_EQ(spec_budget(p, 32768, 4000, 4000), 280);    // 4000 * 0.07 is exactly 280.0
    // 10000 * 0.07 is 700.0000000000001 in binary floating point, so the ceiling is 701, exactly as the official
    // Python code computes math.ceil(seqlen_k * ratio).
    EXPECT_EQ(spec_budget(p, 32768, 10000, 9000), 701);
    EXPECT_EQ(spec_budget(p, 32768, 10001, 9000), 701);   // ceil(700.07)
    EXPECT_EQ(spec_budget(p, 32768, 40000, 39000), 2294); // capped at max_tokens
    p.min_tokens = 4;
    p.ratio = 0.5;
    EXPECT_EQ(spec_budget(p, 100, 7, 6), 4); // ceil(3.5) = 4
}

namespace {
model_hparams tiny_hparams() {
    model_hparams hp;
    hp.n_layer = 2;
    hp.n_head = 4;
    hp.n_head_kv = 2;
    hp.head_dim = 2;
    return hp;
}

// A capture whose scaled logits are given per (layer, head) over n_pos positions.
attention_capture make_capture(const model_hparams & hp, int64_t n_pos,
                               const std::function<float(int64_t l, int64_t h, int64_t p)> & f) {
    attention_capture c;
    c.n_pos = n_pos;
    c.logits.resize(static_cast<size_t>(hp.n_layer * hp.n_head * n_pos));
    c.lse.resize(static_cast<size_t>(hp.n_layer * hp.n_head));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        for (int64_t h = 0; h < hp.n_head; ++h) {
            double z = 0;
            for (int64_t p = 0; p < n_pos; ++p) {
                c.logits[static_cast<size_t>((l * hp.n_head + h) * n_pos + p)] = f(l, h, p);
                z += std::exp(f(l, h, p));
            }
            c.lse[static_cast<size_t>(l * hp.n_head + h)] = static_cast<float>(std::log(z));
        }
    }
    return c;
}

std::vector<int64_t> positions_of(const draft_selector & s, int64_t layer, int64_t kv_head, int64_t pos) {
    attention_query q;
    q.layer = layer;
    q.kv_head = kv_head;
    q.pos = pos;
    std::vector<int64_t> out;
    s.positions(q, out);
    return out;
}
} // namespace

TEST(selection, specattn_averages_first_and_last_rows_over_heads_per_layer) {
    const model_hparams hp = tiny_hparams();
    spec_params p;
    p.method = spec_method::spec_method_specattn;
    p.mode = score_mode::score_mode_logit;
    p.ratio = 0.2;
    p.min_tokens = 2;
    auto sel = make_selector(p, hp, 100);
    ASSERT_EQ(sel->needs(), capture_rows::capture_rows_first_last);
    // Verify at n = 9 with γ = 2: rows at positions 9, 10, 11; domain [0, 10); seqlen_k = 12 → k = ceil(2.4) = 3.
    // Row 0 favours position 2 in every head, the last row favours 7; head 3 of layer 1 alone loves 5.
    auto first = make_capture(hp, 10, [](int64_t l, int64_t h, int64_t q) {
        return q == 2 ? 4.0f : (l == 1 && h == 3 && q == 5) ? 9.0f : 0.0f;
    });
    auto middle = make_capture(hp, 11, [](int64_t, int64_t, int64_t q) { return q == 8 ? 50.0f : 0.0f; });
    auto last = make_capture(hp, 12, [](int64_t, int64_t, int64_t q) {
        return q == 7 ? 3.0f : q == 0 ? 1.0f : q >= 10 ? 40.0f : 0.0f; // positions >= 10 are outside the domain
    });
    verify_view v;
    v.first_pos = 9;
    v.n_rows = 3;
    v.n_accepted = 1;
    v.domain = 10;
    v.seqlen_k = 12;
    v.rows = {&first, &middle, &last}; // the middle row must be ignored (only first and last are collected)
    sel->update(v);
    // layer 0 sums: pos 2: 4·4 = 16, pos 7: 3·4 = 12, pos 0: 1·4 = 4 → {0, 2, 7}, then [10, pos]
    EXPECT_EQ(positions_of(*sel, 0, 0, 12), (std::vector<int64_t>{0, 2, 7, 10, 11, 12}));
    EXPECT_EQ(positions_of(*sel, 0, 1, 12), positions_of(*sel, 0, 0, 12)) << "head-shared";
    // layer 1: pos 5 gets 9 (one head), pos 0 only 4: {2, 5, 7}
    EXPECT_EQ(positions_of(*sel, 1, 0, 10), (std::vector<int64_t>{2, 5, 7, 10}));
}

TEST(selection, specattn_collect_first_or_last_row_only) {
    const model_hparams hp = tiny_hparams();
    auto first = make_capture(hp, 10, [](int64_t, int64_t, int64_t q) { return q == 2 ? 4.0f : 0.0f; });
    auto last = make_capture(hp, 12, [](int64_t, int64_t, int64_t q) { return q == 7 ? 9.0f : 0.0f; });
    verify_view v;
    v.first_pos = 9;
    v.n_rows = 3;
    v.n_accepted = 0;
    v.domain = 10;
    v.seqlen_k = 12;
    attention_capture unused;
    v.rows = {&first, &unused, &last};
    spec_params p;
    p.method = spec_method::spec_method_specattn;
    p.ratio = 0.01;
    p.min_tokens = 1; // k = 1
    p.collect = collect_rows::collect_rows_first;
    auto sel_first = make_selector(p, hp, 100);
    sel_first->update(v);
    EXPECT_EQ(positions_of(*sel_first, 0, 0, 10), (std::vector<int64_t>{2, 10}));
    p.collect = collect_rows::collect_rows_last;
    auto sel_last = make_selector(p, hp, 100);
    sel_last->update(v);
    EXPECT_EQ(positions_of(*sel_last, 0, 0, 10), (std::vector<int64_t>{7, 10}));
    EXPECT_THROW(parse_collect_rows("middle"), error);
}

TEST(selection, specattn_weight_mode_normalizes_each_head) {
    const model_hparams hp = tiny_hparams();
    spec_params p;
    p.method = spec_method::spec_method_specattn;
    p.mode = score_mode::score_mode_weight;
    p.ratio = 0.01;
    p.min_tokens = 1;
    auto sel = make_selector(p, hp, 100);
    // One head has huge logits at position 1; all others mildly prefer position 3 (weight ≈ 0.46 each vs ≈ 0.25).
    // Logit mode would pick 1 (100 > 3·1.5 + ...); weight mode picks 3.
    auto cap = make_capture(hp, 6, [](int64_t, int64_t h, int64_t q) {
        return h == 0 ? (q == 1 ? 100.0f : 0.0f) : (q == 3 ? 1.5f : 0.0f);
    });
    sel->update(prefill_view(6, &cap));
    EXPECT_EQ(positions_of(*sel, 0, 0, 6), (std::vector<int64_t>{3, 6}));
    p.mode = score_mode::score_mode_logit;
    auto sel_logit = make_selector(p, hp, 100);
    sel_logit->update(prefill_view(6, &cap));
    EXPECT_EQ(positions_of(*sel_logit, 0, 0, 6), (std::vector<int64_t>{1, 6}));
}

TEST(selection, short_domain_selects_everything) {
    const model_hparams hp = tiny_hparams();
    spec_params p;
    p.method = spec_method::spec_method_specattn;
    p.min_tokens = 256;
    auto sel = make_selector(p, hp, 4096);
    auto cap = make_capture(hp, 5, [](int64_t, int64_t, int64_t q) { return static_cast<float>(q); });
    sel->update(prefill_view(5, &cap));
    EXPECT_EQ(positions_of(*sel, 1, 1, 7), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(selection, pillar_is_per_kv_head_and_uses_all_rows) {
    const model_hparams hp = tiny_hparams(); // group of 2 query heads per KV head
    spec_params p;
    p.method = spec_method::spec_method_pillar;
    p.ratio = 0.01;
    p.min_tokens = 1;
    auto sel = make_selector(p, hp, 100);
    ASSERT_EQ(sel->needs(), capture_rows::capture_rows_all);
    // KV head 0 (query heads 0, 1) attends to 4; KV head 1 (heads 2, 3) to 2 in row 0 and to 6 in the middle row 1,
    // strongly enough that the middle row decides.
    auto r0 = make_capture(hp, 8, [](int64_t, int64_t h, int64_t q) { return h < 2 ? (q == 4 ? 5.f : 0.f) : (q == 2 ? 2.f : 0.f); });
    auto r1 = make_capture(hp, 9, [](int64_t, int64_t h, int64_t q) { return h < 2 ? 0.f : (q == 6 ? 9.f : 0.f); });
    auto r2 = make_capture(hp, 10, [](int64_t, int64_t, int64_t) { return 0.f; });
    verify_view v;
    v.first_pos = 7;
    v.n_rows = 3;
    v.n_accepted = 2;
    v.domain = 8;
    v.seqlen_k = 10;
    v.rows = {&r0, &r1, &r2};
    sel->update(v);
    EXPECT_EQ(positions_of(*sel, 0, 0, 9), (std::vector<int64_t>{4, 8, 9}));
    EXPECT_EQ(positions_of(*sel, 0, 1, 9), (std::vector<int64_t>{6, 8, 9}));
}

TEST(selection, specextend_uses_the_last_committed_row) {
    const model_hparams hp = tiny_hparams();
    spec_params p;
    p.method = spec_method::spec_method_specextend;
    p.ratio = 0.01;
    p.min_tokens = 1;
    auto sel = make_selector(p, hp, 100);
    auto r0 = make_capture(hp, 8, [](int64_t, int64_t, int64_t q) { return q == 1 ? 5.f : 0.f; });
    auto r1 = make_capture(hp, 9, [](int64_t, int64_t, int64_t q) { return q == 5 ? 5.f : 0.f; });
    auto r2 = make_capture(hp, 10, [](int64_t, int64_t, int64_t q) { return q == 3 ? 5.f : 0.f; });
    verify_view v;
    v.first_pos = 7;
    v.n_rows = 3;
    v.domain = 8;
    v.seqlen_k = 10;
    v.rows = {&r0, &r1, &r2};
    v.n_accepted = 1; // row 1 (position 8) is the last committed token
    sel->update(v);
    EXPECT_EQ(positions_of(*sel, 1, 0, 9), (std::vector<int64_t>{5, 8, 9}));
}

TEST(selection, streaming_keeps_sink_block_and_recent_blocks) {
    model_hparams hp = tiny_hparams();
    spec_params p;
    p.method = spec_method::spec_method_streaming;
    p.block_size = 4;
    p.ratio = 0.01;
    p.min_tokens = 6; // → 2 recent blocks
    auto sel = make_selector(p, hp, 100);
    // pos 21: blocks 4 (16..19) and 5 (20..21) are recent; block 0 is the sink.
    EXPECT_EQ(positions_of(*sel, 0, 0, 21), (std::vector<int64_t>{0, 1, 2, 3, 16, 17, 18, 19, 20, 21}));
    // Early on everything is kept, with no duplicates.
    EXPECT_EQ(positions_of(*sel, 0, 0, 5), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(selection, quest_takes_pages_with_the_highest_key_bound_and_the_current_page) {
    model_hparams hp = tiny_hparams();
    spec_params p;
    p.method = spec_method::spec_method_quest;
    p.block_size = 2;
    p.ratio = 0.01;
    p.min_tokens = 4; // 2 pages
    auto sel = make_selector(p, hp, 100);
    // Keys (head_dim 2) of positions 0..8: page 1 (positions 2, 3) holds a key aligned with the query.
    const std::vector<std::array<float, 2>> keys = {{0, 0}, {0, 1}, {3, -1}, {0, 0}, {-1, 1}, {1, 0}, {0, 0}, {0, 0}, {0, 0}};
    const float qv[4] = {1, 0, 0, 0.5f}; // group of two query heads
    attention_query q;
    q.layer = 0;
    q.kv_head = 0;
    q.pos = 8;
    q.q = qv;
    q.group = 2;
    q.head_dim = 2;
    q.key = [&](int64_t t) { return keys[static_cast<size_t>(t)].data(); };
    std::vector<int64_t> out;
    sel->positions(q, out);
    // bounds: page0 max(0,0)+... head0: max(1·0,1·0)+max(0·0,0·1)=0, head1: 0+0.5 → 0.5; page1: head0 3 → 3;
    // page2: head0 max(-1,1)=1 → 1 (head1: 0.5); page3: 0; page4 (current) always.
    EXPECT_EQ(out, (std::vector<int64_t>{2, 3, 8}));
}
