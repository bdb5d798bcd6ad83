// PCRE2 (UTF + UCP, JIT-compiled) standing in for the Oniguruma regexes of HF tokenizers. Patterns get
// Oniguruma's \s (Unicode White_Space: PCRE2's also has U+180E), and find_all() yields the matches in the order
// and with the empty-match rule of the onig crate's find_iter, which HF's Split, Replace and ByteLevel build on.
// A compiled pattern is immutable and shared by threads; match state lives per call and per thread.
#pragma once

#include "tokenizer/json_view.h"

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace specattn {

class regex {
  public:
    // literal: match pattern as plain text (HF's {"String": ...} patterns). Throws specattn::error
    // "'PATTERN' does not compile ..." when PCRE2 rejects it.
    regex(std::string_view pattern, bool literal);
    ~regex();
    regex(const regex &) = delete;
    regex & operator=(const regex &) = delete;

    // Byte ranges [first, second) of the matches in text; bytes that are not valid UTF-8 never match. Throws
    // specattn::error when matching fails (e.g. a backtracking limit on a pathological pattern).
    void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>> & out) const;

  private:
    void * code_ = nullptr; // pcre2_code_8, kept opaque so callers need not include pcre2.h
};

// The pattern of a Split pre-tokenizer or a Replace normalizer/decoder: {"Regex": "..."} or {"String": "..."}.
// Errors name the field.
std::shared_ptr<const regex> regex_from_json(const json_view & pattern);

} // namespace specattn
