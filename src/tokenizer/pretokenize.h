// HF pre-tokenizers: split normalized text into the words the BPE model sees. Supported: Split (regex or
// string pattern, every SplitDelimiterBehavior, invert), ByteLevel (GPT-2 regex and bytes_to_unicode mapping),
// Metaspace (replacement, prepend_scheme, split) and Sequence. Also the GPT-2 byte <-> character mapping that the
// ByteLevel decoder reverses.
#pragma once

#include "tokenizer/json_view.h"
#include "tokenizer/regex.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace specattn {

// A piece of text on its way to the model. at_start: the piece begins at offset 0 of the original input, which
// Metaspace's prepend_scheme "first" asks about.
struct pre_token {
    std::string text;
    bool at_start = false;
};

// bytes_to_unicode() of GPT-2: byte b is written as this UTF-8 character.
const std::string & byte_level_char(unsigned char b);
// The byte a mapped character stands for, or -1 if cp is not one of the 256 mapped characters.
int byte_level_byte(uint32_t cp);

enum class split_behavior {
    split_behavior_removed,
    split_behavior_isolated,
    split_behavior_merged_with_previous,
    split_behavior_merged_with_next,
    split_behavior_contiguous,
};

enum class prepend_scheme {
    prepend_scheme_always,
    prepend_scheme_first,
    prepend_scheme_never,
};

// Reads HF's prepend_scheme (or the older add_prefix_space flag) of a Metaspace pre-tokenizer or decoder.
prepend_scheme metaspace_prepend_scheme(const json_view & j);

enum class pre_tokenizer_type {
    pre_tokenizer_type_split,
    pre_tokenizer_type_byte_level,
    pre_tokenizer_type_metaspace,
};

struct pre_tokenizer_step {
    pre_tokenizer_type type = pre_tokenizer_type::pre_tokenizer_type_split;
    std::shared_ptr<const regex> pattern; // Split's pattern, or ByteLevel's GPT-2 regex when use_regex
    split_behavior behavior = split_behavior::split_behavior_isolated;
    bool invert = false;
    bool add_prefix_space = false;        // ByteLevel
    std::string replacement;              // Metaspace, one character
    prepend_scheme prepend = prepend_scheme::prepend_scheme_always;
    bool split = true;                    // Metaspace
};

class pre_tokenizer {
  public:
    // j: tokenizer.json's "pre_tokenizer" (null allowed). Throws naming an unsupported type.
    explicit pre_tokenizer(const json_view & j);

    // Splits every piece in place, in order; empty pieces are dropped as HF drops them.
    void apply(std::vector<pre_token> & pieces) const;

  private:
    void parse(const json_view & j, int depth);

    std::vector<pre_tokenizer_step> steps_; // a Sequence flattened: each step runs over all pieces of the last
};

} // namespace specattn
