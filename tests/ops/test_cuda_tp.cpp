// Tensor parallelism on the CUDA backend (docs/tensor_parallel.md), on one GPU:
//   - TP=1 through NCCL (a communicator of one rank: all-gather + rank-ordered sum, captured in the graphs) equals the
//     plain CUDA backend bit for bit: the logits of prefill, draft and verify passes, greedy and speculative output;
//   - N ranks sharing the GPU through cuda_local_group (sums by a kernel in rank order) prove the CUDA sharding:
//     TP=2 on the code model (2 KV heads) and on the tiny checkpoints, TP=4 on a 4-KV-head checkpoint give TP=1's
//     logits within a tight tolerance, its shared score sinks after the cross-rank reduction, each rank its KV
//     heads' part of a per-KV-head sink, and TP=1's greedy and speculative output for every selector;
//   - what NCCL does with two ranks of one communicator on one GPU (printed; if it accepts them, TP=2 through NCCL).
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_collectives.h"
#include "backend/cuda/cuda_tp_backend.h"
#include "common/model_reference.h"
#include "common/spec_cases.h"
#include "common/test_tokens.h"
#include "common/tp_sinks.h"
#include "core/check.h"
#include "engine/engine.h"
#include "model/model.h"
#include "ops_test_util.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

using namespace specattn;

namespace {

const std::string source_dir = SPECATTN_SOURCE_DIR;
const std::string code_model = source_dir + "/models/specattn-code-19m-16k";
const std::string fixtures = source_dir + "/tests/fixtures/models/";

// bf16 activations: TP=N adds the ranks' fp32 partial projections in another order than one GEMM and rounds the sum
// to bf16 once, as TP=1 does; different GEMM shapes may take other K splits. Measured (first GPU run): logits 8.8e-3
// on the code model, 2.3e-3 on qwen2_bias_tied_f16, 0 on the other checkpoints; shared sinks 1.8e-2 on the code
// model (softmax weights of a prefill, whose GEMMs are not batch-invariant). Measured values are printed. Since the
// invariant GEMM algorithms are timed at the engine's decode batch and verification size (gemm.h), the code model's
// sharded shapes take other cuBLASLt algorithms than before and its logits differ by 2.2e-2 (2026-11-29; greedy
// tokens still equal): the bound is bf16's, 3e-2 like the sinks', not the first run's value.
// That bound holds for the prefill. Every later pass reads or writes K/V through the top-16 picks over the sink
// scores, which differ by ~1e-2 between shardings: one other pick changes a draft row's attention and, through its
// K/V, the verification after it (seen on the code model retrained with long copies, session 10: 6.9e-2 with 9 of 9
// greedy tokens equal). Those passes get a bound of 1e-1, which a wrong slice (errors of order 1) still exceeds.
constexpr double tp_logits_tol = 3e-2;
constexpr double tp_later_passes_tol = 1e-1;
constexpr double tp_sinks_tol = 3e-2;

constexpr int64_t n_pages = 64;
constexpr int64_t page_size = 16;
constexpr int64_t max_rows = 64; // a 150-row prefill runs in three passes

class scoped_env {
  public:
    scoped_env(const char * name, const char * value) : name_(name) { setenv(name, value, 1); }
    ~scoped_env() { unsetenv(name_); }

  private:
    const char * name_;
};

int32_t argmax_of(const float * row, int64_t n) {
    return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

struct scenario_out {
    std::vector<std::vector<float>> logits; // per pass
    std::vector<int32_t> tokens;            // greedy tokens chosen from the passes (the prefill's first)
};

// A prefill of 150 rows in three passes with a shared and a per-KV-head sink, then eight greedy steps: draft rows
// reading the held top-16 list of the shared sink and verification passes of three rows that refill it (decode-like
// passes: batch-invariant, captured and replayed as graphs). after_prefill inspects the sinks. Each step's input
// token is the backend's own greedy choice, or feed's (a reference run's tokens): once near-tied random logits pick
// another token, the two runs' later passes see other inputs and their logits cannot be compared.
scenario_out run_scenario(backend & be, int64_t n_vocab, const std::function<void(int32_t seq)> & after_prefill,
                          const std::vector<int32_t> * feed = nullptr) {
    kv_block_manager kv(n_pages, page_size);
    const int32_t seq = kv.add_sequence();
    const std::vector<int32_t> toks = test::spread_tokens(200, n_vocab);
    scenario_out out;
    std::vector<float> logits;

    forward_batch b;
    kv.append(seq, 150);
    b.add_sequence_rows(seq, toks.data(), 150, 0, true);
    b.prefill = true;
    score_sink shared;
    shared.seq = seq;
    shared.id = 0;
    shared.mode = score_mode::score_mode_weight;
    shared.domain = 140;
    shared.rows = {145, 149};
    score_sink per_kv = shared;
    per_kv.id = 1;
    per_kv.mode = score_mode::score_mode_logit;
    per_kv.per_kv_head = true;
    per_kv.domain = 120;
    per_kv.rows = {149};
    b.sinks = {shared, per_kv};
    be.forward(b, kv, logits);
    out.logits.push_back(logits);
    if (after_prefill) {
        after_prefill(seq);
    }
    be.select_top_k(seq, 0, 16);
    int64_t recent_from = 140;
    int64_t pos = 150;
    int32_t next = argmax_of(logits.data(), n_vocab);
    out.tokens.push_back(next);
    if (feed != nullptr) {
        next = feed->at(0);
    }
    for (int step = 0; step < 8; ++step) {
        b.clear();
        if (step % 3 == 2) { // verification: three dense rows refill the shared sink
            const int32_t rows[3] = {next, toks[static_cast<size_t>(pos + 1)], toks[static_cast<size_t>(pos + 2)]};
            kv.append(seq, 3);
            b.add_sequence_rows(seq, rows, 3, pos, true);
            b.logit_rows = {0, 1, 2};
            score_sink s = shared;
            s.domain = pos;
            s.rows = {0, 1, 2};
            b.sinks = {s};
            be.forward(b, kv, logits);
            be.select_top_k(seq, 0, 16);
            recent_from = pos;
            pos += 3;
            next = argmax_of(logits.data() + 2 * n_vocab, n_vocab);
        } else { // a draft row: the held list, then [recent_from, pos]
            kv.append(seq, 1);
            b.add_sequence_rows(seq, &next, 1, pos, true);
            draft_attention d;
            d.active = true;
            d.n_list = 16;
            d.recent_from = recent_from;
            b.draft = {d};
            be.forward(b, kv, logits);
            pos += 1;
            next = argmax_of(logits.data(), n_vocab);
        }
        out.logits.push_back(logits);
        out.tokens.push_back(next);
        if (feed != nullptr) {
            next = feed->at(static_cast<size_t>(step) + 1);
        }
    }
    return out;
}

std::vector<int32_t> code_prompt(const engine & eng, int64_t n_tokens, int64_t skip) {
    std::ifstream f(source_dir + "/src/backend/cpu/cpu_backend.cpp");
    std::stringstream ss;
    ss << f.rdbuf();
    const std::vector<int32_t> ids = eng.get_tokenizer().encode(ss.str(), true);
    SPECATTN_CHECK(static_cast<int64_t>(ids.size()) >= skip + n_tokens, "prompt source too short");
    return std::vector<int32_t>(ids.begin() + skip, ids.begin() + skip + n_tokens);
}

engine_params cuda_params(const std::string & path, int32_t tp, int64_t n_ctx) {
    engine_params ep;
    ep.model_path = path;
    ep.device = "cuda";
    ep.n_ctx = n_ctx;
    ep.n_seq_max = 2;
    ep.tp = tp;
    return ep;
}

// Greedy and speculative generation of an engine of `tp` ranks (SPECATTN_TP_TRANSPORT=transport) against TP=1 on
// the plain CUDA backend: the same tokens; `exact`: also the same accepted drafts.
void expect_generation_equal(const std::string & path, int32_t tp, const char * transport, int64_t n_ctx,
                             const std::function<std::vector<request>(const engine &)> & make_requests,
                             const std::vector<int64_t> & gammas, const std::vector<double> & ratios,
                             int64_t min_tokens) {
    SCOPED_TRACE(path + " tp " + std::to_string(tp) + " " + transport);
    engine one(cuda_params(path, 1, n_ctx));
    const scoped_env env("SPECATTN_TP_TRANSPORT", transport);
    engine many(cuda_params(path, tp, n_ctx));
    const std::vector<request> reqs = make_requests(one);
    run_stats st;
    const std::vector<result> ar = one.generate(reqs, st);
    const std::vector<result> ar_tp = many.generate(reqs, st);
    for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(ar_tp[i].tokens, ar[i].tokens) << "autoregressive, request " << i;
    }
    for (spec_method m : all_selectors()) {
        for (int64_t gamma : gammas) {
            for (double ratio : ratios) {
                spec_params sp = sparse_spec(m, gamma, ratio);
                sp.min_tokens = min_tokens;
                sp.block_size = 16; // on the CUDA backend Quest's blocks are KV pages
                run_stats s1;
                run_stats sn;
                one.generate(reqs, s1, nullptr, sp);
                const std::vector<result> out = many.generate(reqs, sn, nullptr, sp);
                for (size_t i = 0; i < reqs.size(); ++i) {
                    EXPECT_EQ(out[i].tokens, ar[i].tokens)
                        << spec_method_name(m) << " γ " << gamma << " ratio " << ratio << " request " << i;
                }
                std::printf("[ tp %d %-5s ] %-10s γ %lld ratio %.2f: accepted %lld of %lld (TP=1: %lld)\n", tp,
                            transport, spec_method_name(m), static_cast<long long>(gamma), ratio,
                            static_cast<long long>(sn.spec.accepted), static_cast<long long>(sn.spec.proposed),
                            static_cast<long long>(s1.spec.accepted));
            }
        }
    }
}

std::vector<request> code_requests(const engine & eng) {
    std::vector<request> reqs(2);
    reqs[0].prompt = code_prompt(eng, 500, 0);
    reqs[1].prompt = code_prompt(eng, 260, 700);
    reqs[0].max_tokens = 40;
    reqs[1].max_tokens = 27;
    for (request & r : reqs) {
        r.sampling.temperature = 0.0f;
        r.ignore_eos = true;
    }
    return reqs;
}

// The scenario on N ranks of `transport` (devices as given) against the plain backend.
void expect_scenario_close(const std::string & path, int32_t n_ranks, tp_transport transport,
                           const std::vector<int> & devices, double logits_tol = tp_logits_tol,
                           double sinks_tol = tp_sinks_tol, bool same_tokens = true,
                           size_t compared_passes = SIZE_MAX) {
    SCOPED_TRACE(path + " tp " + std::to_string(n_ranks));
    const model m = load_model(path);
    const model_hparams & hp = m.hp;
    cuda_backend one(m, n_pages, page_size, max_rows);
    std::vector<float> shared_one;
    std::vector<float> per_kv_one;
    const scenario_out want = run_scenario(one, hp.n_vocab, [&](int32_t seq) {
        shared_one = one.sink_scores(seq, 0);
        per_kv_one = one.sink_scores(seq, 1);
    });
    cuda_tp_backend tp(m, n_ranks, n_pages, page_size, max_rows, transport, devices);
    const scenario_out got = run_scenario(
        tp, hp.n_vocab,
        [&](int32_t seq) {
            for (int32_t r = 0; r < n_ranks; ++r) {
                ASSERT_EQ(cudaSetDevice(tp.device(r)), cudaSuccess);
                const std::vector<float> shared = tp.rank(r).sink_scores(seq, 0);
                ASSERT_EQ(shared.size(), shared_one.size());
                const double e_shared = max_rel_error(shared.data(), shared_one);
                const std::vector<float> part =
                    test::kv_head_part(per_kv_one, hp.n_layer, hp.n_head_kv, tp.plan(r).kv_heads, 120);
                const std::vector<float> per_kv = tp.rank(r).sink_scores(seq, 1);
                ASSERT_EQ(per_kv.size(), part.size());
                const double e_kv = max_rel_error(per_kv.data(), part);
                std::printf("[ tp %d ] rank %d sinks: shared %.3g, per-KV-head part %.3g\n", n_ranks, r, e_shared,
                            e_kv);
                EXPECT_LE(e_shared, sinks_tol) << "rank " << r;
                EXPECT_LE(e_kv, sinks_tol) << "rank " << r;
            }
            ASSERT_EQ(cudaSetDevice(tp.device(0)), cudaSuccess);
        },
        &want.tokens);
    ASSERT_EQ(got.logits.size(), want.logits.size());
    double worst = 0.0;       // the prefill
    double worst_later = 0.0; // the draft and verify passes
    for (size_t i = 0; i < want.logits.size() && i < compared_passes; ++i) {
        ASSERT_EQ(got.logits[i].size(), want.logits[i].size()) << "pass " << i;
        double & w = i == 0 ? worst : worst_later;
        w = std::max(w, max_rel_error(got.logits[i].data(), want.logits[i]));
    }
    int64_t same = 0;
    for (size_t i = 0; i < want.tokens.size() && i < got.tokens.size() && got.tokens[i] == want.tokens[i]; ++i) {
        ++same;
    }
    std::printf("[ tp %d ] %s: max rel logit error: prefill %.3g (tol %.0e), %zu later passes %.3g (tol %.0e); first "
                "%lld of %zu greedy tokens equal\n",
                n_ranks, path.c_str(), worst, logits_tol, std::min(compared_passes, want.logits.size()) - 1,
                worst_later, std::max(logits_tol, tp_later_passes_tol), static_cast<long long>(same),
                want.tokens.size());
    EXPECT_LE(worst, logits_tol);
    EXPECT_LE(worst_later, std::max(logits_tol, tp_later_passes_tol));
    if (same_tokens) {
        EXPECT_EQ(got.tokens, want.tokens) << "greedy tokens of the draft and verify passes";
    }
}

} // namespace

TEST(cuda_tp, one_rank_through_nccl_equals_the_plain_backend_bit_for_bit) {
    SPECATTN_REQUIRE_GPU();
    std::printf("[ tp ] NCCL %s\n", nccl_version_string().c_str());
    const model m = load_model(code_model);
    cuda_backend plain(m, n_pages, page_size, max_rows);
    cuda_tp_backend nccl(m, 1, n_pages, page_size, max_rows, tp_transport::tp_transport_nccl);
    const scenario_out want = run_scenario(plain, m.hp.n_vocab, nullptr);
    const scenario_out got = run_scenario(nccl, m.hp.n_vocab, nullptr);
    ASSERT_EQ(got.logits.size(), want.logits.size());
    for (size_t i = 0; i < want.logits.size(); ++i) {
        ASSERT_EQ(got.logits[i].size(), want.logits[i].size());
        EXPECT_EQ(std::memcmp(got.logits[i].data(), want.logits[i].data(), want.logits[i].size() * sizeof(float)), 0)
            << "pass " << i << ": max rel error " << max_rel_error(got.logits[i].data(), want.logits[i]);
    }
    EXPECT_EQ(got.tokens, want.tokens);
    expect_generation_equal(code_model, 1, "nccl", 2048, code_requests, {4}, {0.05, 0.3}, 32);
}

TEST(cuda_tp, ranks_sharing_one_gpu_give_one_rank_logits_and_sinks) {
    SPECATTN_REQUIRE_GPU();
    const tp_transport local = tp_transport::tp_transport_local;
    expect_scenario_close(code_model, 2, local, {});
    for (const char * name :
         {"llama_gqa_llama3rope_bf16", "mistral_gqa4_f32", "qwen2_bias_tied_f16", "qwen3_qknorm_bf16_sharded"}) {
        expect_scenario_close(fixtures + name, 2, local, {});
    }
    expect_scenario_close(fixtures + "llama_mha_tied_f32_oldconfig", 4, local, {});
}

TEST(cuda_tp, generation_of_ranks_sharing_one_gpu_equals_one_rank) {
    SPECATTN_REQUIRE_GPU();
    expect_generation_equal(code_model, 2, "local", 2048, code_requests, {1, 4}, {0.05, 0.3}, 32);
    expect_generation_equal(fixtures + "llama_mha_tied_f32_oldconfig", 4, "local", 256, two_requests, {1, 5},
                            {0.07, 0.25}, 4);
}

TEST(cuda_tp, a_preset_sharded_on_the_gpu_is_the_unsharded_preset) {
    SPECATTN_REQUIRE_GPU();
    // Weights generated whole and sliced per rank (init_random_shard): TP=2 runs the TP=1 model, and a preset's
    // `specattn bench --tp N` measures the model TP=1 measures.
    // Random weights through 32 layers amplify rounding: a wrong slice would give errors of order 1, not 1e-1, and
    // greedy tokens of random logits may part. Only the prefill's logits are compared (with the sinks): every later
    // pass reads or writes K/V through top-16 picks over sink scores that differ by ~1e-2 between the shardings,
    // and on random weights one other pick moves the logits by 0.1-1 (seen: 0.06 and 0.21 with the same code,
    // the GEMM algorithms tuned differently).
    expect_scenario_close("preset:llama-3.1-8b", 2, tp_transport::tp_transport_local, {}, 0.1, 0.2, false, 1);
}

// Run alone (it may hang if NCCL accepts the ranks and then cannot run them): what NCCL does with two ranks of one
// communicator on one GPU; if it accepts them, TP=2 through NCCL on that GPU.
TEST(cuda_tp_nccl_probe, two_ranks_on_one_gpu) {
    SPECATTN_REQUIRE_GPU();
    std::unique_ptr<cuda_collectives_group> g;
    try {
        g = make_nccl_group({0, 0}, size_t{1} << 20);
    } catch (const error & e) {
        std::printf("[ nccl probe ] two ranks on GPU 0 refused: %s\n", e.what());
        GTEST_SKIP() << "NCCL refuses two ranks of a communicator on one GPU";
    }
    g.reset();
    std::printf("[ nccl probe ] NCCL accepted two ranks on GPU 0; running TP=2 through NCCL\n");
    expect_scenario_close(code_model, 2, tp_transport::tp_transport_nccl, {0, 0});
}
