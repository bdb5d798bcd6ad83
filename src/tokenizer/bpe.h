// The BPE model of HF tokenizers (models/bpe): a word is split into characters, each looked up in the vocabulary
// (byte fallback to <0xXX> tokens, else the unk token, fused or not), then the adjacent pair with the lowest
// merge rank is merged, leftmost first, until no pair has a rank. ignore_merges (Llama-3) emits a word that is
// already in the vocabulary whole. Results are cached per word; tokenize() is const and thread-safe.
#pragma once

#include "tokenizer/json_read.h"
#include "tokenizer/json_view.h"

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace specattn {

// Hash for string keys that also accepts std::string_view, so lookups need not build a std::string.
struct tokenizer_string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

using tokenizer_vocab = std::unordered_map<std::string, int32_t, tokenizer_string_hash, std::equal_to<>>;

class bpe_model {
  public:
    // j: tokenizer.json's "model"; its vocab and merges are taken (moved) from doc. Throws for anything but a
    // deterministic BPE without subword affixes, and for merges that name tokens missing from the vocabulary.
    bpe_model(const json_view & j, tokenizer_json_doc & doc);

    // Appends the ids of one pre-tokenized word. Throws if an unknown character needs an unk token that the
    // vocabulary lacks.
    void tokenize(std::string_view word, std::vector<int32_t> & out) const;

    const tokenizer_vocab & vocab() const { return vocab_; }
    int32_t find(std::string_view piece) const; // -1 if absent

  private:
    void merge_word(std::string_view word, std::vector<int32_t> & out) const;

    struct merge_info {
        int32_t rank;
        int32_t new_id;
    };

    tokenizer_vocab vocab_;
    std::unordered_map<uint64_t, merge_info> merges_; // key: (left id << 32) | right id
    std::array<int32_t, 256> byte_ids_{};             // ids of "<0xXX>" pieces, -1 where absent
    std::string unk_token_;                           // "" when the model has none
    bool byte_fallback_ = false;
    bool fuse_unk_ = false;
    bool ignore_merges_ = false;

    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<int32_t>, tokenizer_string_hash, std::equal_to<>> cache_;
};

} // namespace specattn
