// What a CUDA forward returns besides logits: greedy ids picked on the device (forward_argmax) and tokens sampled on
// the device (forward_sample) must be exactly what the host would pick from the same pass's logits — the backend
// base class's own implementations, called on the same CUDA backend, are the reference.
#include "common/test_tokens.h"
#include "backend/cuda/cuda_backend.h"
#include "core/check.h"
#include "model/model.h"
#include "ops_test_util.h"

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

} // namespace

TEST(cuda_outputs, device_argmax_equals_the_host_argmax_of_the_logits) {
    SPECATTN_REQUIRE_GPU();
    const model m = load_model(fixtures + "llama_gqa_llama3rope_bf16");
    cuda_backend gpu(m, 16, 16, 64);
    two_sequences t(m.hp.n_vocab);
    std::vector<int32_t> host;
    gpu.backend::forward_argmax(t.batch, t.kv, host); // forward() + argmax on the host
    std::vector<int32_t> device;
    gpu.forward_argmax(t.batch, t.kv, device);
    ASSERT_EQ(device.size(), t.batch.logit_rows.size());
    EXPECT_EQ(device, host);
}

TEST(cuda_outputs, device_sampling_draws_what_the_host_draws_from_the_same_logits) {
    SPECATTN_REQUIRE_GPU();
    const model m = load_model(fixtures + "llama_gqa_llama3rope_bf16");
    cuda_backend gpu(m, 16, 16, 64);
    two_sequences t(m.hp.n_vocab);
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
    const model m = load_model(fixtures + "llama_gqa_llama3rope_bf16");
    cuda_backend gpu(m, 16, 16, 64);
    two_sequences t(m.hp.n_vocab);
    std::vector<int32_t> ids;
    const std::vector<sampling_params> params(3);
    EXPECT_THROW(gpu.forward_sample(t.batch, t.kv, params, std::vector<double>(3, 0.5), ids), error);
    std::vector<sampling_params> bad(t.batch.logit_rows.size());
    bad[1].temperature = 1.0f;
    bad[1].top_p = 1.5f;
    EXPECT_THROW(gpu.forward_sample(t.batch, t.kv, bad, std::vector<double>(bad.size(), 0.5), ids), error);
}
