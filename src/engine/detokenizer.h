// Incremental detokenization for streaming: turns each new token into the exact bytes it adds to the text.
// Decoding token by token is wrong for SentencePiece (a word's leading space depends on its neighbours), and
// decoding everything each step is quadratic, so, as vLLM does, we decode a short window of recent tokens twice
// (with and without the new ones) and emit the difference.
#pragma once

#include "tokenizer/tokenizer.h"

#include <string>
#include <vector>

namespace specattn {

class incremental_detokenizer {
  public:
    // prompt: the ids that precede the generated ones (their text is never emitted).
    incremental_detokenizer(const tokenizer & tok, const std::vector<int32_t> & prompt);
    // Appends one generated id and returns the text it completes (may be empty, e.g. mid-way through a
    // multi-token character). Special tokens are skipped.
    std::string push(int32_t id);
    // At the end of generation: whatever push() held back (e.g. bytes of an unfinished UTF-8 character).
    std::string flush();

  private:
    std::string advance(bool final);

    const tokenizer & tok_;
    std::vector<int32_t> ids_;
    size_t prefix_offset_; // start of the decoding window
    size_t read_offset_;   // ids before this have been emitted
};

} // namespace specattn
