// RoPE frequencies with the scaling schemes we support, computed once per model and shared by every backend.
#pragma once

#include "model/hparams.h"

#include <vector>

namespace specattn {

// inv_freq[i] for the head_dim/2 rotated pairs, scaling applied, in fp32 as transformers computes it:
// base^(-2i/d), then Llama-3's wavelength-dependent smoothing or linear division.
std::vector<float> rope_inv_freq(const rope_params & rope, int64_t head_dim);

} // namespace specattn
