// Tensor parallelism (docs/tensor_parallel.md): which part of the model each of N ranks holds, as data, and the
// slicing of a loaded model into one rank's shard. Megatron-style: attention split by heads (the KV cache by KV
// heads), the MLP column- then row-parallel, embedding and LM head by vocabulary, norms replicated.
//
// A shard is an ordinary `model` whose hparams count the rank's own heads and MLP rows, so a backend runs it with
// its usual forward; what it cannot know from the shard alone (its vocabulary slice, where its KV heads sit among
// all of them) is in the rank's tp_rank_plan.
#pragma once

#include "model/model.h"

#include <cstdint>
#include <vector>

namespace specattn {

// A half-open range [begin, end) of rows, heads or token ids.
struct tp_range {
    int64_t begin = 0;
    int64_t end = 0;

    int64_t size() const { return end - begin; }
    bool contains(int64_t i) const { return i >= begin && i < end; }
};

struct tp_rank_plan {
    int32_t rank = 0;
    int32_t n_ranks = 1;
    tp_range heads;              // query heads: rank r of N owns [r·H/N, (r+1)·H/N)
    tp_range kv_heads;           // KV heads: [r·HK/N, (r+1)·HK/N); heads[i] reads kv_heads[i / (H/HK)], as without TP
    tp_range ff;                 // MLP intermediate rows (gate/up rows, down columns); balanced, need not divide
    tp_range vocab;              // embedding / LM-head rows: chunks of vocab_chunk ids, the last one shorter
    int64_t vocab_chunk = 0;     // ceil(n_vocab / N): every rank's LM-head block in the logits all-gather
    int64_t n_head_kv_total = 0; // the model's KV heads (synthetic K/V walks all of them in order)
    int64_t n_ff_total = 0;      // the model's MLP rows (a preset's rank generates the whole matrix, keeps its part)
};

// Rank r's vocabulary block: ids [r·chunk, (r+1)·chunk) clipped to the vocabulary (the last block is shorter, or
// empty). A rank's LM-head output is sent padded to `chunk` columns; this says which of them are real.
tp_range tp_vocab_block(int64_t n_vocab, int64_t chunk, int32_t r);

// Every rank's share. Throws specattn::error with one line when n_ranks does not divide the heads.
std::vector<tp_rank_plan> make_tp_plan(const model_hparams & hp, int32_t n_ranks);

// The one-rank plan: everything on rank 0 (what a backend runs without tensor parallelism).
tp_rank_plan whole_model_plan(const model_hparams & hp);

// Rank `r`'s shard of `m`: Q/K/V rows (and Qwen2 biases) of its heads, O columns of its heads, gate/up rows and down
// columns of its MLP range, embedding (and untied LM head) rows of its vocabulary. Norms (Qwen3's q/k norms
// included: one vector shared by every head) are copied. hp.n_vocab stays the whole vocabulary. A preset (random
// weights, generated on the GPU) gives a shard with the rank's hparams and no weights: the CUDA backend generates
// the whole model's matrices from the preset's seed and keeps its rank's part, so TP=N runs the TP=1 model.
model shard_model(const model & m, const tp_rank_plan & r);

} // namespace specattn
