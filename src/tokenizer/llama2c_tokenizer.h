// llama2.c's tokenizer.bin: int32 max_token_length, then for each token a float32 score, an int32 byte length and
// the bytes. Ids 0, 1, 2 are <unk>, BOS ("\n<s>\n") and EOS ("\n</s>\n"); ids 3..258 are the 256 byte tokens.
#pragma once

#include "tokenizer/tokenizer.h"

#include <memory>
#include <string>
#include <string_view>

namespace specattn {

// Parses tokenizer.bin content; source names the file in messages. Throws on truncated or corrupt data.
std::unique_ptr<tokenizer> load_llama2c_tokenizer(std::string_view data, const std::string & source);

} // namespace specattn
