// The backend-neutral selection math declared in backend/selection.h (lives here, like batch.cpp, because every
// backend links specattn_kv).
#include "backend/selection.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace specattn {

std::vector<int64_t> top_k_positions(const float * score, int64_t n, int64_t k) {
    k = std::clamp<int64_t>(k, 0, n);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    // Higher score first; equal scores (and -inf) by lower position, so the result is deterministic.
    auto better = [score](int64_t a, int64_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); };
    std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
    idx.resize(static_cast<size_t>(k));
    std::sort(idx.begin(), idx.end());
    return idx;
}

float quest_block_bound(const float * q, int64_t group, int64_t head_dim, const float * kmin, const float * kmax) {
    float best = -std::numeric_limits<float>::infinity();
    for (int64_t g = 0; g < group; ++g) {
        const float * qg = q + g * head_dim;
        float s = 0.0f;
        for (int64_t c = 0; c < head_dim; ++c) {
            s += std::max(qg[c] * kmin[c], qg[c] * kmax[c]);
        }
        best = std::max(best, s);
    }
    return best;
}

} // namespace specattn
