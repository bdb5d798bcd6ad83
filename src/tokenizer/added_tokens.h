// Added tokens (special or not) found in text before the model sees it, as HF's AddedVocabulary does: the
// leftmost, then longest, occurrence wins; matches never overlap; single_word, lstrip and rstrip are honoured.
// HF runs two passes: tokens with normalized=false over the raw text, then tokens with normalized=true (their
// content normalized too) over each normalized piece in between; the caller drives the passes with two matchers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace specattn {

struct added_token {
    std::string content;
    int32_t id = -1;
    bool special = false;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
};

// A run of the input: an added token (token >= 0, an index into the matcher's tokens) or plain text (-1).
struct added_segment {
    size_t begin;
    size_t end;
    int32_t token;
};

class added_token_matcher {
  public:
    // Registers a token to look for, written as text (HF: normalized content for normalized tokens).
    void add(const std::string & text, const added_token & token);
    bool empty() const { return tokens_.empty(); }
    const added_token & token(int32_t i) const { return tokens_[static_cast<size_t>(i)]; }

    // Splits text into segments covering it, in order; plain segments are never empty.
    void split(std::string_view text, std::vector<added_segment> & out) const;

  private:
    // Longest registered text starting at text[pos]: token index and length, or -1.
    int32_t longest_at(std::string_view text, size_t pos, size_t & len) const;

    struct trie_node {
        std::vector<std::pair<unsigned char, int32_t>> children;
        int32_t token = -1;
    };
    std::vector<trie_node> nodes_{1};
    std::vector<added_token> tokens_;
};

} // namespace specattn
