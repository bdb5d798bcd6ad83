// The llama family's weights as the CPU reference backend holds them: fp32, row-major, PyTorch's nn.Linear layout
// ([out_features, in_features]), whatever the checkpoint's storage type. Filled by model/load.cpp through the
// weight table; consumed by backend/cpu/forward.cpp.
#pragma once

#include <cstdint>
#include <vector>

namespace specattn {

// A row-major fp32 matrix [n_out, n_in]: y = W x reads row r for output r.
struct matrix {
    std::vector<float> w; // [n_out * n_in]
    int64_t n_out = 0;
    int64_t n_in = 0;

    bool empty() const { return w.empty(); }
    const float * row(int64_t r) const { return w.data() + r * n_in; }
};

struct layer_weights {
    std::vector<float> attn_norm; // [n_embd]
    matrix wq;                    // [n_head*head_dim, n_embd]
    matrix wk;                    // [n_head_kv*head_dim, n_embd]
    matrix wv;                    // [n_head_kv*head_dim, n_embd]
    matrix wo;                    // [n_embd, n_head*head_dim]
    std::vector<float> bq;        // [n_head*head_dim]     qkv_bias only
    std::vector<float> bk;        // [n_head_kv*head_dim]  qkv_bias only
    std::vector<float> bv;        // [n_head_kv*head_dim]  qkv_bias only
    std::vector<float> q_norm;    // [head_dim]            qk_norm only
    std::vector<float> k_norm;    // [head_dim]            qk_norm only
    std::vector<float> ffn_norm;  // [n_embd]
    matrix w_gate;                // [n_ff, n_embd]
    matrix w_up;                  // [n_ff, n_embd]
    matrix w_down;                // [n_embd, n_ff]
};

struct model_weights {
    matrix tok_embd; // [n_vocab, n_embd]
    std::vector<layer_weights> layers;
    std::vector<float> out_norm; // [n_embd]
    matrix output;               // [n_vocab, n_embd]; empty when the embeddings are tied

    const matrix & lm_head() const { return output.empty() ? tok_embd : output; }
};

} // namespace specattn
