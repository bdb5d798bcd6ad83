// The long-context model we ship (models/specattn-code-19m-16k) against transformers on the GPU machine
// (tests/fixtures/longctx/*.reference.json, made by tools/dump_reference.py): the prompt's token ids equal HF
// tokenizers', the CPU backend's logits at several positions of an 1843-token held-out prompt match transformers'
// fp32 logits, and the greedy continuation is identical.
#include "engine/engine.h"
#include "backend/cpu/cpu_backend.h"
#include "common/model_reference.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>

using namespace specattn;

namespace {

std::string run_command(const std::string & cmd) {
    std::string out;
    FILE * p = popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return out;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    pclose(p);
    return out;
}

} // namespace

TEST(longctx_model, logits_and_greedy_match_transformers) {
    const std::string src = SPECATTN_SOURCE_DIR;
    std::ifstream in(src + "/tests/fixtures/longctx/specattn-code-19m-16k.reference.json");
    ASSERT_TRUE(in.good());
    const nlohmann::json ref = nlohmann::json::parse(in);

    // The prompt is held-out third-party source, rebuilt here exactly as the reference was (not committed).
    const std::string prompt_file = std::string(SPECATTN_BINARY_DIR) + "/longctx_prompt.txt";
    run_command("bash " + src + "/scripts/long_prompt.sh " + prompt_file + " 6000 networkx");
    const std::string sha = run_command("sha256sum " + prompt_file).substr(0, 64);
    ASSERT_EQ(sha, ref.at("prompt_sha256").get<std::string>()) << "the held-out prompt changed (Debian networkx?)";
    std::ifstream pf(prompt_file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(pf)), std::istreambuf_iterator<char>());

    engine_params ep;
    ep.model_path = src + "/models/specattn-code-19m-16k";
    ep.n_ctx = 4096;
    engine eng(ep);
    const std::vector<int32_t> ids = eng.get_tokenizer().encode(text, false);
    ASSERT_EQ(ids, ref.at("prompt_ids").get<std::vector<int32_t>>()) << "token ids differ from HF tokenizers";

    // Logits at the reference positions from one prefill pass.
    const model & m = eng.get_model();
    kv_block_manager kv(kv_pages_for(static_cast<int64_t>(ids.size()), 16), 16);
    cpu_backend be(m, kv.n_pages(), 16);
    const int32_t s = kv.add_sequence();
    kv.append(s, static_cast<int64_t>(ids.size()));
    forward_batch batch;
    batch.add_sequence_rows(s, ids.data(), static_cast<int64_t>(ids.size()), 0, false);
    const std::vector<int64_t> positions = ref.at("positions").get<std::vector<int64_t>>();
    for (int64_t p : positions) {
        batch.logit_rows.push_back(static_cast<int32_t>(p));
    }
    std::vector<float> logits;
    be.forward(batch, kv, logits);
    const auto ref_logits = ref.at("logits").get<std::vector<std::vector<float>>>();
    for (size_t i = 0; i < positions.size(); ++i) {
        EXPECT_LE(max_rel_error(logits.data() + static_cast<int64_t>(i) * m.hp.n_vocab, ref_logits[i]), 1e-4)
            << "position " << positions[i];
    }

    request r;
    r.prompt = ids;
    r.max_tokens = static_cast<int64_t>(ref.at("greedy_ids").size());
    r.ignore_eos = true;
    run_stats st;
    EXPECT_EQ(eng.generate({r}, st).at(0).tokens, ref.at("greedy_ids").get<std::vector<int32_t>>());
}
