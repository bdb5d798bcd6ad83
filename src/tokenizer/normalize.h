// HF normalizers, applied to each piece of text between added tokens before pre-tokenization. Supported: NFC,
// NFD, NFKC, NFKD (utf8proc), Prepend, Replace (string or regex pattern) and Sequence; anything else is rejected
// at load time with the type's name.
#pragma once

#include "tokenizer/json_view.h"
#include "tokenizer/regex.h"

#include <memory>
#include <string>
#include <vector>

namespace specattn {

enum class normalizer_type {
    normalizer_type_nfc,
    normalizer_type_nfd,
    normalizer_type_nfkc,
    normalizer_type_nfkd,
    normalizer_type_prepend,
    normalizer_type_replace,
};

struct normalizer_step {
    normalizer_type type = normalizer_type::normalizer_type_nfc;
    std::shared_ptr<const regex> pattern; // Replace
    std::string content;                  // Prepend's prefix, Replace's replacement
};

class normalizer {
  public:
    // j: tokenizer.json's "normalizer" (null allowed).
    explicit normalizer(const json_view & j);

    bool empty() const { return steps_.empty(); }
    // Normalizes valid UTF-8 text. Throws if a chain of rules grows the text without bound (a hostile file).
    std::string apply(std::string text) const;

  private:
    void parse(const json_view & j, int depth);

    std::vector<normalizer_step> steps_;
};

// Replaces every match of pattern in text by content (HF's NormalizedString::replace, alignments aside); throws
// once the result exceeds limit bytes.
std::string regex_replace_all(const regex & pattern, const std::string & text, const std::string & content,
                              size_t limit);

} // namespace specattn
