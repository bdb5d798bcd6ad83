// Special tokens, BOS/EOS and chat templates of the real tokenizers, and the ways load_tokenizer finds them.
#include "tokenizer_test_util.h"

#include <chrono>
#include <thread>

namespace specattn {

namespace {

const tokenizer & qwen() {
    static const std::unique_ptr<tokenizer> tok = load_tokenizer(source_path("data/tokenizers/qwen2_5"));
    return *tok;
}

const tokenizer & llama3() {
    static const std::unique_ptr<tokenizer> tok = load_tokenizer(source_path("data/tokenizers/llama3_2"));
    return *tok;
}

} // namespace

TEST(special, qwen2_5) {
    const tokenizer & tok = qwen();
    EXPECT_EQ(tok.encode("Hello", false), std::vector<int32_t>{9707});
    EXPECT_EQ(tok.encode("Hello", true), std::vector<int32_t>{9707}); // no BOS in Qwen's template
    EXPECT_EQ(tok.encode("<|im_end|>", false), std::vector<int32_t>{151645});
    EXPECT_EQ(tok.piece_to_id("<|im_end|>"), 151645);
    EXPECT_EQ(tok.id_to_piece(151645), "<|im_end|>");
    EXPECT_EQ(tok.id_to_piece(9707), "Hello");
    EXPECT_EQ(tok.piece_to_id("Ġthe"), 279);
    EXPECT_EQ(tok.eos_id(), 151645); // tokenizer_config.json: eos_token "<|im_end|>"
    EXPECT_EQ(tok.bos_id(), -1);     // bos_token null
    EXPECT_EQ(tok.n_vocab(), 151665);
    EXPECT_TRUE(tok.is_special(151643));
    EXPECT_TRUE(tok.is_special(151645));
    EXPECT_FALSE(tok.is_special(151657)); // <tool_call> is an added token but not special
    EXPECT_FALSE(tok.is_special(9707));
    EXPECT_EQ(tok.special_ids().size(), 14u);
    EXPECT_NE(tok.chat_template().find("<|im_start|>"), std::string::npos);
    // decode(skip_special) drops special added tokens only.
    const std::vector<int32_t> ids = tok.encode("<|im_start|>user\nHi<tool_call><|im_end|>", false);
    EXPECT_EQ(tok.decode(ids, false), "<|im_start|>user\nHi<tool_call><|im_end|>");
    EXPECT_EQ(tok.decode(ids, true), "user\nHi<tool_call>");
}

TEST(special, llama3_2) {
    const tokenizer & tok = llama3();
    EXPECT_EQ(tok.encode("Hello", false), std::vector<int32_t>{9906});
    EXPECT_EQ(tok.encode("Hello", true), (std::vector<int32_t>{128000, 9906}));
    EXPECT_EQ(tok.encode("<|begin_of_text|>", false), std::vector<int32_t>{128000});
    EXPECT_EQ(tok.bos_id(), 128000);
    EXPECT_EQ(tok.eos_id(), 128009); // <|eot_id|>
    EXPECT_EQ(tok.n_vocab(), 128256);
    EXPECT_EQ(tok.special_ids().size(), 256u);
    EXPECT_FALSE(tok.chat_template().empty());
    EXPECT_EQ(tok.decode({128000, 9906, 128009}, true), "Hello");
    EXPECT_EQ(tok.decode({128000, 9906, 128009}, false), "<|begin_of_text|>Hello<|eot_id|>");
    // Out-of-range ids are skipped, as HF skips ids it does not know.
    EXPECT_EQ(tok.decode({-5, 9906, 1 << 30}, false), "Hello");
    EXPECT_EQ(tok.id_to_piece(-1), "");
    EXPECT_EQ(tok.piece_to_id("no such piece"), -1);
}

TEST(special, fixtures) {
    const std::unique_ptr<tokenizer> llama2 = load_tokenizer(source_path("tests/fixtures/tokenizer/llama2"));
    EXPECT_EQ(llama2->bos_id(), 1);
    EXPECT_EQ(llama2->eos_id(), 2);
    EXPECT_EQ(llama2->special_ids(), (std::vector<int32_t>{0, 1, 2}));
    const std::unique_ptr<tokenizer> tiny =
        load_tokenizer(source_path("tests/fixtures/models/llama_gqa_llama3rope_bf16/tokenizer.json"));
    EXPECT_EQ(tiny->bos_id(), 0);
    EXPECT_EQ(tiny->eos_id(), 1);
    EXPECT_EQ(tiny->n_vocab(), 512);
    EXPECT_TRUE(tiny->chat_template().empty());
}

// Without tokenizer_config.json the BOS is what the post-processor template puts first, and there is no EOS.
TEST(special, without_config) {
    const std::string json = read_file_or_empty(source_path("tests/fixtures/tokenizer/llama2/tokenizer.json"));
    const std::unique_ptr<tokenizer> tok = load_tokenizer_json(json, "");
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_id(), -1);
    const std::string config = R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
        "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})";
    const std::unique_ptr<tokenizer> with = load_tokenizer_json(json, config);
    EXPECT_EQ(with->bos_id(), 1);
    EXPECT_EQ(with->eos_id(), 2);
    EXPECT_EQ(with->chat_template(), "D");
}

// encode is const and shared by threads (the BPE cache is locked): results must not depend on interleaving.
TEST(special, concurrent_encode) {
    const tokenizer & tok = llama3();
    const std::vector<golden_case> cases = load_golden("llama3_2");
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int rep = 0; rep < 20; ++rep) {
                for (size_t i = (static_cast<size_t>(t) * 7) % cases.size(), n = 0; n < cases.size();
                     ++n, i = (i + 1) % cases.size()) {
                    failures[static_cast<size_t>(t)] += tok.encode(cases[i].text, false) != cases[i].ids;
                }
            }
        });
    }
    for (std::thread & th : threads) {
        th.join();
    }
    EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// Release builds: Llama-3.2's 17 MB tokenizer.json loads, and ~100 KB of text encodes, well within a second.
TEST(special, llama3_2_large_text_round_trips) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const std::unique_ptr<tokenizer> tok = load_tokenizer(source_path("data/tokenizers/llama3_2/tokenizer.json"));
    const auto t1 = clock::now();
    std::string text;
    for (const golden_case & c : load_golden("llama3_2")) {
        text += c.text + "\n";
    }
    const std::string unit = text;
    while (text.size() < 100000) {
        text += unit;
    }
    const auto t2 = clock::now();
    const std::vector<int32_t> ids = tok->encode(text, false);
    const auto t3 = clock::now();
    const double load_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    const double encode_ms = std::chrono::duration<double, std::milli>(t3 - t2).count();
    std::printf("llama3_2: load %.0f ms, encode %zu bytes -> %zu ids in %.1f ms\n", load_ms, text.size(), ids.size(),
                encode_ms);
    // Timings are printed, not asserted: a loaded CI machine is no benchmark.
    EXPECT_EQ(tok->decode(ids, false), text);
}

} // namespace specattn
