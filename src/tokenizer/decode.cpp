// HF decoders (see decode.h). Each step maps the list of pieces to a new list (HF's decode_chain); the result
// is their concatenation.
#include "tokenizer/decode.h"

#include "core/check.h"
#include "tokenizer/normalize.h"
#include "tokenizer/utf8.h"

namespace specattn {

namespace {

constexpr int max_depth = 8;

std::vector<std::string> byte_level(const std::vector<std::string> & pieces) {
    std::string bytes;
    for (const std::string & piece : pieces) {
        // A piece with any character outside the byte map (e.g. an added token) is emitted as written.
        std::string mapped;
        bool all_mapped = true;
        for (size_t i = 0; i < piece.size() && all_mapped;) {
            uint32_t cp = 0;
            const size_t n = utf8_decode(piece, i, cp);
            const int b = n == 0 ? -1 : byte_level_byte(cp);
            all_mapped = b >= 0;
            mapped += static_cast<char>(b);
            i += n;
        }
        bytes += all_mapped ? mapped : piece;
    }
    return {bytes};
}

std::vector<std::string> metaspace(const std::vector<std::string> & pieces, const decoder_step & step) {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
        // The first piece loses its replacement characters altogether (they were the prepended space).
        const bool drop = i == 0 && step.prepend != prepend_scheme::prepend_scheme_never;
        std::string text;
        const std::string & piece = pieces[i];
        for (size_t pos = 0; pos < piece.size();) {
            if (piece.compare(pos, step.content.size(), step.content) == 0) {
                if (!drop) {
                    text += ' ';
                }
                pos += step.content.size();
            } else {
                text += piece[pos++];
            }
        }
        out.push_back(std::move(text));
    }
    return out;
}

// The byte of a "<0xXX>" piece, or -1.
int fallback_byte(const std::string & piece) {
    if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') {
        return -1;
    }
    int v = 0;
    for (size_t i = 3; i < 5; ++i) {
        const char c = piece[i];
        const int d = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                             : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

std::vector<std::string> byte_fallback(const std::vector<std::string> & pieces) {
    std::vector<std::string> out;
    std::string pending;
    for (const std::string & piece : pieces) {
        const int b = fallback_byte(piece);
        if (b >= 0) {
            pending += static_cast<char>(b);
            continue;
        }
        if (!pending.empty()) {
            out.push_back(std::move(pending));
            pending.clear();
        }
        out.push_back(piece);
    }
    if (!pending.empty()) {
        out.push_back(std::move(pending));
    }
    return out;
}

std::vector<std::string> strip(const std::vector<std::string> & pieces, const decoder_step & step) {
    std::vector<std::string> out;
    const std::string & c = step.content;
    for (const std::string & piece : pieces) {
        size_t begin = 0;
        for (size_t k = 0; k < step.strip_start && piece.compare(begin, c.size(), c) == 0; ++k) {
            begin += c.size();
        }
        size_t end = piece.size();
        for (size_t k = 0; k < step.strip_stop && end >= begin + c.size() &&
                           piece.compare(end - c.size(), c.size(), c) == 0;
             ++k) {
            end -= c.size();
        }
        out.push_back(piece.substr(begin, end - begin));
    }
    return out;
}

} // namespace

token_decoder::token_decoder(const json_view & j) {
    if (!j.is_null()) {
        present_ = true;
        parse(j, 0);
    }
}

void token_decoder::parse(const json_view & j, int depth) {
    if (depth > max_depth) {
        j.fail("nests Sequences too deeply");
    }
    const std::string type = j.at("type").str();
    decoder_step step;
    if (type == "Sequence") {
        const json_view list = j.at("decoders");
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) {
            parse(list.at(i), depth + 1);
        }
        return;
    }
    if (type == "ByteLevel") {
        step.type = decoder_type::decoder_type_byte_level;
    } else if (type == "Metaspace") {
        step.type = decoder_type::decoder_type_metaspace;
        step.content = j.at("replacement").str();
        if (!utf8_is_one_char(step.content)) {
            j.at("replacement").fail("must be one character");
        }
        step.prepend = metaspace_prepend_scheme(j);
    } else if (type == "Replace") {
        step.type = decoder_type::decoder_type_replace;
        step.pattern = regex_from_json(j.at("pattern"));
        step.content = j.at("content").str();
    } else if (type == "ByteFallback") {
        step.type = decoder_type::decoder_type_byte_fallback;
    } else if (type == "Fuse") {
        step.type = decoder_type::decoder_type_fuse;
    } else if (type == "Strip") {
        step.type = decoder_type::decoder_type_strip;
        step.content = j.at("content").str();
        if (!utf8_is_one_char(step.content)) {
            j.at("content").fail("must be one character");
        }
        const int64_t start = j.at("start").int64();
        const int64_t stop = j.at("stop").int64();
        if (start < 0 || stop < 0) {
            j.fail("must have non-negative start and stop");
        }
        step.strip_start = static_cast<size_t>(start);
        step.strip_stop = static_cast<size_t>(stop);
    } else {
        j.fail("has an unsupported decoder type '%s'", tokenizer_printable(type).c_str());
    }
    steps_.push_back(std::move(step));
}

std::string token_decoder::decode(std::vector<std::string> pieces) const {
    if (!present_) {
        std::string out;
        for (size_t i = 0; i < pieces.size(); ++i) {
            out += i == 0 ? "" : " ";
            out += pieces[i];
        }
        return out;
    }
    size_t n_bytes = 0;
    for (const std::string & p : pieces) {
        n_bytes += p.size();
    }
    const size_t limit = 64 * n_bytes + 4096; // see normalizer::apply: a hostile chain of Replace rules
    for (const decoder_step & step : steps_) {
        switch (step.type) {
        case decoder_type::decoder_type_byte_level:
            pieces = byte_level(pieces);
            break;
        case decoder_type::decoder_type_metaspace:
            pieces = metaspace(pieces, step);
            break;
        case decoder_type::decoder_type_replace: {
            size_t total = 0;
            for (std::string & p : pieces) {
                p = regex_replace_all(*step.pattern, p, step.content, limit);
                total += p.size();
                SPECATTN_CHECK(total <= limit, "the decoder grows the text beyond %zu bytes", limit);
            }
            break;
        }
        case decoder_type::decoder_type_byte_fallback:
            pieces = byte_fallback(pieces);
            break;
        case decoder_type::decoder_type_fuse: {
            std::string all;
            for (const std::string & p : pieces) {
                all += p;
            }
            pieces.assign(1, std::move(all));
            break;
        }
        case decoder_type::decoder_type_strip:
            pieces = strip(pieces, step);
            break;
        }
    }
    std::string out;
    for (const std::string & p : pieces) {
        out += p;
    }
    return out;
}

} // namespace specattn
