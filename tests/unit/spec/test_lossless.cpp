// Lossless speculative decoding: for every selector, several γ and budgets, greedy speculative output equals greedy
// autoregressive output token for token, on stories15M (real weights) and on the tiny HF checkpoints, with several
// sequences of different lengths in one batch; dense drafting (and ratio 1.0) accepts every greedy draft; and the
// edge cases (EOS or a stop string inside accepted drafts, -n reached mid-iteration, the context limit).
#include "common/spec_cases.h"
#include "engine/engine.h"

#include <gtest/gtest.h>

using namespace specattn;

namespace {

engine & stories() {
    static engine eng([] {
        engine_params p;
        p.model_path = std::string(SPECATTN_SOURCE_DIR) + "/data/stories15M/stories15M.bin";
        p.n_seq_max = 3;
        return p;
    }());
    return eng;
}

request greedy(engine & eng, const std::string & prompt, int64_t n) {
    request r;
    r.prompt = eng.get_tokenizer().encode(prompt, true);
    r.max_tokens = n;
    return r;
}

std::vector<result> run(engine & eng, const std::vector<request> & reqs, const spec_params & sp, run_stats & st) {
    return eng.generate(reqs, st, nullptr, sp);
}

// Three prompts of different lengths and -n, finishing at different times.
std::vector<request> story_batch() {
    return {greedy(stories(), "Once upon a time", 70),
            greedy(stories(), "Tom had a big red ball. He liked to throw it very high. One day", 45),
            greedy(stories(), "The little bird", 90)};
}

} // namespace

TEST(spec_lossless, greedy_equals_autoregressive_for_every_selector_gamma_and_ratio_on_stories15M) {
    const std::vector<request> reqs = story_batch();
    run_stats st0;
    const std::vector<result> ar = run(stories(), reqs, spec_params{}, st0);
    for (spec_method m : all_selectors()) {
        for (int64_t gamma : {1, 3, 4, 8}) {
            for (double ratio : {0.01, 0.07, 0.25, 1.0}) {
                run_stats st;
                const std::vector<result> sp = run(stories(), reqs, sparse_spec(m, gamma, ratio), st);
                for (size_t i = 0; i < reqs.size(); ++i) {
                    ASSERT_EQ(sp[i].tokens, ar[i].tokens)
                        << spec_method_name(m) << " γ=" << gamma << " ratio=" << ratio << " request " << i;
                    ASSERT_EQ(sp[i].finish, ar[i].finish);
                }
                if (m == spec_method::spec_method_dense || ratio == 1.0) {
                    EXPECT_EQ(st.spec.accepted, st.spec.proposed)
                        << spec_method_name(m) << " γ=" << gamma << " ratio=" << ratio << ": drafts saw everything";
                }
                EXPECT_GT(st.spec.iterations, 0);
            }
        }
    }
}

TEST(spec_lossless, sparse_drafts_do_get_rejected) {
    // A test of the test: with a tiny budget the drafts differ from the target, so rejections happen and the
    // equality above is not vacuous.
    run_stats st;
    run(stories(), story_batch(), sparse_spec(spec_method::spec_method_streaming, 6, 0.01), st);
    EXPECT_LT(st.spec.accepted, st.spec.proposed);
    EXPECT_GT(st.spec.accepted, 0);
}

TEST(spec_lossless, greedy_equals_autoregressive_on_tiny_hf_checkpoints) {
    const std::string dir = std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/";
    for (const char * name : {"llama_gqa_llama3rope_bf16", "mistral_gqa4_f32", "qwen2_bias_tied_f16",
                              "qwen3_qknorm_bf16_sharded"}) {
        engine_params ep;
        ep.model_path = dir + name;
        ep.n_ctx = 256;
        ep.n_seq_max = 2;
        engine eng(ep);
        const std::vector<request> ab = two_requests(eng);
        run_stats st0;
        const std::vector<result> ar = eng.generate(ab, st0);
        for (spec_method m : all_selectors()) {
            for (int64_t gamma : {1, 5, 8}) {
                for (double ratio : {0.01, 0.07, 1.0}) {
                    run_stats st;
                    const std::vector<result> sp = eng.generate(ab, st, nullptr, sparse_spec(m, gamma, ratio));
                    EXPECT_EQ(sp[0].tokens, ar[0].tokens)
                        << name << " " << spec_method_name(m) << " γ=" << gamma << " ratio=" << ratio;
                    EXPECT_EQ(sp[1].tokens, ar[1].tokens)
                        << name << " " << spec_method_name(m) << " γ=" << gamma << " ratio=" << ratio;
                }
            }
        }
    }
}

TEST(spec_edge_cases, eos_and_stop_strings_inside_accepted_drafts) {
    request r = greedy(stories(), "Once upon a time", -1); // runs until the story's EOS
    run_stats st0;
    const result ar = run(stories(), {r}, spec_params{}, st0)[0];
    ASSERT_EQ(ar.finish, finish_reason::finish_reason_eos);
    request s = greedy(stories(), "Once upon a time", 100);
    s.stop = {"red ball"};
    const result ar_stop = run(stories(), {s}, spec_params{}, st0)[0];
    ASSERT_EQ(ar_stop.finish, finish_reason::finish_reason_stop);
    for (spec_method m : all_selectors()) {
        run_stats st;
        const result sp = run(stories(), {r}, sparse_spec(m, 8, 1.0), st)[0];
        EXPECT_EQ(sp.tokens, ar.tokens) << spec_method_name(m);
        EXPECT_EQ(sp.finish, finish_reason::finish_reason_eos);
        const result sp_stop = run(stories(), {s}, sparse_spec(m, 8, 1.0), st)[0];
        EXPECT_EQ(sp_stop.text, ar_stop.text) << spec_method_name(m);
        EXPECT_EQ(sp_stop.finish, finish_reason::finish_reason_stop);
    }
}

TEST(spec_edge_cases, n_predict_reached_mid_iteration_emits_nothing_extra) {
    for (int64_t n : {1, 2, 5, 7, 13}) {
        run_stats st;
        const result sp = run(stories(), {greedy(stories(), "Once upon a time", n)},
                              sparse_spec(spec_method::spec_method_dense, 4, 1.0), st)[0];
        EXPECT_EQ(static_cast<int64_t>(sp.tokens.size()), n);
        EXPECT_EQ(sp.finish, finish_reason::finish_reason_length);
    }
}

TEST(spec_edge_cases, context_limit) {
    request r = greedy(stories(), "Once upon a time", -1);
    r.ignore_eos = true;
    run_stats st0;
    const result ar = run(stories(), {r}, spec_params{}, st0)[0];
    run_stats st;
    const result sp = run(stories(), {r}, sparse_spec(spec_method::spec_method_specattn, 6, 0.07), st)[0];
    EXPECT_EQ(sp.tokens, ar.tokens);
    EXPECT_EQ(sp.finish, finish_reason::finish_reason_context);
    EXPECT_EQ(static_cast<int64_t>(sp.tokens.size()), stories().n_ctx() - 5);
}

TEST(spec_edge_cases, prompt_shorter_than_min_tokens_drafts_densely) {
    spec_params sp = sparse_spec(spec_method::spec_method_specattn, 6, 0.07);
    sp.min_tokens = 256; // the default: every position of this short story is selected
    run_stats st;
    run(stories(), {greedy(stories(), "Once upon a time", 60)}, sp, st);
    EXPECT_EQ(st.spec.accepted, st.spec.proposed);
}
