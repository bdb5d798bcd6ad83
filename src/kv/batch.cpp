// forward_batch helpers and the backend's default methods (declared in backend/backend.h; they live here because
// every backend links specattn_kv).
#include "backend/backend.h"

#include "core/check.h"

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

void forward_batch::check_sinks() const {
    for (const score_sink & s : sinks) {
        SPECATTN_CHECK(s.domain >= 0 && !s.rows.empty(), "score sink %d of sequence %d is empty", s.id, s.seq);
        for (int32_t r : s.rows) {
            SPECATTN_CHECK(r >= 0 && r < n_rows() && seq_ids[static_cast<size_t>(r)] == s.seq && draft_of(r) == nullptr &&
                               s.domain <= positions[static_cast<size_t>(r)] + 1,
                           "score sink %d of sequence %d names row %d, which is not a dense row of it covering "
                           "the domain", s.id, s.seq, r);
        }
    }
}

void backend::check_sampling_rows(const forward_batch & batch, const std::vector<sampling_params> & params,
                                  const std::vector<double> * uniforms) {
    const size_t n_out = batch.logit_rows.size();
    SPECATTN_CHECK(params.size() == n_out && (uniforms == nullptr || uniforms->size() == n_out),
                   "%zu sampling configurations and %zu uniforms for %zu logit rows", params.size(),
                   uniforms != nullptr ? uniforms->size() : n_out, n_out);
    for (const sampling_params & p : params) {
        validate(p);
    }
}

void backend::forward_argmax(const forward_batch & batch, const kv_block_manager & kv, std::vector<int32_t> & ids) {
    std::vector<float> logits;
    forward(batch, kv, logits);
    const size_t n_out = batch.logit_rows.size();
    ids.resize(n_out);
    if (n_out == 0) {
        return;
    }
    const int64_t n_vocab = static_cast<int64_t>(logits.size() / n_out);
    for (size_t j = 0; j < n_out; ++j) {
        ids[j] = argmax(logits.data() + static_cast<int64_t>(j) * n_vocab, n_vocab);
    }
}

void backend::forward_sample(const forward_batch & batch, const kv_block_manager & kv,
                             const std::vector<sampling_params> & params, const std::vector<double> & uniforms,
                             std::vector<int32_t> & ids) {
    check_sampling_rows(batch, params, &uniforms);
    const size_t n_out = batch.logit_rows.size();
    std::vector<float> logits;
    forward(batch, kv, logits);
    ids.resize(n_out);
    if (n_out == 0) {
        return;
    }
    const int64_t n_vocab = static_cast<int64_t>(logits.size() / n_out);
    std::vector<float> probs;
    for (size_t j = 0; j < n_out; ++j) {
        const float * row = logits.data() + static_cast<int64_t>(j) * n_vocab;
        if (is_greedy(params[j])) {
            ids[j] = argmax(row, n_vocab);
        } else {
            sampling_probs(row, n_vocab, params[j], probs);
            ids[j] = draw_from(probs, uniforms[j]);
        }
    }
}

void backend::forward_sample_held(const forward_batch &, const kv_block_manager &, const std::vector<sampling_params> &,
                                  const std::vector<double> &, const std::vector<int32_t> &, std::vector<int32_t> &) {
    throw error(string_format("the %s backend does not hold draft distributions; sample on the host", name()));
}

void backend::forward_accept(const forward_batch &, const kv_block_manager &, const std::vector<sampling_params> &,
                             const std::vector<held_verification> &, std::vector<accept_outcome> &) {
    throw error(string_format("the %s backend does not verify drafts where it samples; verify on the host", name()));
}

} // namespace specattn
