// UTF-8 helpers for the tokenizer. Text reaching the HF pipeline is validated once (utf8_valid) so that PCRE2 can
// skip its own check and every later step can step through characters without bounds surprises.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace specattn {

// Length of the UTF-8 sequence that starts with byte c, from the lead byte alone (1 for stray bytes).
inline size_t utf8_len(unsigned char c) {
    if (c < 0x80) {
        return 1;
    }
    if ((c >> 5) == 0x6) {
        return 2;
    }
    if ((c >> 4) == 0xE) {
        return 3;
    }
    if ((c >> 3) == 0x1E) {
        return 4;
    }
    return 1;
}

// Decodes the character at s[i]; returns its length in bytes, or 0 if s[i..] does not start with a valid,
// shortest-form UTF-8 character (surrogates and code points above U+10FFFF are invalid, as in Rust's str).
inline size_t utf8_decode(std::string_view s, size_t i, uint32_t & cp) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    const size_t n = utf8_len(c);
    if (n == 1) {
        cp = c;
        return c < 0x80 ? 1 : 0;
    }
    if (i + n > s.size()) {
        return 0;
    }
    uint32_t v = c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (b(k) & 0x3F);
    }
    static constexpr uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_for_len[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        return 0;
    }
    cp = v;
    return n;
}

// Whether s is entirely valid UTF-8.
inline bool utf8_valid(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        const size_t n = utf8_decode(s, i, cp);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

// Appends code point cp (assumed valid) to out.
inline void utf8_append(std::string & out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Whether s is exactly one UTF-8 character (HF stores Metaspace's replacement and Strip's content as a char).
inline bool utf8_is_one_char(std::string_view s) {
    uint32_t cp = 0;
    return !s.empty() && utf8_decode(s, 0, cp) == s.size();
}

// Rust's char::is_whitespace (the Unicode White_Space property), which HF uses for lstrip/rstrip.
inline bool unicode_is_whitespace(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

} // namespace specattn
