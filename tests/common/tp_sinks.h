// Tensor-parallel tests: the part of a one-rank per-KV-head score sink that a rank holds.
#pragma once

#include "tp/tp_plan.h"

#include <cstdint>
#include <vector>

namespace specattn::test {

// The [n_layer, kv_heads.size(), domain] part of a per-KV-head sink [n_layer, n_head_kv, domain].
inline std::vector<float> kv_head_part(const std::vector<float> & score, int64_t n_layer, int64_t n_head_kv,
                                       tp_range kv_heads, int64_t domain) {
    std::vector<float> out;
    for (int64_t l = 0; l < n_layer; ++l) {
        const float * first = score.data() + (l * n_head_kv + kv_heads.begin) * domain;
        out.insert(out.end(), first, first + kv_heads.size() * domain);
    }
    return out;
}

} // namespace specattn::test
