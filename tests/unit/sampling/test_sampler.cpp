// Unit tests of argmax, parameter validation, sampling_probs and the sampler's RNG contract.
// Expected distributions are written out from the formulas (which ids survive is worked out by hand in comments),
// plus a brute-force reference (ranks by counting, softmax without max subtraction) on random logits with ties.
#include "core/check.h"
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

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr float nan = std::numeric_limits<float>::quiet_NaN();

std::vector<float> probs_of(const std::vector<float> & logits, const sampling_params & p) {
    std::vector<float> probs;
    sampling_probs(logits.data(), static_cast<int64_t>(logits.size()), p, probs);
    return probs;
}

// Expected: exp(x_i / T) normalized over the ids in keep, zero elsewhere.
std::vector<double> softmax_over(const std::vector<float> & x, double t, const std::vector<int> & keep) {
    std::vector<double> out(x.size(), 0.0);
    double total = 0.0;
    for (int i : keep) {
        total += std::exp(x[static_cast<size_t>(i)] / t);
    }
    for (int i : keep) {
        out[static_cast<size_t>(i)] = std::exp(x[static_cast<size_t>(i)] / t) / total;
    }
    return out;
}

void expect_probs(const std::vector<float> & got, const std::vector<double> & want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); i++) {
        if (want[i] == 0.0) {
            EXPECT_EQ(got[i], 0.0f) << "id " << i;
        } else {
            EXPECT_NEAR(got[i], want[i], 1e-6 * want[i]) << "id " << i;
        }
    }
}

std::string error_of(const sampling_params & p) {
    try {
        validate(p);
    } catch (const error & e) {
        return e.what();
    }
    return "";
}

// ---- argmax ----

TEST(argmax, picks_largest) {
    const std::vector<float> l = {0.5f, -1.0f, 3.0f, 2.0f};
    EXPECT_EQ(argmax(l.data(), 4), 2);
}

TEST(argmax, ties_go_to_lowest_id) {
    const std::vector<float> l = {1.0f, 4.0f, 2.0f, 4.0f, 4.0f};
    EXPECT_EQ(argmax(l.data(), 5), 1);
    const std::vector<float> all_inf = {-inf, -inf, -inf};
    EXPECT_EQ(argmax(all_inf.data(), 3), 0);
    const std::vector<float> pos_inf = {1.0f, inf, inf};
    EXPECT_EQ(argmax(pos_inf.data(), 3), 1);
}

TEST(argmax, all_negative) {
    const std::vector<float> l = {-5.0f, -0.25f, -3.0f, -0.5f};
    EXPECT_EQ(argmax(l.data(), 4), 1);
}

TEST(argmax, nan_never_wins) {
    const std::vector<float> first = {nan, -2.0f, -1.0f};
    EXPECT_EQ(argmax(first.data(), 3), 2);
    const std::vector<float> middle = {-3.0f, nan, -4.0f, nan};
    EXPECT_EQ(argmax(middle.data(), 4), 0);
    const std::vector<float> last = {1.0f, 2.0f, nan};
    EXPECT_EQ(argmax(last.data(), 3), 1);
    const std::vector<float> with_inf = {nan, -inf, nan};
    EXPECT_EQ(argmax(with_inf.data(), 3), 1);
}

TEST(argmax, rejects_empty_and_all_nan) {
    const std::vector<float> l = {nan, nan};
    EXPECT_THROW(argmax(l.data(), 2), error);
    EXPECT_THROW(argmax(l.data(), 0), error);
}

// ---- validate ----

TEST(validate, accepts_edges) {
    EXPECT_NO_THROW(validate(make_params(0.0f, 0, 1.0f, 0.0f)));
    EXPECT_NO_THROW(validate(make_params(100.0f, 1000000, 1e-6f, 1.0f)));
}

TEST(validate, errors_name_the_flag) {
    EXPECT_NE(error_of(make_params(-0.1f, 0, 1.0f, 0.0f)).find("--temp"), std::string::npos);
    EXPECT_NE(error_of(make_params(nan, 0, 1.0f, 0.0f)).find("--temp"), std::string::npos);
    EXPECT_NE(error_of(make_params(inf, 0, 1.0f, 0.0f)).find("--temp"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, -1, 1.0f, 0.0f)).find("--top-k"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, 0, 0.0f, 0.0f)).find("--top-p"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, 0, -0.5f, 0.0f)).find("--top-p"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, 0, 1.01f, 0.0f)).find("--top-p"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, 0, nan, 0.0f)).find("--top-p"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, 0, 1.0f, -0.01f)).find("--min-p"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, 0, 1.0f, 1.5f)).find("--min-p"), std::string::npos);
    EXPECT_NE(error_of(make_params(1.0f, 0, 1.0f, nan)).find("--min-p"), std::string::npos);
    EXPECT_EQ(error_of(make_params(1.0f, 0, 1.0f, 0.0f)).find('\n'), std::string::npos);
}

TEST(validate, everything_that_takes_params_checks_them) {
    const std::vector<float> l = {1.0f, 2.0f};
    std::vector<float> probs;
    EXPECT_THROW(sampler(make_params(-1.0f, 0, 1.0f, 0.0f)), error);
    EXPECT_THROW(sampler(make_params(1.0f, 0, 2.0f, 0.0f)), error);
    EXPECT_THROW(sampling_probs(l.data(), 2, make_params(1.0f, -3, 1.0f, 0.0f), probs), error);
    EXPECT_THROW(sampling_probs(l.data(), 2, make_params(1.0f, 0, 1.0f, 2.0f), probs), error);
}

// ---- sampling_probs on hand-computed cases ----
// logits {2, 1, 0, -1, -inf}. Softmax at T=1: .644 .237 .087 .032 0; at T=2: .455 .276 .167 .102 0;
// at T=0.5: .865 .117 .016 .002 0.

const std::vector<float> small = {2.0f, 1.0f, 0.0f, -1.0f, -inf};

TEST(sampling_probs, temperature_only) {
    expect_probs(probs_of(small, make_params(1.0f, 0, 1.0f, 0.0f)), softmax_over(small, 1.0, {0, 1, 2, 3}));
    expect_probs(probs_of(small, make_params(0.5f, 0, 1.0f, 0.0f)), softmax_over(small, 0.5, {0, 1, 2, 3}));
    expect_probs(probs_of(small, make_params(2.0f, 0, 1.0f, 0.0f)), softmax_over(small, 2.0, {0, 1, 2, 3}));
}

TEST(sampling_probs, greedy_is_one_hot) {
    expect_probs(probs_of(small, make_params(0.0f, 0, 1.0f, 0.0f)), {1, 0, 0, 0, 0});
    // Filters do not matter when greedy; ties go to the lowest id.
    expect_probs(probs_of({0.0f, 3.0f, 3.0f}, make_params(0.0f, 1, 0.1f, 0.9f)), {0, 1, 0});
}

TEST(sampling_probs, top_k) {
    expect_probs(probs_of(small, make_params(1.0f, 2, 1.0f, 0.0f)), softmax_over(small, 1.0, {0, 1}));
    expect_probs(probs_of(small, make_params(2.0f, 3, 1.0f, 0.0f)), softmax_over(small, 2.0, {0, 1, 2}));
    expect_probs(probs_of(small, make_params(0.5f, 1, 1.0f, 0.0f)), {1, 0, 0, 0, 0});
    // k larger than the vocabulary, or than the finite logits, keeps everything that can be drawn.
    expect_probs(probs_of(small, make_params(1.0f, 4, 1.0f, 0.0f)), softmax_over(small, 1.0, {0, 1, 2, 3}));
    expect_probs(probs_of(small, make_params(1.0f, 99, 1.0f, 0.0f)), softmax_over(small, 1.0, {0, 1, 2, 3}));
}

TEST(sampling_probs, top_p) {
    // T=1: .644 < .7 <= .644 + .237 -> keep {0, 1}. T=2: .455 < .7 <= .731 -> {0, 1}. T=0.5: .865 >= .7 -> {0}.
    expect_probs(probs_of(small, make_params(1.0f, 0, 0.7f, 0.0f)), softmax_over(small, 1.0, {0, 1}));
    expect_probs(probs_of(small, make_params(2.0f, 0, 0.7f, 0.0f)), softmax_over(small, 2.0, {0, 1}));
    expect_probs(probs_of(small, make_params(0.5f, 0, 0.7f, 0.0f)), {1, 0, 0, 0, 0});
    // T=2, top_p .9: .455, .731, .898 < .9 -> four ids.
    expect_probs(probs_of(small, make_params(2.0f, 0, 0.9f, 0.0f)), softmax_over(small, 2.0, {0, 1, 2, 3}));
    // A tiny top_p still keeps one id.
    expect_probs(probs_of(small, make_params(2.0f, 0, 1e-6f, 0.0f)), {1, 0, 0, 0, 0});
}

TEST(sampling_probs, min_p) {
    // Ratio to the max prob is exp((x - 2) / T). T=1: 1 .368 .135 .050 -> {0, 1} at min_p .3.
    // T=2: 1 .607 .368 .223 -> {0, 1, 2}. T=0.5: 1 .135 -> {0}.
    expect_probs(probs_of(small, make_params(1.0f, 0, 1.0f, 0.3f)), softmax_over(small, 1.0, {0, 1}));
    expect_probs(probs_of(small, make_params(2.0f, 0, 1.0f, 0.3f)), softmax_over(small, 2.0, {0, 1, 2}));
    expect_probs(probs_of(small, make_params(0.5f, 0, 1.0f, 0.3f)), {1, 0, 0, 0, 0});
    // min_p = 1 keeps the max only (and its ties).
    expect_probs(probs_of({1.0f, 3.0f, 3.0f, 2.9f}, make_params(1.0f, 0, 1.0f, 1.0f)), {0, 0.5, 0.5, 0});
}

TEST(sampling_probs, top_p_sees_the_distribution_after_top_k) {
    // After top-k=2 at T=1 the probs are .731 .269, so top_p .7 keeps {0}. On the full softmax (.644) it would keep
    // {0, 1}: HF applies top-k first and renormalizes before top-p.
    expect_probs(probs_of(small, make_params(1.0f, 2, 0.7f, 0.0f)), {1, 0, 0, 0, 0});
}

TEST(sampling_probs, all_filters_together) {
    // logits/T at T=2: 1.5 1.25 1 .5 .25 0 -.5 (-inf). top-k 6 drops id 6. Probs over ids 0..5:
    // .3065 .2387 .1859 .1128 .0878 .0684, cumulative .3065 .5452 .7311 -> top_p .72 keeps {0, 1, 2}.
    // (Over all seven ids the cumulative is .2943 .5235 .7020 .8103, which would keep four.)
    // min_p .3: ratios 1 .779 .607 all stay. min_p .65: .607 drops id 2.
    const std::vector<float> l = {3.0f, 2.5f, 2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -inf};
    expect_probs(probs_of(l, make_params(2.0f, 6, 0.72f, 0.3f)), softmax_over(l, 2.0, {0, 1, 2}));
    expect_probs(probs_of(l, make_params(2.0f, 6, 0.72f, 0.65f)), softmax_over(l, 2.0, {0, 1}));
    expect_probs(probs_of(l, make_params(2.0f, 0, 0.72f, 0.0f)), softmax_over(l, 2.0, {0, 1, 2, 3}));
}

TEST(sampling_probs, ties_at_the_boundary_keep_the_lower_id) {
    expect_probs(probs_of({1.0f, 3.0f, 3.0f, 3.0f, 0.0f}, make_params(1.0f, 2, 1.0f, 0.0f)), {0, 0.5, 0.5, 0, 0});
    // Three equal ids of 1/3 each (the -9 is negligible): top_p .5 needs two of them, the lower two.
    const std::vector<float> l = {-9.0f, 3.0f, 3.0f, 3.0f};
    expect_probs(probs_of(l, make_params(1.0f, 0, 0.5f, 0.0f)), softmax_over(l, 1.0, {1, 2}));
}

TEST(sampling_probs, nan_and_infinite_logits) {
    const std::vector<float> with_nan = {nan, 1.0f, 0.0f, nan};
    expect_probs(probs_of(with_nan, make_params(1.0f, 0, 1.0f, 0.0f)), softmax_over(with_nan, 1.0, {1, 2}));
    expect_probs(probs_of({1.0f, inf, 2.0f, inf}, make_params(1.0f, 0, 1.0f, 0.0f)), {0, 0.5, 0, 0.5});
    // Huge logits at a tiny temperature must not overflow.
    expect_probs(probs_of({3e38f, -3e38f, 3e38f}, make_params(1e-30f, 0, 1.0f, 0.0f)), {0.5, 0, 0.5});
}

TEST(sampling_probs, rejects_nothing_to_draw) {
    std::vector<float> probs;
    const std::vector<float> l = {-inf, nan, -inf};
    EXPECT_THROW(sampling_probs(l.data(), 3, make_params(1.0f, 0, 1.0f, 0.0f), probs), error);
    EXPECT_THROW(sampling_probs(l.data(), 0, make_params(1.0f, 0, 1.0f, 0.0f), probs), error);
}

// ---- sampling_probs against a brute-force reference on random logits with ties ----

// Plain formulas, no sorting: an id's rank is the number of ids that come before it (larger logit, or equal logit
// and lower id); softmax without max subtraction (logits stay small here).
std::vector<double> reference_probs(const std::vector<float> & l, const sampling_params & p) {
    const size_t n = l.size();
    std::vector<bool> keep(n);
    std::vector<size_t> rank(n, 0);
    for (size_t i = 0; i < n; i++) {
        keep[i] = !std::isnan(l[i]) && l[i] != -inf;
        for (size_t j = 0; j < n; j++) {
            if (l[j] > l[i] || (l[j] == l[i] && j < i)) {
                rank[i]++;
            }
        }
    }
    std::vector<double> e(n, 0.0);
    for (size_t i = 0; i < n; i++) {
        e[i] = keep[i] ? std::exp(static_cast<double>(l[i]) / p.temperature) : 0.0;
    }
    if (p.top_k > 0) {
        for (size_t i = 0; i < n; i++) {
            keep[i] = keep[i] && rank[i] < static_cast<size_t>(p.top_k);
        }
    }
    std::vector<bool> keep_p = keep;
    double total = 0.0;
    double e_max = 0.0;
    for (size_t i = 0; i < n; i++) {
        total += keep[i] ? e[i] : 0.0;
        e_max = std::max(e_max, keep[i] ? e[i] : 0.0);
    }
    for (size_t i = 0; i < n && p.top_p < 1.0f; i++) {
        double before = 0.0; // probability of the kept ids ranked above i
        for (size_t j = 0; j < n; j++) {
            before += keep[j] && rank[j] < rank[i] ? e[j] / total : 0.0;
        }
        keep_p[i] = keep[i] && before < p.top_p;
    }
    std::vector<double> out(n, 0.0);
    double total_out = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (keep_p[i] && e[i] >= p.min_p * e_max) {
            out[i] = e[i];
            total_out += e[i];
        }
    }
    for (double & x : out) {
        x /= total_out;
    }
    return out;
}

TEST(sampling_probs, matches_brute_force_reference) {
    std::mt19937_64 rng(1234);
    const std::vector<sampling_params> cases = {
        make_params(1.0f, 0, 1.0f, 0.0f),  make_params(0.7f, 5, 1.0f, 0.0f),     make_params(1.3f, 0, 0.63f, 0.0f),
        make_params(1.0f, 0, 1.0f, 0.07f), make_params(0.9f, 40, 0.91f, 0.0f),   make_params(1.1f, 17, 0.83f, 0.02f),
        make_params(2.0f, 3, 0.97f, 0.4f), make_params(0.5f, 150, 0.77f, 0.01f), make_params(4.0f, 0, 0.93f, 0.0f),
        make_params(8.0f, 0, 0.99f, 0.0f),
    };
    for (int trial = 0; trial < 24; trial++) {
        // n from 1 to 211, and a few of 3000 so top-p sorts past its first blocks (256, 1024 ids); logits on a 0.25
        // grid in [-6, 6] so ties are common; a few -inf and NaN.
        const size_t n = trial % 8 == 7 ? 3000 : 1 + rng() % 211;
        std::vector<float> l(n);
        for (float & x : l) {
            const uint64_t r = rng() % 60;
            x = r == 0 ? -inf : r == 1 ? nan : static_cast<float>(static_cast<int64_t>(rng() % 49) - 24) * 0.25f;
        }
        l[rng() % n] = 1.0f; // at least one drawable id
        for (const sampling_params & p : cases) {
            SCOPED_TRACE("trial " + std::to_string(trial) + " T " + std::to_string(p.temperature) + " k " +
                         std::to_string(p.top_k) + " p " + std::to_string(p.top_p) + " min_p " +
                         std::to_string(p.min_p));
            expect_probs(probs_of(l, p), reference_probs(l, p));
        }
    }
}

TEST(sampling_probs, large_vocab_top_k) {
    // The partial_sort path on a realistic vocabulary: exactly k survivors, and they are the k largest.
    const int64_t n = 151936;
    const int32_t k = 50;
    std::mt19937_64 rng(99);
    std::vector<float> l(static_cast<size_t>(n));
    for (float & x : l) {
        x = static_cast<float>(rng() >> 11) * 0x1.0p-53f * 20.0f - 10.0f;
    }
    std::vector<float> sorted_l = l;
    std::sort(sorted_l.begin(), sorted_l.end(), [](float a, float b) { return a > b; });
    const std::vector<float> probs = probs_of(l, make_params(0.8f, k, 1.0f, 0.0f));
    int64_t n_nonzero = 0;
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (probs[static_cast<size_t>(i)] > 0.0f) {
            n_nonzero++;
            EXPECT_GE(l[static_cast<size_t>(i)], sorted_l[k - 1]);
        }
        total += probs[static_cast<size_t>(i)];
    }
    EXPECT_EQ(n_nonzero, k);
    EXPECT_NEAR(total, 1.0, 1e-6);
}

// ---- the sampler's RNG contract ----

TEST(sampler, uniform_is_53_bits_of_mt19937_64) {
    sampler s(make_params(1.0f, 0, 1.0f, 0.0f, 42));
    std::mt19937_64 ref(42);
    for (int i = 0; i < 1000; i++) {
        const double u = s.uniform();
        EXPECT_EQ(u, static_cast<double>(ref() >> 11) / 9007199254740992.0);
        EXPECT_GE(u, 0.0);
        EXPECT_LT(u, 1.0);
    }
}

std::vector<int32_t> draw_sequence(uint64_t seed, int n_draws) {
    const std::vector<float> l = {0.1f, 0.5f, -0.2f, 0.3f, 0.0f, 0.4f, -0.1f, 0.2f};
    sampler s(make_params(1.0f, 0, 1.0f, 0.0f, seed));
    std::vector<int32_t> out;
    for (int i = 0; i < n_draws; i++) {
        out.push_back(s.sample(l.data(), static_cast<int64_t>(l.size())));
    }
    return out;
}

TEST(sampler, same_seed_same_sequence) {
    EXPECT_EQ(draw_sequence(7, 500), draw_sequence(7, 500));
}

TEST(sampler, different_seeds_differ) {
    const std::vector<int32_t> a = draw_sequence(7, 500);
    EXPECT_NE(a, draw_sequence(8, 500));
    EXPECT_NE(a, draw_sequence(0, 500));
}

TEST(sampler, greedy_never_draws_from_the_rng) {
    const std::vector<float> l = {0.1f, 0.5f, 0.5f, -1.0f};
    sampler greedy(make_params(0.0f, 0, 1.0f, 0.0f, 5));
    for (int i = 0; i < 100; i++) {
        EXPECT_EQ(greedy.sample(l.data(), 4), 1);
    }
    sampler fresh(make_params(1.0f, 0, 1.0f, 0.0f, 5));
    EXPECT_EQ(greedy.uniform(), fresh.uniform());
}

TEST(sampler, one_uniform_per_sample) {
    // Speculative decoding replays draws; each sampled token must cost exactly one uniform.
    const std::vector<float> l = {0.1f, 0.5f, 0.2f, -1.0f};
    sampler a(make_params(0.8f, 3, 0.9f, 0.0f, 11));
    sampler b(make_params(0.8f, 3, 0.9f, 0.0f, 11));
    a.sample(l.data(), 4);
    a.sample(l.data(), 4);
    b.uniform();
    b.uniform();
    EXPECT_EQ(a.uniform(), b.uniform());
}

TEST(sampler, sample_from_never_returns_zero_probability) {
    // Unnormalized, with zeros at both ends and in between, as a residual max(0, p - q) looks.
    const std::vector<float> probs = {0.0f, 0.0f, 0.3f, 0.0f, 1e-7f, 0.9f, 0.0f, 0.0f};
    sampler s(make_params(1.0f, 0, 1.0f, 0.0f, 3));
    for (int i = 0; i < 20000; i++) {
        const int32_t id = s.sample_from(probs);
        EXPECT_GT(probs[static_cast<size_t>(id)], 0.0f);
    }
    EXPECT_EQ(s.sample_from({0.0f, 0.0f, 2.5f}), 2);
}

TEST(sampler, peek_uniforms_are_the_next_draws_and_draw_nothing) {
    sampler a(make_params(1.0f, 0, 1.0f, 0.0f, 21));
    sampler b(make_params(1.0f, 0, 1.0f, 0.0f, 21));
    a.uniform();
    b.uniform();
    const std::vector<double> ahead = a.peek_uniforms(5);
    ASSERT_EQ(ahead.size(), 5u);
    for (double u : ahead) {
        EXPECT_EQ(u, b.uniform());
    }
    EXPECT_EQ(a.uniform(), ahead[0]) << "peeking does not advance the sampler";
    EXPECT_TRUE(a.peek_uniforms(0).empty());
}

TEST(sampler, draw_from_is_sample_from_with_the_uniform_given) {
    // A backend that samples on the device gets the uniform the sequence's sampler draws on the host.
    const std::vector<float> probs = {0.0f, 0.25f, 0.0f, 0.125f, 0.5f, 0.0f, 0.125f};
    sampler a(make_params(1.0f, 0, 1.0f, 0.0f, 9));
    sampler b(make_params(1.0f, 0, 1.0f, 0.0f, 9));
    for (int i = 0; i < 2000; i++) {
        EXPECT_EQ(a.sample_from(probs), draw_from(probs, b.uniform()));
    }
    EXPECT_EQ(draw_from(probs, 0.0), 1);
    EXPECT_EQ(draw_from(probs, 0.999999), 6);
    EXPECT_THROW(draw_from({0.0f, 0.0f}, 0.5), error);
}

TEST(sampler, sample_from_rejects_bad_input) {
    sampler s(make_params(1.0f, 0, 1.0f, 0.0f, 3));
    EXPECT_THROW(s.sample_from({}), error);
    EXPECT_THROW(s.sample_from({0.0f, 0.0f}), error);
    EXPECT_THROW(s.sample_from({0.5f, -0.1f}), error);
    EXPECT_THROW(s.sample_from({0.5f, nan}), error);
    EXPECT_THROW(s.sample_from({0.5f, inf}), error);
    // A call that throws does not consume a draw.
    sampler fresh(make_params(1.0f, 0, 1.0f, 0.0f, 3));
    EXPECT_EQ(s.uniform(), fresh.uniform());
}

} // namespace
} // namespace specattn
