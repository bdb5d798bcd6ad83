// The CPU reference backend: the llama-family forward pass as straight-line code over backend/cpu/ops.h, with
// the K/V pools laid out as src/kernels/paged_kv.h defines. Clarity first; it is the oracle for every other backend.
#pragma once

#include "backend/backend.h"
#include "kernels/paged_kv.h"
#include "model/model.h"

#include <functional>
#include <string>
#include <vector>

namespace specattn {

// Called with each named intermediate of the forward pass (per layer; layer -1 for model-level tensors), so a
// test can dump and diff it against transformers.  data: [n_rows, n]
using tensor_callback = std::function<void(const char * name, int64_t layer, const float * data, int64_t n_rows,
                                           int64_t n)>;

class cpu_backend : public backend {
  public:
    // Allocates K/V pools for n_pages pages of page_size tokens (the block manager must use the same numbers).
    cpu_backend(const model & m, int64_t n_pages, int64_t page_size);

    const char * name() const override { return "cpu"; }
    void forward(const forward_batch & batch, const kv_block_manager & kv, std::vector<float> & logits) override;

    void set_tensor_callback(tensor_callback cb) { callback_ = std::move(cb); }
    const paged_kv_layout & layout() const { return layout_; }

  private:
    // Causal attention of every row over its own sequence (all heads), reading K/V from the pools.
    // q: [n_rows, n_head, head_dim]  out: [n_rows, n_head, head_dim]
    void attention(const forward_batch & batch, const kv_block_manager & kv, int64_t layer, const float * q,
                   float * out) const;
    void write_kv(const forward_batch & batch, const kv_block_manager & kv, int64_t layer, const float * k,
                  const float * v);
    void emit(const char * name, int64_t layer, const float * data, int64_t n_rows, int64_t n) const;

    const model & model_;
    paged_kv_layout layout_;
    std::vector<float> k_pool_; // [n_layer, n_pages, n_head_kv, page_size, head_dim]
    std::vector<float> v_pool_; // same
    std::vector<float> inv_freq_; // [head_dim / 2]
    tensor_callback callback_;
};

} // namespace specattn
