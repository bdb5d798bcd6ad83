// libFuzzer target for tokenizer.json: arbitrary bytes must either load or throw specattn::error. A tokenizer that
// loads must then encode and decode a short text with special-token spellings, and decode arbitrary ids, without
// crashing; encode and decode may throw specattn::error too (e.g. a hostile Replace chain), nothing else.
// Seeds: fuzz/corpus/tokenizer_json/ (small hand-written byte-level, Metaspace, Split+NFC and Prepend files).
#include "core/check.h"
#include "tokenizer/tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string_view text(reinterpret_cast<const char *>(data), size);
    std::unique_ptr<specattn::tokenizer> tok;
    try {
        tok = specattn::load_tokenizer_json(text, "");
    } catch (const specattn::error &) {
        return 0;
    }
    try {
        const std::vector<int32_t> ids = tok->encode("Hello <s> w\xC3\xB6rld 123 <|im_end|>\n\t x\xE2\x96\x81y", true);
        tok->decode(ids, false);
        tok->decode(ids, true);
        for (const int32_t id : ids) {
            tok->id_to_piece(id);
        }
        // Every id once, forwards and backwards, then out-of-range ones: decoders see pieces in odd orders.
        std::vector<int32_t> all;
        for (int32_t id = 0; id < tok->n_vocab() && id < 512; ++id) {
            all.push_back(id);
        }
        tok->decode(all, false);
        std::vector<int32_t> reversed(all.rbegin(), all.rend());
        reversed.push_back(-1);
        reversed.push_back(tok->n_vocab());
        tok->decode(reversed, true);
        tok->piece_to_id("<s>");
    } catch (const specattn::error &) {
    }
    return 0;
}
