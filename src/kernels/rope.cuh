// The fused step between the QKV projection and attention (qkv_prep_params): per head, bias add (Qwen2), q/k
// RMSNorm (Qwen3) and RoPE from the inv_freq table (model/rope.h; Llama-3 scaling is already in the table), in fp32,
// in place on bf16; when the pools are given, the row's K and V heads are also stored at its (page, slot) of the
// paged cache (offsets: paged_kv_page_offset, src/kernels/paged_kv.h). One warp per head; a CTA holds
// qkv_prep_threads / 32 heads of one row, so a batch-1 step spreads its 48 heads over 12 SMs instead of looping
// over them in one CTA (15 us per layer before; the separate KV append another 6).
#pragma once

#include "kernels/common.cuh"
#include "kernels/paged_kv.h"

namespace specattn {

constexpr int qkv_prep_threads = 128;
constexpr int qkv_prep_max_head_dim = 256;

// grid: [R, ceil((H + 2 HK) / (qkv_prep_threads / 32))]  block: qkv_prep_threads.  Requires D even and <=
// qkv_prep_max_head_dim (checked by the launcher).
__global__ void __launch_bounds__(qkv_prep_threads) qkv_prep_kernel(const qkv_prep_params p) {
    constexpr int n_warp = qkv_prep_threads / warp_size;
    __shared__ float head_s[n_warp][qkv_prep_max_head_dim];
    pdl_wait(); // launched as a programmatic dependent: the QKV projection comes from the grid before
    pdl_launch_dependents();
    const int lane = static_cast<int>(threadIdx.x) % warp_size;
    const int warp = static_cast<int>(threadIdx.x) / warp_size;
    const int64_t r = blockIdx.x;
    const int64_t h = static_cast<int64_t>(blockIdx.y) * n_warp + warp;
    const int64_t hd = p.head_dim;
    const int64_t n_heads = p.n_head + 2 * p.n_head_kv;
    const float pos = static_cast<float>(p.positions[r]);
    bf16 * row = p.qkv + r * n_heads * hd; // [H + 2 HK, D]
    float * v = head_s[warp];              // [D] this warp's head in fp32
    if (h >= n_heads) {
        return;
    }
    const bool is_q = h < p.n_head;
    const bool is_k = !is_q && h < p.n_head + p.n_head_kv;
    bf16 * x = row + h * hd; // [D]
    float ss = 0.0f;
    for (int64_t d = lane; d < hd; d += warp_size) {
        float val = __bfloat162float(x[d]);
        if (p.bias != nullptr) {
            val += p.bias[h * hd + d];
        }
        v[d] = val;
        ss += val * val;
    }
    const float * norm_w = is_q ? p.q_norm : (is_k ? p.k_norm : nullptr);
    if (norm_w != nullptr) {
        const float scale = rsqrtf(warp_sum(ss) / static_cast<float>(hd) + p.eps);
        for (int64_t d = lane; d < hd; d += warp_size) {
            v[d] = norm_w[d] * (v[d] * scale);
        }
    }
    __syncwarp();
    // A K or V head also goes into the cache (when pools are given), stored where its bf16 values are made.
    bf16 * cache = nullptr; // [D]
    if (!is_q && p.k_pool != nullptr) {
        const int64_t kv_h = is_k ? h - p.n_head : h - p.n_head - p.n_head_kv;
        cache = (is_k ? p.k_pool : p.v_pool) +
                paged_kv_page_offset(p.page[r], kv_h, p.slot[r], p.n_head_kv, p.page_size, hd);
    }
    const auto put = [&](int64_t d, float value) {
        const bf16 b = __float2bfloat16(value);
        x[d] = b;
        if (cache != nullptr) {
            cache[d] = b;
        }
    };
    if (is_q || is_k) {
        const int64_t half = hd / 2;
        for (int64_t i = lane; i < half; i += warp_size) {
            // fp32 angle, as transformers computes position * inv_freq; accurate sincosf (no fast math).
            float s;
            float c;
            sincosf(pos * p.inv_freq[i], &s, &c);
            const int64_t a = p.pairs == rope_pairs::rope_pairs_interleaved ? 2 * i : i;
            const int64_t b = p.pairs == rope_pairs::rope_pairs_interleaved ? 2 * i + 1 : i + half;
            const float x0 = v[a];
            const float x1 = v[b];
            put(a, x0 * c - x1 * s);
            put(b, x0 * s + x1 * c);
        }
    } else {
        for (int64_t d = lane; d < hd; d += warp_size) {
            put(d, v[d]);
        }
    }
}

} // namespace specattn
