// Shared by the sampler tests: sampling parameters in one line.
#pragma once

#include "sampling/sampler.h"

namespace specattn {

inline sampling_params make_params(float temperature, int32_t top_k, float top_p, float min_p, uint64_t seed = 0) {
    sampling_params p;
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    return p;
}

} // namespace specattn
