#include "model/hparams.h"

#include "core/check.h"

namespace specattn {

int64_t model_hparams::n_params() const {
    const int64_t attn = n_embd * n_embd_q() * 2 + n_embd * n_embd_kv() * 2;
    const int64_t bias = qkv_bias ? n_embd_q() + 2 * n_embd_kv() : 0;
    const int64_t norms = 2 * n_embd + (qk_norm ? 2 * head_dim : 0);
    const int64_t mlp = 3 * n_embd * n_ff;
    const int64_t per_layer = attn + bias + norms + mlp;
    const int64_t embd = n_vocab * n_embd;
    return embd + n_layer * per_layer + n_embd + (tied_embeddings ? 0 : embd);
}

const char * model_arch_name(model_arch a) {
    switch (a) {
        case model_arch::model_arch_llama: return "llama";
        case model_arch::model_arch_mistral: return "mistral";
        case model_arch::model_arch_qwen2: return "qwen2";
        case model_arch::model_arch_qwen3: return "qwen3";
    }
    SPECATTN_ABORT("bad model_arch %d", static_cast<int>(a));
}

} // namespace specattn
