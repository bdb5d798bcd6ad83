// load_model: finds the checkpoint behind a path, reads its hyperparameters, and fills model_weights through ONE
// weight table (STYLE.md §7): each row is a Hugging Face tensor name ({i} = layer), the expected shape in terms
// of the hparams, a flag saying when the tensor is required, and the destination slot. Every applicable required
// row must match a tensor of exactly that shape and a float dtype, and every tensor in the files must be consumed
// by some row, else the error names the tensor. All checks run before any byte is converted.
#include "model/model.h"
#include "model/presets.h"

#include "core/check.h"
#include "core/mapped_file.h"
#include "loader/hf_config.h"
#include "loader/json_util.h"
#include "loader/llama2c.h"
#include "loader/safetensors.h"
#include "model/weight_convert.h"

#include <memory>
#include <unordered_map>

namespace specattn {

namespace {

enum class weight_flag : int32_t {
    weight_flag_required,
    weight_flag_untied,   // lm_head: required unless the embeddings are tied; loaded as the output when present
    weight_flag_qkv_bias, // only when hp.qkv_bias (Qwen2)
    weight_flag_qk_norm,  // only when hp.qk_norm (Qwen3)
};

// A dimension of a weight, resolved from the hparams.
enum class weight_dim : int32_t {
    weight_dim_none, // second dimension of a 1-D tensor
    weight_dim_vocab,
    weight_dim_embd,
    weight_dim_ff,
    weight_dim_q,  // n_head * head_dim
    weight_dim_kv, // n_head_kv * head_dim
    weight_dim_head,
};

int64_t dim_value(const model_hparams & hp, weight_dim d) {
    switch (d) {
    case weight_dim::weight_dim_none:
        return 0;
    case weight_dim::weight_dim_vocab:
        return hp.n_vocab;
    case weight_dim::weight_dim_embd:
        return hp.n_embd;
    case weight_dim::weight_dim_ff:
        return hp.n_ff;
    case weight_dim::weight_dim_q:
        return hp.n_embd_q();
    case weight_dim::weight_dim_kv:
        return hp.n_embd_kv();
    case weight_dim::weight_dim_head:
        return hp.head_dim;
    }
    SPECATTN_ABORT("bad weight_dim %d", static_cast<int>(d));
}

// Where a row's values go: a matrix or a vector of the model (il is the layer for {i} rows).
struct weight_slot {
    matrix * m = nullptr;
    std::vector<float> * v = nullptr;
};
weight_slot slot_of(matrix & m) {
    return {&m, nullptr};
}
weight_slot slot_of(std::vector<float> & v) {
    return {nullptr, &v};
}

struct weight_row {
    const char * name;
    weight_dim rows;
    weight_dim cols; // weight_dim_none for 1-D
    weight_flag flag;
    weight_slot (*slot)(model_weights & w, int64_t il);
};

using enum weight_dim;
using enum weight_flag;

// clang-format off
const weight_row weight_table[] = {
    {"model.embed_tokens.weight", weight_dim_vocab, weight_dim_embd, weight_flag_required,
     [](model_weights & w, int64_t) { return slot_of(w.tok_embd); }},
    {"model.layers.{i}.input_layernorm.weight", weight_dim_embd, weight_dim_none, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].attn_norm); }},
    {"model.layers.{i}.self_attn.q_proj.weight", weight_dim_q, weight_dim_embd, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].wq); }},
    {"model.layers.{i}.self_attn.k_proj.weight", weight_dim_kv, weight_dim_embd, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].wk); }},
    {"model.layers.{i}.self_attn.v_proj.weight", weight_dim_kv, weight_dim_embd, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].wv); }},
    {"model.layers.{i}.self_attn.o_proj.weight", weight_dim_embd, weight_dim_q, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].wo); }},
    {"model.layers.{i}.self_attn.q_proj.bias", weight_dim_q, weight_dim_none, weight_flag_qkv_bias,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].bq); }},
    {"model.layers.{i}.self_attn.k_proj.bias", weight_dim_kv, weight_dim_none, weight_flag_qkv_bias,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].bk); }},
    {"model.layers.{i}.self_attn.v_proj.bias", weight_dim_kv, weight_dim_none, weight_flag_qkv_bias,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].bv); }},
    {"model.layers.{i}.self_attn.q_norm.weight", weight_dim_head, weight_dim_none, weight_flag_qk_norm,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].q_norm); }},
    {"model.layers.{i}.self_attn.k_norm.weight", weight_dim_head, weight_dim_none, weight_flag_qk_norm,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].k_norm); }},
    {"model.layers.{i}.post_attention_layernorm.weight", weight_dim_embd, weight_dim_none, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].ffn_norm); }},
    {"model.layers.{i}.mlp.gate_proj.weight", weight_dim_ff, weight_dim_embd, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].w_gate); }},
    {"model.layers.{i}.mlp.up_proj.weight", weight_dim_ff, weight_dim_embd, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].w_up); }},
    {"model.layers.{i}.mlp.down_proj.weight", weight_dim_embd, weight_dim_ff, weight_flag_required,
     [](model_weights & w, int64_t il) { return slot_of(w.layers[il].w_down); }},
    {"model.norm.weight", weight_dim_embd, weight_dim_none, weight_flag_required,
     [](model_weights & w, int64_t) { return slot_of(w.out_norm); }},
    {"lm_head.weight", weight_dim_vocab, weight_dim_embd, weight_flag_untied,
     [](model_weights & w, int64_t) { return slot_of(w.output); }},
};
// clang-format on

// Whether the checkpoint must hold the row's tensor (*required) and whether it may (return value).
bool row_applies(const weight_row & row, const model_hparams & hp, bool * required) {
    switch (row.flag) {
    case weight_flag_required:
        *required = true;
        return true;
    case weight_flag_untied:
        *required = !hp.tied_embeddings;
        return true;
    case weight_flag_qkv_bias:
        *required = hp.qkv_bias;
        return hp.qkv_bias;
    case weight_flag_qk_norm:
        *required = hp.qk_norm;
        return hp.qk_norm;
    }
    SPECATTN_ABORT("bad weight_flag %d", static_cast<int>(row.flag));
}

std::string expand_name(const char * pattern, int64_t il) {
    std::string name = pattern;
    const size_t p = name.find("{i}");
    if (p != std::string::npos) {
        name.replace(p, 3, std::to_string(il));
    }
    return name;
}

std::string shape_str(const std::vector<int64_t> & shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
    }
    return s + "]";
}

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A table row matched to a checkpoint tensor, checked but not yet allocated.
struct weight_match {
    const tensor_ref * src;
    weight_slot slot;
    int64_t rows;
    int64_t cols; // 0 for 1-D
};

// Matches the table against the checkpoint's tensors and checks everything; only then allocates the weights and
// returns the conversions to run, so a bad checkpoint fails before gigabytes are allocated.
std::vector<weight_job> plan_weights(const model_hparams & hp, const std::vector<tensor_ref> & tensors,
                                     const std::string & where, model_weights & w) {
    std::unordered_map<std::string, size_t> by_name;
    for (size_t i = 0; i < tensors.size(); ++i) {
        by_name.emplace(tensors[i].name, i);
    }
    std::vector<bool> consumed(tensors.size(), false);
    std::vector<weight_match> matches;
    w.layers.assign(static_cast<size_t>(hp.n_layer), layer_weights());
    for (const weight_row & row : weight_table) {
        bool required = false;
        if (!row_applies(row, hp, &required)) {
            continue; // a tensor present anyway stays unconsumed and is reported below
        }
        const bool per_layer = std::string_view(row.name).find("{i}") != std::string_view::npos;
        for (int64_t il = 0; il < (per_layer ? hp.n_layer : 1); ++il) {
            const std::string name = expand_name(row.name, il);
            const auto it = by_name.find(name);
            if (it == by_name.end()) {
                SPECATTN_CHECK(!required, "missing tensor %s in %s", name.c_str(), where.c_str());
                continue;
            }
            const tensor_ref & t = tensors[it->second];
            consumed[it->second] = true;
            const int64_t rows = dim_value(hp, row.rows);
            const int64_t cols = dim_value(hp, row.cols);
            const std::vector<int64_t> want = cols == 0 ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols};
            SPECATTN_CHECK(t.shape == want, "tensor %s has shape %s, expected %s (in %s)", name.c_str(),
                           shape_str(t.shape).c_str(), shape_str(want).c_str(), t.file.c_str());
            const bool is_float = t.has_dtype && t.type != dtype::dtype_i32;
            SPECATTN_CHECK(is_float, "tensor %s has dtype %s, unsupported for weights (F32, F16 or BF16) (in %s)",
                           name.c_str(), printable(t.dtype_str).c_str(), t.file.c_str());
            matches.push_back(weight_match{&t, row.slot(w, il), rows, cols});
        }
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
        // Old checkpoints carry RoPE's inverse frequencies as a buffer; we recompute them from the hparams.
        const bool skippable = ends_with(tensors[i].name, ".rotary_emb.inv_freq");
        SPECATTN_CHECK(consumed[i] || skippable, "unexpected tensor %s in %s", printable(tensors[i].name).c_str(),
                       tensors[i].file.c_str());
    }

    std::vector<weight_job> jobs;
    for (const weight_match & m : matches) {
        std::vector<float> & dst = m.slot.m != nullptr ? m.slot.m->w : *m.slot.v;
        if (m.slot.m != nullptr) {
            m.slot.m->n_out = m.rows;
            m.slot.m->n_in = m.cols;
        }
        dst.resize(static_cast<size_t>(m.src->n_elements));
        jobs.push_back(weight_job{m.src, dst.data()});
    }
    return jobs;
}

// A Hugging Face model directory for `path`: the directory itself, or the one holding a file the user named
// (config.json, model.safetensors, the index).
std::string hf_dir(const std::string & path) {
    if (is_directory(path)) {
        return path;
    }
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string hf_weights_path(const std::string & dir) {
    // transformers' order: the single file first, then the index.
    const std::string single = dir + "/model.safetensors";
    if (file_exists(single)) {
        return single;
    }
    const std::string index = dir + "/model.safetensors.index.json";
    if (file_exists(index)) {
        return index;
    }
    const bool has_bin = file_exists(dir + "/pytorch_model.bin") || file_exists(dir + "/pytorch_model.bin.index.json");
    throw error(
        string_format("%s has no model.safetensors or model.safetensors.index.json%s", dir.c_str(),
                      has_bin ? " (PyTorch .bin checkpoints are unsupported: convert them to safetensors)" : ""));
}

} // namespace

bool is_llama2c_path(const std::string & path) {
    return file_exists(path) && !ends_with(path, ".json") && !ends_with(path, ".safetensors");
}

model load_model(const std::string & path, const load_progress_fn & progress) {
    SPECATTN_CHECK(!path.empty(), "empty model path");
    if (is_preset_path(path)) {
        model m;
        m.path = path;
        m.hp = preset_hparams(path);
        m.random_weights = true;
        m.seed = 0x5eed;
        return m;
    }
    SPECATTN_CHECK(file_exists(path) || is_directory(path), "model path %s does not exist", path.c_str());
    model m;
    m.path = path;
    if (is_llama2c_path(path)) {
        const llama2c_checkpoint ck(path);
        m.hp = ck.hparams();
        convert_weights(plan_weights(m.hp, ck.tensors(), path, m.w), progress);
        return m;
    }
    const std::string dir = hf_dir(path);
    m.hp = hf_config_load(dir);
    const safetensors_checkpoint ck(hf_weights_path(dir));
    const std::vector<weight_job> jobs = plan_weights(m.hp, ck.tensors(), ck.path(), m.w);
    if (m.hp.weight_dtype.empty()) {
        m.hp.weight_dtype = dtype_name(jobs.front().src->type); // config.json without "dtype": report the file's
    }
    convert_weights(jobs, progress);
    return m;
}

} // namespace specattn
