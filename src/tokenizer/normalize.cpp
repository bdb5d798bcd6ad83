// HF normalizers (see normalize.h). Unicode normalization uses utf8proc, whose Unicode version may trail the Rust
// crate HF uses by a few releases; that matters only for characters assigned in those releases.
#include "tokenizer/normalize.h"

#include "core/check.h"

#include <utf8proc.h>

#include <cstdlib>

namespace specattn {

namespace {

constexpr int max_depth = 8;

std::string utf8proc_normalize(const std::string & text, int options) {
    if (text.empty()) {
        return text;
    }
    utf8proc_uint8_t * out = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(text.data()),
                                            static_cast<utf8proc_ssize_t>(text.size()), &out,
                                            static_cast<utf8proc_option_t>(options));
    SPECATTN_CHECK(n >= 0, "unicode normalization failed: %s", utf8proc_errmsg(n));
    std::string result(reinterpret_cast<const char *>(out), static_cast<size_t>(n));
    std::free(out);
    return result;
}

} // namespace

std::string regex_replace_all(const regex & pattern, const std::string & text, const std::string & content,
                              size_t limit) {
    std::vector<std::pair<size_t, size_t>> matches;
    pattern.find_all(text, matches);
    if (matches.empty()) {
        return text;
    }
    std::string out;
    size_t prev = 0;
    for (const auto & m : matches) {
        out.append(text, prev, m.first - prev);
        out += content;
        prev = m.second;
        SPECATTN_CHECK(out.size() <= limit, "a Replace rule grows the text beyond %zu bytes", limit);
    }
    out.append(text, prev, std::string::npos);
    return out;
}

normalizer::normalizer(const json_view & j) {
    if (!j.is_null()) {
        parse(j, 0);
    }
}

void normalizer::parse(const json_view & j, int depth) {
    if (depth > max_depth) {
        j.fail("nests Sequences too deeply");
    }
    const std::string type = j.at("type").str();
    normalizer_step step;
    if (type == "Sequence") {
        const json_view list = j.at("normalizers");
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) {
            parse(list.at(i), depth + 1);
        }
        return;
    }
    if (type == "NFC") {
        step.type = normalizer_type::normalizer_type_nfc;
    } else if (type == "NFD") {
        step.type = normalizer_type::normalizer_type_nfd;
    } else if (type == "NFKC") {
        step.type = normalizer_type::normalizer_type_nfkc;
    } else if (type == "NFKD") {
        step.type = normalizer_type::normalizer_type_nfkd;
    } else if (type == "Prepend") {
        step.type = normalizer_type::normalizer_type_prepend;
        step.content = j.at("prepend").str();
    } else if (type == "Replace") {
        step.type = normalizer_type::normalizer_type_replace;
        step.pattern = regex_from_json(j.at("pattern"));
        step.content = j.at("content").str();
    } else {
        j.fail("has an unsupported normalizer type '%s'", tokenizer_printable(type).c_str());
    }
    steps_.push_back(std::move(step));
}

std::string normalizer::apply(std::string text) const {
    // Real normalizers grow text by small factors (NFKD of U+FDFA is the worst, 3 bytes to 33); a chain of
    // Replace rules in a hostile file could grow it exponentially, so stop well before memory runs out.
    const size_t limit = 64 * text.size() + 4096;
    for (const normalizer_step & step : steps_) {
        switch (step.type) {
        case normalizer_type::normalizer_type_nfc:
            text = utf8proc_normalize(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            break;
        case normalizer_type::normalizer_type_nfd:
            text = utf8proc_normalize(text, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
            break;
        case normalizer_type::normalizer_type_nfkc:
            text = utf8proc_normalize(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
            break;
        case normalizer_type::normalizer_type_nfkd:
            text = utf8proc_normalize(text, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
            break;
        case normalizer_type::normalizer_type_prepend:
            if (!text.empty()) {
                text.insert(0, step.content);
            }
            break;
        case normalizer_type::normalizer_type_replace:
            text = regex_replace_all(*step.pattern, text, step.content, limit);
            break;
        }
        SPECATTN_CHECK(text.size() <= limit, "the normalizer grows the text beyond %zu bytes", limit);
    }
    return text;
}

} // namespace specattn
