// tokenizer.json (HF tokenizers) with a BPE model. The encode pipeline is HF's: added tokens split out of the raw
// text (added_tokens.h) -> normalizer on each remaining piece (normalize.h) -> added tokens with normalized=true
// -> pre-tokenizer (pretokenize.h) -> BPE per word (bpe.h) -> post-processor template when add_special.
// Decoding maps ids to pieces (special added tokens dropped on request) and runs the decoder (decode.h).
// tokenizer_config.json, when given, supplies BOS/EOS names, the chat template and add_bos_token.
#pragma once

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decode.h"
#include "tokenizer/json_read.h"
#include "tokenizer/normalize.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace specattn {

// One element of a TemplateProcessing "single" template: the input sequence ($A) or special-token ids.
struct template_item {
    bool is_sequence = false;
    std::vector<int32_t> ids;
};

class hf_tokenizer final : public tokenizer {
  public:
    // doc: the parsed tokenizer.json (its vocab and merges are moved out); source names it in error messages.
    // config_json may be empty.
    hf_tokenizer(tokenizer_json_doc & doc, const std::string & source, std::string_view config_json,
                 const std::string & config_source);

    std::vector<int32_t> encode(std::string_view text, bool add_special) const override;
    std::string decode(const std::vector<int32_t> & ids, bool skip_special) const override;
    std::string id_to_piece(int32_t id) const override;
    int32_t piece_to_id(std::string_view piece) const override;

  private:
    void parse_added_tokens(const json_view & list);
    void parse_post_processor(const json_view & j, int depth);
    void build_id_table(const json_view & root);
    void read_config(std::string_view config_json, const std::string & config_source);
    std::vector<int32_t> post_process(std::vector<int32_t> ids) const;

    normalizer normalizer_;
    pre_tokenizer pre_tokenizer_;
    bpe_model model_;
    token_decoder decoder_;
    std::vector<added_token> added_;              // as listed in the file, ids resolved
    added_token_matcher raw_matcher_;             // normalized=false tokens, matched in the raw text
    added_token_matcher normalized_matcher_;      // normalized=true tokens, matched in normalized pieces
    std::vector<std::vector<template_item>> templates_; // TemplateProcessing "single", in processor order
    bool prepend_bos_ = false;                    // tokenizer_config add_bos_token asks for a BOS the template lacks
    std::vector<std::string> id_to_piece_;        // vocabulary and added tokens by id
    std::vector<uint8_t> id_known_;               // whether id_to_piece_[id] is a real entry
    std::unordered_set<std::string> special_contents_; // what decode(skip_special) drops, as HF matches it
};

// Builds an hf_tokenizer from tokenizer.json text; source and config_source name the files in messages.
std::unique_ptr<tokenizer> load_hf_tokenizer(std::string_view tokenizer_json, const std::string & source,
                                             std::string_view config_json, const std::string & config_source);

} // namespace specattn
