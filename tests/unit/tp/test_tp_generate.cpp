// Generation under simulated tensor parallelism (engine_params::tp) equals generation on one rank: greedy
// autoregressive output token for token, and greedy speculative output under TP for every selector, two γ and two
// budgets with drafts sparse enough to be rejected, equal to TP=1's autoregressive output. Where the selection is
// a function of the verification scores, TP=N and TP=1 also accept the same drafts: the cross-rank score reduction
// picks the same positions.
#include "common/spec_cases.h"
#include "engine/engine.h"

#include <gtest/gtest.h>

using namespace specattn;

namespace {

engine_params params_for(const std::string & path, int32_t tp) {
    engine_params ep;
    ep.model_path = std::string(SPECATTN_SOURCE_DIR) + "/" + path;
    ep.n_ctx = 256;
    ep.n_seq_max = 2;
    ep.tp = tp;
    return ep;
}

void expect_tp_equals_one_rank(const std::string & path, int32_t tp, const std::vector<spec_method> & selectors,
                               const std::vector<int64_t> & gammas, const std::vector<double> & ratios) {
    SCOPED_TRACE(path + " tp " + std::to_string(tp));
    engine one(params_for(path, 1));
    engine many(params_for(path, tp));
    const std::vector<request> reqs = two_requests(one);
    run_stats st_one;
    run_stats st_many;
    const std::vector<result> ar = one.generate(reqs, st_one);
    const std::vector<result> ar_tp = many.generate(reqs, st_many);
    for (size_t i = 0; i < reqs.size(); ++i) {
        ASSERT_EQ(ar_tp[i].tokens, ar[i].tokens) << "autoregressive, request " << i;
    }
    for (spec_method m : selectors) {
        for (int64_t gamma : gammas) {
            for (double ratio : ratios) {
                const spec_params sp = sparse_spec(m, gamma, ratio);
                run_stats s1;
                run_stats sn;
                one.generate(reqs, s1, nullptr, sp);
                const std::vector<result> out = many.generate(reqs, sn, nullptr, sp);
                for (size_t i = 0; i < reqs.size(); ++i) {
                    EXPECT_EQ(out[i].tokens, ar[i].tokens)
                        << spec_method_name(m) << " γ=" << gamma << " ratio=" << ratio << " request " << i;
                }
                EXPECT_EQ(sn.spec.accepted, s1.spec.accepted)
                    << spec_method_name(m) << " γ=" << gamma << " ratio=" << ratio << ": the same selections";
                EXPECT_GT(sn.spec.iterations, 0);
            }
        }
    }
}

} // namespace

TEST(tp_generate, greedy_and_speculative_output_equal_one_rank_on_gqa_checkpoints) {
    for (const char * name :
         {"llama_gqa_llama3rope_bf16", "mistral_gqa4_f32", "qwen2_bias_tied_f16", "qwen3_qknorm_bf16_sharded"}) {
        expect_tp_equals_one_rank(std::string("tests/fixtures/models/") + name, 2, all_selectors(), {1, 5},
                                  {0.07, 0.25});
    }
}

TEST(tp_generate, four_ranks_on_a_checkpoint_with_four_kv_heads) {
    expect_tp_equals_one_rank("tests/fixtures/models/llama_mha_tied_f32_oldconfig", 4, all_selectors(), {1, 5},
                              {0.07, 0.25});
}

TEST(tp_generate, three_ranks_on_stories15M_with_an_uneven_vocabulary_split) {
    // 32000 token ids over 3 ranks: chunks of 10667, the last one shorter. The selectors that reduce scores.
    expect_tp_equals_one_rank("data/stories15M/stories15M.bin", 3,
                              {spec_method::spec_method_specattn, spec_method::spec_method_pillar}, {4}, {0.07});
}

TEST(tp_generate, sparse_drafts_do_get_rejected_under_tp) {
    // A test of the test: the budgets above reject drafts, so the equality is not vacuous.
    engine eng(params_for("tests/fixtures/models/mistral_gqa4_f32", 2));
    run_stats st;
    eng.generate(two_requests(eng), st, nullptr, sparse_spec(spec_method::spec_method_specattn, 5, 0.07));
    EXPECT_LT(st.spec.accepted, st.spec.proposed);
}
