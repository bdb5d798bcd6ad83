#include "spec/spec_stats.h"

namespace specattn {

void spec_stats::reset(int64_t draft_len) {
    *this = spec_stats{};
    reached.assign(static_cast<size_t>(draft_len), 0);
    accepted_at.assign(static_cast<size_t>(draft_len), 0);
    histogram.assign(static_cast<size_t>(draft_len + 1), 0);
}

void spec_stats::record(int64_t n_drafts, int64_t n_accepted) {
    ++iterations;
    proposed += n_drafts;
    accepted += n_accepted;
    produced += n_accepted + 1;
    ++histogram[static_cast<size_t>(n_accepted)];
    // Draft i was tested iff all before it were accepted: i <= n_accepted (and i exists).
    for (int64_t i = 0; i < n_drafts && i <= n_accepted; ++i) {
        ++reached[static_cast<size_t>(i)];
        if (i < n_accepted) {
            ++accepted_at[static_cast<size_t>(i)];
        }
    }
}

double spec_stats::tau() const {
    return iterations > 0 ? static_cast<double>(produced) / static_cast<double>(iterations) : 0.0;
}

double spec_stats::acceptance_rate() const {
    return proposed > 0 ? static_cast<double>(accepted) / static_cast<double>(proposed) : 0.0;
}

std::vector<double> spec_stats::acceptance_by_position() const {
    std::vector<double> out(reached.size(), 0.0);
    for (size_t i = 0; i < reached.size(); ++i) {
        out[i] = reached[i] > 0 ? static_cast<double>(accepted_at[i]) / static_cast<double>(reached[i]) : 0.0;
    }
    return out;
}

} // namespace specattn
