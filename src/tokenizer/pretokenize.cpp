// HF pre-tokenizers (see pretokenize.h). The splitting rules follow tokenizers' normalizer.rs split(): a pattern
// turns a piece into (range, is_match) runs covering it, invert flips them, and the behavior decides what is kept
// and where matches join their neighbours.
#include "tokenizer/pretokenize.h"

#include "core/check.h"
#include "tokenizer/utf8.h"

#include <array>

namespace specattn {

namespace {

struct run {
    size_t begin;
    size_t end;
    bool is_match;
};

// The GPT-2 regex used by the ByteLevel pre-tokenizer when use_regex is true.
constexpr std::string_view gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr int max_depth = 8; // nested Sequences; deeper nesting is rejected rather than recursed into

struct byte_level_table {
    std::array<std::string, 256> chars;
    std::array<int, 512> bytes{}; // code point -> byte, -1 if unmapped (every mapped code point is below 324)

    byte_level_table() {
        bytes.fill(-1);
        int next = 0;
        for (int b = 0; b < 256; ++b) {
            // Printable Latin-1 bytes stand for themselves; the rest are moved to U+0100 and up, in byte order.
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + next++);
            utf8_append(chars[b], cp);
            bytes[cp] = b;
        }
    }
};

const byte_level_table & byte_table() {
    static const byte_level_table table;
    return table;
}

std::vector<run> pattern_runs(const regex & re, std::string_view text) {
    std::vector<run> runs;
    if (text.empty()) {
        runs.push_back({0, 0, false});
        return runs;
    }
    std::vector<std::pair<size_t, size_t>> matches;
    re.find_all(text, matches);
    size_t prev = 0;
    for (const auto & m : matches) {
        if (prev != m.first) {
            runs.push_back({prev, m.first, false});
        }
        runs.push_back({m.first, m.second, true});
        prev = m.second;
    }
    if (prev != text.size()) {
        runs.push_back({prev, text.size(), false});
    }
    return runs;
}

// Metaspace splits on each occurrence of its replacement character.
std::vector<run> char_runs(std::string_view text, std::string_view ch) {
    std::vector<run> runs;
    size_t last = 0;
    for (size_t pos = text.find(ch); pos != std::string_view::npos; pos = text.find(ch, pos + ch.size())) {
        if (last < pos) {
            runs.push_back({last, pos, false});
        }
        runs.push_back({pos, pos + ch.size(), true});
        last = pos + ch.size();
    }
    if (last < text.size()) {
        runs.push_back({last, text.size(), false});
    }
    return runs;
}

std::vector<run> apply_behavior(const std::vector<run> & runs, split_behavior behavior) {
    std::vector<run> out;
    bool previous_match = false;
    switch (behavior) {
    case split_behavior::split_behavior_isolated:
        return runs;
    case split_behavior::split_behavior_removed:
        for (const run & r : runs) {
            if (!r.is_match) {
                out.push_back(r);
            }
        }
        return out;
    case split_behavior::split_behavior_merged_with_previous:
        for (const run & r : runs) {
            if (r.is_match && !previous_match && !out.empty()) {
                out.back().end = r.end;
            } else {
                out.push_back({r.begin, r.end, r.is_match && !previous_match});
            }
            previous_match = r.is_match;
        }
        return out;
    case split_behavior::split_behavior_merged_with_next:
        for (size_t i = runs.size(); i-- > 0;) {
            const run & r = runs[i];
            if (r.is_match && !previous_match && !out.empty()) {
                out.back().begin = r.begin;
            } else {
                out.push_back(r);
            }
            previous_match = r.is_match;
        }
        return std::vector<run>(out.rbegin(), out.rend());
    case split_behavior::split_behavior_contiguous:
        for (const run & r : runs) {
            if (r.is_match == previous_match && !out.empty()) {
                out.back().end = r.end;
            } else {
                out.push_back(r);
            }
            previous_match = r.is_match;
        }
        return out;
    }
    return runs;
}

// Replaces piece by its runs (empty ones dropped), appending to out.
void emit_runs(const pre_token & piece, const std::vector<run> & runs, std::vector<pre_token> & out) {
    for (const run & r : runs) {
        if (r.end > r.begin) {
            out.push_back({piece.text.substr(r.begin, r.end - r.begin), piece.at_start && r.begin == 0});
        }
    }
}

split_behavior parse_behavior(const json_view & j) {
    const std::string & s = j.str();
    if (s == "Removed") {
        return split_behavior::split_behavior_removed;
    }
    if (s == "Isolated") {
        return split_behavior::split_behavior_isolated;
    }
    if (s == "MergedWithPrevious") {
        return split_behavior::split_behavior_merged_with_previous;
    }
    if (s == "MergedWithNext") {
        return split_behavior::split_behavior_merged_with_next;
    }
    if (s == "Contiguous") {
        return split_behavior::split_behavior_contiguous;
    }
    j.fail("is an unsupported split behavior '%s'", tokenizer_printable(s).c_str());
}

std::shared_ptr<const regex> gpt2_regex() {
    static const std::shared_ptr<const regex> re = std::make_shared<const regex>(gpt2_pattern, false);
    return re;
}

} // namespace

const std::string & byte_level_char(unsigned char b) { return byte_table().chars[b]; }

int byte_level_byte(uint32_t cp) { return cp < 512 ? byte_table().bytes[cp] : -1; }

prepend_scheme metaspace_prepend_scheme(const json_view & j) {
    if (!j.has("prepend_scheme")) {
        // Files written before tokenizers 0.14 carry add_prefix_space instead.
        return j.bool_or("add_prefix_space", true) ? prepend_scheme::prepend_scheme_always
                                                  : prepend_scheme::prepend_scheme_never;
    }
    const json_view v = j.at("prepend_scheme");
    const std::string & s = v.str();
    if (s == "always") {
        return prepend_scheme::prepend_scheme_always;
    }
    if (s == "first") {
        return prepend_scheme::prepend_scheme_first;
    }
    if (s == "never") {
        return prepend_scheme::prepend_scheme_never;
    }
    v.fail("is an unsupported prepend_scheme '%s'", tokenizer_printable(s).c_str());
}

pre_tokenizer::pre_tokenizer(const json_view & j) {
    if (!j.is_null()) {
        parse(j, 0);
    }
}

void pre_tokenizer::parse(const json_view & j, int depth) {
    if (depth > max_depth) {
        j.fail("nests Sequences too deeply");
    }
    const std::string type = j.at("type").str();
    pre_tokenizer_step step;
    if (type == "Sequence") {
        const json_view list = j.at("pretokenizers");
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) {
            parse(list.at(i), depth + 1);
        }
        return;
    }
    if (type == "Split") {
        step.type = pre_tokenizer_type::pre_tokenizer_type_split;
        step.pattern = regex_from_json(j.at("pattern"));
        step.behavior = parse_behavior(j.at("behavior"));
        step.invert = j.bool_or("invert", false);
    } else if (type == "ByteLevel") {
        step.type = pre_tokenizer_type::pre_tokenizer_type_byte_level;
        step.add_prefix_space = j.bool_or("add_prefix_space", true);
        if (j.bool_or("use_regex", true)) {
            step.pattern = gpt2_regex();
        }
    } else if (type == "Metaspace") {
        step.type = pre_tokenizer_type::pre_tokenizer_type_metaspace;
        step.replacement = j.at("replacement").str();
        if (!utf8_is_one_char(step.replacement)) {
            j.at("replacement").fail("must be one character");
        }
        step.prepend = metaspace_prepend_scheme(j);
        step.split = j.bool_or("split", true);
    } else {
        j.fail("has an unsupported pre_tokenizer type '%s'", tokenizer_printable(type).c_str());
    }
    steps_.push_back(std::move(step));
}

void pre_tokenizer::apply(std::vector<pre_token> & pieces) const {
    std::vector<pre_token> next;
    for (const pre_tokenizer_step & step : steps_) {
        next.clear();
        for (pre_token & piece : pieces) {
            switch (step.type) {
            case pre_tokenizer_type::pre_tokenizer_type_split: {
                std::vector<run> runs = pattern_runs(*step.pattern, piece.text);
                if (step.invert) {
                    for (run & r : runs) {
                        r.is_match = !r.is_match;
                    }
                }
                emit_runs(piece, apply_behavior(runs, step.behavior), next);
                break;
            }
            case pre_tokenizer_type::pre_tokenizer_type_byte_level: {
                if (step.add_prefix_space && (piece.text.empty() || piece.text[0] != ' ')) {
                    piece.text = " " + piece.text;
                }
                const size_t first = next.size();
                if (step.pattern) {
                    emit_runs(piece, pattern_runs(*step.pattern, piece.text), next);
                } else {
                    next.push_back(std::move(piece));
                }
                for (size_t i = first; i < next.size(); ++i) {
                    std::string mapped;
                    for (const char c : next[i].text) {
                        mapped += byte_level_char(static_cast<unsigned char>(c));
                    }
                    next[i].text = std::move(mapped);
                }
                break;
            }
            case pre_tokenizer_type::pre_tokenizer_type_metaspace: {
                std::string text;
                for (const char c : piece.text) {
                    if (c == ' ') {
                        text += step.replacement;
                    } else {
                        text += c;
                    }
                }
                const bool starts_with_rep = text.compare(0, step.replacement.size(), step.replacement) == 0;
                const bool prepend = step.prepend == prepend_scheme::prepend_scheme_always ||
                                     (step.prepend == prepend_scheme::prepend_scheme_first && piece.at_start);
                if (prepend && !starts_with_rep) {
                    text.insert(0, step.replacement);
                }
                piece.text = std::move(text);
                if (step.split) {
                    emit_runs(piece, apply_behavior(char_runs(piece.text, step.replacement),
                                                    split_behavior::split_behavior_merged_with_next),
                              next);
                } else {
                    next.push_back(std::move(piece));
                }
                break;
            }
            }
        }
        pieces.swap(next);
    }
}

} // namespace specattn
