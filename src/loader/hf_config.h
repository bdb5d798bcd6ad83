// Hugging Face config.json (+ generation_config.json beside it) -> model_hparams for the llama family:
// LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (q/k/v biases), Qwen3ForCausalLM (q/k norms).
// Both RoPE styles are read: transformers 5.x "rope_parameters" and the older top-level "rope_theta" +
// "rope_scaling". Anything the llama-family forward would compute differently from transformers (other
// activations, o_proj/MLP biases, yarn or dynamic RoPE) is refused with "unsupported ..." rather than run wrong.
#pragma once

#include "model/hparams.h"

#include <string>

namespace specattn {

// Reads DIR/config.json and, if present, DIR/generation_config.json (whose bos/eos ids take precedence).
model_hparams hf_config_load(const std::string & dir);

// Parses config.json text, and generation_config.json text (empty when there is none). The sources name the
// files in errors: "SOURCE: missing key 'hidden_size'".
model_hparams hf_config_parse(const std::string & config_text, const std::string & config_source,
                              const std::string & generation_text, const std::string & generation_source);

// Checks sizes are positive, consistent (heads divisible by kv heads, even head_dim) and within bounds that
// keep every later product of them far from int64 overflow. Shared with the llama2.c reader.
void hparams_validate(const model_hparams & hp, const std::string & source);

} // namespace specattn
