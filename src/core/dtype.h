// Element types of stored tensors and their conversions to fp32. The CPU reference computes in fp32 only;
// bf16 and f16 appear as storage formats of checkpoints (and, later, of CUDA activations and KV).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace specattn {

enum class dtype : int32_t {
    dtype_f32,
    dtype_f16,
    dtype_bf16,
    dtype_i32,
};

// Bytes per element.
size_t dtype_size(dtype t);
const char * dtype_name(dtype t);
// Parses a safetensors dtype string ("F32", "F16", "BF16", "I32"); returns false for anything else.
bool dtype_from_safetensors(std::string_view s, dtype & out);

inline float bf16_to_f32(uint16_t h) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// Round to nearest even, NaN kept quiet: the same rounding PyTorch uses when casting fp32 to bf16.
inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return static_cast<uint16_t>((bits >> 16) | 0x40u);
    }
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>(bits >> 16);
}

float f16_to_f32(uint16_t h);

// Converts n elements of type t at src into fp32 at dst.
void convert_to_f32(dtype t, const void * src, float * dst, int64_t n);

} // namespace specattn
