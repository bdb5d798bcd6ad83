// The CUDA backend end to end: logits of each tiny Hugging Face checkpoint in tests/fixtures/models against the
// transformers logits in its reference.json (fp32 there, bf16 here), prefill in chunks + decode steps + a second
// sequence in the same batches, batches larger than the backend's workspaces (several passes), and greedy
// generation against the CPU backend (stories15M and the project's Qwen3 test model, when present). Skips without a
// GPU.
//
// Tolerance: the error relative to the logits' scale, max|a − b| / max|b| (as tests/model/test_logits.cpp, where
// the fp32 CPU backend meets 1e-4). bf16 weights and activations through two layers give ~1e-2; we allow
// tol_logits below and print the measured value of every fixture.
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "engine/engine.h"
#include "core/check.h"
#include "core/mapped_file.h"
#include "model/model.h"
#include "common/model_reference.h"
#include "ops_test_util.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <fstream>

using namespace specattn;
using namespace specattn::test;

namespace {

const std::string fixtures = std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/";
constexpr double tol_logits = 3e-2;

class cuda_model_fixture : public ::testing::TestWithParam<const char *> {};

} // namespace

TEST_P(cuda_model_fixture, prompt_logits_match_transformers) {
    SPECATTN_REQUIRE_GPU();
    const std::string dir = fixtures + GetParam();
    const model m = load_model(dir);
    const model_reference ref = load_model_reference(dir);
    const auto n = static_cast<int64_t>(ref.prompt_ids.size());

    for (int64_t max_rows : {int64_t{512}, int64_t{8}}) { // one pass; then 20 passes of at most 8 rows
        kv_block_manager kv(64, 16);
        cuda_backend be(m, 64, 16, max_rows);
        const double worst = prompt_logits_error(be, kv, ref, m.hp.n_vocab);
        EXPECT_LE(worst, tol_logits) << GetParam() << " max_rows " << max_rows;
        if (max_rows == 512) {
            RecordProperty("max_rel_error", std::to_string(worst));
        }
        std::printf("[ e2e ] %-28s %3lld prompt rows, max_rows %3lld: max rel logit error %.3g (tol %.0e)\n",
                    GetParam(), static_cast<long long>(n), static_cast<long long>(max_rows), worst, tol_logits);
    }
}

TEST_P(cuda_model_fixture, chunked_prefill_decode_and_batching_agree_with_reference) {
    SPECATTN_REQUIRE_GPU();
    const std::string dir = fixtures + GetParam();
    const model m = load_model(dir);
    const model_reference ref = load_model_reference(dir);
    const auto n = static_cast<int64_t>(ref.prompt_ids.size());
    const int64_t split = 17;

    kv_block_manager kv(64, 16);
    cuda_backend be(m, 64, 16, 64);
    const double worst = chunk_and_decode_error(be, kv, ref, m.hp.n_vocab, split);
    EXPECT_LE(worst, tol_logits) << GetParam();
    std::printf("[ e2e ] %-28s chunk + %3lld decode steps (2 sequences): max rel logit error %.3g\n", GetParam(),
                static_cast<long long>(n - split), worst);
}

INSTANTIATE_TEST_SUITE_P(tiny_hf, cuda_model_fixture,
                         ::testing::Values("llama_gqa_llama3rope_bf16", "llama_mha_tied_f32_oldconfig",
                                           "mistral_gqa4_f32", "qwen2_bias_tied_f16", "qwen3_qknorm_bf16_sharded",
                                           "qwen3_untied_f32"));

// The models of the greedy comparison, each skipped when absent: stories15M ($SPECATTN_STORIES_MODEL, which
// gpu_check.sh may point at a bf16 copy that fits the device transfer; else scripts/setup.sh's
// data/stories15M/stories15M.bin) and the project's long-context Qwen3 test model in models/.
namespace {
std::string greedy_model_path(const std::string & which) {
    if (which == "stories15M") {
        const char * env = std::getenv("SPECATTN_STORIES_MODEL");
        return env != nullptr && env[0] != '\0' ? std::string(env) : default_model_path();
    }
    return std::string(SPECATTN_SOURCE_DIR) + "/models/" + which;
}

class cuda_greedy : public ::testing::TestWithParam<const char *> {};
} // namespace

TEST_P(cuda_greedy, greedy_agrees_with_cpu) {
    SPECATTN_REQUIRE_GPU();
    const std::string path = greedy_model_path(GetParam());
    if (!file_exists(path) && !is_directory(path)) {
        GTEST_SKIP() << path << " not found";
    }
    constexpr int64_t n_gen = 60;
    std::vector<int32_t> prompt;
    std::vector<int32_t> gen[2]; // cpu, cuda
    for (int i = 0; i < 2; ++i) {
        engine_params ep;
        ep.model_path = path;
        ep.device = i == 0 ? "cpu" : "cuda";
        ep.n_ctx = 256;
        engine eng(ep);
        request r;
        r.prompt = eng.get_tokenizer().encode("Once upon a time", true);
        r.max_tokens = n_gen;
        r.sampling.temperature = 0.0f;
        r.ignore_eos = true;
        run_stats st;
        const std::vector<result> out = eng.generate({r}, st);
        ASSERT_EQ(out[0].tokens.size(), static_cast<size_t>(n_gen));
        gen[i] = out[0].tokens;
        prompt = r.prompt;
    }
    int64_t prefix = 0;
    while (prefix < n_gen && gen[0][static_cast<size_t>(prefix)] == gen[1][static_cast<size_t>(prefix)]) {
        ++prefix;
    }
    int64_t same = 0;
    for (int64_t i = 0; i < n_gen; ++i) {
        same += gen[0][static_cast<size_t>(i)] == gen[1][static_cast<size_t>(i)] ? 1 : 0;
    }

    // Teacher-forced: both backends over the prompt + the CPU's continuation; per position, does the CUDA argmax
    // pick the CPU's token, and how far apart are the logits?
    const model m = load_model(path);
    std::vector<int32_t> seq_toks = prompt;
    seq_toks.insert(seq_toks.end(), gen[0].begin(), gen[0].end() - 1);
    const auto n = static_cast<int64_t>(seq_toks.size());
    std::vector<float> logits[2];
    for (int i = 0; i < 2; ++i) {
        kv_block_manager kv(32, 16);
        std::unique_ptr<backend> be;
        if (i == 0) {
            be = std::make_unique<cpu_backend>(m, 32, 16);
        } else {
            be = std::make_unique<cuda_backend>(m, 32, 16, 512);
        }
        const int32_t s = kv.add_sequence();
        kv.append(s, n);
        forward_batch batch;
        batch.add_sequence_rows(s, seq_toks.data(), n, 0, false);
        for (int64_t r = static_cast<int64_t>(prompt.size()) - 1; r < n; ++r) {
            batch.logit_rows.push_back(static_cast<int32_t>(r));
        }
        be->forward(batch, kv, logits[i]);
    }
    const int64_t n_vocab = m.hp.n_vocab;
    int64_t forced_same = 0;
    double worst = 0.0;
    for (int64_t j = 0; j < n_gen; ++j) {
        const float * row = logits[1].data() + j * n_vocab;
        const int64_t pick = std::max_element(row, row + n_vocab) - row;
        forced_same += pick == gen[0][static_cast<size_t>(j)] ? 1 : 0;
        const std::vector<float> cpu_row(logits[0].begin() + j * n_vocab, logits[0].begin() + (j + 1) * n_vocab);
        worst = std::max(worst, max_rel_error(row, cpu_row));
    }
    std::printf("[ e2e ] %s greedy: first %lld of %lld tokens agree (%lld of %lld at equal positions); "
                "teacher-forced argmax agreement %lld/%lld; max rel logit error vs CPU %.3g\n",
                GetParam(), static_cast<long long>(prefix), static_cast<long long>(n_gen), static_cast<long long>(same),
                static_cast<long long>(n_gen), static_cast<long long>(forced_same), static_cast<long long>(n_gen),
                worst);
    RecordProperty("greedy_prefix_agree", std::to_string(prefix));
    RecordProperty("teacher_forced_agree", std::to_string(forced_same));
    // NOTE(cuda): bf16 activations may flip a near-tie late in a free-running greedy run, after which the two
    // continuations differ for good; that is expected and reported above, not hidden. What must hold: the early
    // tokens agree, and with the same history (teacher-forced) the argmax almost always agrees.
    // Where the free-running outputs part (if they do), the two tokens must be a near-tie: on the CPU's logits of
    // that position (the same history for both) they are no further apart than twice the largest logit difference
    // between the backends there. (Before the code model was retrained with long copies, session 10, its first 10
    // tokens agreed, which this test required; the retrained weights part at token 5.)
    if (prefix < n_gen) {
        const auto row = [&](int i) { return logits[i].data() + prefix * n_vocab; };
        double diff = 0.0;
        for (int64_t v = 0; v < n_vocab; ++v) {
            diff = std::max(diff, std::fabs(static_cast<double>(row(1)[v]) - row(0)[v]));
        }
        const double gap = static_cast<double>(row(0)[gen[0][static_cast<size_t>(prefix)]]) -
                           row(0)[gen[1][static_cast<size_t>(prefix)]];
        std::printf("[ e2e ] %s: outputs part at token %lld: CPU logit gap %.4g, backend difference there %.4g\n",
                    GetParam(), static_cast<long long>(prefix), gap, diff);
        EXPECT_LE(gap, 2.0 * diff) << "the outputs part at token " << prefix << ", which is not a near-tie";
    }
    EXPECT_GE(forced_same, n_gen * 9 / 10);
    EXPECT_LE(worst, 5e-2);
}

INSTANTIATE_TEST_SUITE_P(models, cuda_greedy, ::testing::Values("stories15M", "specattn-code-19m-16k"));
