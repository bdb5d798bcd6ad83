// What a CUDA forward returns besides logits: greedy ids picked on the device (forward_argmax) and tokens sampled on
// the device (forward_sample), and speculative sampling's drafts and acceptance on the device, must be exactly what
// the host picks from the same passes' logits — the backend base class's own implementations, called on the same
// CUDA backend, and the engine with SPECATTN_HOST_SAMPLING=1 are the references.
#include "common/test_tokens.h"
#include "backend/cuda/cuda_backend.h"
#include "core/check.h"
#include "engine/engine.h"
#include "model/model.h"
#include "ops_test_util.h"

#include <cmath>
#include <cstdlib>

using namespace specattn;
using namespace specattn::test;

namespace {

const std::string fixtures = std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/";

// Two sequences of 37 and 20 rows in one decode-like (batch-invariant) pass, with logits wanted from several rows
// of each; running it again rewrites the same K/V with the same values, so every call sees the same logits.
struct two_sequences {
    kv_block_manager kv{16, 16};
    forward_batch batch;

    explicit two_sequences(int64_t n_vocab) {
        const std::vector<int32_t> toks = spread_tokens(57, n_vocab);
        const int32_t a = kv.add_sequence();
        const int32_t b = kv.add_sequence();
        kv.append(a, 37);
        kv.append(b, 20);
        batch.add_sequence_rows(a, toks.data(), 37, 0, false);
        batch.add_sequence_rows(b, toks.data() + 37, 20, 0, false);
        batch.logit_rows = {36, 3, 56, 40, 0, 20, 37};
    }
};

// A small checkpoint on the GPU with the two sequences' batch.
struct gpu_world {
    model m = load_model(fixtures + "llama_gqa_llama3rope_bf16");
    cuda_backend gpu{m, 16, 16, 64};
    two_sequences t{m.hp.n_vocab};
};

} // namespace

TEST(cuda_outputs, device_argmax_equals_the_host_argmax_of_the_logits) {
    SPECATTN_REQUIRE_GPU();
    gpu_world w;
    cuda_backend & gpu = w.gpu;
    two_sequences & t = w.t;
    std::vector<int32_t> host;
    gpu.backend::forward_argmax(t.batch, t.kv, host); // forward() + argmax on the host
    std::vector<int32_t> device;
    gpu.forward_argmax(t.batch, t.kv, device);
    ASSERT_EQ(device.size(), t.batch.logit_rows.size());
    EXPECT_EQ(device, host);
}

TEST(cuda_outputs, device_sampling_draws_what_the_host_draws_from_the_same_logits) {
    SPECATTN_REQUIRE_GPU();
    gpu_world w;
    cuda_backend & gpu = w.gpu;
    two_sequences & t = w.t;
    // One row per filter (and greedy among sampled rows), at uniforms spread over [0, 1).
    std::vector<sampling_params> params(7);
    params[0].temperature = 0.0f;
    params[1].temperature = 0.8f;
    params[2].temperature = 1.0f;
    params[2].top_k = 5;
    params[3].temperature = 0.7f;
    params[3].top_p = 0.9f;
    params[4].temperature = 1.3f;
    params[4].min_p = 0.05f;
    params[5].temperature = 1.0f;
    params[5].top_k = 40;
    params[5].top_p = 0.5f;
    params[6].temperature = 2.0f;
    for (double base : {0.0, 0.13, 0.61}) {
        std::vector<double> u;
        for (size_t j = 0; j < params.size(); ++j) {
            u.push_back(std::fmod(base + 0.137 * static_cast<double>(j), 1.0));
        }
        u.back() = 0.999999; // the end of the inverse CDF
        std::vector<int32_t> host;
        gpu.backend::forward_sample(t.batch, t.kv, params, u, host);
        std::vector<int32_t> device;
        gpu.forward_sample(t.batch, t.kv, params, u, device);
        EXPECT_EQ(device, host) << "uniforms from " << base;
    }
}

TEST(cuda_outputs, sampling_requests_of_the_wrong_size_are_errors) {
    SPECATTN_REQUIRE_GPU();
    gpu_world w;
    cuda_backend & gpu = w.gpu;
    two_sequences & t = w.t;
    std::vector<int32_t> ids;
    const std::vector<sampling_params> params(3);
    EXPECT_THROW(gpu.forward_sample(t.batch, t.kv, params, std::vector<double>(3, 0.5), ids), error);
    std::vector<sampling_params> bad(t.batch.logit_rows.size());
    bad[1].temperature = 1.0f;
    bad[1].top_p = 1.5f;
    EXPECT_THROW(gpu.forward_sample(t.batch, t.kv, bad, std::vector<double>(bad.size(), 0.5), ids), error);
}

TEST(cuda_outputs, sampled_decoding_on_the_device_equals_sampling_on_the_host) {
    // The same engine twice on the GPU: once drawing tokens, drafts and acceptance on the device, once returning
    // logits and sampling on the host (SPECATTN_HOST_SAMPLING=1, the CPU backend's way). The passes are the same
    // batch-invariant computations, so the logits are the same bits; the draws must then be the same tokens, for
    // plain sampling and for speculative sampling (drafts, acceptance tests, residual and bonus draws).
    SPECATTN_REQUIRE_GPU();
    engine_params ep;
    ep.model_path = std::string(SPECATTN_SOURCE_DIR) + "/models/specattn-code-19m-16k";
    ep.device = "cuda";
    ep.n_ctx = 2048;
    ep.n_seq_max = 2;
    engine on_device(ep);
    setenv("SPECATTN_HOST_SAMPLING", "1", 1);
    engine on_host(ep);
    unsetenv("SPECATTN_HOST_SAMPLING");

    std::vector<request> reqs(2);
    const std::string text = "def parse(path):\n    with open(path) as f:\n        for line in f:\n";
    reqs[0].prompt = on_device.get_tokenizer().encode(text, true);
    reqs[1].prompt = on_device.get_tokenizer().encode(text + "            if not line.strip():\n", true);
    reqs[0].max_tokens = 40;
    reqs[1].max_tokens = 33;
    reqs[0].sampling.temperature = 0.8f;
    reqs[0].sampling.top_p = 0.95f;
    reqs[0].sampling.seed = 11;
    reqs[1].sampling.temperature = 1.1f;
    reqs[1].sampling.top_k = 30;
    reqs[1].sampling.min_p = 0.02f;
    reqs[1].sampling.seed = 12;
    for (request & r : reqs) {
        r.ignore_eos = true;
    }
    run_stats st;
    const std::vector<result> ar_dev = on_device.generate(reqs, st);
    const std::vector<result> ar_host = on_host.generate(reqs, st);
    for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(ar_dev[i].tokens, ar_host[i].tokens) << "autoregressive, sequence " << i;
    }
    for (spec_method m : {spec_method::spec_method_specattn, spec_method::spec_method_streaming}) {
        spec_params sp;
        sp.method = m;
        sp.draft_len = 4;
        sp.ratio = 0.3;
        sp.min_tokens = 16;
        run_stats sd;
        run_stats sh;
        const std::vector<result> dev = on_device.generate(reqs, sd, nullptr, sp);
        const std::vector<result> host = on_host.generate(reqs, sh, nullptr, sp);
        for (size_t i = 0; i < reqs.size(); ++i) {
            EXPECT_EQ(dev[i].tokens, host[i].tokens) << spec_method_name(m) << ", sequence " << i;
        }
        EXPECT_EQ(sd.spec.accepted, sh.spec.accepted) << spec_method_name(m);
        // Requests that end right after the prompt's token: every verification has no drafts (none held yet).
        std::vector<request> short_reqs = reqs;
        for (request & r : short_reqs) {
            r.max_tokens = 2;
        }
        run_stats s2;
        const std::vector<result> dev2 = on_device.generate(short_reqs, s2, nullptr, sp);
        const std::vector<result> host2 = on_host.generate(short_reqs, s2, nullptr, sp);
        for (size_t i = 0; i < reqs.size(); ++i) {
            EXPECT_EQ(dev2[i].tokens, host2[i].tokens) << spec_method_name(m) << ", two tokens, sequence " << i;
        }
        std::printf("[ sampled spec ] %s: acceptance %.3f on the device, %.3f on the host\n", spec_method_name(m),
                    sd.spec.acceptance_rate(), sh.spec.acceptance_rate());
    }
}
