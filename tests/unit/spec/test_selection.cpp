// Selection policies against hand-computed cases: top-k with ties, the budget clamp, which rows each selector
// scores and how (sinks), what it holds after a verification, streaming's sinks and window, Quest's blocks.
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

// A backend that runs nothing and records what the selectors ask of it.
class recording_backend final : public backend {
  public:
    const char * name() const override { return "recording"; }
    void forward(const forward_batch &, const kv_block_manager &, std::vector<float> &) override {}
    void set_selection(int32_t seq, const std::vector<int32_t> & positions) override {
        held_seq = seq;
        held = positions;
    }
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) override {
        top_k_calls.push_back({seq, sink, k});
        return std::min<int64_t>(k, domain);
    }
    void release_selection(int32_t) override {}
    void synthetic_kv(const kv_block_manager &, int32_t, int64_t, uint64_t) override {}

    struct call {
        int32_t seq, sink;
        int64_t k;
        bool operator==(const call & o) const { return seq == o.seq && sink == o.sink && k == o.k; }
    };
    int64_t domain = 0; // what select_top_k clamps k to, as a real backend does with the sink's domain
    int32_t held_seq = -1;
    std::vector<int32_t> held;
    std::vector<call> top_k_calls;
};

// Verification of sequence 3 at n = 9 with γ = 2: rows at positions 9, 10, 11 starting at batch row 5;
// domain [0, 10); seqlen_k = 12.
verify_view verification() {
    verify_view v;
    v.seq = 3;
    v.first_row = 5;
    v.first_pos = 9;
    v.n_rows = 3;
    v.domain = 10;
    v.seqlen_k = 12;
    return v;
}

spec_params params(spec_method m, double ratio, int64_t min_tokens) {
    spec_params p;
    p.method = m;
    p.ratio = ratio;
    p.min_tokens = min_tokens;
    return p;
}

} // namespace

TEST(selection, specattn_scores_first_and_last_rows_per_layer_and_holds_the_top_k) {
    spec_params p = params(spec_method::spec_method_specattn, 0.2, 2);
    p.mode = score_mode::score_mode_logit;
    auto sel = make_selector(p, model_hparams{}, 100);
    forward_batch batch;
    sel->add_sinks(verification(), batch);
    ASSERT_EQ(batch.sinks.size(), 1u);
    const score_sink & s = batch.sinks[0];
    EXPECT_EQ(s.seq, 3);
    EXPECT_EQ(s.id, 0);
    EXPECT_EQ(s.rows, (std::vector<int32_t>{5, 7})) << "rows 0 and γ, not the middle row";
    EXPECT_EQ(s.domain, 10);
    EXPECT_EQ(s.mode, score_mode::score_mode_logit);
    EXPECT_FALSE(s.per_kv_head) << "one selection per layer, shared by its KV heads";

    recording_backend be;
    be.domain = 10;
    verify_view v = verification();
    v.n_accepted = 1;
    sel->update(v, be);
    // k = min(clamp(ceil(12 · 0.2), 2, max(ceil(100 · 0.2), 2)), 10) = 3
    ASSERT_EQ(be.top_k_calls.size(), 1u);
    EXPECT_EQ(be.top_k_calls[0], (recording_backend::call{3, 0, 3}));
    const draft_attention d = sel->draft_view(12);
    EXPECT_TRUE(d.active);
    EXPECT_EQ(d.n_list, 3);
    EXPECT_EQ(d.recent_from, 10) << "every position since the verification's domain is recent";
    EXPECT_EQ(d.quest_block, 0);
}

TEST(selection, specattn_collect_first_or_last_row_only_and_one_row_prefill) {
    spec_params p = params(spec_method::spec_method_specattn, 0.01, 1);
    p.collect = collect_rows::collect_rows_first;
    forward_batch batch;
    make_selector(p, model_hparams{}, 100)->add_sinks(verification(), batch);
    EXPECT_EQ(batch.sinks.at(0).rows, (std::vector<int32_t>{5}));
    p.collect = collect_rows::collect_rows_last;
    batch.clear();
    make_selector(p, model_hparams{}, 100)->add_sinks(verification(), batch);
    EXPECT_EQ(batch.sinks.at(0).rows, (std::vector<int32_t>{7}));
    // After prefill there is one row, whichever rows are asked for; the domain is the whole prompt.
    batch.clear();
    make_selector(p, model_hparams{}, 100)->add_sinks(prefill_view(2, 40, 41), batch);
    EXPECT_EQ(batch.sinks.at(0).rows, (std::vector<int32_t>{40}));
    EXPECT_EQ(batch.sinks.at(0).domain, 41);
    EXPECT_EQ(batch.sinks.at(0).mode, score_mode::score_mode_weight) << "the default score mode";
    EXPECT_THROW(parse_collect_rows("middle"), error);
}

TEST(selection, short_domain_selects_everything) {
    auto sel = make_selector(params(spec_method::spec_method_specattn, 0.07, 256), model_hparams{}, 4096);
    recording_backend be;
    be.domain = 5;
    sel->update(prefill_view(0, 4, 5), be);
    EXPECT_EQ(be.top_k_calls.at(0).k, 5) << "the budget never exceeds the domain";
    EXPECT_EQ(sel->draft_view(7).n_list, 5);
    EXPECT_EQ(sel->draft_view(7).recent_from, 5);
}

TEST(selection, pillar_scores_all_rows_per_kv_head_by_weight) {
    auto sel = make_selector(params(spec_method::spec_method_pillar, 0.01, 1), model_hparams{}, 100);
    forward_batch batch;
    sel->add_sinks(verification(), batch);
    ASSERT_EQ(batch.sinks.size(), 1u);
    EXPECT_EQ(batch.sinks[0].rows, (std::vector<int32_t>{5, 6, 7}));
    EXPECT_TRUE(batch.sinks[0].per_kv_head);
    EXPECT_EQ(batch.sinks[0].mode, score_mode::score_mode_weight);
}

TEST(selection, specextend_scores_each_row_and_holds_the_last_committed_rows_top_k) {
    auto sel = make_selector(params(spec_method::spec_method_specextend, 0.01, 1), model_hparams{}, 100);
    forward_batch batch;
    sel->add_sinks(verification(), batch);
    ASSERT_EQ(batch.sinks.size(), 3u);
    for (int32_t r = 0; r < 3; ++r) {
        EXPECT_EQ(batch.sinks[static_cast<size_t>(r)].id, r);
        EXPECT_EQ(batch.sinks[static_cast<size_t>(r)].rows, (std::vector<int32_t>{5 + r}));
        EXPECT_FALSE(batch.sinks[static_cast<size_t>(r)].per_kv_head);
    }
    recording_backend be;
    be.domain = 10;
    verify_view v = verification();
    v.n_accepted = 1; // row 1 (position 10) is the last committed token
    sel->update(v, be);
    EXPECT_EQ(be.top_k_calls.at(0).sink, 1);
}

TEST(selection, streaming_keeps_sink_block_and_recent_blocks) {
    spec_params p = params(spec_method::spec_method_streaming, 0.01, 6); // → 2 recent blocks
    p.block_size = 4;
    auto sel = make_selector(p, model_hparams{}, 100);
    forward_batch batch;
    sel->add_sinks(verification(), batch);
    EXPECT_TRUE(batch.sinks.empty()) << "streaming learns nothing from verification";
    recording_backend be;
    sel->update(prefill_view(2, 19, 20), be);
    EXPECT_EQ(be.held_seq, 2);
    EXPECT_EQ(be.held, (std::vector<int32_t>{0, 1, 2, 3})) << "the held list is the sink block";
    // pos 21: blocks 4 (16..19) and 5 (20..21) are recent; block 0 is the sink.
    draft_attention d = sel->draft_view(21);
    EXPECT_EQ(d.n_list, 4);
    EXPECT_EQ(d.recent_from, 16);
    // Early on everything is recent, with no duplicates.
    d = sel->draft_view(5);
    EXPECT_EQ(d.n_list, 0);
    EXPECT_EQ(d.recent_from, 0);
}

TEST(selection, quest_asks_for_budget_blocks_before_the_current_block) {
    spec_params p = params(spec_method::spec_method_quest, 0.01, 4); // 2 blocks: the current one and one other
    p.block_size = 2;
    auto sel = make_selector(p, model_hparams{}, 100);
    draft_attention d = sel->draft_view(8);
    EXPECT_EQ(d.quest_block, 2);
    EXPECT_EQ(d.quest_blocks, 1);
    EXPECT_EQ(d.n_list, 2);
    EXPECT_EQ(d.recent_from, 8);
    d = sel->draft_view(1); // the first block: nothing before it
    EXPECT_EQ(d.quest_blocks, 0);
    EXPECT_EQ(d.recent_from, 0);
    EXPECT_EQ(quest_block_bound(std::vector<float>{1, 0, 0, 0.5f}.data(), 2, 2,
                                std::vector<float>{3, -1}.data(), std::vector<float>{3, -1}.data()),
              3.0f)
        << "max over the group of Σ_c max(q·kmin, q·kmax)";
}
