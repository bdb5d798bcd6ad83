// PCRE2 (UTF + UCP, JIT-compiled) standing in for the Oniguruma regexes of HF tokenizers. find_all() yields the
// matches in the order and with the empty-match rule of the onig crate's find_iter, which HF's Split, Replace and
// ByteLevel build on. A compiled pattern is immutable and shared by threads; match state lives per call/thread.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace specattn {

class regex {
  public:
    // literal: match pattern as plain text (HF's {"String": ...} patterns). Throws specattn::error naming the
    // pattern when PCRE2 rejects it.
    regex(std::string_view pattern, bool literal);
    ~regex();
    regex(const regex &) = delete;
    regex & operator=(const regex &) = delete;

    // Byte ranges [first, second) of the matches in text, which must be valid UTF-8. Throws specattn::error when
    // matching fails (e.g. a backtracking limit on a pathological pattern).
    void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>> & out) const;

  private:
    void * code_ = nullptr; // pcre2_code_8, kept opaque so callers need not include pcre2.h
};

} // namespace specattn
