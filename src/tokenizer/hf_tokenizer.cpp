// tokenizer.json loading, encoding and decoding (see hf_tokenizer.h).
#include "tokenizer/hf_tokenizer.h"

#include "core/check.h"
#include "tokenizer/utf8.h"

#include <algorithm>

namespace specattn {

namespace {

constexpr int max_depth = 8;

const nlohmann::json & null_json() {
    static const nlohmann::json null_value;
    return null_value;
}

// root.key, or a view of null when the key is absent (HF treats a missing component as null).
json_view member_or_null(const json_view & root, const char * key) {
    root.expect_object();
    if (root.raw().contains(key)) {
        return root.at(key);
    }
    return json_view(null_json(), root.source(), root.path().empty() ? key : root.path() + "." + key);
}

int32_t checked_id(const json_view & v) {
    const int64_t id = v.int64();
    if (id < 0 || id >= INT32_MAX) {
        v.fail("is not a valid token id");
    }
    return static_cast<int32_t>(id);
}

// A template piece: {"SpecialToken": {"id": NAME}} / {"Sequence": {"id": "A"}}, or the string forms "$A", "NAME".
template_item parse_template_item(const json_view & item, const json_view & special_tokens) {
    template_item out;
    std::string name;
    if (item.is_string()) {
        const std::string & s = item.str();
        out.is_sequence = !s.empty() && s[0] == '$';
        const size_t begin = out.is_sequence ? 1 : 0;
        name = s.substr(begin, s.find(':', begin) - begin); // without a ":type_id" suffix
        if (out.is_sequence && name.empty()) {
            name.push_back('A'); // "$" alone means $A
        }
    } else if (item.has("Sequence")) {
        out.is_sequence = true;
        name = item.at("Sequence").at("id").str();
    } else if (item.has("SpecialToken")) {
        name = item.at("SpecialToken").at("id").str();
    } else {
        item.fail("must be a SpecialToken or a Sequence");
    }
    if (out.is_sequence) {
        if (name != "A") {
            item.fail("uses sequence '%s' in the single template", tokenizer_printable(name).c_str());
        }
        return out;
    }
    special_tokens.expect_object();
    if (!special_tokens.has(name.c_str())) {
        item.fail("names special token '%s', which special_tokens lacks", tokenizer_printable(name).c_str());
    }
    const json_view ids = special_tokens.at(name.c_str()).at("ids");
    ids.expect_array();
    for (size_t i = 0; i < ids.size(); ++i) {
        out.ids.push_back(checked_id(ids.at(i)));
    }
    return out;
}

// bos_token / eos_token of tokenizer_config.json: a string, {"content": ...} (AddedToken form) or null.
std::string config_token(const json_view & config, const char * key) {
    if (!config.has(key)) {
        return "";
    }
    const json_view v = config.at(key);
    return v.is_object() ? v.at("content").str() : v.str();
}

} // namespace

hf_tokenizer::hf_tokenizer(tokenizer_json_doc & doc, const std::string & source, std::string_view config_json,
                           const std::string & config_source)
    : normalizer_(member_or_null(json_view(doc.root, source, ""), "normalizer")),
      pre_tokenizer_(member_or_null(json_view(doc.root, source, ""), "pre_tokenizer")),
      model_(json_view(doc.root, source, "").at("model"), doc),
      decoder_(member_or_null(json_view(doc.root, source, ""), "decoder")) {
    const json_view r(doc.root, source, "");
    if (r.has("added_tokens")) {
        parse_added_tokens(r.at("added_tokens"));
    }
    if (r.has("post_processor")) {
        parse_post_processor(r.at("post_processor"), 0);
    }
    build_id_table(r);
    // Without a config, the BOS is what the template puts first (Llama-2/3 templates start with it).
    if (!templates_.empty() && !templates_[0].empty() && !templates_[0][0].is_sequence &&
        templates_[0][0].ids.size() == 1) {
        bos_id_ = templates_[0][0].ids[0];
    }
    read_config(config_json, config_source);
}

void hf_tokenizer::parse_added_tokens(const json_view & list) {
    list.expect_array();
    // NOTE(tokenizer): HF does not take the ids written in the file. AddedVocabulary::add_tokens gives a token the
    // id it already has (an earlier added token, then the model's vocabulary), else the next free id after the
    // vocabulary; the file's ids only trigger a warning when they differ. Real files agree with this rule; a file
    // whose added ids leave a gap gets the ids HF gives, which are the ones models were trained with.
    const int64_t vocab_size = static_cast<int64_t>(model_.vocab().size());
    int64_t max_added = -1;
    for (size_t i = 0; i < list.size(); ++i) {
        const json_view t = list.at(i);
        added_token tok;
        tok.content = t.at("content").str();
        checked_id(t.at("id"));
        tok.special = t.bool_or("special", false);
        tok.single_word = t.bool_or("single_word", false);
        tok.lstrip = t.bool_or("lstrip", false);
        tok.rstrip = t.bool_or("rstrip", false);
        tok.normalized = t.bool_or("normalized", !tok.special);
        if (tok.content.empty()) {
            continue; // HF ignores empty added tokens
        }
        int64_t id = -1;
        for (const added_token & earlier : added_) {
            if (earlier.content == tok.content) {
                id = earlier.id;
            }
        }
        if (id < 0) {
            id = model_.find(tok.content);
        }
        if (id < 0) {
            const bool after_added = max_added >= 0 && (max_added >= vocab_size || vocab_size == 0);
            id = after_added ? max_added + 1 : vocab_size;
        }
        SPECATTN_CHECK(id < INT32_MAX, "%s: too many added tokens", list.source().c_str());
        tok.id = static_cast<int32_t>(id);
        max_added = std::max(max_added, id);
        added_.push_back(tok);
    }
    // HF builds its matchers from the special tokens first, then the others; the order settles duplicates.
    for (int pass = 0; pass < 2; ++pass) {
        for (const added_token & tok : added_) {
            if (tok.special != (pass == 0)) {
                continue;
            }
            if (tok.normalized) {
                normalized_matcher_.add(normalizer_.apply(tok.content), tok);
            } else {
                raw_matcher_.add(tok.content, tok);
            }
            if (tok.special) {
                special_contents_.insert(tok.content);
            }
        }
    }
}

void hf_tokenizer::parse_post_processor(const json_view & j, int depth) {
    if (depth > max_depth) {
        j.fail("nests Sequences too deeply");
    }
    const std::string type = j.at("type").str();
    if (type == "Sequence") {
        const json_view list = j.at("processors");
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) {
            parse_post_processor(list.at(i), depth + 1);
        }
    } else if (type == "TemplateProcessing") {
        const json_view single = j.at("single");
        single.expect_array();
        const json_view special_tokens = member_or_null(j, "special_tokens");
        std::vector<template_item> items;
        for (size_t i = 0; i < single.size(); ++i) {
            items.push_back(parse_template_item(single.at(i), special_tokens));
        }
        templates_.push_back(std::move(items));
    } else if (type != "ByteLevel") { // ByteLevel only trims offsets, which we do not track
        j.fail("has an unsupported post_processor type '%s'", tokenizer_printable(type).c_str());
    }
}

void hf_tokenizer::build_id_table(const json_view & root) {
    int64_t max_id = -1;
    for (const auto & [piece, id] : model_.vocab()) {
        max_id = std::max<int64_t>(max_id, id);
    }
    for (const added_token & tok : added_) {
        max_id = std::max<int64_t>(max_id, tok.id);
    }
    // Real vocabularies are dense; a sparse one would make every id-indexed table huge.
    const int64_t n_entries = static_cast<int64_t>(model_.vocab().size() + added_.size());
    if (max_id >= 2 * n_entries + 1024) {
        throw error(string_format("%s: token id %lld is too large for a vocabulary of %lld entries",
                                  root.source().c_str(), static_cast<long long>(max_id),
                                  static_cast<long long>(n_entries)));
    }
    n_vocab_ = static_cast<int32_t>(max_id + 1);
    id_to_piece_.assign(static_cast<size_t>(n_vocab_), std::string());
    id_known_.assign(static_cast<size_t>(n_vocab_), 0);
    for (const auto & [piece, id] : model_.vocab()) {
        id_to_piece_[static_cast<size_t>(id)] = piece;
        id_known_[static_cast<size_t>(id)] = 1;
    }
    for (const added_token & tok : added_) {
        id_to_piece_[static_cast<size_t>(tok.id)] = tok.content;
        id_known_[static_cast<size_t>(tok.id)] = 1;
        if (tok.special) {
            special_ids_.push_back(tok.id);
        }
    }
    std::sort(special_ids_.begin(), special_ids_.end());
    special_ids_.erase(std::unique(special_ids_.begin(), special_ids_.end()), special_ids_.end());
}

void hf_tokenizer::read_config(std::string_view config_json, const std::string & config_source) {
    if (config_json.empty()) {
        return;
    }
    const nlohmann::json root = tokenizer_json_parse(config_json, config_source);
    const json_view config(root, config_source, "");
    config.expect_object();
    const auto resolve = [&](const char * key) {
        const std::string name = config_token(config, key);
        const int32_t id = piece_to_id(name);
        if (id < 0) {
            config.at(key).fail("names '%s', which is not a token", tokenizer_printable(name).c_str());
        }
        return id;
    };
    if (config.has("bos_token")) {
        bos_id_ = resolve("bos_token");
    }
    if (config.has("eos_token")) {
        eos_id_ = resolve("eos_token");
    }
    if (config.has("chat_template")) {
        const json_view t = config.at("chat_template");
        if (t.is_string()) {
            chat_template_ = t.str();
        } else {
            // Several named templates: the "default" one is the chat template.
            t.expect_array();
            for (size_t i = 0; i < t.size(); ++i) {
                if (t.at(i).at("name").str() == "default") {
                    chat_template_ = t.at(i).at("template").str();
                }
            }
        }
    }
    // transformers' Llama tokenizers add BOS when add_bos_token is set even if the file's template does not;
    // false leaves the template alone (Qwen2 writes false and has no template).
    if (config.bool_or("add_bos_token", false) && bos_id_ >= 0) {
        const bool template_adds_bos = !templates_.empty() && !templates_[0].empty() &&
                                       !templates_[0][0].is_sequence && templates_[0][0].ids.size() == 1 &&
                                       templates_[0][0].ids[0] == bos_id_;
        prepend_bos_ = !template_adds_bos;
    }
}

std::vector<int32_t> hf_tokenizer::encode(std::string_view text, bool add_special) const {
    SPECATTN_CHECK(utf8_valid(text), "cannot encode text that is not valid UTF-8");
    std::vector<int32_t> ids;
    std::vector<added_segment> raw_segments;
    std::vector<added_segment> segments;
    std::vector<pre_token> words;
    raw_matcher_.split(text, raw_segments);
    for (const added_segment & raw : raw_segments) {
        if (raw.token >= 0) {
            ids.push_back(raw_matcher_.token(raw.token).id);
            continue;
        }
        const std::string piece = normalizer_.apply(std::string(text.substr(raw.begin, raw.end - raw.begin)));
        normalized_matcher_.split(piece, segments);
        for (const added_segment & seg : segments) {
            if (seg.token >= 0) {
                ids.push_back(normalized_matcher_.token(seg.token).id);
                continue;
            }
            words.clear();
            words.push_back({piece.substr(seg.begin, seg.end - seg.begin), raw.begin == 0 && seg.begin == 0});
            pre_tokenizer_.apply(words);
            for (const pre_token & word : words) {
                model_.tokenize(word.text, ids);
            }
        }
    }
    return add_special ? post_process(std::move(ids)) : ids;
}

std::vector<int32_t> hf_tokenizer::post_process(std::vector<int32_t> ids) const {
    for (const std::vector<template_item> & items : templates_) {
        std::vector<int32_t> out;
        for (const template_item & item : items) {
            if (item.is_sequence) {
                out.insert(out.end(), ids.begin(), ids.end());
            } else {
                out.insert(out.end(), item.ids.begin(), item.ids.end());
            }
        }
        ids.swap(out);
    }
    if (prepend_bos_) {
        ids.insert(ids.begin(), bos_id_);
    }
    return ids;
}

std::string hf_tokenizer::decode(const std::vector<int32_t> & ids, bool skip_special) const {
    std::vector<std::string> pieces;
    pieces.reserve(ids.size());
    for (const int32_t id : ids) {
        // HF skips ids it does not know, and with skip_special every piece spelled like a special token.
        if (id < 0 || id >= n_vocab_ || id_known_[static_cast<size_t>(id)] == 0) {
            continue;
        }
        const std::string & piece = id_to_piece_[static_cast<size_t>(id)];
        if (skip_special && special_contents_.count(piece) != 0) {
            continue;
        }
        pieces.push_back(piece);
    }
    return decoder_.decode(std::move(pieces));
}

std::string hf_tokenizer::id_to_piece(int32_t id) const {
    return id >= 0 && id < n_vocab_ ? id_to_piece_[static_cast<size_t>(id)] : std::string();
}

int32_t hf_tokenizer::piece_to_id(std::string_view piece) const {
    for (const added_token & tok : added_) {
        if (tok.content == piece) {
            return tok.id;
        }
    }
    return model_.find(piece);
}

std::unique_ptr<tokenizer> load_hf_tokenizer(std::string_view tokenizer_json, const std::string & source,
                                             std::string_view config_json, const std::string & config_source) {
    try {
        tokenizer_json_doc doc = tokenizer_json_read(tokenizer_json, source);
        json_view(doc.root, source, "").expect_object();
        return std::make_unique<hf_tokenizer>(doc, source, config_json, config_source);
    } catch (const nlohmann::json::exception & e) {
        // Every access is checked first; this is a safety net so that a slip can never escape as a crash.
        throw error(string_format("%s: unexpected JSON content: %s", source.c_str(),
                                  tokenizer_json_error(e).c_str()));
    }
}

} // namespace specattn
