#include "model/presets.h"

#include "core/check.h"

#include <functional>
#include <utility>

namespace specattn {

namespace {

// Shapes from the models' config.json files (Hugging Face). Qwen3's trained context is 32K (40,960 positions);
// the preset allows 131,072 as Qwen does with YaRN, without YaRN's rope scaling: random weights make it moot.
model_hparams llama(int64_t vocab, int64_t embd, int64_t ff, int64_t layers, int64_t heads, int64_t kv_heads,
                    int64_t head_dim, bool tied) {
    model_hparams hp;
    hp.arch = model_arch::model_arch_llama;
    hp.arch_name = "LlamaForCausalLM";
    hp.n_vocab = vocab;
    hp.n_embd = embd;
    hp.n_ff = ff;
    hp.n_layer = layers;
    hp.n_head = heads;
    hp.n_head_kv = kv_heads;
    hp.head_dim = head_dim;
    hp.n_ctx_train = 131072;
    hp.norm_eps = 1e-5f;
    hp.rope.theta = 500000.0f;
    hp.rope.scaling = rope_scaling_type::rope_scaling_llama3;
    hp.rope.factor = tied ? 32.0f : 8.0f;
    hp.rope.low_freq_factor = 1.0f;
    hp.rope.high_freq_factor = 4.0f;
    hp.rope.original_n_ctx = 8192;
    hp.tied_embeddings = tied;
    hp.bos_id = 128000;
    hp.weight_dtype = "random bf16";
    return hp;
}

model_hparams qwen3(int64_t embd, int64_t ff, int64_t layers, int64_t heads, bool tied) {
    model_hparams hp;
    hp.arch = model_arch::model_arch_qwen3;
    hp.arch_name = "Qwen3ForCausalLM";
    hp.n_vocab = 151936;
    hp.n_embd = embd;
    hp.n_ff = ff;
    hp.n_layer = layers;
    hp.n_head = heads;
    hp.n_head_kv = 8;
    hp.head_dim = 128;
    hp.n_ctx_train = 131072;
    hp.norm_eps = 1e-6f;
    hp.rope.theta = 1000000.0f;
    hp.qk_norm = true;
    hp.tied_embeddings = tied;
    hp.weight_dtype = "random bf16";
    return hp;
}

const std::vector<std::pair<std::string, std::function<model_hparams()>>> & presets() {
    static const std::vector<std::pair<std::string, std::function<model_hparams()>>> all = {
        {"llama-3.1-8b", [] { return llama(128256, 4096, 14336, 32, 32, 8, 128, false); }},
        {"qwen3-8b", [] { return qwen3(4096, 12288, 36, 32, false); }},
        {"llama-3.2-1b", [] { return llama(128256, 2048, 8192, 16, 32, 8, 64, true); }},
        {"qwen3-0.6b", [] { return qwen3(1024, 3072, 28, 16, true); }},
    };
    return all;
}

} // namespace

bool is_preset_path(const std::string & path) { return path.rfind(preset_prefix, 0) == 0; }

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const auto & p : presets()) {
        names.push_back(p.first);
    }
    return names;
}

model_hparams preset_hparams(const std::string & path) {
    const std::string name = is_preset_path(path) ? path.substr(std::string(preset_prefix).size()) : path;
    for (const auto & p : presets()) {
        if (p.first == name) {
            return p.second();
        }
    }
    std::string list;
    for (const std::string & n : preset_names()) {
        list += (list.empty() ? "" : ", ") + n;
    }
    throw error(string_format("unknown preset '%s' (presets: %s)", name.c_str(), list.c_str()));
}

} // namespace specattn
