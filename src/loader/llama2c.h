// Reader for llama2.c legacy checkpoints (run.c's "version 0" format, e.g. stories15M.bin):
//   7 int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//            (a negative vocab_size means an untied classifier is stored last)
//   fp32:    token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
//            wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim, hidden],
//            w3 [L, hidden, dim], rms_final [dim], freq_cis_real [seq_len, head_size/2], freq_cis_imag (same),
//            wcls [vocab, dim] when untied.
// The file has no magic or checksum, so its size must match the header exactly: a truncated or padded file is an
// error with the expected and actual sizes. Tensors are exposed under Hugging Face names (w1 = gate, w3 = up,
// w2 = down) so model/load.cpp fills the weights through the same table as for safetensors; the RoPE tables are
// skipped (recomputed from theta 10000 with the interleaved layout of Meta's checkpoints).
#pragma once

#include "core/mapped_file.h"
#include "loader/tensor_ref.h"
#include "model/hparams.h"

#include <string>
#include <vector>

namespace specattn {

// Parses a checkpoint held in memory: fills hp and the tensors, which point into `data`. `file` names it in errors.
void llama2c_parse(const uint8_t * data, size_t size, const std::string & file, model_hparams & hp,
                   std::vector<tensor_ref> & tensors);

// One mapped llama2.c checkpoint.
class llama2c_checkpoint {
  public:
    explicit llama2c_checkpoint(const std::string & path);

    const std::string & path() const { return map_.path(); }
    const model_hparams & hparams() const { return hp_; }
    const std::vector<tensor_ref> & tensors() const { return tensors_; }

  private:
    mapped_file map_;
    model_hparams hp_;
    std::vector<tensor_ref> tensors_;
};

} // namespace specattn
