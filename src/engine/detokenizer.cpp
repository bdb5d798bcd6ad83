#include "engine/detokenizer.h"

namespace specattn {

namespace {
// Tokens of left context decoded with each new token; enough for SentencePiece's space handling.
constexpr size_t context_tokens = 6;

// Whether s ends inside a UTF-8 multi-byte character (so more bytes are due).
bool ends_mid_character(const std::string & s) {
    size_t i = s.size();
    int n_cont = 0;
    while (i > 0 && n_cont < 4) {
        const unsigned char c = static_cast<unsigned char>(s[i - 1]);
        if ((c & 0xC0u) != 0x80u) {
            const int len = c < 0x80u ? 1 : (c >> 5) == 0x6u ? 2 : (c >> 4) == 0xEu ? 3 : (c >> 3) == 0x1Eu ? 4 : 1;
            return n_cont + 1 < len;
        }
        ++n_cont;
        --i;
    }
    return false;
}
} // namespace

incremental_detokenizer::incremental_detokenizer(const tokenizer & tok, const std::vector<int32_t> & prompt)
    : tok_(tok), ids_(prompt) {
    read_offset_ = ids_.size();
    prefix_offset_ = read_offset_ > context_tokens ? read_offset_ - context_tokens : 0;
}

std::string incremental_detokenizer::push(int32_t id) {
    ids_.push_back(id);
    return advance(false);
}

std::string incremental_detokenizer::flush() { return advance(true); }

std::string incremental_detokenizer::advance(bool final) {
    const auto begin = ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_);
    const std::string prefix = tok_.decode(std::vector<int32_t>(begin, ids_.begin() + static_cast<std::ptrdiff_t>(read_offset_)), true);
    const std::string full = tok_.decode(std::vector<int32_t>(begin, ids_.end()), true);
    if (full.size() <= prefix.size() || full.compare(0, prefix.size(), prefix) != 0 || (!final && ends_mid_character(full))) {
        return ""; // nothing new yet, or a character still incomplete: wait for the next token
    }
    std::string out = full.substr(prefix.size());
    read_offset_ = ids_.size();
    prefix_offset_ = read_offset_ > context_tokens ? read_offset_ - context_tokens : 0;
    return out;
}

} // namespace specattn
