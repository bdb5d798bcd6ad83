// Speculative sampling is lossless: the acceptance rule reproduces the target distribution exactly (a chi-square
// test with enough samples that a real bias fails, and a demonstration that a plausible bug does fail it), and on
// stories15M the first tokens produced by speculative iterations follow the same distribution as autoregressive
// sampling, for `specattn` and `streaming` with sparse, frequently rejected drafts.
#include "engine/engine.h"
#include "spec/verify.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

using namespace specattn;

namespace {

// Upper 1e-4 quantile of chi-square with k degrees of freedom (Wilson–Hilferty).
double chi2_threshold(int64_t k) {
    const double z = 3.719; // one-sided 1e-4
    const double a = 2.0 / (9.0 * static_cast<double>(k));
    return static_cast<double>(k) * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Goodness of fit of counts against probabilities; bins with expected count < 5 are pooled.
double chi2_fit(const std::vector<int64_t> & counts, const std::vector<double> & probs, int64_t n, int64_t & dof) {
    double stat = 0.0, pooled_o = 0.0, pooled_e = 0.0;
    dof = -1;
    for (size_t i = 0; i < counts.size(); ++i) {
        const double e = probs[i] * static_cast<double>(n);
        if (e < 5.0) {
            pooled_o += static_cast<double>(counts[i]);
            pooled_e += e;
            continue;
        }
        stat += (static_cast<double>(counts[i]) - e) * (static_cast<double>(counts[i]) - e) / e;
        ++dof;
    }
    if (pooled_e >= 5.0) {
        stat += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
        ++dof;
    }
    return stat;
}

// Two samples of equal size: Σ (a - b)² / (a + b) over categories with a + b >= 10, the rest pooled.
double chi2_two_sample(const std::map<int32_t, int64_t> & a, const std::map<int32_t, int64_t> & b, int64_t & dof) {
    std::map<int32_t, std::pair<double, double>> both;
    for (const auto & [k, v] : a) {
        both[k].first += static_cast<double>(v);
    }
    for (const auto & [k, v] : b) {
        both[k].second += static_cast<double>(v);
    }
    double stat = 0.0, pa = 0.0, pb = 0.0;
    dof = -1;
    for (const auto & [k, v] : both) {
        if (v.first + v.second < 10.0) {
            pa += v.first;
            pb += v.second;
            continue;
        }
        stat += (v.first - v.second) * (v.first - v.second) / (v.first + v.second);
        ++dof;
    }
    if (pa + pb > 0.0) {
        stat += (pa - pb) * (pa - pb) / (pa + pb);
        ++dof;
    }
    return stat;
}

std::vector<float> normalized(std::vector<float> v) {
    double s = 0;
    for (float x : v) {
        s += x;
    }
    for (float & x : v) {
        x = static_cast<float>(x / s);
    }
    return v;
}

} // namespace

TEST(spec_sampling, acceptance_rule_reproduces_the_target_distribution) {
    // Two draft positions over 6 ids; q far from p so rejections (and residual sampling) are common.
    const std::vector<std::vector<float>> p = {normalized({5, 1, 1, 8, 0, 3}), normalized({1, 1, 1, 1, 1, 1}),
                                               normalized({0, 2, 9, 1, 1, 1})};
    const std::vector<std::vector<float>> q = {normalized({1, 6, 1, 1, 4, 1}), normalized({3, 1, 0, 1, 1, 2})};
    sampling_params sp;
    sp.temperature = 1.0f;
    sp.seed = 11;
    sampler draft_rng(sp);
    sp.seed = 12;
    sampler accept_rng(sp);
    constexpr int64_t n = 200000;
    std::vector<int64_t> first(6, 0), first_wrong(6, 0);
    for (int64_t i = 0; i < n; ++i) {
        const std::vector<int32_t> drafts = {draft_rng.sample_from(q[0]), draft_rng.sample_from(q[1])};
        const accept_result r = accept_sampled(drafts, p, q, accept_rng);
        ++first[static_cast<size_t>(r.n_accepted > 0 ? drafts[0] : r.next)];
        // A plausible bug: resample from p instead of the residual after a rejection.
        const bool accepted = accept_rng.uniform() * q[0][static_cast<size_t>(drafts[0])] < p[0][static_cast<size_t>(drafts[0])];
        ++first_wrong[static_cast<size_t>(accepted ? drafts[0] : accept_rng.sample_from(p[0]))];
    }
    const std::vector<double> target(p[0].begin(), p[0].end());
    int64_t dof = 0;
    const double stat = chi2_fit(first, target, n, dof);
    EXPECT_LT(stat, chi2_threshold(dof)) << "the first emitted token must follow p_0";
    const double stat_wrong = chi2_fit(first_wrong, target, n, dof);
    EXPECT_GT(stat_wrong, chi2_threshold(dof)) << "the test must have the power to see a residual bug";
    EXPECT_EQ(first[4], 0) << "an id with zero target probability is never emitted";
}

TEST(spec_sampling, speculative_samples_follow_autoregressive_sampling_on_stories15M) {
    engine_params ep;
    ep.model_path = std::string(SPECATTN_SOURCE_DIR) + "/data/stories15M/stories15M.bin";
    ep.n_seq_max = 32;
    engine eng(ep);
    request base;
    base.prompt = eng.get_tokenizer().encode("Tom had a big red ball. He liked to throw it very high. One day he", true);
    base.max_tokens = 4;
    base.sampling.temperature = 1.0f;
    base.sampling.top_k = 12;

    // Tokens 2 and 3 of each sample come from the first speculative iteration (token 1 from the prefill).
    auto collect = [&](const spec_params & sp, uint64_t seed0, float temperature, int64_t n_batches) {
        std::vector<std::map<int32_t, int64_t>> hist(2);
        for (int64_t b = 0; b < n_batches; ++b) {
            std::vector<request> reqs(32, base);
            for (size_t i = 0; i < reqs.size(); ++i) {
                reqs[i].sampling.seed = seed0 + static_cast<uint64_t>(b * 32) + i;
                reqs[i].sampling.temperature = temperature;
            }
            run_stats st;
            for (const result & r : eng.generate(reqs, st, nullptr, sp)) {
                ++hist[0][r.tokens.at(1)];
                ++hist[1][r.tokens.at(2)];
            }
        }
        return hist;
    };
    constexpr int64_t n_batches = 40; // 1,280 samples per mode
    const auto ar = collect(spec_params{}, 1000000, 1.0f, n_batches);
    for (spec_method m : {spec_method::spec_method_specattn, spec_method::spec_method_streaming}) {
        spec_params sp;
        sp.method = m;
        sp.draft_len = 3;
        sp.ratio = 0.01;
        sp.min_tokens = 4;
        sp.block_size = 4;
        const auto spec = collect(sp, 2000000, 1.0f, n_batches);
        for (size_t t = 0; t < 2; ++t) {
            int64_t dof = 0;
            const double stat = chi2_two_sample(ar[t], spec[t], dof);
            EXPECT_LT(stat, chi2_threshold(dof)) << spec_method_name(m) << " token " << t + 2;
        }
    }
    // Power: the same test tells apart a modestly different temperature.
    const auto hotter = collect(spec_params{}, 3000000, 1.3f, n_batches);
    int64_t dof = 0;
    const double stat_hot = chi2_two_sample(ar[0], hotter[0], dof);
    EXPECT_GT(stat_hot, chi2_threshold(dof));
}
