// Added-token matching (see added_tokens.h): a byte trie walked at each position gives the leftmost-longest
// matches that HF gets from aho-corasick; the rules for single_word/lstrip/rstrip are those of
// AddedVocabulary::find_matches.
#include "tokenizer/added_tokens.h"

#include "tokenizer/utf8.h"

#include <utf8proc.h>

#include <algorithm>

namespace specattn {

namespace {

// Rust's char::is_alphanumeric, which single_word uses to decide what a word is.
bool is_alphanumeric(uint32_t cp) {
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return true;
    default: // a third-party enum: every other category is not a word character
        return false;
    }
}

// The character that ends at byte end of text (end > 0, text valid UTF-8): its start and code point.
size_t char_before(std::string_view text, size_t end, uint32_t & cp) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
        --start;
    }
    if (utf8_decode(text, start, cp) == 0) {
        cp = 0xFFFD;
    }
    return start;
}

uint32_t char_at(std::string_view text, size_t pos, size_t & len) {
    uint32_t cp = 0xFFFD;
    len = utf8_decode(text, pos, cp);
    if (len == 0) {
        len = 1;
    }
    return cp;
}

} // namespace

void added_token_matcher::add(const std::string & text, const added_token & token) {
    if (text.empty()) {
        return; // HF skips empty tokens; an empty pattern would match everywhere
    }
    int32_t node = 0;
    for (const char c : text) {
        const unsigned char b = static_cast<unsigned char>(c);
        int32_t child = -1;
        for (const auto & [byte, index] : nodes_[node].children) {
            if (byte == b) {
                child = index;
                break;
            }
        }
        if (child < 0) {
            child = static_cast<int32_t>(nodes_.size());
            nodes_[node].children.emplace_back(b, child);
            nodes_.emplace_back();
        }
        node = child;
    }
    if (nodes_[node].token < 0) {
        nodes_[node].token = static_cast<int32_t>(tokens_.size());
        tokens_.push_back(token);
    }
}

int32_t added_token_matcher::longest_at(std::string_view text, size_t pos, size_t & len) const {
    int32_t best = -1;
    int32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
        const unsigned char b = static_cast<unsigned char>(text[i]);
        int32_t child = -1;
        for (const auto & [byte, index] : nodes_[node].children) {
            if (byte == b) {
                child = index;
                break;
            }
        }
        if (child < 0) {
            break;
        }
        node = child;
        if (nodes_[node].token >= 0) {
            best = nodes_[node].token;
            len = i + 1 - pos;
        }
    }
    return best;
}

void added_token_matcher::split(std::string_view text, std::vector<added_segment> & out) const {
    out.clear();
    size_t start_offset = 0; // end of the last emitted segment
    size_t pos = 0;          // where the search resumes (the raw end of the last match, as in aho-corasick)
    while (pos < text.size() && !tokens_.empty()) {
        size_t len = 0;
        const int32_t index = longest_at(text, pos, len);
        if (index < 0) {
            ++pos;
            continue;
        }
        const added_token & tok = tokens_[static_cast<size_t>(index)];
        size_t start = pos;
        size_t stop = pos + len;
        pos = stop;
        if (start < start_offset) {
            continue; // inside whitespace an rstrip already took
        }
        if (tok.single_word) {
            uint32_t cp = 0;
            size_t n = 0;
            const bool word_before = start > 0 && (char_before(text, start, cp), is_alphanumeric(cp));
            const bool word_after = stop < text.size() && is_alphanumeric(char_at(text, stop, n));
            if (word_before || word_after) {
                continue;
            }
        }
        if (tok.lstrip) {
            while (start > start_offset) {
                uint32_t cp = 0;
                const size_t prev = char_before(text, start, cp);
                if (!unicode_is_whitespace(cp)) {
                    break;
                }
                start = std::max(prev, start_offset);
            }
        }
        if (tok.rstrip) {
            while (stop < text.size()) {
                size_t n = 0;
                if (!unicode_is_whitespace(char_at(text, stop, n))) {
                    break;
                }
                stop += n;
            }
        }
        if (start_offset < start) {
            out.push_back({start_offset, start, -1});
        }
        out.push_back({start, stop, index});
        start_offset = stop;
    }
    if (start_offset < text.size()) {
        out.push_back({start_offset, text.size(), -1});
    }
}

} // namespace specattn
