// Malformed, truncated and unsupported tokenizer files: each must throw specattn::error with a one-line message,
// never crash, hang or load half a tokenizer.
#include "core/check.h"
#include "tokenizer_test_util.h"

#include <filesystem>
#include <fstream>

namespace specattn {

namespace {

// The message of the specattn::error that f throws, or a failure.
template <typename F> ::testing::AssertionResult throws_one_line(F f, const std::string & want_substring = "") {
    try {
        f();
    } catch (const error & e) {
        const std::string what = e.what();
        if (what.empty() || what.find('\n') != std::string::npos) {
            return ::testing::AssertionFailure() << "message is not one line: \"" << escaped(what) << "\"";
        }
        if (what.find(want_substring) == std::string::npos) {
            return ::testing::AssertionFailure() << "message \"" << what << "\" lacks \"" << want_substring << "\"";
        }
        return ::testing::AssertionSuccess() << what;
    } catch (const std::exception & e) {
        return ::testing::AssertionFailure() << "threw a non-specattn exception: " << e.what();
    }
    return ::testing::AssertionFailure() << "did not throw";
}

::testing::AssertionResult json_fails(const std::string & json, const std::string & want_substring = "") {
    return throws_one_line([&] { load_tokenizer_json(json, ""); }, want_substring);
}

// A small valid tokenizer.json with the given model and extra top-level members.
std::string tiny_json(const std::string & model, const std::string & extra = "") {
    return R"({"version": "1.0", )" + extra + R"("model": )" + model + "}";
}

const std::string good_model =
    R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";

class temp_dir {
  public:
    temp_dir() {
        path_ = std::filesystem::temp_directory_path() /
                ("specattn_tok_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() { std::filesystem::remove_all(path_); }
    std::string file(const std::string & name, const std::string & content) const {
        const std::string p = (path_ / name).string();
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
    std::string path() const { return path_.string(); }

  private:
    std::filesystem::path path_;
};

} // namespace

TEST(bad_input, good_model_loads) {
    const std::unique_ptr<tokenizer> tok = load_tokenizer_json(tiny_json(good_model), "");
    EXPECT_EQ(tok->encode("ab", false), std::vector<int32_t>{2});
    EXPECT_EQ(tok->n_vocab(), 3);
}

TEST(bad_input, missing_paths) {
    EXPECT_TRUE(throws_one_line([] { load_tokenizer("/nonexistent/tokenizer.json"); }, "/nonexistent"));
    const temp_dir dir;
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.path()); }, "tokenizer.json"));
}

TEST(bad_input, not_json) {
    EXPECT_TRUE(json_fails("", "not valid JSON"));
    EXPECT_TRUE(json_fails("hello", "not valid JSON"));
    EXPECT_TRUE(json_fails(tiny_json(good_model).substr(0, 40), "not valid JSON"));
    EXPECT_TRUE(json_fails(tiny_json(good_model) + " trailing", "not valid JSON"));
    EXPECT_TRUE(json_fails("{\"model\": \"\xFF\"}", "not valid JSON"));
    EXPECT_TRUE(json_fails(std::string(100000, '[') , "not valid JSON"));
    const temp_dir dir;
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.file("tokenizer.json", "{\"model\": [1, 2")); },
                                "not valid JSON"));
}

TEST(bad_input, wrong_shapes) {
    EXPECT_TRUE(json_fails("[]", "must be an object"));
    EXPECT_TRUE(json_fails("{}", "model is missing"));
    EXPECT_TRUE(json_fails(tiny_json("[]"), "model must be an object"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "merges": []})"), "model.vocab is missing"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": ["a"], "merges": []})"), "vocab must be an object"));
    EXPECT_TRUE(
        json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": "0"}, "merges": []})"), "model.vocab entry 'a'"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": -1}, "merges": []})"), "model.vocab entry"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 1.5}, "merges": []})"), "model.vocab entry"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 99999999999}, "merges": []})"), "token id"));
    EXPECT_TRUE(
        json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": {}})"), "merges must be an array"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [1]})"), "model.merges[0]"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]})"), "model.merges[0]"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]})"), "model.merges[0]"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [["a", ["b"]]]})"), "merges"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("added_tokens": {}, )"), "added_tokens must be an array"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("added_tokens": [{"id": 5}], )"), "added_tokens[0].content"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("normalizer": {"type": 3}, )"), "normalizer.type must be"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("pre_tokenizer": {"type": "Split"}, )"), "pattern is missing"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("},
        "behavior": "Isolated"}, )"), "pre_tokenizer.pattern.Regex '(' does not compile"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("decoder": {"type": "Strip", "content": "ab", "start": 1,
        "stop": 0}, )"), "one character"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}]}, )"),
                           "tokenizer.json: post_processor.special_tokens must be an object"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}, )"), "names special token '<s>'"));
    // A vocabulary that is mostly holes would make every id-indexed table huge.
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 2000000000}, "merges": []})"),
                           "token id 2000000000"));
}

TEST(bad_input, merges_with_unknown_tokens) {
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]})"),
                           "model.merges[0] refers to token 'c'"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]})"),
                           "refers to token 'ab'"));
}

TEST(bad_input, unsupported) {
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "WordPiece", "vocab": {"a": 0}})"), "unsupported model type"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "Unigram", "vocab": [["a", 0.0]]})"), "unsupported model type"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [],
        "continuing_subword_prefix": "##"})"), "unsupported"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [],
        "end_of_word_suffix": "</w>"})"), "unsupported"));
    EXPECT_TRUE(json_fails(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1})"),
                           "dropout is unsupported"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("normalizer": {"type": "Lowercase"}, )"),
                           "unsupported normalizer type 'Lowercase'"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("pre_tokenizer": {"type": "Whitespace"}, )"),
                           "unsupported pre_tokenizer type 'Whitespace'"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("post_processor": {"type": "BertProcessing"}, )"),
                           "unsupported post_processor type 'BertProcessing'"));
    EXPECT_TRUE(json_fails(tiny_json(good_model, R"("decoder": {"type": "WordPiece"}, )"),
                           "unsupported decoder type 'WordPiece'"));
}

TEST(bad_input, bad_config) {
    const std::string json = tiny_json(good_model);
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer_json(json, "{"); }, "tokenizer_config.json is not valid JSON"));
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer_json(json, R"({"eos_token": "<nope>"})"); }, "eos_token"));
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer_json(json, R"({"bos_token": 5})"); }, "bos_token"));
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer_json(json, R"({"chat_template": 5})"); }, "chat_template"));
}

TEST(bad_input, invalid_utf8_text) {
    const std::unique_ptr<tokenizer> tok = load_tokenizer_json(tiny_json(good_model), "");
    EXPECT_TRUE(throws_one_line([&] { tok->encode("a\xFF", false); }, "UTF-8"));
}

// tokenizer.bin: whole, then cut at every length up to the first few records, then with broken length fields.
TEST(bad_input, tokenizer_bin) {
    const std::string bin = read_file_or_empty(source_path("data/stories15M/tokenizer.bin"));
    ASSERT_GT(bin.size(), 1000u);
    const temp_dir dir;
    EXPECT_NO_THROW(load_tokenizer(dir.file("tokenizer.bin", bin)));
    for (size_t n : {size_t(0), size_t(3), size_t(4), size_t(7), size_t(11), size_t(13), size_t(100), bin.size() / 2,
                     bin.size() - 1}) {
        EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.file("tokenizer.bin", bin.substr(0, n))); }))
            << "cut at " << n;
    }
    const auto with_i32 = [&](size_t off, int32_t v) {
        std::string b = bin;
        std::memcpy(b.data() + off, &v, sizeof v);
        return b;
    };
    // Offset 8 is the first token's length (after max_token_length and its score).
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.file("tokenizer.bin", with_i32(8, 0x7FFFFFFF))); },
                                "length"));
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.file("tokenizer.bin", with_i32(8, -5))); }, "length"));
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.file("tokenizer.bin", with_i32(0, -1))); },
                                "max_token_length"));
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.file("tokenizer.bin", with_i32(4, 0x7FC00000))); },
                                "score")); // a NaN score
    EXPECT_TRUE(throws_one_line([&] { load_tokenizer(dir.file("tokenizer.bin", std::string(64, '\x01'))); }));
}

} // namespace specattn
