// Reading the transformers references of tests/fixtures (made by tools/make_fixtures.py and tools/dump_reference.py),
// the one error measure the model tests use for logits, and the scenarios they run on every backend.
#pragma once

#include "backend/backend.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace specattn {

struct model_reference {
    std::vector<int32_t> prompt_ids;
    std::vector<std::vector<float>> logits; // [n_prompt][n_vocab]
    std::vector<int32_t> greedy_ids;
};

// reference.json of a tiny checkpoint directory.
inline model_reference load_model_reference(const std::string & dir) {
    std::ifstream in(dir + "/reference.json");
    EXPECT_TRUE(in.good()) << dir;
    const nlohmann::json j = nlohmann::json::parse(in);
    model_reference r;
    r.prompt_ids = j.at("prompt_ids").get<std::vector<int32_t>>();
    r.logits = j.at("logits").get<std::vector<std::vector<float>>>();
    r.greedy_ids = j.at("greedy_ids").get<std::vector<int32_t>>();
    return r;
}

// max |a - b| / max |b|: the error relative to the logits' scale (per-element relative error is meaningless for
// logits near zero). Any non-finite value of a is an infinite error.
inline double max_rel_error(const float * a, const std::vector<float> & b) {
    double max_diff = 0.0;
    double max_ref = 0.0;
    for (size_t i = 0; i < b.size(); ++i) {
        if (!std::isfinite(a[i])) {
            return INFINITY;
        }
        max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[i]) - b[i]));
        max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
    }
    return max_diff / max_ref;
}

// The two scenarios every backend's model test runs against a reference, each returning the worst max_rel_error.
// `kv` must be empty and match the backend's pages.

// The whole prompt in one batch, the logits of every row.
inline double prompt_logits_error(backend & be, kv_block_manager & kv, const model_reference & ref, int64_t n_vocab) {
    const auto n = static_cast<int64_t>(ref.prompt_ids.size());
    const int32_t s = kv.add_sequence();
    kv.append(s, n);
    forward_batch batch;
    batch.add_sequence_rows(s, ref.prompt_ids.data(), n, 0, false);
    for (int32_t r = 0; r < n; ++r) {
        batch.logit_rows.push_back(r);
    }
    std::vector<float> logits;
    be.forward(batch, kv, logits);
    double worst = 0.0;
    for (int64_t r = 0; r < n; ++r) {
        worst = std::max(worst, max_rel_error(logits.data() + r * n_vocab, ref.logits[static_cast<size_t>(r)]));
    }
    return worst;
}

// A prefill chunk of `split` tokens that ends mid-page, then one token at a time, while a second sequence runs a
// shorter prefix of the prompt in the same batches (cross-talk between sequences would show in the first's logits).
inline double chunk_and_decode_error(backend & be, kv_block_manager & kv, const model_reference & ref, int64_t n_vocab,
                                     int64_t split) {
    const auto n = static_cast<int64_t>(ref.prompt_ids.size());
    const int32_t a = kv.add_sequence();
    const int32_t b = kv.add_sequence();
    forward_batch batch;
    std::vector<float> logits;
    kv.append(a, split);
    kv.append(b, 5);
    batch.add_sequence_rows(b, ref.prompt_ids.data() + 3, 5, 0, true);
    batch.add_sequence_rows(a, ref.prompt_ids.data(), split, 0, true);
    be.forward(batch, kv, logits);
    double worst = max_rel_error(logits.data() + n_vocab, ref.logits[static_cast<size_t>(split - 1)]);
    for (int64_t pos = split; pos < n; ++pos) {
        batch.clear();
        kv.append(a, 1);
        kv.append(b, 1);
        batch.add_sequence_rows(a, ref.prompt_ids.data() + pos, 1, pos, true);
        batch.add_sequence_rows(b, ref.prompt_ids.data() + pos, 1, kv.length(b) - 1, true);
        be.forward(batch, kv, logits);
        worst = std::max(worst, max_rel_error(logits.data(), ref.logits[static_cast<size_t>(pos)]));
    }
    return worst;
}

} // namespace specattn
