// Speculative decoding on the CUDA backend: the score sinks and held selections against the CPU reference (the
// sinks within bf16 tolerance; each held list exactly the top k of the GPU's own scores, ties to lower positions;
// Quest's blocks from the GPU's key bounds), and end to end: greedy speculative output equals greedy
// autoregressive output on the GPU for every selector, γ and budget, two sequences per batch, on the project's
// long-context Qwen3 model over a prompt of real code.
#include "common/test_tokens.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/check.h"
#include "core/mapped_file.h"
#include "engine/engine.h"
#include "model/model.h"
#include "ops_test_util.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

using namespace specattn;
using namespace specattn::test;

namespace {

const std::string fixtures = std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/";

// One prefill of n tokens with the given sinks, on a backend with its own block manager.
void prefill_with_sinks(backend & be, kv_block_manager & kv, int32_t seq, int64_t n, int64_t n_vocab,
                        const std::vector<score_sink> & sinks) {
    const std::vector<int32_t> toks = test::spread_tokens(n, n_vocab);
    kv.append(seq, n);
    forward_batch batch;
    batch.add_sequence_rows(seq, toks.data(), n, 0, true);
    batch.sinks = sinks;
    std::vector<float> logits;
    be.forward(batch, kv, logits);
}

// The GPU's scores of sink s against the CPU reference's (bf16 K/V and activations: within 3% of the largest score of
// each layer and group); the GPU's scores, for more checks.
std::vector<float> expect_scores_match(const cpu_backend & cpu, const cuda_backend & gpu, int32_t seq,
                                       const score_sink & s, const model_hparams & hp) {
    const std::vector<float> & want = *cpu.sink_scores(seq, s.id);
    std::vector<float> got = gpu.sink_scores(seq, s.id);
    EXPECT_EQ(got.size(), want.size()) << "sink " << s.id;
    const int64_t groups = s.per_kv_head ? hp.n_head_kv : 1;
    for (int64_t l = 0; l < hp.n_layer * groups && got.size() == want.size(); ++l) {
        float scale = 0;
        for (int64_t p = 0; p < s.domain; ++p) {
            scale = std::max(scale, std::abs(want[static_cast<size_t>(l * s.domain + p)]));
        }
        for (int64_t p = 0; p < s.domain; ++p) {
            const size_t i = static_cast<size_t>(l * s.domain + p);
            if (std::fabs(got[i] - want[i]) > 3e-2f * scale + 1e-4f) {
                ADD_FAILURE() << "sink " << s.id << " block " << l << " pos " << p << ": " << got[i] << " against "
                              << want[i];
                return got;
            }
        }
    }
    return got;
}

} // namespace

TEST(cuda_spec, sinks_and_held_lists_match_the_cpu_reference) {
    SPECATTN_REQUIRE_GPU();
    const model m = load_model(fixtures + "llama_gqa_llama3rope_bf16");
    const model_hparams & hp = m.hp;
    const int64_t n = 203; // several pages of 16, a partial last page, domains not multiples of anything
    kv_block_manager kv_cpu(32, 16);
    kv_block_manager kv_gpu(32, 16);
    cpu_backend cpu(m, 32, 16);
    cuda_backend gpu(m, 32, 16, 256);
    const int32_t s_cpu = kv_cpu.add_sequence();
    const int32_t s_gpu = kv_gpu.add_sequence();
    ASSERT_EQ(s_cpu, s_gpu);
    score_sink a; // logit mode, two rows, shared
    a.seq = s_cpu;
    a.id = 0;
    a.mode = score_mode::score_mode_logit;
    a.domain = 197;
    a.rows = {196, 202};
    score_sink b = a; // weight mode, one row, per KV head
    b.id = 1;
    b.mode = score_mode::score_mode_weight;
    b.per_kv_head = true;
    b.domain = 150;
    b.rows = {180};
    score_sink c = b; // weight, shared, all rows of a range
    c.id = 2;
    c.per_kv_head = false;
    c.domain = 101;
    c.rows = {100, 101, 102, 103};
    score_sink d = a; // logit mode over 19 rows: G 19 + 1 > 32 vectors, collected per head instead of summed
    d.id = 3;
    d.domain = 161;
    d.rows = {160, 178};
    prefill_with_sinks(cpu, kv_cpu, s_cpu, n, hp.n_vocab, {a, b, c, d});
    prefill_with_sinks(gpu, kv_gpu, s_gpu, n, hp.n_vocab, {a, b, c, d});

    for (const score_sink & s : {a, b, c, d}) {
        const std::vector<float> got = expect_scores_match(cpu, gpu, s_cpu, s, hp);
        ASSERT_FALSE(HasFailure());
        const int64_t groups = s.per_kv_head ? hp.n_head_kv : 1;
        // The GPU's held lists are exactly the top k of its own scores (ties to lower positions).
        const int64_t k = 37;
        EXPECT_EQ(gpu.select_top_k(s_gpu, s.id, k), std::min<int64_t>(k, s.domain));
        for (int64_t l = 0; l < hp.n_layer; ++l) {
            for (int64_t h = 0; h < hp.n_head_kv; ++h) {
                const int64_t g = s.per_kv_head ? h : 0;
                const std::vector<int64_t> top = top_k_positions(got.data() + (l * groups + g) * s.domain, s.domain, k);
                const std::vector<int32_t> list = gpu.held_list(s_gpu, l, h, k);
                EXPECT_EQ(std::vector<int64_t>(list.begin(), list.end()), top)
                    << "sink " << s.id << " layer " << l << " KV head " << h;
            }
        }
    }
    EXPECT_THROW(gpu.select_top_k(s_gpu, 9, 5), error) << "no such sink";
}

// Weight-mode sinks of verifications (7 rows: the batch-invariant split-D plan, per-head logit rows reduced after
// the attention): a shared and a per-KV-head sink of the same rows (two readers: the rows stay in memory), then one
// sink alone (one reader: kept in L2 and dropped as read, cuda_selection::put_jobs). Scores as the CPU's.
TEST(cuda_spec, verify_weight_sinks_match_the_cpu_reference) {
    SPECATTN_REQUIRE_GPU();
    const model m = load_model(fixtures + "llama_gqa_llama3rope_bf16");
    const model_hparams & hp = m.hp;
    kv_block_manager kv_cpu(32, 16);
    kv_block_manager kv_gpu(32, 16);
    cpu_backend cpu(m, 32, 16);
    cuda_backend gpu(m, 32, 16, 256);
    const int32_t seq = kv_cpu.add_sequence();
    ASSERT_EQ(kv_gpu.add_sequence(), seq);
    int64_t n = 203;
    prefill_with_sinks(cpu, kv_cpu, seq, n, hp.n_vocab, {});
    prefill_with_sinks(gpu, kv_gpu, seq, n, hp.n_vocab, {});
    const auto verify = [&](backend & be, kv_block_manager & kv, const std::vector<score_sink> & sinks) {
        const std::vector<int32_t> toks = test::spread_tokens(n + 7, hp.n_vocab);
        kv.append(seq, 7);
        forward_batch batch;
        batch.add_sequence_rows(seq, toks.data() + n, 7, n, true);
        batch.sinks = sinks;
        std::vector<float> logits;
        be.forward(batch, kv, logits);
    };
    score_sink shared;
    shared.seq = seq;
    shared.mode = score_mode::score_mode_weight;
    score_sink per_kv = shared;
    per_kv.id = 1;
    per_kv.per_kv_head = true;
    for (const std::vector<score_sink> & pass : {std::vector<score_sink>{shared, per_kv}, {shared}}) {
        std::vector<score_sink> sinks = pass;
        for (score_sink & s : sinks) {
            s.domain = n + 1; // the first row's prefix and itself
            s.rows = {0, 6};  // batch rows: the pass's first and last
        }
        verify(cpu, kv_cpu, sinks);
        verify(gpu, kv_gpu, sinks);
        for (const score_sink & s : sinks) {
            expect_scores_match(cpu, gpu, seq, s, hp);
            ASSERT_FALSE(HasFailure()) << "the pass at " << n;
        }
        n += 7;
    }
}

namespace {

// A prompt of real code (this repository's attention plan), tokenized by the model's own tokenizer.
std::vector<int32_t> code_prompt(const engine & eng, int64_t n_tokens, int64_t skip) {
    std::ifstream f(std::string(SPECATTN_SOURCE_DIR) + "/src/backend/cuda/cuda_backend.cpp");
    std::stringstream ss;
    ss << f.rdbuf();
    std::vector<int32_t> ids = eng.get_tokenizer().encode(ss.str(), true);
    SPECATTN_CHECK(static_cast<int64_t>(ids.size()) >= skip + n_tokens, "prompt source too short");
    return std::vector<int32_t>(ids.begin() + skip, ids.begin() + skip + n_tokens);
}

} // namespace

TEST(cuda_spec, greedy_speculative_equals_autoregressive_for_every_selector) {
    SPECATTN_REQUIRE_GPU();
    const std::string path = std::string(SPECATTN_SOURCE_DIR) + "/models/specattn-code-19m-16k";
    engine_params ep;
    ep.model_path = path;
    ep.device = "cuda";
    ep.n_ctx = 4096;
    ep.n_seq_max = 2;
    engine eng(ep);
    std::vector<request> reqs(2);
    reqs[0].prompt = code_prompt(eng, 1500, 0);
    reqs[1].prompt = code_prompt(eng, 700, 1900);
    reqs[0].max_tokens = 48;
    reqs[1].max_tokens = 37; // ends mid-iteration for most γ
    for (request & r : reqs) {
        r.sampling.temperature = 0.0f;
        r.ignore_eos = true;
    }
    run_stats st;
    const std::vector<result> ar = eng.generate(reqs, st);

    const std::vector<spec_method> selectors = {spec_method::spec_method_dense,  spec_method::spec_method_streaming,
                                                spec_method::spec_method_quest,  spec_method::spec_method_specextend,
                                                spec_method::spec_method_pillar, spec_method::spec_method_specattn};
    bool some_rejected = false;
    for (spec_method m : selectors) {
        for (int64_t gamma : {1, 4, 6}) {
            for (double ratio : {0.05, 0.3}) {
                spec_params sp;
                sp.method = m;
                sp.draft_len = gamma;
                sp.ratio = ratio;
                sp.min_tokens = 64;
                run_stats ss;
                const std::vector<result> out = eng.generate(reqs, ss, nullptr, sp);
                for (size_t i = 0; i < reqs.size(); ++i) {
                    EXPECT_EQ(out[i].tokens, ar[i].tokens)
                        << spec_method_name(m) << " γ " << gamma << " ratio " << ratio << " sequence " << i;
                }
                const double acc = ss.spec.acceptance_rate();
                std::printf("[ spec ] %-10s γ %lld ratio %.2f: acceptance %.3f τ %.2f\n", spec_method_name(m),
                            static_cast<long long>(gamma), ratio, acc, ss.spec.tau());
                if (m == spec_method::spec_method_dense) {
                    // Dense drafts compute what verification computes, up to bf16 reduction order.
                    EXPECT_GE(acc, 0.95) << "dense γ " << gamma;
                } else {
                    some_rejected = some_rejected || acc < 1.0;
                }
            }
        }
    }
    EXPECT_TRUE(some_rejected) << "sparse drafts were never rejected: the drafts may not be sparse";
}
