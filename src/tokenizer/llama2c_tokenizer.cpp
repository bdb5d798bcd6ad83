// llama2.c's tokenizer.bin (see llama2c_tokenizer.h). Encoding is llama2.c's: a dummy " " before non-empty text
// (SentencePiece's add_dummy_prefix), one token per UTF-8 character (bytes +3 for characters not in the
// vocabulary), then repeatedly merge the adjacent pair whose concatenation has the highest score, leftmost on
// ties. llama2.c rescans all pairs per merge (quadratic); a heap with stale entries skipped gives the same merges
// in O(n log n), which matters because this format has no pre-tokenizer and a whole prompt is one word.
#include "tokenizer/llama2c_tokenizer.h"

#include "core/check.h"
#include "tokenizer/bpe.h"
#include "tokenizer/json_view.h"
#include "tokenizer/utf8.h"

#include <cmath>
#include <cstring>
#include <queue>

namespace specattn {

namespace {

constexpr int32_t llama2c_unk = 0;
constexpr int32_t llama2c_bos = 1;
constexpr int32_t llama2c_eos = 2;
constexpr int32_t byte_base = 3; // byte b is token b + 3
constexpr int32_t n_reserved = byte_base + 256;

// Whether piece is how an export writes byte token b: "<0xXX>", the byte itself (ASCII), or U+0080..U+00FF
// written as UTF-8 (the stories15M tokenizer.bin stores Latin-1 code points for bytes >= 0x80).
bool is_byte_piece(const std::string & piece, int b) {
    if (piece == string_format("<0x%02X>", b)) {
        return true;
    }
    if (b < 0x80) {
        return piece.size() == 1 && static_cast<unsigned char>(piece[0]) == b;
    }
    std::string latin1;
    utf8_append(latin1, static_cast<uint32_t>(b));
    return piece == latin1;
}

class llama2c_tokenizer final : public tokenizer {
  public:
    llama2c_tokenizer(std::string_view data, const std::string & source);

    std::vector<int32_t> encode(std::string_view text, bool add_special) const override;
    std::string decode(const std::vector<int32_t> & ids, bool skip_special) const override;
    std::string id_to_piece(int32_t id) const override;
    int32_t piece_to_id(std::string_view piece) const override;

  private:
    int32_t lookup(std::string_view piece) const {
        const auto it = vocab_.find(piece);
        return it == vocab_.end() ? -1 : it->second;
    }

    std::vector<std::string> pieces_;
    std::vector<float> scores_;
    tokenizer_vocab vocab_; // pieces to ids, without the byte tokens (see the constructor)
};

llama2c_tokenizer::llama2c_tokenizer(std::string_view data, const std::string & source) {
    const auto read_i32 = [&](size_t off) {
        int32_t v = 0;
        std::memcpy(&v, data.data() + off, sizeof v);
        return v;
    };
    SPECATTN_CHECK(data.size() >= 4, "%s: too short for a tokenizer.bin", source.c_str());
    const int32_t max_token_length = read_i32(0);
    SPECATTN_CHECK(max_token_length > 0, "%s: max_token_length %d is not positive", source.c_str(),
                   max_token_length);
    size_t off = 4;
    while (off < data.size()) {
        const size_t index = pieces_.size();
        SPECATTN_CHECK(data.size() - off >= 8, "%s: truncated in the header of token %zu", source.c_str(), index);
        float score = 0.0f;
        std::memcpy(&score, data.data() + off, sizeof score);
        const int32_t len = read_i32(off + 4);
        off += 8;
        SPECATTN_CHECK(len >= 0 && len <= max_token_length, "%s: token %zu has length %d (max_token_length %d)",
                       source.c_str(), index, len, max_token_length);
        SPECATTN_CHECK(static_cast<size_t>(len) <= data.size() - off,
                       "%s: token %zu needs %d bytes but only %zu are left", source.c_str(), index, len,
                       data.size() - off);
        SPECATTN_CHECK(std::isfinite(score), "%s: token %zu has a non-finite score", source.c_str(), index);
        pieces_.emplace_back(data.substr(off, static_cast<size_t>(len)));
        scores_.push_back(score);
        off += static_cast<size_t>(len);
    }
    SPECATTN_CHECK(pieces_.size() >= static_cast<size_t>(n_reserved) && pieces_.size() < INT32_MAX,
                   "%s: has %zu tokens; a tokenizer.bin has <unk>, <s>, </s> and 256 byte tokens first",
                   source.c_str(), pieces_.size());
    for (int b = 0; b < 256; ++b) {
        SPECATTN_CHECK(is_byte_piece(pieces_[static_cast<size_t>(byte_base + b)], b),
                       "%s: token %d is not the byte token for 0x%02X", source.c_str(), byte_base + b, b);
    }
    // NOTE(tokenizer): byte tokens are left out of the lookup so they are reached only by byte fallback, as in
    // SentencePiece (whose byte pieces are "<0xXX>" and never match text). Otherwise a character stored only as
    // a Latin-1 byte piece would be encoded as that one byte token and decoded as a lone byte. Where a piece is
    // listed twice, the later id wins, as in HF's dict of the same vocabulary.
    vocab_.reserve(pieces_.size());
    for (size_t id = n_reserved; id < pieces_.size(); ++id) {
        vocab_[pieces_[id]] = static_cast<int32_t>(id);
    }
    n_vocab_ = static_cast<int32_t>(pieces_.size());
    bos_id_ = llama2c_bos;
    eos_id_ = llama2c_eos;
    special_ids_ = {llama2c_unk, llama2c_bos, llama2c_eos};
}

std::vector<int32_t> llama2c_tokenizer::encode(std::string_view text, bool add_special) const {
    std::vector<int32_t> ids;
    if (text.empty()) {
        if (add_special) {
            ids.push_back(llama2c_bos);
        }
        return ids;
    }
    // Characters to ids. Grouping follows llama2.c: a lead byte starts a character, continuation bytes join it
    // (at most 4 bytes), so invalid UTF-8 simply falls back to byte tokens.
    std::vector<int32_t> syms;
    const auto add_char = [&](std::string_view ch) {
        const int32_t id = lookup(ch);
        if (id >= 0) {
            syms.push_back(id);
            return;
        }
        for (const char c : ch) {
            syms.push_back(byte_base + static_cast<unsigned char>(c));
        }
    };
    add_char(" ");
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const bool next_continues = i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80;
        if (next_continues && i + 1 - start < 4) {
            continue;
        }
        add_char(text.substr(start, i + 1 - start));
        start = i + 1;
    }

    // Merges: highest score first, then leftmost. Symbols keep their original index, so index order is text order.
    std::vector<int32_t> next(syms.size());
    std::vector<int32_t> prev(syms.size());
    for (size_t i = 0; i < syms.size(); ++i) {
        next[i] = i + 1 < syms.size() ? static_cast<int32_t>(i + 1) : -1;
        prev[i] = static_cast<int32_t>(i) - 1;
    }
    struct candidate {
        float score;
        int32_t pos;
        int32_t left;
        int32_t right;
        int32_t merged;
    };
    const auto worse = [](const candidate & a, const candidate & b) {
        return a.score != b.score ? a.score < b.score : a.pos > b.pos;
    };
    std::priority_queue<candidate, std::vector<candidate>, decltype(worse)> queue(worse);
    std::string buf;
    const auto push_pair = [&](int32_t pos) {
        const int32_t nx = next[static_cast<size_t>(pos)];
        if (nx < 0) {
            return;
        }
        const int32_t l = syms[static_cast<size_t>(pos)];
        const int32_t r = syms[static_cast<size_t>(nx)];
        // NOTE(tokenizer): byte tokens never merge, as in SentencePiece (whose byte pieces are "<0xXX>").
        // llama2.c concatenates their stored text, which for bytes >= 0x80 is a Latin-1 character: the 0xED of
        // "포" would merge with a preceding " " into the piece " í" and the character could not be decoded.
        if (l < n_reserved || r < n_reserved) {
            return;
        }
        buf = pieces_[static_cast<size_t>(l)];
        buf += pieces_[static_cast<size_t>(r)];
        const int32_t id = lookup(buf);
        // llama2.c starts its search at a score of -1e10, so pieces scored at or below it never merge.
        if (id >= 0 && scores_[static_cast<size_t>(id)] > -1e10f) {
            queue.push({scores_[static_cast<size_t>(id)], pos, l, r, id});
        }
    };
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
        push_pair(static_cast<int32_t>(i));
    }
    std::vector<uint8_t> removed(syms.size(), 0);
    while (!queue.empty()) {
        const candidate c = queue.top();
        queue.pop();
        const size_t pos = static_cast<size_t>(c.pos);
        const int32_t nx = next[pos];
        if (removed[pos] != 0 || nx < 0 || syms[pos] != c.left || syms[static_cast<size_t>(nx)] != c.right) {
            continue; // stale: one side has merged since
        }
        syms[pos] = c.merged;
        removed[static_cast<size_t>(nx)] = 1;
        next[pos] = next[static_cast<size_t>(nx)];
        if (next[pos] >= 0) {
            prev[static_cast<size_t>(next[pos])] = c.pos;
        }
        if (prev[pos] >= 0) {
            push_pair(prev[pos]);
        }
        push_pair(c.pos);
    }
    if (add_special) {
        ids.push_back(llama2c_bos);
    }
    for (size_t i = 0; i < syms.size(); ++i) {
        if (removed[i] == 0) {
            ids.push_back(syms[i]);
        }
    }
    return ids;
}

std::string llama2c_tokenizer::decode(const std::vector<int32_t> & ids, bool skip_special) const {
    std::string out;
    int32_t prev_id = -1;
    for (const int32_t id : ids) {
        if (id < 0 || id >= n_vocab_) {
            continue;
        }
        std::string piece;
        if (id == llama2c_bos || id == llama2c_eos) {
            piece = skip_special ? "" : id == llama2c_bos ? "<s>" : "</s>"; // the file's "\n<s>\n" is for printing
        } else if (id == llama2c_unk) {
            piece = skip_special ? "" : pieces_[0];
        } else if (id < n_reserved) {
            piece = std::string(1, static_cast<char>(id - byte_base));
        } else {
            piece = pieces_[static_cast<size_t>(id)];
        }
        // SentencePiece's dummy prefix: the first piece after BOS loses its leading space. A sequence that does
        // not start with BOS keeps it, so decoding a window of a longer sequence stays a substring of the whole.
        if (prev_id == llama2c_bos && !piece.empty() && piece[0] == ' ') {
            piece.erase(0, 1);
        }
        out += piece;
        prev_id = id;
    }
    return out;
}

std::string llama2c_tokenizer::id_to_piece(int32_t id) const {
    return id >= 0 && id < n_vocab_ ? pieces_[static_cast<size_t>(id)] : std::string();
}

int32_t llama2c_tokenizer::piece_to_id(std::string_view piece) const {
    const int32_t id = lookup(piece);
    if (id >= 0) {
        return id;
    }
    for (int32_t i = 0; i < n_reserved; ++i) {
        if (pieces_[static_cast<size_t>(i)] == piece) {
            return i;
        }
    }
    return -1;
}

} // namespace

std::unique_ptr<tokenizer> load_llama2c_tokenizer(std::string_view data, const std::string & source) {
    return std::make_unique<llama2c_tokenizer>(data, source);
}

} // namespace specattn
