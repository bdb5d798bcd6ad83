// hparams_validate (declared in hf_config.h): the one place that decides which model sizes we accept, for
// config.json and llama2.c headers alike. The bounds are generous for real models yet keep products such as
// n_layer * n_ff * n_embd (< 2^46) and n_vocab * n_embd (< 2^38) far from int64 overflow.
#include "loader/hf_config.h"

#include "core/check.h"

#include <cmath>

namespace specattn {

namespace {

void check_range(const std::string & source, const char * what, int64_t v, int64_t lo, int64_t hi) {
    SPECATTN_CHECK(v >= lo && v <= hi, "%s: %s = %lld is out of range [%lld, %lld]", source.c_str(), what,
                   static_cast<long long>(v), static_cast<long long>(lo), static_cast<long long>(hi));
}

void check_positive(const std::string & source, const char * what, float v) {
    SPECATTN_CHECK(std::isfinite(v) && v > 0.0f, "%s: %s = %g must be a positive finite number", source.c_str(), what,
                   static_cast<double>(v));
}

} // namespace

void hparams_validate(const model_hparams & hp, const std::string & source) {
    check_range(source, "vocab_size", hp.n_vocab, 1, int64_t{1} << 22);
    check_range(source, "hidden_size", hp.n_embd, 1, int64_t{1} << 16);
    check_range(source, "intermediate_size", hp.n_ff, 1, int64_t{1} << 20);
    check_range(source, "num_hidden_layers", hp.n_layer, 1, 1024);
    check_range(source, "num_attention_heads", hp.n_head, 1, 1024);
    check_range(source, "num_key_value_heads", hp.n_head_kv, 1, hp.n_head);
    SPECATTN_CHECK(hp.n_head % hp.n_head_kv == 0,
                   "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld", source.c_str(),
                   static_cast<long long>(hp.n_head), static_cast<long long>(hp.n_head_kv));
    check_range(source, "head_dim", hp.head_dim, 2, 1024);
    SPECATTN_CHECK(hp.head_dim % 2 == 0, "%s: head_dim %lld must be even for RoPE", source.c_str(),
                   static_cast<long long>(hp.head_dim));
    check_range(source, "max_position_embeddings", hp.n_ctx_train, 1, int64_t{1} << 26);
    check_range(source, "sliding_window", hp.sliding_window, 0, hp.n_ctx_train);

    check_positive(source, "rms_norm_eps", hp.norm_eps);
    check_positive(source, "rope_theta", hp.rope.theta);
    switch (hp.rope.scaling) {
    case rope_scaling_type::rope_scaling_none:
        break;
    case rope_scaling_type::rope_scaling_linear:
        check_positive(source, "rope factor", hp.rope.factor);
        break;
    case rope_scaling_type::rope_scaling_llama3:
        check_positive(source, "rope factor", hp.rope.factor);
        check_positive(source, "rope low_freq_factor", hp.rope.low_freq_factor);
        // The llama3 rule divides by (high - low).
        SPECATTN_CHECK(std::isfinite(hp.rope.high_freq_factor) && hp.rope.high_freq_factor > hp.rope.low_freq_factor,
                       "%s: rope high_freq_factor %g must exceed low_freq_factor %g", source.c_str(),
                       static_cast<double>(hp.rope.high_freq_factor), static_cast<double>(hp.rope.low_freq_factor));
        check_range(source, "rope original_max_position_embeddings", hp.rope.original_n_ctx, 1, int64_t{1} << 26);
        break;
    }

    SPECATTN_CHECK(hp.bos_id >= -1 && hp.bos_id < hp.n_vocab, "%s: bos_token_id %d is not below vocab_size %lld",
                   source.c_str(), hp.bos_id, static_cast<long long>(hp.n_vocab));
    for (const int32_t id : hp.eos_ids) {
        SPECATTN_CHECK(id >= 0 && id < hp.n_vocab, "%s: eos_token_id %d is not below vocab_size %lld", source.c_str(),
                       id, static_cast<long long>(hp.n_vocab));
    }
}

} // namespace specattn
