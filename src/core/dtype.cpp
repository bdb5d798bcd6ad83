#include "core/dtype.h"

#include "core/check.h"

namespace specattn {

size_t dtype_size(dtype t) {
    switch (t) {
        case dtype::dtype_f32: return 4;
        case dtype::dtype_f16: return 2;
        case dtype::dtype_bf16: return 2;
        case dtype::dtype_i32: return 4;
    }
    SPECATTN_ABORT("bad dtype %d", static_cast<int>(t));
}

const char * dtype_name(dtype t) {
    switch (t) {
        case dtype::dtype_f32: return "f32";
        case dtype::dtype_f16: return "f16";
        case dtype::dtype_bf16: return "bf16";
        case dtype::dtype_i32: return "i32";
    }
    SPECATTN_ABORT("bad dtype %d", static_cast<int>(t));
}

bool dtype_from_safetensors(std::string_view s, dtype & out) {
    if (s == "F32") { out = dtype::dtype_f32; return true; }
    if (s == "F16") { out = dtype::dtype_f16; return true; }
    if (s == "BF16") { out = dtype::dtype_bf16; return true; }
    if (s == "I32") { out = dtype::dtype_i32; return true; }
    return false;
}

float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            // Subnormal: shift the mantissa up until its leading one reaches the implicit bit.
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

void convert_to_f32(dtype t, const void * src, float * dst, int64_t n) {
    switch (t) {
        case dtype::dtype_f32:
            std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
            return;
        case dtype::dtype_f16: {
            const auto * s = static_cast<const uint16_t *>(src);
            for (int64_t i = 0; i < n; ++i) {
                dst[i] = f16_to_f32(s[i]);
            }
            return;
        }
        case dtype::dtype_bf16: {
            const auto * s = static_cast<const uint16_t *>(src);
            for (int64_t i = 0; i < n; ++i) {
                dst[i] = bf16_to_f32(s[i]);
            }
            return;
        }
        case dtype::dtype_i32:
            break;
    }
    throw error(string_format("cannot convert %s tensor to f32", dtype_name(t)));
}

} // namespace specattn
