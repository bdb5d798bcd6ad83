// forward_batch helpers (declared in backend/backend.h; lives here because every backend links specattn_kv).
#include "backend/backend.h"

namespace specattn {

void forward_batch::add_sequence_rows(int32_t seq, const int32_t * toks, int64_t n, int64_t start, bool last_logits) {
    for (int64_t i = 0; i < n; ++i) {
        tokens.push_back(toks[i]);
        seq_ids.push_back(seq);
        positions.push_back(start + i);
    }
    if (last_logits && n > 0) {
        logit_rows.push_back(static_cast<int32_t>(tokens.size() - 1));
    }
}

} // namespace specattn
