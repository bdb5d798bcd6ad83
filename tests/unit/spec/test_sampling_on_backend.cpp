// The speculative loop's path for backends that sample where the logits are (backend::samples_on_device:
// forward_sample_held, forward_accept; the CUDA backend's device_sampler), run on the CPU: a backend that emulates
// those calls on the host must give exactly the tokens and acceptances of the host path (the CPU backend as it is),
// so the loop's bookkeeping — held slots, uniforms peeked and then drawn as the rule used them, verifications
// without drafts — is checked in CI, not only on the GPU.
#include "backend/cpu/cpu_backend.h"
#include "engine/engine.h"
#include "spec/verify.h"

#include <gtest/gtest.h>

#include <map>

using namespace specattn;

namespace {

// The CPU backend, plus forward_sample_held / forward_accept computed on the host from its logits.
class host_emulated_sampling : public backend {
  public:
    host_emulated_sampling(const model & m, int64_t n_pages, int64_t page_size) : inner_(m, n_pages, page_size) {}

    const char * name() const override { return "cpu-emulating-device-sampling"; }
    void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) override {
        inner_.forward(batch, kv, logits);
    }
    void synthetic_kv(const kv_block_manager & kv, int32_t seq, int64_t n, uint64_t seed) override {
        inner_.synthetic_kv(kv, seq, n, seed);
    }
    void set_selection(int32_t seq, const std::vector<int32_t> & positions) override {
        inner_.set_selection(seq, positions);
    }
    int64_t select_top_k(int32_t seq, int32_t sink, int64_t k) override { return inner_.select_top_k(seq, sink, k); }
    void release_selection(int32_t seq) override { inner_.release_selection(seq); }

    bool samples_on_device() const override { return true; }
    void forward_sample_held(const forward_batch & batch, const kv_block_manager & kv,
                             const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                             const std::vector<int32_t> & holds, std::vector<int32_t> & ids) override {
        ++held_calls;
        std::vector<float> logits;
        forward(batch, kv, logits);
        const int64_t n_vocab = static_cast<int64_t>(logits.size() / holds.size());
        ids.resize(holds.size());
        for (size_t j = 0; j < holds.size(); ++j) {
            std::vector<float> & q = held_[holds[j]];
            sampling_probs(logits.data() + static_cast<int64_t>(j) * n_vocab, n_vocab, params[j], q);
            ids[j] = draw_from(q, uniforms[j]);
        }
    }
    void forward_accept(const forward_batch & batch, const kv_block_manager & kv,
                        const std::vector<sampling_params> & params, const std::vector<held_verification> & v,
                        std::vector<accept_outcome> & out) override {
        ++accept_calls;
        std::vector<float> logits;
        forward(batch, kv, logits);
        const int64_t n_vocab = static_cast<int64_t>(logits.size() / params.size());
        out.clear();
        for (const held_verification & s : v) {
            const size_t n_drafts = s.drafts.size();
            EXPECT_EQ(s.uniforms.size(), n_drafts + 1);
            std::vector<std::vector<float>> p(n_drafts + 1);
            std::vector<std::vector<float>> q;
            for (size_t i = 0; i <= n_drafts; ++i) {
                const int64_t row = s.first_out + static_cast<int64_t>(i);
                sampling_probs(logits.data() + row * n_vocab, n_vocab, params[static_cast<size_t>(row)], p[i]);
            }
            for (size_t i = 0; i < n_drafts; ++i) {
                q.push_back(held_.at(s.first_hold + static_cast<int32_t>(i)));
            }
            size_t next_u = 0;
            const accept_result r = accept_sampled(s.drafts, p, q, [&] { return s.uniforms.at(next_u++); });
            out.push_back({static_cast<int32_t>(r.n_accepted), r.next});
        }
    }

    int64_t held_calls = 0;
    int64_t accept_calls = 0;

  private:
    cpu_backend inner_;
    std::map<int32_t, std::vector<float>> held_; // slot -> draft distribution
};

engine_params stories_params() {
    engine_params p;
    p.model_path = std::string(SPECATTN_SOURCE_DIR) + "/data/stories15M/stories15M.bin";
    p.n_seq_max = 2;
    p.n_threads = 1;
    return p;
}

} // namespace

TEST(spec_sampling_on_backend, emulated_device_path_equals_the_host_path) {
    engine host(stories_params());
    host_emulated_sampling * emulated = nullptr;
    engine_params ep = stories_params();
    ep.make_backend = [&](const model & m, int64_t n_pages, int64_t page_size) {
        auto b = std::make_unique<host_emulated_sampling>(m, n_pages, page_size);
        emulated = b.get();
        return b;
    };
    engine device(ep);
    ASSERT_NE(emulated, nullptr);

    std::vector<request> reqs(2);
    reqs[0].prompt = host.get_tokenizer().encode("Once upon a time", true);
    reqs[1].prompt = host.get_tokenizer().encode("The little dog ran to the park and", true);
    reqs[0].sampling.temperature = 0.9f;
    reqs[0].sampling.top_p = 0.9f;
    reqs[0].sampling.seed = 5;
    reqs[1].sampling.temperature = 1.2f;
    reqs[1].sampling.top_k = 40;
    reqs[1].sampling.seed = 6;
    for (request & r : reqs) {
        r.ignore_eos = true;
    }
    for (int64_t n : {int64_t{2}, int64_t{3}, int64_t{41}}) { // 2: verifications without drafts from the start
        for (request & r : reqs) {
            r.max_tokens = n;
        }
        for (spec_method m : {spec_method::spec_method_specattn, spec_method::spec_method_streaming}) {
            spec_params sp;
            sp.method = m;
            sp.draft_len = 4;
            sp.ratio = 0.3;
            sp.min_tokens = 8;
            run_stats sh;
            run_stats sd;
            const std::vector<result> a = host.generate(reqs, sh, nullptr, sp);
            const std::vector<result> b = device.generate(reqs, sd, nullptr, sp);
            for (size_t i = 0; i < reqs.size(); ++i) {
                EXPECT_EQ(b[i].tokens, a[i].tokens) << spec_method_name(m) << " n " << n << " sequence " << i;
                EXPECT_EQ(static_cast<int64_t>(b[i].tokens.size()), n);
            }
            EXPECT_EQ(sd.spec.accepted, sh.spec.accepted) << spec_method_name(m) << " n " << n;
            EXPECT_EQ(sd.spec.proposed, sh.spec.proposed) << spec_method_name(m) << " n " << n;
        }
    }
    EXPECT_GT(emulated->accept_calls, 0) << "the backend path was never taken";
    EXPECT_GT(emulated->held_calls, 0);
}
