// Distribution tests: the sampler draws from exactly sampling_probs. For several parameter sets on a vocabulary of
// 40 ids, 200,000 seeded draws are checked with Pearson's chi-square goodness-of-fit test at p = 1e-4. The same
// check must reject a deliberately wrong distribution, so a pass means something.
#include "sampling/sampler.h"
#include "sampling_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace specattn {
namespace {

constexpr int64_t n_draws = 200000;

// Upper 1e-4 quantile of chi-square with df degrees of freedom, by the Wilson-Hilferty approximation (within a few
// percent of the exact value for df >= 1, and above it for small df, so it errs on the side of not being flaky).
double chi_square_threshold(int64_t df) {
    const double z = 3.7190; // upper 1e-4 quantile of the standard normal
    const double a = 2.0 / (9.0 * static_cast<double>(df));
    return static_cast<double>(df) * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

// Pearson's statistic of the counts against probs (normalized here). Bins expected to hold fewer than 5 draws are
// pooled into one, as the approximation needs. A draw where probs is zero makes the statistic infinite.
double chi_square(const std::vector<int64_t> & counts, const std::vector<float> & probs, int64_t & df) {
    double total = 0.0;
    int64_t n = 0;
    for (size_t i = 0; i < probs.size(); i++) {
        total += probs[i];
        n += counts[i];
    }
    double stat = 0.0;
    double pooled_expected = 0.0;
    int64_t pooled_observed = 0;
    int64_t n_bins = 0;
    for (size_t i = 0; i < probs.size(); i++) {
        const double expected = static_cast<double>(n) * probs[i] / total;
        if (expected == 0.0 && counts[i] > 0) {
            df = 1;
            return std::numeric_limits<double>::infinity();
        }
        if (expected < 5.0) {
            pooled_expected += expected;
            pooled_observed += counts[i];
            continue;
        }
        const double d = static_cast<double>(counts[i]) - expected;
        stat += d * d / expected;
        n_bins++;
    }
    if (pooled_expected > 0.0) {
        const double d = static_cast<double>(pooled_observed) - pooled_expected;
        stat += d * d / pooled_expected;
        n_bins++;
    }
    df = std::max<int64_t>(n_bins - 1, 1);
    return stat;
}

// 40 logits in [-3, 3] from a fixed seed, with a tie and an id at -inf.
std::vector<float> test_logits() {
    std::mt19937_64 rng(2024);
    std::vector<float> l(40);
    for (float & x : l) {
        x = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53 * 6.0 - 3.0);
    }
    l[7] = l[3];
    l[21] = -std::numeric_limits<float>::infinity();
    return l;
}

std::vector<int64_t> draw_counts(const std::vector<float> & logits, const sampling_params & p) {
    sampler s(p);
    std::vector<int64_t> counts(logits.size(), 0);
    for (int64_t i = 0; i < n_draws; i++) {
        counts[static_cast<size_t>(s.sample(logits.data(), static_cast<int64_t>(logits.size())))]++;
    }
    return counts;
}

std::vector<float> probs_of(const std::vector<float> & logits, const sampling_params & p) {
    std::vector<float> probs;
    sampling_probs(logits.data(), static_cast<int64_t>(logits.size()), p, probs);
    return probs;
}

TEST(sampler_distribution, matches_sampling_probs) {
    const std::vector<float> l = test_logits();
    const std::vector<sampling_params> cases = {
        make_params(1.0f, 0, 1.0f, 0.0f, 1), make_params(0.6f, 8, 1.0f, 0.0f, 2),   make_params(1.5f, 0, 0.8f, 0.0f, 3),
        make_params(1.0f, 0, 1.0f, 0.1f, 4), make_params(0.8f, 20, 0.9f, 0.05f, 5), make_params(3.0f, 0, 1.0f, 0.0f, 6),
    };
    for (const sampling_params & p : cases) {
        SCOPED_TRACE("T " + std::to_string(p.temperature) + " k " + std::to_string(p.top_k) + " p " +
                     std::to_string(p.top_p) + " min_p " + std::to_string(p.min_p));
        const std::vector<float> probs = probs_of(l, p);
        const std::vector<int64_t> counts = draw_counts(l, p);
        int64_t n_zero = 0;
        for (size_t i = 0; i < l.size(); i++) {
            if (probs[i] == 0.0f) {
                n_zero++;
                EXPECT_EQ(counts[i], 0) << "filtered id " << i << " was drawn";
            }
        }
        EXPECT_GE(n_zero, 1); // id 21 at least
        int64_t df = 0;
        const double stat = chi_square(counts, probs, df);
        EXPECT_LT(stat, chi_square_threshold(df)) << "df " << df;
    }
}

TEST(sampler_distribution, rejects_wrong_distributions) {
    const std::vector<float> l = test_logits();
    int64_t df = 0;

    // Draws with top-k 8 against the unfiltered softmax at the same temperature.
    const sampling_params top_k = make_params(0.6f, 8, 1.0f, 0.0f, 2);
    const std::vector<int64_t> counts_k = draw_counts(l, top_k);
    const double stat_k = chi_square(counts_k, probs_of(l, make_params(0.6f, 0, 1.0f, 0.0f, 0)), df);
    EXPECT_GT(stat_k, chi_square_threshold(df));

    // A subtler error: the full softmax at T = 1 against T = 1.1.
    const std::vector<int64_t> counts_t = draw_counts(l, make_params(1.0f, 0, 1.0f, 0.0f, 1));
    const double stat_t = chi_square(counts_t, probs_of(l, make_params(1.1f, 0, 1.0f, 0.0f, 0)), df);
    EXPECT_GT(stat_t, chi_square_threshold(df)) << "df " << df;

    // top-p taken on the full softmax, ignoring that HF renormalizes after top-k first, moves the cut.
    const std::vector<int64_t> counts_p = draw_counts(l, make_params(0.8f, 20, 0.9f, 0.0f, 5));
    const double stat_p = chi_square(counts_p, probs_of(l, make_params(0.8f, 0, 0.9f, 0.0f, 0)), df);
    EXPECT_GT(stat_p, chi_square_threshold(df)) << "df " << df;
}

TEST(sampler_distribution, sample_from_unnormalized_residual) {
    // A residual max(0, p - q) from speculative decoding: unnormalized and with holes.
    std::vector<float> residual(30, 0.0f);
    for (size_t i = 0; i < residual.size(); i++) {
        residual[i] = i % 3 == 0 ? 0.0f : 0.01f * static_cast<float>(i % 7 + 1);
    }
    sampler s(make_params(1.0f, 0, 1.0f, 0.0f, 77));
    std::vector<int64_t> counts(residual.size(), 0);
    for (int64_t i = 0; i < n_draws; i++) {
        counts[static_cast<size_t>(s.sample_from(residual))]++;
    }
    int64_t df = 0;
    const double stat = chi_square(counts, residual, df);
    EXPECT_LT(stat, chi_square_threshold(df)) << "df " << df;

    // Power: the same counts against a distribution with two ids' weights swapped.
    std::vector<float> swapped = residual;
    std::swap(swapped[1], swapped[5]);
    EXPECT_GT(chi_square(counts, swapped, df), chi_square_threshold(df));
}

} // namespace
} // namespace specattn
