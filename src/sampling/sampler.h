// Token sampling: the parameters a request carries, the one definition of the distribution a token is drawn from,
// and a seeded sampler that draws from it.
//
// The distribution follows HF transformers' warpers in the order it applies them: temperature → top-k → top-p →
// min-p → renormalize. Speculative decoding reuses sampling_probs for both the draft and the target distribution
// and sampler::uniform for its acceptance test, so there is exactly one definition of "the distribution" in the
// engine; do not re-implement it elsewhere.
//
// Logits are one row over the vocabulary: [n] fp32. A NaN logit is treated as -inf: it is never the argmax and is
// never drawn. Results are reproducible across standard libraries: std::mt19937_64 is fully specified by the
// standard and uniforms are built from its raw bits here, not by std::uniform_real_distribution.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace specattn {

struct sampling_params {
    float temperature = 0.0f; // <= 0: greedy (argmax)
    int32_t top_k = 0;        // 0: off
    float top_p = 1.0f;       // 1: off
    float min_p = 0.0f;       // 0: off
    uint64_t seed = 0;
};

// Greedy decoding: the argmax, no random draw (temperature <= 0).
inline bool is_greedy(const sampling_params & p) { return p.temperature <= 0.0f; }

// Throws specattn::error naming the command-line flag (--temp, --top-k, --top-p, --min-p) of a bad value.
void validate(const sampling_params & p);

// The id of the largest logit; ties go to the lowest id, NaN never wins. Throws if n <= 0 or every logit is NaN.
int32_t argmax(const float * logits, int64_t n); // logits: [n]

// The exact distribution sample() draws from, written to probs: [n], zeros for filtered ids, summing to 1 up to
// fp32 rounding. Greedy (temperature <= 0) gives a one-hot at argmax. Filters, in HF's order:
//   temperature  logits / T
//   top-k        keep the k largest; equal logits at the boundary are kept by lower id, so exactly k survive
//   top-p        sorted descending, keep the smallest prefix whose probability (after top-k) is >= top_p
//   min-p        keep ids whose probability is >= min_p × the largest probability
// Throws on bad parameters, n <= 0, or when every logit is -inf or NaN.
void sampling_probs(const float * logits, int64_t n, const sampling_params & p, std::vector<float> & probs);

// sampler::sample_from's draw with the uniform u in [0, 1) given (the draw a backend makes on the device, with the
// uniform the sequence's sampler drew on the host). Same checks.
int32_t draw_from(const std::vector<float> & probs, double u);

class sampler {
  public:
    // Validates p (throws specattn::error) and seeds the RNG with p.seed.
    explicit sampler(const sampling_params & p);

    // Greedy: argmax, without touching the RNG. Otherwise sampling_probs, then sample_from (one uniform).
    int32_t sample(const float * logits, int64_t n); // logits: [n]

    // Inverse CDF with one uniform. probs need not sum to 1 (a residual max(0, p - q) can be passed as it is), but
    // must be finite, >= 0 and not all zero. Never returns an id whose probability is zero.
    int32_t sample_from(const std::vector<float> & probs);

    // A uniform double in [0, 1) from the top 53 bits of one mt19937_64 output.
    double uniform();
    // The next n uniforms, without drawing them (a copy of the generator does): a backend that runs the acceptance
    // rule gets every uniform it may use, and the caller then draws as many as the rule used.
    std::vector<double> peek_uniforms(int64_t n) const;

    const sampling_params & params() const { return params_; }

  private:
    sampling_params params_;
    std::mt19937_64 rng_;
    std::vector<float> probs_; // scratch for sample(), reused so a decode step does not allocate
};

} // namespace specattn
