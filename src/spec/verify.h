// The acceptance rule of speculative decoding, shared by every backend (Leviathan et al.; Chen et al.):
//   for i = 0..γ-1: accept draft d_{i+1} with probability min(1, p_i(d) / q_i(d)); stop at the first rejection;
//   a < γ: the next token is drawn from norm(max(0, p_a - q_a)) (the residual); a = γ: from p_γ (the bonus).
// Greedy is the same rule with one-hot p and q: accept while the draft is the target's argmax.
// p_i are the target's distributions of verify rows 0..γ, q_i the draft distributions the drafts were drawn from,
// both after the same temperature / top-k / top-p / min-p (sampling_probs), so the output follows the target exactly.
#pragma once

#include "sampling/sampler.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace specattn {

struct accept_result {
    int64_t n_accepted = 0; // a
    int32_t next = -1;      // the corrected (a < γ) or bonus (a = γ) token
};

// target_logits: [n_drafts + 1, n_vocab]
accept_result accept_greedy(const std::vector<int32_t> & drafts, const float * target_logits, int64_t n_vocab);
// The same walk over the target rows' argmax ids (backend::forward_argmax).  target_ids: [n_drafts + 1]
accept_result accept_greedy_ids(const std::vector<int32_t> & drafts, const int32_t * target_ids);

// p: [n_drafts + 1] target distributions; q: [n_drafts] draft distributions; rng draws the acceptance uniforms and
// the residual / bonus token (independent of the stream the drafts were drawn with).
accept_result accept_sampled(const std::vector<int32_t> & drafts, const std::vector<std::vector<float>> & p,
                             const std::vector<std::vector<float>> & q, sampler & rng);
// The same rule with the uniforms taken from `uniform` in the same order (a test's emulation of a backend that runs
// it with uniforms drawn beforehand: backend::forward_accept).
accept_result accept_sampled(const std::vector<int32_t> & drafts, const std::vector<std::vector<float>> & p,
                             const std::vector<std::vector<float>> & q, const std::function<double()> & uniform);

} // namespace specattn
