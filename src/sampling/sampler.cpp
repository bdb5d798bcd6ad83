// The sampling distribution (HF warper order) and the seeded sampler. See sampler.h for the contract.
//
// Weights are computed in double as exp(logit/T - max/T), so the most likely id has weight exactly 1 and nothing
// overflows; probabilities are rounded to fp32 only at the end. Sorting is avoided unless a filter needs an order:
// top-k uses partial_sort (O(n log k) on a 150K vocabulary), top-p sorts only as far as its nucleus reaches, min-p
// needs no order.
#include "sampling/sampler.h"

#include "core/check.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace specattn {

namespace {

// An id that can still be drawn. weight is exp(logit/T - max/T), filled in once top-k has cut the list short.
struct candidate {
    int32_t id;
    float logit;
    double weight;
};

// Descending by logit; equal logits by lower id, so every filter that cuts a sorted list is deterministic.
// Ordering by the raw logit is ordering by logit/T: dividing by T > 0 in double keeps distinct floats distinct.
bool ranks_higher(const candidate & a, const candidate & b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

void check_vocab_size(int64_t n, const char * what) {
    SPECATTN_CHECK(n > 0 && n <= std::numeric_limits<int32_t>::max(), "%s: vocabulary size %lld is out of range", what,
                   static_cast<long long>(n));
}

} // namespace

void validate(const sampling_params & p) {
    SPECATTN_CHECK(std::isfinite(p.temperature) && p.temperature >= 0.0f,
                   "--temp must be a finite number >= 0 (0 is greedy), got %g", p.temperature);
    SPECATTN_CHECK(p.top_k >= 0, "--top-k must be >= 0 (0 turns it off), got %d", p.top_k);
    // Written so that NaN fails every range check.
    SPECATTN_CHECK(p.top_p > 0.0f && p.top_p <= 1.0f, "--top-p must be in (0, 1] (1 turns it off), got %g", p.top_p);
    SPECATTN_CHECK(p.min_p >= 0.0f && p.min_p <= 1.0f, "--min-p must be in [0, 1] (0 turns it off), got %g", p.min_p);
}

int32_t argmax(const float * logits, int64_t n) {
    check_vocab_size(n, "argmax");
    int64_t best = -1;
    for (int64_t i = 0; i < n; i++) {
        // Strictly greater keeps the lowest id among ties; comparisons with NaN are false, so NaN never wins.
        if (!std::isnan(logits[i]) && (best < 0 || logits[i] > logits[best])) {
            best = i;
        }
    }
    SPECATTN_CHECK(best >= 0, "argmax: all %lld logits are NaN", static_cast<long long>(n));
    return static_cast<int32_t>(best);
}

void sampling_probs(const float * logits, int64_t n, const sampling_params & p, std::vector<float> & probs) {
    validate(p);
    check_vocab_size(n, "sampling");
    probs.assign(static_cast<size_t>(n), 0.0f);
    if (is_greedy(p)) {
        probs[static_cast<size_t>(argmax(logits, n))] = 1.0f;
        return;
    }

    // Ids at -inf or NaN have probability zero whatever the filters do; leave them out from the start.
    std::vector<candidate> c;
    c.reserve(static_cast<size_t>(n));
    float logit_max = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; i++) {
        if (logits[i] > -std::numeric_limits<float>::infinity()) {
            c.push_back({static_cast<int32_t>(i), logits[i], 0.0});
            logit_max = std::max(logit_max, logits[i]);
        }
    }
    SPECATTN_CHECK(!c.empty(), "sampling: all %lld logits are -inf or NaN", static_cast<long long>(n));

    bool sorted = false;
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < c.size()) {
        std::partial_sort(c.begin(), c.begin() + p.top_k, c.end(), ranks_higher);
        c.resize(static_cast<size_t>(p.top_k));
        sorted = true;
    }

    // The comparison x == m gives the top id weight exactly 1 and, when the max logit is +inf, gives the +inf ids
    // weight 1 and the rest 0 instead of the NaN of inf - inf.
    const double t = p.temperature;
    const double m = logit_max / t;
    for (candidate & ci : c) {
        const double x = ci.logit / t;
        ci.weight = x == m ? 1.0 : std::exp(x - m);
    }

    if (p.top_p < 1.0f) {
        double total = 0.0;
        for (const candidate & ci : c) {
            total += ci.weight;
        }
        // Sort only as far as the nucleus reaches, in growing blocks: LLM distributions are peaked, so it is
        // usually a few hundred ids of a 150K vocabulary (a full sort costs ~10 ms there); a flat one sorts all.
        const double threshold = static_cast<double>(p.top_p) * total;
        size_t n_sorted = sorted ? c.size() : 0;
        double cum = 0.0;
        size_t n_keep = 0;
        while (n_keep < c.size()) {
            if (n_keep == n_sorted) {
                const size_t n_next = std::min(c.size(), std::max<size_t>(256, 4 * n_sorted));
                const auto first = c.begin() + static_cast<int64_t>(n_sorted);
                std::partial_sort(first, c.begin() + static_cast<int64_t>(n_next), c.end(), ranks_higher);
                n_sorted = n_next;
            }
            cum += c[n_keep].weight;
            n_keep++;
            if (cum >= threshold) {
                break;
            }
        }
        c.resize(n_keep);
    }

    if (p.min_p > 0.0f) {
        // prob_i >= min_p * prob_max is weight_i >= min_p, since the top id has weight 1; it always survives.
        const double min_p = p.min_p;
        std::erase_if(c, [min_p](const candidate & ci) { return ci.weight < min_p; });
    }

    double total = 0.0;
    for (const candidate & ci : c) {
        total += ci.weight;
    }
    for (const candidate & ci : c) {
        probs[static_cast<size_t>(ci.id)] = static_cast<float>(ci.weight / total);
    }
}

sampler::sampler(const sampling_params & p) : params_(p), rng_(p.seed) {
    validate(p);
}

int32_t sampler::sample(const float * logits, int64_t n) {
    if (is_greedy(params_)) {
        return argmax(logits, n);
    }
    sampling_probs(logits, n, params_, probs_);
    return sample_from(probs_);
}

namespace {

// The sum of a row sample_from may draw from; throws unless it is finite, >= 0 and not all zero.
double checked_total(const std::vector<float> & probs) {
    const int64_t n = static_cast<int64_t>(probs.size());
    check_vocab_size(n, "sample_from");
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        SPECATTN_CHECK(std::isfinite(probs[i]) && probs[i] >= 0.0f, "sample_from: probability of id %lld is %g",
                       static_cast<long long>(i), probs[i]);
        total += probs[i];
    }
    SPECATTN_CHECK(total > 0.0, "sample_from: all %lld probabilities are zero", static_cast<long long>(n));
    return total;
}

// The first id whose running sum exceeds target (in [0, total]).
int32_t inverse_cdf(const std::vector<float> & probs, double target) {
    double cum = 0.0;
    int64_t last = -1;
    for (size_t i = 0; i < probs.size(); i++) {
        if (probs[i] <= 0.0f) {
            continue;
        }
        cum += probs[i];
        last = static_cast<int64_t>(i);
        if (target < cum) {
            return static_cast<int32_t>(i);
        }
    }
    // u * total can round up to total; the last id with mass is then the answer, never a zero one.
    return static_cast<int32_t>(last);
}

} // namespace

int32_t sampler::sample_from(const std::vector<float> & probs) {
    const double total = checked_total(probs);
    // Drawn only after the checks, so a call that throws leaves the RNG where it was.
    return inverse_cdf(probs, uniform() * total);
}

int32_t draw_from(const std::vector<float> & probs, double u) {
    const double total = checked_total(probs);
    return inverse_cdf(probs, u * total);
}

namespace {

double to_uniform(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

} // namespace

double sampler::uniform() { return to_uniform(rng_()); }

std::vector<double> sampler::peek_uniforms(int64_t n) const {
    std::mt19937_64 ahead = rng_;
    std::vector<double> u;
    u.reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
    for (int64_t i = 0; i < n; ++i) {
        u.push_back(to_uniform(ahead()));
    }
    return u;
}

} // namespace specattn
