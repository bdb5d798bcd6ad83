// config.json parsing for the llama family (see hf_config.h). Defaults follow transformers' config classes so a
// file that transformers loads loads here to the same numbers; every key read is type-checked and named in errors.
#include "loader/hf_config.h"

#include "core/check.h"
#include "core/mapped_file.h"
#include "loader/json_util.h"

#include <cmath>

namespace specattn {

namespace {

constexpr const char * supported_archs = "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM";

struct arch_entry {
    const char * name;
    model_arch arch;
};

constexpr arch_entry arch_table[] = {
    {"LlamaForCausalLM", model_arch::model_arch_llama},
    {"MistralForCausalLM", model_arch::model_arch_mistral},
    {"Qwen2ForCausalLM", model_arch::model_arch_qwen2},
    {"Qwen3ForCausalLM", model_arch::model_arch_qwen3},
};

// Typed, optional-aware reads of one JSON object; `prefix` qualifies nested keys ("rope_parameters.factor").
// A key that is absent or null takes the default.
struct config_reader {
    const json & obj;
    const std::string & source;
    std::string prefix;

    const json * find(const char * key) const {
        const auto it = obj.find(key);
        return it == obj.end() || it->is_null() ? nullptr : &*it;
    }

    [[noreturn]] void wrong_type(const char * key, const char * want, const json & v) const {
        throw error(string_format("%s: key '%s%s' must be %s, got %s", source.c_str(), prefix.c_str(), key, want,
                                  json_type_name(v)));
    }

    const json & require(const char * key) const {
        const json * v = find(key);
        SPECATTN_CHECK(v != nullptr, "%s: missing key '%s%s'", source.c_str(), prefix.c_str(), key);
        return *v;
    }

    int64_t as_int(const char * key, const json & v) const {
        int64_t out = 0;
        if (!json_get_int64(v, out)) {
            wrong_type(key, "an integer", v);
        }
        return out;
    }

    double as_float(const char * key, const json & v) const {
        if (!v.is_number()) {
            wrong_type(key, "a number", v);
        }
        return v.get<double>();
    }

    int64_t req_int(const char * key) const { return as_int(key, require(key)); }
    double req_float(const char * key) const { return as_float(key, require(key)); }

    int64_t opt_int(const char * key, int64_t def) const {
        const json * v = find(key);
        return v == nullptr ? def : as_int(key, *v);
    }

    double opt_float(const char * key, double def) const {
        const json * v = find(key);
        return v == nullptr ? def : as_float(key, *v);
    }

    bool opt_bool(const char * key, bool def) const {
        const json * v = find(key);
        if (v == nullptr) {
            return def;
        }
        if (!v->is_boolean()) {
            wrong_type(key, "a boolean", *v);
        }
        return v->get<bool>();
    }

    std::string opt_string(const char * key, const std::string & def) const {
        const json * v = find(key);
        if (v == nullptr) {
            return def;
        }
        if (!v->is_string()) {
            wrong_type(key, "a string", *v);
        }
        return v->get<std::string>();
    }

    config_reader nested(const char * key) const {
        const json * v = find(key);
        SPECATTN_CHECK(v != nullptr && v->is_object(), "%s: key '%s%s' must be an object", source.c_str(),
                       prefix.c_str(), key);
        return config_reader{*v, source, prefix + key + "."};
    }
};

model_arch parse_arch(const config_reader & cfg, std::string & arch_name) {
    const json & archs = cfg.require("architectures");
    SPECATTN_CHECK(archs.is_array() && !archs.empty() && archs[0].is_string(),
                   "%s: key 'architectures' must be a non-empty list of strings", cfg.source.c_str());
    arch_name = archs[0].get<std::string>();
    for (const arch_entry & a : arch_table) {
        if (arch_name == a.name) {
            return a.arch;
        }
    }
    throw error(string_format("%s: unsupported architecture %s (supported: %s)", cfg.source.c_str(),
                              printable(arch_name).c_str(), supported_archs));
}

// One scaling description: transformers 5.x "rope_parameters" or a 4.x "rope_scaling" object.
void parse_rope_scaling(const config_reader & r, rope_params & rope) {
    const std::string type = r.opt_string("rope_type", r.opt_string("type", "default"));
    if (type == "default") {
        rope.scaling = rope_scaling_type::rope_scaling_none;
    } else if (type == "linear") {
        rope.scaling = rope_scaling_type::rope_scaling_linear;
        rope.factor = static_cast<float>(r.req_float("factor"));
    } else if (type == "llama3") {
        rope.scaling = rope_scaling_type::rope_scaling_llama3;
        rope.factor = static_cast<float>(r.req_float("factor"));
        rope.low_freq_factor = static_cast<float>(r.req_float("low_freq_factor"));
        rope.high_freq_factor = static_cast<float>(r.req_float("high_freq_factor"));
        rope.original_n_ctx = r.req_int("original_max_position_embeddings");
    } else {
        throw error(string_format("%s: unsupported rope scaling '%s' (supported: default, linear, llama3)",
                                  r.source.c_str(), printable(type).c_str()));
    }
    const double partial = r.opt_float("partial_rotary_factor", 1.0);
    SPECATTN_CHECK(partial == 1.0, "%s: unsupported %spartial_rotary_factor %g (only 1.0)", r.source.c_str(),
                   r.prefix.c_str(), partial);
}

void parse_rope(const config_reader & cfg, rope_params & rope) {
    rope.layout = rope_layout::rope_layout_half_split; // transformers' rotate_half
    const double top_theta = cfg.opt_float("rope_theta", 10000.0);
    if (cfg.find("rope_parameters") != nullptr) {
        const config_reader r = cfg.nested("rope_parameters");
        rope.theta = static_cast<float>(r.opt_float("rope_theta", top_theta));
        parse_rope_scaling(r, rope);
    } else {
        rope.theta = static_cast<float>(top_theta);
        if (cfg.find("rope_scaling") != nullptr) {
            parse_rope_scaling(cfg.nested("rope_scaling"), rope);
        }
    }
    const double partial = cfg.opt_float("partial_rotary_factor", 1.0);
    SPECATTN_CHECK(partial == 1.0, "%s: unsupported partial_rotary_factor %g (only 1.0)", cfg.source.c_str(), partial);
}

int32_t parse_token_id(const config_reader & r, const char * key, const json & v) {
    const int64_t id = r.as_int(key, v);
    SPECATTN_CHECK(id >= 0 && id <= INT32_MAX, "%s: key '%s' has token id %lld out of range", r.source.c_str(), key,
                   static_cast<long long>(id));
    return static_cast<int32_t>(id);
}

// generation_config.json wins over config.json, key by key, as in transformers' generate().
void parse_token_ids(const config_reader & cfg, const config_reader * gen, model_hparams & hp) {
    const config_reader & bos_src = gen != nullptr && gen->find("bos_token_id") != nullptr ? *gen : cfg;
    if (const json * bos = bos_src.find("bos_token_id")) {
        hp.bos_id = parse_token_id(bos_src, "bos_token_id", *bos);
    }
    const config_reader & eos_src = gen != nullptr && gen->find("eos_token_id") != nullptr ? *gen : cfg;
    if (const json * eos = eos_src.find("eos_token_id")) {
        if (eos->is_array()) {
            for (const json & id : *eos) {
                hp.eos_ids.push_back(parse_token_id(eos_src, "eos_token_id", id));
            }
        } else {
            hp.eos_ids.push_back(parse_token_id(eos_src, "eos_token_id", *eos));
        }
    }
}

std::string short_dtype_name(const std::string & torch_name) {
    if (torch_name == "float32") {
        return "f32";
    }
    if (torch_name == "float16") {
        return "f16";
    }
    if (torch_name == "bfloat16") {
        return "bf16";
    }
    return torch_name;
}

// Features of these config classes that our llama-family forward does not compute: refuse rather than run wrong.
void check_unsupported(const config_reader & cfg, const model_hparams & hp) {
    const char * src = cfg.source.c_str();
    const std::string act = cfg.opt_string("hidden_act", "silu");
    SPECATTN_CHECK(act == "silu", "%s: unsupported hidden_act '%s' (supported: silu)", src, printable(act).c_str());
    // Qwen2 hard-codes q/k/v biases and ignores attention_bias; elsewhere it would also add an o_proj bias.
    if (hp.arch != model_arch::model_arch_qwen2) {
        SPECATTN_CHECK(!cfg.opt_bool("attention_bias", false),
                       "%s: unsupported attention_bias=true (%s with attention biases, o_proj included)", src,
                       hp.arch_name.c_str());
    }
    SPECATTN_CHECK(!cfg.opt_bool("mlp_bias", false), "%s: unsupported mlp_bias=true", src);
    if (const json * q = cfg.find("quantization_config")) {
        const json method = q->is_object() ? q->value("quant_method", json("?")) : json("?");
        throw error(
            string_format("%s: unsupported quantized checkpoint (quant_method %s); weights must be F32/F16/BF16", src,
                          printable(method.dump()).c_str()));
    }
}

} // namespace

model_hparams hf_config_parse(const std::string & config_text, const std::string & config_source,
                              const std::string & generation_text, const std::string & generation_source) {
    const json root = json_parse_strict(config_text, config_source);
    SPECATTN_CHECK(root.is_object(), "%s: config is a JSON %s, not an object", config_source.c_str(),
                   json_type_name(root));
    const config_reader cfg{root, config_source, ""};

    model_hparams hp;
    hp.arch = parse_arch(cfg, hp.arch_name);
    check_unsupported(cfg, hp);
    hp.n_vocab = cfg.req_int("vocab_size");
    hp.n_embd = cfg.req_int("hidden_size");
    hp.n_ff = cfg.req_int("intermediate_size");
    hp.n_layer = cfg.req_int("num_hidden_layers");
    hp.n_head = cfg.req_int("num_attention_heads");
    hp.n_head_kv = cfg.opt_int("num_key_value_heads", hp.n_head);
    hp.n_ctx_train = cfg.req_int("max_position_embeddings");
    hp.norm_eps = static_cast<float>(cfg.req_float("rms_norm_eps"));
    hp.tied_embeddings = cfg.opt_bool("tie_word_embeddings", false);
    hp.qkv_bias = hp.arch == model_arch::model_arch_qwen2;
    hp.qk_norm = hp.arch == model_arch::model_arch_qwen3;

    // NOTE(loader): Qwen3Config defaults head_dim to 128, independent of hidden_size; the others derive it.
    SPECATTN_CHECK(hp.n_head > 0, "%s: key 'num_attention_heads' must be positive, got %lld", config_source.c_str(),
                   static_cast<long long>(hp.n_head));
    const bool derive_head_dim = hp.arch != model_arch::model_arch_qwen3;
    if (cfg.find("head_dim") == nullptr && derive_head_dim) {
        SPECATTN_CHECK(hp.n_embd % hp.n_head == 0, "%s: hidden_size %lld is not divisible by num_attention_heads %lld",
                       config_source.c_str(), static_cast<long long>(hp.n_embd), static_cast<long long>(hp.n_head));
    }
    hp.head_dim = cfg.opt_int("head_dim", derive_head_dim ? hp.n_embd / hp.n_head : 128);

    parse_rope(cfg, hp.rope);

    switch (hp.arch) {
    case model_arch::model_arch_mistral:
        hp.sliding_window = cfg.opt_int("sliding_window", 0);
        break;
    case model_arch::model_arch_qwen2:
    case model_arch::model_arch_qwen3:
        if (cfg.opt_bool("use_sliding_window", false)) {
            hp.sliding_window = cfg.opt_int("sliding_window", 0);
        }
        break;
    case model_arch::model_arch_llama:
        break;
    }
    if (hp.sliding_window >= hp.n_ctx_train) {
        hp.sliding_window = 0; // a window as long as the context is no window
    }

    json gen_root;
    if (!generation_text.empty()) {
        gen_root = json_parse_strict(generation_text, generation_source);
        SPECATTN_CHECK(gen_root.is_object(), "%s: generation config is a JSON %s, not an object",
                       generation_source.c_str(), json_type_name(gen_root));
    }
    const config_reader gen{gen_root, generation_source, ""};
    parse_token_ids(cfg, generation_text.empty() ? nullptr : &gen, hp);

    const std::string dtype_key = cfg.find("dtype") != nullptr ? "dtype" : "torch_dtype";
    hp.weight_dtype = short_dtype_name(cfg.opt_string(dtype_key.c_str(), ""));

    hparams_validate(hp, config_source);
    return hp;
}

model_hparams hf_config_load(const std::string & dir) {
    const std::string config_path = dir + "/config.json";
    SPECATTN_CHECK(file_exists(config_path), "%s has no config.json", dir.c_str());
    const std::string gen_path = dir + "/generation_config.json";
    const std::string gen_text = file_exists(gen_path) ? read_text_file(gen_path) : std::string();
    return hf_config_parse(read_text_file(config_path), config_path, gen_text, gen_path);
}

} // namespace specattn
