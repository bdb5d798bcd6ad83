#include "model/rope.h"

#include <cmath>
#include <numbers>

namespace specattn {

std::vector<float> rope_inv_freq(const rope_params & rope, int64_t head_dim) {
    const int64_t n_pairs = head_dim / 2;
    std::vector<float> inv_freq(static_cast<size_t>(n_pairs));
    for (int64_t i = 0; i < n_pairs; ++i) {
        // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in fp32.
        const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
        inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(rope.theta, exponent);
    }
    switch (rope.scaling) {
        case rope_scaling_type::rope_scaling_none:
            break;
        case rope_scaling_type::rope_scaling_linear:
            for (float & f : inv_freq) {
                f /= rope.factor;
            }
            break;
        case rope_scaling_type::rope_scaling_llama3: {
            // Long wavelengths (low frequencies) are divided by factor, short ones kept, the band between blended.
            const float old_ctx = static_cast<float>(rope.original_n_ctx);
            const float low_freq_wavelen = old_ctx / rope.low_freq_factor;
            const float high_freq_wavelen = old_ctx / rope.high_freq_factor;
            for (float & f : inv_freq) {
                const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
                if (wavelen > low_freq_wavelen) {
                    f = f / rope.factor;
                } else if (wavelen >= high_freq_wavelen) {
                    const float smooth =
                        (old_ctx / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
                    f = (1.0f - smooth) * f / rope.factor + smooth * f;
                }
            }
            break;
        }
    }
    return inv_freq;
}

} // namespace specattn
