// Text <-> token ids, exactly as Hugging Face `tokenizers` does for the formats we load:
//   - tokenizer.json with a byte-level BPE model (GPT-2, Llama-3, Qwen2 pre-tokenizer regexes through PCRE2,
//     NFC normalizer, added/special tokens matched before BPE);
//   - tokenizer.json with a SentencePiece-style BPE (Metaspace pre-tokenizer or Prepend/Replace normalizer,
//     byte fallback), as HF writes Llama-2 tokenizers;
//   - llama2.c's tokenizer.bin (pieces with scores: merge the adjacent pair whose merged piece scores highest).
// tokenizer_config.json beside tokenizer.json supplies the chat template and the BOS/EOS token names.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace specattn {

class tokenizer {
  public:
    virtual ~tokenizer() = default;

    // Text to ids. Special tokens written in the text (e.g. "<|im_end|>") are always matched as HF does.
    // add_special: also add what the tokenizer adds around a sequence (HF add_special_tokens=True: the
    // post-processor's template, e.g. Llama-3's <|begin_of_text|>; llama2.c: BOS).
    virtual std::vector<int32_t> encode(std::string_view text, bool add_special) const = 0;

    // Ids to text, HF's decode(ids, skip_special_tokens). Bytes of byte-level tokens are emitted as they are,
    // so a sequence cut inside a UTF-8 character returns the partial bytes (callers streaming text rely on it).
    virtual std::string decode(const std::vector<int32_t> & ids, bool skip_special) const = 0;

    // The vocabulary entry of one id as written in the file (e.g. "Ġthe", "▁the", "<0x0A>"); "" if out of range.
    virtual std::string id_to_piece(int32_t id) const = 0;
    // The id of a vocabulary entry or added token written exactly as in the file; -1 if there is none.
    virtual int32_t piece_to_id(std::string_view piece) const = 0;

    int32_t n_vocab() const { return n_vocab_; }
    int32_t bos_id() const { return bos_id_; } // -1 when the tokenizer has none
    int32_t eos_id() const { return eos_id_; } // -1 when the tokenizer has none
    bool is_special(int32_t id) const;
    const std::vector<int32_t> & special_ids() const { return special_ids_; }
    const std::string & chat_template() const { return chat_template_; }

  protected:
    int32_t n_vocab_ = 0; // vocabulary size including added tokens (max id + 1)
    int32_t bos_id_ = -1;
    int32_t eos_id_ = -1;
    std::vector<int32_t> special_ids_; // sorted
    std::string chat_template_;
};

// Loads tokenizer.json (reading tokenizer_config.json beside it when present) or a llama2.c tokenizer.bin,
// chosen by content. Throws specattn::error with a one-line reason for missing, malformed or unsupported files.
std::unique_ptr<tokenizer> load_tokenizer(const std::string & path);

// Parses tokenizer.json content from memory (config_json may be empty). Used by load_tokenizer and the fuzzer.
std::unique_ptr<tokenizer> load_tokenizer_json(std::string_view tokenizer_json, std::string_view config_json);

} // namespace specattn
