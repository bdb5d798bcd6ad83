// config.json -> model_hparams: the six fixture configs (both RoPE styles, llama3 scaling, Qwen3's independent
// head_dim, Qwen2's biases, tied flags) and hand-written configs that must fail with a message naming the key.
#include "loader/hf_config.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace specattn::test {
namespace {

using json = nlohmann::json;

model_hparams load_fixture(const std::string & name) {
    return hf_config_load(fixture_dir(name));
}

TEST(hf_config, llama_gqa_llama3rope_bf16) {
    const model_hparams hp = load_fixture("llama_gqa_llama3rope_bf16");
    EXPECT_EQ(hp.arch, model_arch::model_arch_llama);
    EXPECT_EQ(hp.arch_name, "LlamaForCausalLM");
    EXPECT_EQ(hp.n_vocab, 512);
    EXPECT_EQ(hp.n_embd, 64);
    EXPECT_EQ(hp.n_ff, 160);
    EXPECT_EQ(hp.n_layer, 2);
    EXPECT_EQ(hp.n_head, 4);
    EXPECT_EQ(hp.n_head_kv, 2);
    EXPECT_EQ(hp.head_dim, 16);
    EXPECT_EQ(hp.n_ctx_train, 4096);
    EXPECT_EQ(hp.sliding_window, 0);
    EXPECT_FLOAT_EQ(hp.norm_eps, 1e-6f);
    EXPECT_EQ(hp.rope.layout, rope_layout::rope_layout_half_split);
    EXPECT_FLOAT_EQ(hp.rope.theta, 500000.0f);
    EXPECT_EQ(hp.rope.scaling, rope_scaling_type::rope_scaling_llama3);
    EXPECT_FLOAT_EQ(hp.rope.factor, 8.0f);
    EXPECT_FLOAT_EQ(hp.rope.low_freq_factor, 1.0f);
    EXPECT_FLOAT_EQ(hp.rope.high_freq_factor, 4.0f);
    EXPECT_EQ(hp.rope.original_n_ctx, 32);
    EXPECT_FALSE(hp.qkv_bias);
    EXPECT_FALSE(hp.qk_norm);
    EXPECT_FALSE(hp.tied_embeddings);
    EXPECT_EQ(hp.bos_id, 0);
    EXPECT_EQ(hp.eos_ids, std::vector<int32_t>{1});
    EXPECT_EQ(hp.weight_dtype, "bf16");
}

TEST(hf_config, llama_mha_tied_f32_oldconfig) {
    const model_hparams hp = load_fixture("llama_mha_tied_f32_oldconfig");
    EXPECT_EQ(hp.arch, model_arch::model_arch_llama);
    EXPECT_EQ(hp.n_head, 4);
    EXPECT_EQ(hp.n_head_kv, 4);
    EXPECT_EQ(hp.head_dim, 16);
    EXPECT_FLOAT_EQ(hp.rope.theta, 10000.0f); // top-level rope_theta, rope_scaling null
    EXPECT_EQ(hp.rope.scaling, rope_scaling_type::rope_scaling_none);
    EXPECT_TRUE(hp.tied_embeddings);
    EXPECT_EQ(hp.weight_dtype, "f32");
}

TEST(hf_config, mistral_gqa4_f32) {
    const model_hparams hp = load_fixture("mistral_gqa4_f32");
    EXPECT_EQ(hp.arch, model_arch::model_arch_mistral);
    EXPECT_EQ(hp.n_head, 8);
    EXPECT_EQ(hp.n_head_kv, 2);
    EXPECT_EQ(hp.head_dim, 8);
    EXPECT_FLOAT_EQ(hp.rope.theta, 1000000.0f);
    EXPECT_EQ(hp.rope.scaling, rope_scaling_type::rope_scaling_none);
    EXPECT_EQ(hp.sliding_window, 0); // null
    EXPECT_FALSE(hp.tied_embeddings);
}

TEST(hf_config, qwen2_bias_tied_f16) {
    const model_hparams hp = load_fixture("qwen2_bias_tied_f16");
    EXPECT_EQ(hp.arch, model_arch::model_arch_qwen2);
    EXPECT_TRUE(hp.qkv_bias);
    EXPECT_FALSE(hp.qk_norm);
    EXPECT_TRUE(hp.tied_embeddings);
    EXPECT_EQ(hp.head_dim, 16); // hidden / heads
    EXPECT_EQ(hp.n_head_kv, 2);
    EXPECT_FLOAT_EQ(hp.rope.theta, 1000000.0f); // old style
    EXPECT_EQ(hp.sliding_window, 0);
    EXPECT_EQ(hp.weight_dtype, "f16");
}

TEST(hf_config, qwen3_qknorm_bf16_sharded) {
    const model_hparams hp = load_fixture("qwen3_qknorm_bf16_sharded");
    EXPECT_EQ(hp.arch, model_arch::model_arch_qwen3);
    EXPECT_TRUE(hp.qk_norm);
    EXPECT_FALSE(hp.qkv_bias);
    EXPECT_EQ(hp.head_dim, 32); // not 64 / 4
    EXPECT_EQ(hp.n_embd_q(), 128);
    EXPECT_EQ(hp.n_embd_kv(), 64);
    EXPECT_TRUE(hp.tied_embeddings);
    EXPECT_EQ(hp.weight_dtype, "bf16");
}

TEST(hf_config, qwen3_untied_f32) {
    const model_hparams hp = load_fixture("qwen3_untied_f32");
    EXPECT_EQ(hp.arch, model_arch::model_arch_qwen3);
    EXPECT_EQ(hp.n_head, 2);
    EXPECT_EQ(hp.n_head_kv, 1);
    EXPECT_EQ(hp.head_dim, 48);
    EXPECT_FALSE(hp.tied_embeddings);
    EXPECT_FLOAT_EQ(hp.rope.theta, 10000.0f);
}

// A minimal valid config to break one key at a time.
json base_config() {
    return json{{"architectures", {"LlamaForCausalLM"}},
                {"vocab_size", 100},
                {"hidden_size", 64},
                {"intermediate_size", 128},
                {"num_hidden_layers", 2},
                {"num_attention_heads", 4},
                {"max_position_embeddings", 256},
                {"rms_norm_eps", 1e-5}};
}

model_hparams parse(const json & cfg, const std::string & gen = "") {
    return hf_config_parse(cfg.dump(), "config.json", gen, "generation_config.json");
}

std::string parse_error(const json & cfg, const std::string & gen = "") {
    return error_of([&] { parse(cfg, gen); });
}

TEST(hf_config, defaults) {
    const model_hparams hp = parse(base_config());
    EXPECT_EQ(hp.n_head_kv, 4);
    EXPECT_EQ(hp.head_dim, 16);
    EXPECT_FALSE(hp.tied_embeddings);
    EXPECT_FLOAT_EQ(hp.rope.theta, 10000.0f);
    EXPECT_EQ(hp.bos_id, -1);
    EXPECT_TRUE(hp.eos_ids.empty());
    EXPECT_EQ(hp.weight_dtype, "");
    json cfg = base_config();
    cfg["torch_dtype"] = "bfloat16";
    cfg["head_dim"] = 32; // explicit head_dim wins for llama too
    EXPECT_EQ(parse(cfg).weight_dtype, "bf16");
    EXPECT_EQ(parse(cfg).n_embd_q(), 128);
}

TEST(hf_config, unknown_architecture) {
    json cfg = base_config();
    cfg["architectures"] = {"GPT2LMHeadModel"};
    EXPECT_TRUE(contains(parse_error(cfg), "config.json: unsupported architecture GPT2LMHeadModel (supported: "
                                           "LlamaForCausalLM, MistralForCausalLM"));
    cfg.erase("architectures");
    EXPECT_TRUE(contains(parse_error(cfg), "config.json: missing key 'architectures'"));
}

TEST(hf_config, missing_key) {
    for (const char * key : {"hidden_size", "vocab_size", "num_hidden_layers", "rms_norm_eps"}) {
        json cfg = base_config();
        cfg.erase(key);
        EXPECT_TRUE(contains(parse_error(cfg), std::string("config.json: missing key '") + key + "'"));
    }
    json cfg = base_config();
    cfg["hidden_size"] = nullptr;
    EXPECT_TRUE(contains(parse_error(cfg), "config.json: missing key 'hidden_size'"));
}

TEST(hf_config, wrong_type) {
    json cfg = base_config();
    cfg["hidden_size"] = "64";
    EXPECT_TRUE(contains(parse_error(cfg), "config.json: key 'hidden_size' must be an integer, got string"));
    cfg = base_config();
    cfg["num_attention_heads"] = 4.5;
    EXPECT_TRUE(contains(parse_error(cfg), "key 'num_attention_heads' must be an integer, got number"));
    cfg = base_config();
    cfg["tie_word_embeddings"] = 1;
    EXPECT_TRUE(contains(parse_error(cfg), "key 'tie_word_embeddings' must be a boolean"));
    cfg = base_config();
    cfg["rope_parameters"] = {{"rope_type", "llama3"}, {"factor", "8"}};
    EXPECT_TRUE(contains(parse_error(cfg), "key 'rope_parameters.factor' must be a number, got string"));
    cfg = base_config();
    cfg["architectures"] = "LlamaForCausalLM";
    EXPECT_TRUE(contains(parse_error(cfg), "key 'architectures' must be a non-empty list"));
}

TEST(hf_config, not_json) {
    EXPECT_TRUE(contains(error_of([] { hf_config_parse("{\"vocab_size\": 1,", "config.json", "", "g"); }),
                         "config.json is not valid JSON: "));
    EXPECT_TRUE(contains(error_of([] { hf_config_parse("[]", "config.json", "", "g"); }), "not an object"));
    EXPECT_TRUE(contains(parse_error(base_config(), "{oops"), "generation_config.json is not valid JSON"));
}

TEST(hf_config, rope_styles) {
    json cfg = base_config();
    cfg["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 10000.0}};
    EXPECT_TRUE(contains(parse_error(cfg), "config.json: unsupported rope scaling 'yarn'"));
    cfg = base_config();
    cfg["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
    EXPECT_TRUE(contains(parse_error(cfg), "unsupported rope scaling 'dynamic'"));
    cfg = base_config();
    cfg["rope_scaling"] = {{"rope_type", "longrope"}};
    EXPECT_TRUE(contains(parse_error(cfg), "unsupported rope scaling 'longrope'"));

    cfg = base_config();
    cfg["rope_theta"] = 50000;
    cfg["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    model_hparams hp = parse(cfg);
    EXPECT_FLOAT_EQ(hp.rope.theta, 50000.0f);
    EXPECT_EQ(hp.rope.scaling, rope_scaling_type::rope_scaling_linear);
    EXPECT_FLOAT_EQ(hp.rope.factor, 2.0f);

    cfg = base_config();
    cfg["rope_theta"] = 500000.0;
    cfg["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 32.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 8192}};
    hp = parse(cfg);
    EXPECT_EQ(hp.rope.scaling, rope_scaling_type::rope_scaling_llama3);
    EXPECT_FLOAT_EQ(hp.rope.factor, 32.0f);
    EXPECT_EQ(hp.rope.original_n_ctx, 8192);
    cfg["rope_scaling"].erase("low_freq_factor");
    EXPECT_TRUE(contains(parse_error(cfg), "missing key 'rope_scaling.low_freq_factor'"));

    cfg = base_config();
    cfg["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
    EXPECT_FLOAT_EQ(parse(cfg).rope.theta, 1e6f);
    cfg["partial_rotary_factor"] = 0.5;
    EXPECT_TRUE(contains(parse_error(cfg), "unsupported partial_rotary_factor"));
}

TEST(hf_config, unsupported_features) {
    json cfg = base_config();
    cfg["hidden_act"] = "gelu";
    EXPECT_TRUE(contains(parse_error(cfg), "unsupported hidden_act 'gelu'"));
    cfg = base_config();
    cfg["attention_bias"] = true;
    EXPECT_TRUE(contains(parse_error(cfg), "unsupported attention_bias=true"));
    cfg["architectures"] = {"Qwen2ForCausalLM"}; // Qwen2's q/k/v biases are built in; the flag is ignored
    EXPECT_TRUE(parse(cfg).qkv_bias);
    cfg = base_config();
    cfg["mlp_bias"] = true;
    EXPECT_TRUE(contains(parse_error(cfg), "unsupported mlp_bias=true"));
    cfg = base_config();
    cfg["quantization_config"] = {{"quant_method", "gptq"}};
    EXPECT_TRUE(contains(parse_error(cfg), "quant_method \"gptq\""));
}

TEST(hf_config, sizes_validated) {
    json cfg = base_config();
    cfg["num_key_value_heads"] = 3;
    EXPECT_TRUE(contains(parse_error(cfg), "num_attention_heads 4 is not a multiple of num_key_value_heads 3"));
    cfg = base_config();
    cfg["hidden_size"] = 66;
    EXPECT_TRUE(contains(parse_error(cfg), "hidden_size 66 is not divisible by num_attention_heads 4"));
    cfg = base_config();
    cfg["num_hidden_layers"] = 0;
    EXPECT_TRUE(contains(parse_error(cfg), "num_hidden_layers = 0 is out of range"));
    cfg = base_config();
    cfg["vocab_size"] = int64_t{1} << 40;
    EXPECT_TRUE(contains(parse_error(cfg), "vocab_size = 1099511627776 is out of range"));
    cfg = base_config();
    cfg["num_attention_heads"] = 0;
    EXPECT_TRUE(contains(parse_error(cfg), "num_attention_heads' must be positive"));
    cfg = base_config();
    cfg["rms_norm_eps"] = -1.0;
    EXPECT_TRUE(contains(parse_error(cfg), "rms_norm_eps"));
    cfg = base_config();
    cfg["eos_token_id"] = 100;
    EXPECT_TRUE(contains(parse_error(cfg), "eos_token_id 100 is not below vocab_size 100"));
}

TEST(hf_config, sliding_window) {
    json cfg = base_config();
    cfg["architectures"] = {"MistralForCausalLM"};
    cfg["sliding_window"] = 32;
    EXPECT_EQ(parse(cfg).sliding_window, 32);
    cfg["sliding_window"] = 4096; // >= max_position_embeddings: no window
    EXPECT_EQ(parse(cfg).sliding_window, 0);
    cfg["architectures"] = {"Qwen2ForCausalLM"};
    cfg["sliding_window"] = 32;
    EXPECT_EQ(parse(cfg).sliding_window, 0); // use_sliding_window absent
    cfg["use_sliding_window"] = true;
    EXPECT_EQ(parse(cfg).sliding_window, 32);
    cfg["architectures"] = {"LlamaForCausalLM"};
    EXPECT_EQ(parse(cfg).sliding_window, 0);
}

TEST(hf_config, token_ids) {
    json cfg = base_config();
    cfg["bos_token_id"] = 5;
    cfg["eos_token_id"] = 6;
    model_hparams hp = parse(cfg, R"({"eos_token_id": [7, 8]})");
    EXPECT_EQ(hp.bos_id, 5); // generation config has none: config.json's
    EXPECT_EQ(hp.eos_ids, (std::vector<int32_t>{7, 8}));
    hp = parse(cfg, R"({"bos_token_id": 9, "eos_token_id": null})");
    EXPECT_EQ(hp.bos_id, 9);
    EXPECT_EQ(hp.eos_ids, std::vector<int32_t>{6});
    EXPECT_TRUE(contains(parse_error(cfg, R"({"eos_token_id": "x"})"),
                         "generation_config.json: key 'eos_token_id' must be an integer"));
}

TEST(hf_config, directory_without_config) {
    temp_dir dir;
    EXPECT_TRUE(contains(error_of([&] { hf_config_load(dir.path()); }), dir.path() + " has no config.json"));
}

} // namespace
} // namespace specattn::test
