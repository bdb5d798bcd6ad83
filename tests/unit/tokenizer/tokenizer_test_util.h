// Shared helpers of the tokenizer tests: fixture paths, golden files (made by tools/make_fixtures.py with HF
// tokenizers) and readable id-list comparisons.
#pragma once

#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace specattn {

inline std::string source_path(const std::string & rel) { return std::string(SPECATTN_SOURCE_DIR) + "/" + rel; }

inline std::string read_file_or_empty(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct golden_case {
    std::string text;
    std::vector<int32_t> ids;
    std::vector<int32_t> ids_with_special;
    std::string decoded;
};

// tests/fixtures/tokenizer/NAME.golden.json.
inline std::vector<golden_case> load_golden(const std::string & name) {
    const std::string text = read_file_or_empty(source_path("tests/fixtures/tokenizer/" + name + ".golden.json"));
    const nlohmann::json j = nlohmann::json::parse(text);
    std::vector<golden_case> cases;
    for (const nlohmann::json & c : j.at("cases")) {
        cases.push_back({c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>(),
                         c.at("ids_with_special").get<std::vector<int32_t>>(), c.at("decoded").get<std::string>()});
    }
    return cases;
}

// Text with control characters escaped, for failure messages.
inline std::string escaped(const std::string & s) {
    std::string out;
    for (const char c : s) {
        const unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

inline std::string ids_string(const std::vector<int32_t> & ids) {
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
        out += (i == 0 ? "" : ", ") + std::to_string(ids[i]);
    }
    return out + "]";
}

// Equal ids, or a message with the text and the first differing index.
inline ::testing::AssertionResult same_ids(const std::string & text, const std::vector<int32_t> & want,
                                           const std::vector<int32_t> & got) {
    if (want == got) {
        return ::testing::AssertionSuccess();
    }
    size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) {
        ++i;
    }
    return ::testing::AssertionFailure() << "text \"" << escaped(text) << "\": first difference at index " << i
                                         << "\n  want " << ids_string(want) << "\n  got  " << ids_string(got);
}

inline const char * const replacement_char = "\xEF\xBF\xBD"; // U+FFFD

// bytes with invalid UTF-8 replaced by U+FFFD, as Rust's String::from_utf8_lossy does (one per maximal invalid
// subpart) or, per_byte, as HF's ByteFallback decoder does (one per byte).
inline std::string lossy(const std::string & bytes, bool per_byte) {
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
        const unsigned char c = static_cast<unsigned char>(bytes[i]);
        const size_t len = c < 0x80                 ? 1
                           : c >= 0xC2 && c <= 0xDF ? 2
                           : c >= 0xE0 && c <= 0xEF ? 3
                           : c >= 0xF0 && c <= 0xF4 ? 4
                                                    : 0;
        size_t n = len == 0 ? 0 : 1;
        while (n > 0 && n < len && i + n < bytes.size()) {
            const unsigned char d = static_cast<unsigned char>(bytes[i + n]);
            const unsigned char lo = n == 1 && c == 0xE0 ? 0xA0 : n == 1 && c == 0xF0 ? 0x90 : 0x80;
            const unsigned char hi = n == 1 && c == 0xED ? 0x9F : n == 1 && c == 0xF4 ? 0x8F : 0xBF;
            if (d < lo || d > hi) {
                break;
            }
            ++n;
        }
        if (len != 0 && n == len) {
            out.append(bytes, i, n);
            i += n;
            continue;
        }
        const size_t bad = std::max<size_t>(n, 1);
        for (size_t k = 0; k < (per_byte ? bad : 1); ++k) {
            out += replacement_char;
        }
        i += bad;
    }
    return out;
}

inline std::string without(const std::string & s, const std::string & what) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, what.size(), what) == 0) {
            i += what.size();
        } else {
            out += s[i++];
        }
    }
    return out;
}

// HF writes U+FFFD where decoded bytes are not valid UTF-8; we keep the bytes (decode.h says why). Equal once our
// bytes are replaced the way HF replaces them; HF's ByteFallback replaces every byte of a run of byte tokens that
// is not valid as a whole (a valid "\n" inside it too), which the output no longer shows, so there it suffices
// that HF's text without U+FFFD is a subsequence of ours without invalid bytes.
inline ::testing::AssertionResult same_text(const std::string & hf, const std::string & ours) {
    if (hf == ours || hf == lossy(ours, false) || hf == lossy(ours, true)) {
        return ::testing::AssertionSuccess();
    }
    const std::string want = without(hf, replacement_char);
    const std::string got = without(lossy(ours, false), replacement_char);
    size_t k = 0;
    for (size_t i = 0; i < got.size() && k < want.size(); ++i) {
        k += got[i] == want[k] ? 1 : 0;
    }
    if (want.size() < hf.size() && k == want.size()) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "want \"" << escaped(hf) << "\"\n  got  \"" << escaped(ours) << "\"";
}

} // namespace specattn
