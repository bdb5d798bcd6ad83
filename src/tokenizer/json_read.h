// tokenizer.json read in one SAX pass: a DOM of everything except model.vocab and model.merges, which go straight
// into flat vectors. Those two are nearly all of a large file, and building and freeing a DOM of Llama-3's 128k
// vocabulary entries and 280k merges costs about three times as much as lexing the whole file.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace specattn {

struct tokenizer_json_doc {
    nlohmann::json root;     // model.vocab and model.merges are absent from it when captured below
    bool has_vocab = false;  // model.vocab was an object
    std::vector<std::pair<std::string, int32_t>> vocab;
    bool has_merges = false; // model.merges was an array
    std::vector<std::pair<std::string, std::string>> merges; // "a b" strings already split
};

// Parses text; throws specattn::error "SOURCE ..." for invalid JSON and for vocab or merges entries of the wrong
// shape (a vocab value that is not a token id, a merge that is not "a b" or ["a", "b"]).
tokenizer_json_doc tokenizer_json_read(std::string_view text, const std::string & source);

} // namespace specattn
