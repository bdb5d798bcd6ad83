// Random strings (scripts, whitespace of every kind, digits, emoji, special-token spellings) through the four
// real tokenizers, and random id lists through their decoders, against HF tokenizers 0.23.2. random.golden.json is
// made by tools/tokenizer_features_golden.py; it keeps strings with U+180E, which PCRE2's \s matches and
// Oniguruma's does not.
#include "tokenizer_test_util.h"

#include <map>

namespace specattn {

TEST(random_golden, matches_hf) {
    const nlohmann::json golden =
        nlohmann::json::parse(read_file_or_empty(source_path("tests/unit/tokenizer/random.golden.json")));
    const std::map<std::string, std::string> paths = {
        {"qwen2_5", "data/tokenizers/qwen2_5/tokenizer.json"},
        {"llama3_2", "data/tokenizers/llama3_2/tokenizer.json"},
        {"llama2", "tests/fixtures/tokenizer/llama2/tokenizer.json"},
        {"tiny", "tests/fixtures/models/llama_gqa_llama3rope_bf16/tokenizer.json"},
    };
    ASSERT_EQ(golden.at("by_tokenizer").size(), paths.size());
    for (const auto & [name, data] : golden.at("by_tokenizer").items()) {
        const std::unique_ptr<tokenizer> tok = load_tokenizer(source_path(paths.at(name)));
        ASSERT_GE(data.at("cases").size(), 60u);
        for (const nlohmann::json & c : data.at("cases")) {
            const std::string text = c.at("text");
            const std::vector<int32_t> ids = c.at("ids");
            EXPECT_TRUE(same_ids(text, ids, tok->encode(text, false))) << name;
            EXPECT_TRUE(same_ids(text, c.at("ids_with_special"), tok->encode(text, true))) << name;
            EXPECT_TRUE(same_text(c.at("decoded"), tok->decode(ids, false))) << name << " \"" << escaped(text) << "\"";
        }
        for (const nlohmann::json & d : data.at("decodes")) {
            const std::vector<int32_t> ids = d.at("ids");
            for (const bool skip : {false, true}) {
                const nlohmann::json & want = d.at(skip ? "decoded_skip" : "decoded");
                if (!want.is_null()) { // null: HF's decoder failed
                    EXPECT_TRUE(same_text(want, tok->decode(ids, skip))) << name << " " << ids_string(ids);
                }
            }
        }
    }
}

} // namespace specattn
