// The CPU reference ops: plain fp32 loops, OpenMP threads over independent outputs, no intrinsics (the compiler
// vectorizes the inner dot products). Every CUDA kernel is tested against these.
#pragma once

#include "model/hparams.h"
#include "model/weights.h"

#include <cstdint>

namespace specattn {

// Dot product of two fp32 vectors of length n.
float cpu_dot(const float * a, const float * b, int64_t n);

// y = x Wᵀ (+ bias).  x: [n_rows, w.n_in]  y: [n_rows, w.n_out]  bias: [w.n_out] or nullptr
void cpu_matmul(const float * x, int64_t n_rows, const matrix & w, const float * bias, float * y);

// RMSNorm of n_rows rows of n elements each, as transformers computes it: x * rsqrt(mean(x²) + eps) * w.
// x and y may alias.  x, y: [n_rows, n]  w: [n]
void cpu_rmsnorm(const float * x, int64_t n_rows, int64_t n, const float * w, float eps, float * y);

// Rotates every head of one row in place at position pos.  v: [n_head, head_dim]  inv_freq: [head_dim / 2]
void cpu_rope(float * v, int64_t n_head, int64_t head_dim, int64_t pos, const float * inv_freq, rope_layout layout);

// out = silu(gate) * up, elementwise.  gate, up, out: [n]
void cpu_swiglu(const float * gate, const float * up, int64_t n, float * out);

// out += x elementwise.  [n]
void cpu_add(float * out, const float * x, int64_t n);

} // namespace specattn
