// End-to-end generation on stories15M (real weights, installed by scripts/setup.sh): the known greedy story,
// stop conditions, batching and reproducible sampling; and the errors a user gets for requests that cannot run.
#include "backend/cpu/cpu_backend.h"
#include "core/check.h"
#include "engine/engine.h"
#include "sampling/sampler.h"

#include <gtest/gtest.h>

using namespace specattn;

namespace {

engine & stories() {
    static engine eng([] {
        engine_params p;
        p.model_path = std::string(SPECATTN_SOURCE_DIR) + "/data/stories15M/stories15M.bin";
        p.n_seq_max = 4;
        return p;
    }());
    return eng;
}

request greedy(const std::string & prompt, int64_t n) {
    request r;
    r.prompt = stories().get_tokenizer().encode(prompt, true);
    r.max_tokens = n;
    r.sampling.temperature = 0.0f;
    return r;
}

result run1(const request & r) {
    run_stats st;
    return stories().generate({r}, st).at(0);
}

} // namespace

TEST(stories15M, greedy_story_is_the_known_one) {
    // llama2.c's documented greedy output for this prompt (BOS prepended).
    const std::string known = "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                              "sunshine. One day, she saw a big, red ball in the sky. It was the sun! She thought it "
                              "was so pretty.";
    const request r = greedy("Once upon a time", 60);
    EXPECT_EQ(r.prompt, (std::vector<int32_t>{1, 9038, 2501, 263, 931}));
    const result out = run1(r);
    EXPECT_EQ(out.tokens.size(), 60u);
    EXPECT_EQ(out.finish, finish_reason::finish_reason_length);
    const std::string text = "Once upon a time" + out.text;
    ASSERT_GE(text.size(), known.size()) << text;
    EXPECT_EQ(text.substr(0, known.size()), known);
    // The text is exactly the decode of the ids: streaming detokenization loses nothing.
    std::vector<int32_t> all = r.prompt;
    all.insert(all.end(), out.tokens.begin(), out.tokens.end());
    EXPECT_EQ(stories().get_tokenizer().decode(all, true), text);
}

TEST(stories15M, stop_string_cuts_the_text_before_it) {
    request r = greedy("Once upon a time", 60);
    r.stop = {"Lily"};
    const result out = run1(r);
    EXPECT_EQ(out.finish, finish_reason::finish_reason_stop);
    EXPECT_EQ(out.text, ", there was a little girl named ");
}

TEST(stories15M, n_predict_and_context_limits) {
    EXPECT_EQ(run1(greedy("Once upon a time", 7)).tokens.size(), 7u);
    request r = greedy("Once upon a time", -1);
    r.ignore_eos = true;
    const result out = run1(r);
    EXPECT_EQ(out.finish, finish_reason::finish_reason_context);
    EXPECT_EQ(static_cast<int64_t>(out.tokens.size()), stories().n_ctx() - 5);
}

TEST(stories15M, eos_ends_a_story) {
    // Stories end with EOS well within the context; the EOS id is not part of the output.
    request r = greedy("Once upon a time", -1);
    const result out = run1(r);
    EXPECT_EQ(out.finish, finish_reason::finish_reason_eos);
    for (int32_t t : out.tokens) {
        EXPECT_NE(t, 2);
    }
}

TEST(stories15M, batch_of_different_lengths_equals_each_alone) {
    const std::vector<request> reqs = {greedy("Once upon a time", 30), greedy("The cat", 12),
                                       greedy("Tom and his dog went to the park to play with a red ball", 40)};
    run_stats st;
    const std::vector<result> batched = stories().generate(reqs, st);
    ASSERT_EQ(batched.size(), 3u);
    for (size_t i = 0; i < reqs.size(); ++i) {
        const result alone = run1(reqs[i]);
        EXPECT_EQ(batched[i].tokens, alone.tokens) << "request " << i;
        EXPECT_EQ(batched[i].text, alone.text) << "request " << i;
    }
    EXPECT_EQ(st.n_prompt_tokens, static_cast<int64_t>(reqs[0].prompt.size() + reqs[1].prompt.size() +
                                                        reqs[2].prompt.size()));
}

TEST(stories15M, sampling_is_reproducible_from_the_seed) {
    request r = greedy("Once upon a time", 40);
    r.sampling.temperature = 1.0f;
    r.sampling.top_p = 0.9f;
    r.sampling.seed = 42;
    const result a = run1(r);
    const result b = run1(r);
    EXPECT_EQ(a.tokens, b.tokens);
    r.sampling.seed = 43;
    EXPECT_NE(run1(r).tokens, a.tokens);
}

TEST(stories15M, sampled_generation_is_the_samplers_draw_from_each_steps_logits) {
    // The engine asks the backend for sampled ids (backend::forward_sample) with uniforms it draws itself; the
    // tokens must be those of the plain loop: forward, then sampler::sample on the last row's logits.
    request r = greedy("Once upon a time", 24);
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 50;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = 7;
    r.ignore_eos = true;
    const result got = run1(r);

    const model & m = stories().get_model();
    kv_block_manager kv(8, 16);
    cpu_backend be(m, 8, 16);
    sampler smp(r.sampling);
    const int32_t seq = kv.add_sequence();
    std::vector<int32_t> toks = r.prompt;
    std::vector<int32_t> want;
    std::vector<float> logits;
    int64_t done = 0;
    while (static_cast<int64_t>(want.size()) < r.max_tokens) {
        const int64_t n = static_cast<int64_t>(toks.size()) - done;
        kv.append(seq, n);
        forward_batch b;
        b.add_sequence_rows(seq, toks.data() + done, n, done, true);
        be.forward(b, kv, logits);
        done = static_cast<int64_t>(toks.size());
        const int32_t t = smp.sample(logits.data(), m.hp.n_vocab);
        want.push_back(t);
        toks.push_back(t);
    }
    EXPECT_EQ(got.tokens, want);
}

TEST(stories15M, requests_that_cannot_run_are_errors) {
    request empty;
    EXPECT_THROW(run1(empty), error);
    request too_long = greedy("Once upon a time", 10);
    too_long.prompt.assign(300, 100);
    EXPECT_THROW(run1(too_long), error);
    EXPECT_THROW(run1(greedy("Once upon a time", 252)), error); // 5 + 252 > 256
    EXPECT_NO_THROW(run1(greedy("Once upon a time", 251)));
    request bad_id = greedy("Once", 3);
    bad_id.prompt.push_back(32000);
    EXPECT_THROW(run1(bad_id), error);
    run_stats st;
    EXPECT_THROW(stories().generate(std::vector<request>(5, greedy("a", 1)), st), error); // n_seq_max is 4
}
