// Deterministic token ids for tests that need a prompt of some length but not any particular text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specattn::test {

// n ids spread over the vocabulary: (37 i + 11) mod n_vocab.
inline std::vector<int32_t> spread_tokens(int64_t n, int64_t n_vocab) {
    std::vector<int32_t> toks(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        toks[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37 + 11) % n_vocab);
    }
    return toks;
}

} // namespace specattn::test
