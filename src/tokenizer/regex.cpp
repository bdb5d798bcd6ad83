// PCRE2 wrapper for the pre-tokenizer regexes (see regex.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include "core/check.h"
#include "tokenizer/json_view.h"
#include "tokenizer/utf8.h"

#include <pcre2.h>

#include <memory>

namespace specattn {

namespace {

std::string pcre2_message(int code) {
    PCRE2_UCHAR buf[256];
    if (pcre2_get_error_message(code, buf, sizeof buf) < 0) {
        return "error " + std::to_string(code);
    }
    return reinterpret_cast<const char *>(buf);
}

// Per-thread match state. The JIT stack is larger than PCRE2's 32 KiB default because the HF regexes run over
// whole paragraphs (e.g. \s+(?!\S) over a long run of spaces).
struct match_state {
    pcre2_match_context * context = nullptr;
    pcre2_jit_stack * stack = nullptr;

    match_state() {
        context = pcre2_match_context_create(nullptr);
        stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
        if (context != nullptr && stack != nullptr) {
            pcre2_jit_stack_assign(context, nullptr, stack);
        }
    }
    ~match_state() {
        pcre2_jit_stack_free(stack);
        pcre2_match_context_free(context);
    }
    match_state(const match_state &) = delete;
    match_state & operator=(const match_state &) = delete;
};

match_state & thread_match_state() {
    thread_local match_state state;
    return state;
}

// Oniguruma's \s is the Unicode White_Space property; PCRE2's also matches U+180E (MONGOLIAN VOWEL SEPARATOR, no
// longer whitespace since Unicode 6.3), which changes how Qwen2 and Llama-3 split text around it.
constexpr std::string_view white_space = R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A})"
                                         R"(\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// The pattern with \s spelled as White_Space, inside and outside character classes, and \S as its complement
// outside them (\S inside a class, which no tokenizer we know uses, keeps PCRE2's meaning).
std::string onig_whitespace(std::string_view p) {
    std::string out;
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        const char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            const char e = p[++i];
            if (e == 's') {
                out += in_class ? std::string(white_space) : "[" + std::string(white_space) + "]";
            } else if (e == 'S' && !in_class) {
                out += "[^" + std::string(white_space) + "]";
            } else if (e == 'Q') { // \Q...\E quotes everything up to \E
                const size_t end = p.find("\\E", i + 1);
                const size_t stop = end == std::string_view::npos ? p.size() : end + 2;
                out += "\\Q";
                out.append(p.substr(i + 1, stop - (i + 1)));
                i = stop - 1;
            } else {
                out += c;
                out += e;
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal member, not the end of the class.
            if (i + 1 < p.size() && p[i + 1] == '^') {
                out += p[++i];
            }
            if (i + 1 < p.size() && p[i + 1] == ']') {
                out += p[++i];
            }
            continue;
        }
        if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') { // a POSIX class such as [:alpha:]
            const size_t end = p.find(":]", i + 2);
            if (end != std::string_view::npos) {
                out.append(p.substr(i, end + 2 - i));
                i = end + 1;
                continue;
            }
        }
        if (in_class && c == ']') {
            in_class = false;
        }
        out += c;
    }
    return out;
}

} // namespace

regex::regex(std::string_view pattern, bool literal) {
    // MATCH_INVALID_UTF: decoders may run a Replace over raw bytes (e.g. after ByteFallback); invalid sequences
    // then simply never match instead of being undefined behaviour.
    // (PCRE2_LITERAL refuses PCRE2_UCP, which only affects \w, \d, \s and the like anyway.)
    const uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    const std::string translated = literal ? std::string(pattern) : onig_whitespace(pattern);
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    pcre2_code * code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options,
                                      &err, &err_offset, nullptr);
    // (The offset is into the translated pattern, so it is given only when translation changed nothing.)
    const std::string where =
        translated == pattern ? string_format(" at offset %zu", static_cast<size_t>(err_offset)) : std::string();
    SPECATTN_CHECK(code != nullptr, "'%s' does not compile%s: %s", tokenizer_printable(pattern).c_str(),
                   where.c_str(), pcre2_message(err).c_str());
    // JIT is an optimization only: when it is unavailable pcre2_match interprets the pattern.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    code_ = code;
}

std::shared_ptr<const regex> regex_from_json(const json_view & pattern) {
    const bool is_regex = pattern.has("Regex");
    if (!is_regex && !pattern.has("String")) {
        pattern.fail("must hold a \"Regex\" or \"String\" member");
    }
    const json_view text = pattern.at(is_regex ? "Regex" : "String");
    try {
        return std::make_shared<const regex>(text.str(), !is_regex);
    } catch (const error & e) {
        text.fail("%s", e.what());
    }
}

regex::~regex() { pcre2_code_free(static_cast<pcre2_code *>(code_)); }

void regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>> & out) const {
    out.clear();
    const pcre2_code * code = static_cast<const pcre2_code *>(code_);
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
    SPECATTN_CHECK(md != nullptr, "out of memory creating regex match data");
    match_state & state = thread_match_state();
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    // NOTE(tokenizer): the onig crate's find_iter, which HF uses, searches again from the end of each match; an
    // empty match right where the previous match ended is dropped and the search moves one character on.
    size_t last_end = 0;
    bool have_last_match = false;
    size_t last_match_end = 0;
    while (last_end <= text.size()) {
        const int rc = pcre2_match(code, subject, text.size(), last_end, 0, md.get(), state.context);
        if (rc == PCRE2_ERROR_NOMATCH) {
            break;
        }
        SPECATTN_CHECK(rc >= 0, "regex match failed: %s", pcre2_message(rc).c_str());
        const PCRE2_SIZE * ov = pcre2_get_ovector_pointer(md.get());
        const size_t start = ov[0];
        const size_t end = ov[1];
        // \K in a lookbehind can report an end before the start; such a match has no sensible split.
        SPECATTN_CHECK(start <= end && end <= text.size(), "regex match has an invalid range");
        if (start == end && have_last_match && start == last_match_end) {
            last_end += last_end < text.size() ? utf8_len(static_cast<unsigned char>(text[last_end])) : 1;
            continue;
        }
        last_end = end;
        have_last_match = true;
        last_match_end = end;
        out.emplace_back(start, end);
    }
}

} // namespace specattn
