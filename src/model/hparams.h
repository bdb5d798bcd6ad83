// Hyperparameters of the llama family (Llama, Mistral, Qwen2, Qwen3 are flags of one architecture, STYLE.md §7).
// Filled by loader/hf_config.cpp from config.json or by loader/llama2c.cpp from a llama2.c header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace specattn {

enum class model_arch : int32_t {
    model_arch_llama,   // LlamaForCausalLM, and llama2.c checkpoints
    model_arch_mistral, // MistralForCausalLM
    model_arch_qwen2,   // Qwen2ForCausalLM: q/k/v biases
    model_arch_qwen3,   // Qwen3ForCausalLM: per-head RMSNorm on q and k, head_dim independent of n_embd
};

// Which pairs of a head's dimensions RoPE rotates together.
enum class rope_layout : int32_t {
    rope_layout_interleaved, // (x0,x1), (x2,x3), ...: llama2.c and Meta's original checkpoints
    rope_layout_half_split,  // (x0,x_{d/2}), (x1,x_{d/2+1}), ...: Hugging Face's rotate_half
};

enum class rope_scaling_type : int32_t {
    rope_scaling_none,
    rope_scaling_linear, // positions divided by factor
    rope_scaling_llama3, // Llama-3.1 frequency-dependent scaling
};

struct rope_params {
    float theta = 10000.0f;
    rope_layout layout = rope_layout::rope_layout_half_split;
    rope_scaling_type scaling = rope_scaling_type::rope_scaling_none;
    float factor = 1.0f;
    float low_freq_factor = 1.0f;  // llama3
    float high_freq_factor = 4.0f; // llama3
    int64_t original_n_ctx = 8192; // llama3: original_max_position_embeddings
};

struct model_hparams {
    model_arch arch = model_arch::model_arch_llama;
    std::string arch_name; // as written in config.json ("LlamaForCausalLM") or "llama2.c"

    int64_t n_vocab = 0;
    int64_t n_embd = 0;    // hidden size
    int64_t n_ff = 0;      // MLP intermediate size
    int64_t n_layer = 0;
    int64_t n_head = 0;    // query heads
    int64_t n_head_kv = 0; // key/value heads (GQA when < n_head)
    int64_t head_dim = 0;
    int64_t n_ctx_train = 0; // max_position_embeddings: the longest context the engine accepts by default
    int64_t sliding_window = 0; // 0: full attention

    float norm_eps = 1e-5f;
    rope_params rope;

    bool qkv_bias = false;        // Qwen2
    bool qk_norm = false;         // Qwen3
    bool tied_embeddings = false; // lm_head shares the token embedding

    // Token ids from config.json / generation_config.json; -1 when absent.
    int32_t bos_id = -1;
    std::vector<int32_t> eos_ids;

    std::string weight_dtype; // storage type of the checkpoint's weights, for `specattn info`

    int64_t n_embd_q() const { return n_head * head_dim; }
    int64_t n_embd_kv() const { return n_head_kv * head_dim; }
    int64_t n_params() const;
};

const char * model_arch_name(model_arch a);

} // namespace specattn
