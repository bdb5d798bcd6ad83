// llama2.c checkpoint reader (see llama2c.h for the layout).
#include "loader/llama2c.h"

#include "core/check.h"
#include "loader/hf_config.h"

#include <cstring>

namespace specattn {

namespace {

constexpr size_t header_bytes = 7 * sizeof(int32_t);
// llama2.c's export.py writes "ak42" first in its version 1/2 formats, which this reader does not handle.
constexpr int32_t export_v1_magic = 0x616b3432;

// Appends the tensor `name` [rows, cols] (cols 0: 1-D [rows]) at element offset `at` of the fp32 payload.
void add_tensor(std::vector<tensor_ref> & out, const std::string & file, const uint8_t * payload, int64_t at,
                const std::string & name, int64_t rows, int64_t cols) {
    tensor_ref t;
    t.name = name;
    t.file = file;
    t.dtype_str = "F32";
    t.has_dtype = true;
    t.type = dtype::dtype_f32;
    t.elem_size = sizeof(float);
    t.shape = cols == 0 ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols};
    t.n_elements = cols == 0 ? rows : rows * cols;
    t.begin = static_cast<size_t>(at) * sizeof(float);
    t.end = t.begin + static_cast<size_t>(t.n_elements) * sizeof(float);
    t.data = payload + t.begin;
    out.push_back(std::move(t));
}

std::string layer_name(int64_t il, const char * suffix) {
    return string_format("model.layers.%lld.%s", static_cast<long long>(il), suffix);
}

} // namespace

void llama2c_parse(const uint8_t * data, size_t size, const std::string & file, model_hparams & hp,
                   std::vector<tensor_ref> & tensors) {
    SPECATTN_CHECK(size >= header_bytes, "%s: %zu bytes is too short for a llama2.c checkpoint", file.c_str(), size);
    int32_t h[7];
    std::memcpy(h, data, sizeof h);
    SPECATTN_CHECK(h[0] != export_v1_magic,
                   "%s: llama2.c export version 1/2 files are unsupported; export the legacy (version 0) format",
                   file.c_str());
    const int64_t dim = h[0], hidden = h[1], n_layer = h[2], n_head = h[3], n_head_kv = h[4], seq_len = h[6];
    const int64_t vocab = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
    SPECATTN_CHECK(dim > 0 && hidden > 0 && n_layer > 0 && n_head > 0 && n_head_kv > 0 && vocab > 0 && seq_len > 0,
                   "%s: not a llama2.c checkpoint: header (dim %lld, hidden_dim %lld, n_layers %lld, n_heads %lld, "
                   "n_kv_heads %lld, vocab_size %d, seq_len %lld) has a non-positive value",
                   file.c_str(), static_cast<long long>(dim), static_cast<long long>(hidden),
                   static_cast<long long>(n_layer), static_cast<long long>(n_head), static_cast<long long>(n_head_kv),
                   h[5], static_cast<long long>(seq_len));
    SPECATTN_CHECK(dim % n_head == 0, "%s: dim %lld is not divisible by n_heads %lld", file.c_str(),
                   static_cast<long long>(dim), static_cast<long long>(n_head));

    hp = model_hparams();
    hp.arch = model_arch::model_arch_llama;
    hp.arch_name = "llama2.c";
    hp.n_vocab = vocab;
    hp.n_embd = dim;
    hp.n_ff = hidden;
    hp.n_layer = n_layer;
    hp.n_head = n_head;
    hp.n_head_kv = n_head_kv;
    hp.head_dim = dim / n_head;
    hp.n_ctx_train = seq_len;
    hp.norm_eps = 1e-5f;
    hp.rope.theta = 10000.0f;
    hp.rope.layout = rope_layout::rope_layout_interleaved;
    hp.tied_embeddings = h[5] > 0;
    hp.bos_id = 1;
    // NOTE(loader): llama2.c's training data delimits stories with BOS and has no EOS, so the model ends a story
    // by predicting BOS; run.c stops on it. 2 (the tokenizer's </s>) is kept for checkpoints trained with EOS.
    hp.eos_ids = {2, 1};
    hp.weight_dtype = "f32";
    hparams_validate(hp, file);

    // Every value is bounded by hparams_validate, so these int64 products cannot overflow.
    const int64_t kv_dim = hp.n_embd_kv();
    const int64_t head_size = hp.head_dim;
    const int64_t per_layer = dim + 2 * dim * dim + 2 * kv_dim * dim + dim + 3 * hidden * dim;
    const int64_t n_floats = vocab * dim + n_layer * per_layer + dim + 2 * (seq_len * head_size / 2) +
                             (hp.tied_embeddings ? 0 : vocab * dim);
    const size_t expected = header_bytes + static_cast<size_t>(n_floats) * sizeof(float);
    SPECATTN_CHECK(size == expected,
                   "%s: llama2.c checkpoint is %zu bytes but its header (dim %lld, n_layers %lld, "
                   "vocab_size %d, seq_len %lld) needs exactly %zu (%s)",
                   file.c_str(), size, static_cast<long long>(dim), static_cast<long long>(n_layer), h[5],
                   static_cast<long long>(seq_len), expected, size < expected ? "truncated" : "trailing bytes");

    // Each stacked tensor [L, rows, cols] is split into L per-layer tensors.
    const uint8_t * payload = data + header_bytes;
    int64_t at = 0;
    tensors.clear();
    add_tensor(tensors, file, payload, at, "model.embed_tokens.weight", vocab, dim);
    at += vocab * dim;
    struct stacked {
        const char * suffix;
        int64_t rows;
        int64_t cols;
    };
    const stacked layout[] = {
        {"input_layernorm.weight", dim, 0},       {"self_attn.q_proj.weight", dim, dim},
        {"self_attn.k_proj.weight", kv_dim, dim}, {"self_attn.v_proj.weight", kv_dim, dim},
        {"self_attn.o_proj.weight", dim, dim},    {"post_attention_layernorm.weight", dim, 0},
        {"mlp.gate_proj.weight", hidden, dim},    {"mlp.down_proj.weight", dim, hidden},
        {"mlp.up_proj.weight", hidden, dim},
    };
    for (const stacked & s : layout) {
        const int64_t n = s.cols == 0 ? s.rows : s.rows * s.cols;
        for (int64_t il = 0; il < n_layer; ++il) {
            add_tensor(tensors, file, payload, at, layer_name(il, s.suffix), s.rows, s.cols);
            at += n;
        }
    }
    add_tensor(tensors, file, payload, at, "model.norm.weight", dim, 0);
    at += dim;
    at += 2 * (seq_len * head_size / 2); // freq_cis_real, freq_cis_imag
    if (!hp.tied_embeddings) {
        add_tensor(tensors, file, payload, at, "lm_head.weight", vocab, dim);
    }
}

llama2c_checkpoint::llama2c_checkpoint(const std::string & path) : map_(path) {
    llama2c_parse(map_.data(), map_.size(), path, hp_, tensors_);
}

} // namespace specattn
