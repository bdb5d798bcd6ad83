// The CPU backend against transformers: for each tiny random-weight checkpoint in tests/fixtures/models (made by
// tools/make_fixtures.py on the GPU machine), the logits of every prompt position match transformers' fp32 logits
// and the greedy continuation is identical. Also: prefill in chunks, token-by-token decode and batching several
// sequences give the same logits as one whole-prompt pass.
#include "backend/cpu/cpu_backend.h"
#include "engine/engine.h"
#include "common/model_reference.h"
#include "model/model.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

using namespace specattn;

namespace {

const std::string fixtures = std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/";

constexpr double tolerance = 1e-4;

class model_fixture : public ::testing::TestWithParam<const char *> {};

} // namespace

TEST_P(model_fixture, prompt_logits_match_transformers) {
    const std::string dir = fixtures + GetParam();
    const model m = load_model(dir);
    const model_reference ref = load_model_reference(dir);
    const auto n = static_cast<int64_t>(ref.prompt_ids.size());
    ASSERT_EQ(static_cast<int64_t>(ref.logits.size()), n);

    kv_block_manager kv(64, 16);
    cpu_backend be(m, 64, 16);
    const double worst = prompt_logits_error(be, kv, ref, m.hp.n_vocab);
    EXPECT_LE(worst, tolerance) << GetParam();
    RecordProperty("max_rel_error", std::to_string(worst));
}

TEST_P(model_fixture, chunked_prefill_decode_and_batching_agree_with_reference) {
    const std::string dir = fixtures + GetParam();
    const model m = load_model(dir);
    const model_reference ref = load_model_reference(dir);
    kv_block_manager kv(64, 16);
    cpu_backend be(m, 64, 16);
    // Every position, the chunk's last and each decode step, within the tolerance.
    EXPECT_LE(chunk_and_decode_error(be, kv, ref, m.hp.n_vocab, /*split=*/17), tolerance) << GetParam();
}

TEST_P(model_fixture, greedy_continuation_matches_transformers) {
    const std::string dir = fixtures + GetParam();
    const model_reference ref = load_model_reference(dir);
    engine_params ep;
    ep.model_path = dir;
    ep.n_ctx = 256;
    engine eng(ep);
    request r;
    r.prompt = ref.prompt_ids;
    r.max_tokens = static_cast<int64_t>(ref.greedy_ids.size());
    r.sampling.temperature = 0.0f;
    r.ignore_eos = true;
    run_stats st;
    const std::vector<result> out = eng.generate({r}, st);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].tokens, ref.greedy_ids);
}

INSTANTIATE_TEST_SUITE_P(tiny_hf, model_fixture,
                         ::testing::Values("llama_gqa_llama3rope_bf16", "llama_mha_tied_f32_oldconfig",
                                           "mistral_gqa4_f32", "qwen2_bias_tied_f16", "qwen3_qknorm_bf16_sharded",
                                           "qwen3_untied_f32"));
