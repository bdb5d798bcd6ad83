// Statistics of speculative decoding, with the definitions of ../shared/reference/specattn.md §2:
//   tau                     tokens produced per iteration, the bonus or corrected token included (1 ≤ τ ≤ γ+1)
//   acceptance_rate         accepted drafts / proposed drafts
//   acceptance_by_position  P(draft i accepted | drafts before it accepted)
//   accepted_histogram      iterations that accepted 0, 1, ..., γ drafts
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specattn {

struct spec_stats {
    int64_t iterations = 0;
    int64_t proposed = 0;             // drafts proposed
    int64_t accepted = 0;             // drafts accepted
    int64_t produced = 0;             // tokens the iterations produced (a + 1 each)
    std::vector<int64_t> reached;     // [γ] iterations whose draft i was tested (all before it accepted)
    std::vector<int64_t> accepted_at; // [γ] ... and accepted
    std::vector<int64_t> histogram;   // [γ + 1]
    double draft_s = 0.0;
    double verify_s = 0.0;
    double select_s = 0.0;

    void reset(int64_t draft_len);
    // One iteration that proposed n_drafts and accepted n_accepted of them.
    void record(int64_t n_drafts, int64_t n_accepted);
    double tau() const;
    double acceptance_rate() const;
    std::vector<double> acceptance_by_position() const;
};

} // namespace specattn
