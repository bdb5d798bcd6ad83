// Sampling where the logits are, for the CUDA backend's forward_sample / forward_sample_held / forward_accept
// (backend/backend.h): sampling_probs, the inverse-CDF draw and the speculative acceptance rule run as the kernels of
// kernels/sample.cuh over the LM head's output, with the uniforms the host drew, so only token ids come back.
//
// Draft distributions q live in held slots on the device between the draft passes and the verification; the
// verification's target distributions p are written for all its logit rows (over one or several passes) before
// the acceptance kernel reads both.
#pragma once

#include "backend/backend.h"
#include "backend/cuda/device_buffer.h"
#include "kernels/select_params.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace specattn {

class device_sampler {
  public:
    explicit device_sampler(int64_t n_vocab) : n_vocab_(n_vocab) {}

    // ids[k] = draw_from(sampling_probs(logits row k, params[k]), uniforms[k]), k < params.size(), into device ids;
    // with holds, row k's distribution is also kept in slot holds[k]. logits: [n, n_vocab] on the device.
    void sample(const float * logits, const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                const std::vector<int32_t> * holds, int32_t * ids, cudaStream_t stream);
    // Target distributions of verification logit rows [first, first + params.size()) of n_total, from logits
    // [params.size(), n_vocab]; the first call of a verification (first == 0) sizes the rows.
    void target_probs(const float * logits, const std::vector<sampling_params> & params, int64_t first, int64_t n_total,
                      cudaStream_t stream);
    // The acceptance rule of every verification over the target rows and held drafts; synchronizes.
    void accept(const std::vector<held_verification> & v, std::vector<accept_outcome> & out, cudaStream_t stream);

  private:
    // sampling_probs of rows logits[0, n) with params into dst [n, n_vocab]; stages configs and uniforms.
    void probs(const float * logits, const std::vector<sampling_params> & params, const std::vector<double> * uniforms,
               float * dst, cudaStream_t stream);
    // Held slots [0, n) with what the slots below the old capacity held.
    void reserve_held(int64_t n, cudaStream_t stream);
    // Stages n bytes for the next upload (grows the staging pair; the stream is idle between passes).
    void * staging(size_t bytes);

    int64_t n_vocab_;
    pinned_buffer host_;  // staging: configurations, uniforms, acceptance descriptors
    device_buffer dev_;   // its device copy
    device_buffer probs_; // [rows, V] fp32 distributions of the pass being sampled
    device_buffer work_;  // [rows, V] fp64 scratch of sample_probs
    int64_t rows_ = 0;
    device_buffer held_; // [held_cap, V] draft distributions
    int64_t held_cap_ = 0;
    device_buffer target_; // [target_cap, V] the verification's target distributions
    int64_t target_cap_ = 0;
    int64_t target_rows_ = 0;
    device_buffer accept_out_; // [2, N] int32 accepted counts, next tokens
    pinned_buffer accept_host_;
};

} // namespace specattn
