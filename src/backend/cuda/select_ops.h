// Launchers of the draft-selection kernels (score_reduce.cuh, top_k.cuh, quest.cuh; ops_select.cu) and of the
// sampling / acceptance kernels (sample.cuh; ops_sample.cu). Host code only: they check what the kernels assume,
// size the grid from the capacities in the params (never from device data, so launches are graph-capturable)
// and launch on a stream. None allocates or synchronizes; a launch with no jobs or rows does nothing.
#pragma once

#include "kernels/kernel_params.h"
#include "kernels/select_params.h"

#include <cuda_runtime_api.h>

namespace specattn {

// After a layer's verify attention: every sink's scores of layer p.layer (score_reduce_job).
void launch_score_reduce(const score_reduce_params & p, cudaStream_t stream);
// After acceptance: every job's top-k as ascending positions (top_k_job). p.max_n <= top_k_max_n.
void launch_top_k(const top_k_params & p, cudaStream_t stream);
// After KV append: Quest min/max metadata of the listed pages.
void launch_quest_meta(const quest_meta_params & p, cudaStream_t stream);
// Per layer and draft step: Quest page selection of every job into sel_pos.
void launch_quest_select(const quest_select_params & p, cudaStream_t stream);

// Probabilities of each row under its sampling config (sampling_probs).
void launch_sample_probs(const sample_probs_params & p, cudaStream_t stream);
// One token per row from its probabilities and a uniform (sampler::sample_from).
void launch_sample_from(const sample_from_params & p, cudaStream_t stream);
// Speculative sampling per sequence (accept_sampled).
void launch_accept_sampled(const accept_sampled_params & p, cudaStream_t stream);
// Greedy acceptance (accept_greedy): argmax of every target row (am.out must be p.argmax_ids), then the walk.
void launch_accept_greedy(const argmax_params & am, const accept_greedy_params & p, cudaStream_t stream);

// The largest top-k domain a launch takes (positions are 32-bit inside the key).
constexpr int64_t top_k_max_n = int64_t{1} << 30;

} // namespace specattn
