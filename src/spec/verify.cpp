#include "spec/verify.h"

#include <algorithm>

namespace specattn {

accept_result accept_greedy(const std::vector<int32_t> & drafts, const float * target_logits, int64_t n_vocab) {
    std::vector<int32_t> ids(drafts.size() + 1);
    for (size_t i = 0; i < ids.size(); ++i) {
        ids[i] = argmax(target_logits + static_cast<int64_t>(i) * n_vocab, n_vocab);
    }
    return accept_greedy_ids(drafts, ids.data());
}

accept_result accept_greedy_ids(const std::vector<int32_t> & drafts, const int32_t * target_ids) {
    accept_result r;
    const auto n = static_cast<int64_t>(drafts.size());
    while (r.n_accepted < n && drafts[static_cast<size_t>(r.n_accepted)] == target_ids[r.n_accepted]) {
        ++r.n_accepted;
    }
    r.next = target_ids[r.n_accepted];
    return r;
}

accept_result accept_sampled(const std::vector<int32_t> & drafts, const std::vector<std::vector<float>> & p,
                             const std::vector<std::vector<float>> & q, sampler & rng) {
    return accept_sampled(drafts, p, q, [&rng] { return rng.uniform(); });
}

accept_result accept_sampled(const std::vector<int32_t> & drafts, const std::vector<std::vector<float>> & p,
                             const std::vector<std::vector<float>> & q, const std::function<double()> & uniform) {
    accept_result r;
    const auto n = static_cast<int64_t>(drafts.size());
    while (r.n_accepted < n) {
        const auto i = static_cast<size_t>(r.n_accepted);
        const auto d = static_cast<size_t>(drafts[i]);
        const double pd = p[i][d];
        const double qd = q[i][d];
        // u < p/q, written without dividing: q(d) > 0 because d was drawn from q.
        if (uniform() * qd < pd) {
            ++r.n_accepted;
            continue;
        }
        std::vector<float> residual(p[i].size());
        double mass = 0.0;
        for (size_t t = 0; t < residual.size(); ++t) {
            residual[t] = std::max(0.0f, p[i][t] - q[i][t]);
            mass += residual[t];
        }
        // unnormalized is fine: sample_from scales by the sum. A rejection with no residual mass can only come from
        // fp32 rounding of p ≈ q; p itself is then the right distribution.
        r.next = draw_from(mass > 0.0 ? residual : p[i], uniform());
        return r;
    }
    r.next = draw_from(p[static_cast<size_t>(n)], uniform());
    return r;
}

} // namespace specattn
