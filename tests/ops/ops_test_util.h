// Helpers of the CUDA op tests: GPU presence (tests skip cleanly without one), device buffers filled from host
// vectors, bf16 rounding on the host, NaN poisoning and the error measures with their tolerances.
#pragma once

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "core/dtype.h"
#include "kernels/kernel_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace specattn::test {

inline bool have_gpu() {
    static const bool has = [] {
        int n = 0;
        return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    }();
    return has;
}

#define SPECATTN_REQUIRE_GPU()                                                                                         \
    do {                                                                                                               \
        if (!::specattn::test::have_gpu()) {                                                                           \
            GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount reports none)";                                        \
        }                                                                                                              \
    } while (0)

inline float bf16_round(float f) {
    return bf16_to_f32(f32_to_bf16(f));
}
inline const float nan_f = std::numeric_limits<float>::quiet_NaN();

// Uniform values in [lo, hi), seeded.
inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float & x : v) {
        x = dist(rng);
    }
    return v;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float> & v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        out[i] = f32_to_bf16(v[i]);
    }
    return out;
}
inline std::vector<float> from_bf16(const std::vector<uint16_t> & v) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        out[i] = bf16_to_f32(v[i]);
    }
    return out;
}

// A device copy of a host vector.
template <typename T> device_buffer upload(const std::vector<T> & h) {
    device_buffer d(h.size() * sizeof(T));
    SPECATTN_CUDA_CHECK(cudaMemcpy(d.as<void>(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
template <typename T> std::vector<T> download(const device_buffer & d, size_t n) {
    std::vector<T> h(n);
    SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
    SPECATTN_CUDA_CHECK(cudaMemcpy(h.data(), d.as<void>(), n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}
template <typename T> T * dptr(const device_buffer & d) {
    return d.as<T>();
}
inline bf16 * bptr(const device_buffer & d) {
    return d.as<bf16>();
}

// ‖out − ref‖₂ / ‖ref‖₂ over n values; infinity when out has a non-finite value where ref is finite.
inline double rel_l2(const float * out, const float * ref, size_t n) {
    double num = 0.0;
    double den = 0.0;
    for (size_t i = 0; i < n; ++i) {
        if (!std::isfinite(out[i])) {
            return std::numeric_limits<double>::infinity();
        }
        const double d = static_cast<double>(out[i]) - ref[i];
        num += d * d;
        den += static_cast<double>(ref[i]) * ref[i];
    }
    return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Tolerances (‖out − ref‖ / ‖ref‖) against fp32 CPU references computed from the same bf16-rounded inputs:
// one bf16 rounding of the output is 2^-9 relative at worst (~1e-3 in L2); fp32 accumulation adds far less.
constexpr double tol_bf16_out = 5e-3;  // element-wise / row-wise ops and GEMMs with a bf16 output
constexpr double tol_f32_out = 1e-4;   // GEMMs with an fp32 output (only accumulation order differs)
constexpr double tol_attention = 1e-2; // attention: softmax of long rows, bf16 output

} // namespace specattn::test
