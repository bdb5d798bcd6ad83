// HF decoders: turn the pieces of a sequence of ids back into text. Supported: ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip and Sequence; with no decoder HF joins the pieces with spaces.
// One deliberate difference: where HF turns bytes that are not valid UTF-8 into U+FFFD (ByteLevel's lossy
// conversion, ByteFallback's one U+FFFD per byte), the bytes are kept as they are, so that a sequence cut inside
// a character yields its first bytes (tokenizer.h promises this to streaming callers). For the ids of any
// complete text the output is the same.
#pragma once

#include "tokenizer/json_view.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/regex.h"

#include <memory>
#include <string>
#include <vector>

namespace specattn {

enum class decoder_type {
    decoder_type_byte_level,
    decoder_type_metaspace,
    decoder_type_replace,
    decoder_type_byte_fallback,
    decoder_type_fuse,
    decoder_type_strip,
};

struct decoder_step {
    decoder_type type = decoder_type::decoder_type_fuse;
    std::shared_ptr<const regex> pattern; // Replace
    std::string content;                  // Replace's replacement, Strip's character, Metaspace's replacement
    prepend_scheme prepend = prepend_scheme::prepend_scheme_always; // Metaspace
    size_t strip_start = 0;               // Strip: at most this many leading content characters go
    size_t strip_stop = 0;                // and at most this many trailing ones
};

class token_decoder {
  public:
    // j: tokenizer.json's "decoder" (null allowed).
    explicit token_decoder(const json_view & j);

    std::string decode(std::vector<std::string> pieces) const;

  private:
    void parse(const json_view & j, int depth);

    bool present_ = false;
    std::vector<decoder_step> steps_;
};

} // namespace specattn
