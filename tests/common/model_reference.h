// Reading the transformers references of tests/fixtures (made by tools/make_fixtures.py and tools/dump_reference.py)
// and the one error measure the model tests use for logits.
#pragma once

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

} // namespace specattn
