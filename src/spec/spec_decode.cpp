#include "spec/spec_decode.h"

#include "spec/verify.h"
#include "core/timer.h"

#include <algorithm>
#include <chrono>

namespace specattn {

namespace {

// Per-sequence scratch of one iteration.
struct iteration_state {
    int64_t n = 0;                       // committed length: the pending token's position
    int64_t gamma = 0;                   // drafts this iteration
    std::vector<int32_t> drafts;         // [gamma]
    std::vector<std::vector<float>> q;   // [gamma][n_vocab] draft distributions (sampling only)
    int64_t out_offset = 0;              // first logit row of this sequence in the verify output
};

bool is_greedy(const sampler & s) { return is_greedy(s.params()); }

} // namespace

verify_view prefill_view(int32_t seq, int64_t last_row, int64_t n_prompt) {
    verify_view v;
    v.seq = seq;
    v.prefill = true;
    v.first_row = last_row;
    v.first_pos = n_prompt - 1;
    v.n_rows = 1;
    v.n_accepted = 0;
    v.domain = n_prompt;
    v.seqlen_k = n_prompt;
    return v;
}

namespace {

// The verification of sequence s: rows [pending, d1..dγ] at n..n+γ, the first at batch row first_row.
verify_view verification_view(const spec_sequence & s, const iteration_state & st, int64_t first_row) {
    verify_view v;
    v.seq = s.kv_seq;
    v.first_row = first_row;
    v.first_pos = st.n;
    v.n_rows = st.gamma + 1;
    v.domain = st.n + 1;
    v.seqlen_k = st.n + st.gamma + 1;
    return v;
}

} // namespace

void spec_decode(backend & be, kv_block_manager & kv, const model_hparams & hp, const spec_params & p,
                 std::vector<spec_sequence> & seqs, const emit_fn & emit, spec_stats & stats) {
    const int64_t n_vocab = hp.n_vocab;
    std::vector<iteration_state> it(seqs.size());
    forward_batch batch;
    std::vector<float> logits;
    std::vector<int32_t> ids;    // greedy or device-sampled passes: each logit row's token, picked by the backend
    std::vector<size_t> rows_of; // batch logit row -> sequence
    // Sampling on the backend (backend::samples_on_device): per logit row parameters, uniforms, held slots.
    std::vector<sampling_params> row_params;
    std::vector<double> uniforms;
    std::vector<int32_t> holds;
    std::vector<held_verification> held;
    std::vector<accept_outcome> outcomes;
    const auto hold_slot = [&](size_t i, int64_t j) { return static_cast<int32_t>(static_cast<int64_t>(i) * p.draft_len + j); };

    for (;;) {
        int64_t max_gamma = -1;
        for (size_t i = 0; i < seqs.size(); ++i) {
            spec_sequence & s = seqs[i];
            if (!s.running) {
                continue;
            }
            it[i].n = kv.length(s.kv_seq);
            // a + 1 <= gamma + 1 tokens come out: never more than the request may still produce.
            it[i].gamma = std::clamp<int64_t>(s.remaining - 1, 0, p.draft_len);
            it[i].drafts.clear();
            it[i].q.resize(static_cast<size_t>(it[i].gamma));
            max_gamma = std::max(max_gamma, it[i].gamma);
        }
        if (max_gamma < 0) {
            break;
        }
        // Drafts and their verification are sampled where the logits are when the backend can and every running
        // sequence samples both; otherwise greedy passes take argmax ids and sampled ones the host's draws.
        bool device_sampling = be.samples_on_device();
        for (const spec_sequence & s : seqs) {
            device_sampling = device_sampling && (!s.running || (!is_greedy(*s.draft) && !is_greedy(*s.target)));
        }

        // Draft: step j feeds the pending token (j = 0) or draft j-1 at position n + j.
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t j = 0; j < max_gamma; ++j) {
            batch.clear();
            rows_of.clear();
            for (size_t i = 0; i < seqs.size(); ++i) {
                spec_sequence & s = seqs[i];
                if (!s.running || j >= it[i].gamma) {
                    continue;
                }
                const int32_t tok = j == 0 ? s.pending : it[i].drafts[static_cast<size_t>(j - 1)];
                kv.append(s.kv_seq, 1);
                batch.add_sequence_rows(s.kv_seq, &tok, 1, it[i].n + j, true);
                batch.draft.push_back(s.selector->draft_view(it[i].n + j));
                rows_of.push_back(i);
            }
            const bool greedy = std::all_of(rows_of.begin(), rows_of.end(),
                                            [&](size_t i) { return is_greedy(*seqs[i].draft); });
            if (greedy) {
                be.forward_argmax(batch, kv, ids);
            } else if (device_sampling) {
                row_params.clear();
                uniforms.clear();
                holds.clear();
                for (size_t i : rows_of) { // one uniform per draft, as sampler::sample_from draws it
                    row_params.push_back(seqs[i].draft->params());
                    uniforms.push_back(seqs[i].draft->uniform());
                    holds.push_back(hold_slot(i, j));
                }
                be.forward_sample_held(batch, kv, row_params, uniforms, holds, ids);
            } else {
                be.forward(batch, kv, logits);
            }
            for (size_t r = 0; r < rows_of.size(); ++r) {
                spec_sequence & s = seqs[rows_of[r]];
                iteration_state & st = it[rows_of[r]];
                const float * row = greedy || device_sampling ? nullptr : logits.data() + static_cast<int64_t>(r) * n_vocab;
                if (greedy || device_sampling) {
                    st.drafts.push_back(ids[r]);
                } else if (is_greedy(*s.draft)) {
                    st.drafts.push_back(argmax(row, n_vocab));
                } else {
                    std::vector<float> & q = st.q[static_cast<size_t>(j)];
                    sampling_probs(row, n_vocab, s.draft->params(), q);
                    st.drafts.push_back(s.draft->sample_from(q));
                }
            }
        }
        stats.draft_s += seconds_since(t0);

        // Verify: rows [pending, d1..dγ] at n..n+γ, full attention, the score sinks each selector needs.
        t0 = std::chrono::steady_clock::now();
        batch.clear();
        bool greedy_targets = true;
        for (size_t i = 0; i < seqs.size(); ++i) {
            spec_sequence & s = seqs[i];
            if (!s.running) {
                continue;
            }
            iteration_state & st = it[i];
            kv.append(s.kv_seq, 1); // the drafts wrote gamma positions; the last draft's row needs one more
            std::vector<int32_t> toks = {s.pending};
            toks.insert(toks.end(), st.drafts.begin(), st.drafts.end());
            st.out_offset = static_cast<int64_t>(batch.logit_rows.size());
            const int64_t first_row = batch.n_rows();
            batch.add_sequence_rows(s.kv_seq, toks.data(), st.gamma + 1, st.n, false);
            for (int64_t r = 0; r <= st.gamma; ++r) {
                batch.logit_rows.push_back(static_cast<int32_t>(first_row + r));
            }
            s.selector->add_sinks(verification_view(s, st, first_row), batch);
            greedy_targets = greedy_targets && is_greedy(*s.target);
        }
        if (greedy_targets) {
            be.forward_argmax(batch, kv, ids);
        } else if (device_sampling) {
            // Uniforms for every test the acceptance may make, drawn from a copy of each target sampler; the
            // sampler itself advances by as many as the rule used (below), so its stream is the host path's.
            row_params.clear();
            held.clear();
            for (size_t i = 0; i < seqs.size(); ++i) {
                const spec_sequence & s = seqs[i];
                if (!s.running) {
                    continue;
                }
                const iteration_state & st = it[i];
                row_params.insert(row_params.end(), static_cast<size_t>(st.gamma + 1), s.target->params());
                held_verification v;
                v.first_out = st.out_offset;
                v.first_hold = hold_slot(i, 0);
                v.drafts = st.drafts;
                v.uniforms = s.target->peek_uniforms(st.gamma + 1);
                held.push_back(std::move(v));
            }
            be.forward_accept(batch, kv, row_params, held, outcomes);
        } else {
            be.forward(batch, kv, logits);
        }
        stats.verify_s += seconds_since(t0);

        // Accept, emit, roll back, select.
        std::vector<std::vector<float>> target_probs;
        size_t n_verified = 0;
        for (size_t i = 0; i < seqs.size(); ++i) {
            spec_sequence & s = seqs[i];
            if (!s.running) {
                continue;
            }
            iteration_state & st = it[i];
            const float * rows = greedy_targets || device_sampling ? nullptr : logits.data() + st.out_offset * n_vocab;
            accept_result acc;
            if (greedy_targets) {
                acc = accept_greedy_ids(st.drafts, ids.data() + st.out_offset);
            } else if (device_sampling) {
                const accept_outcome & o = outcomes[n_verified++];
                acc.n_accepted = o.n_accepted;
                acc.next = o.next;
                // accept_sampled draws a test per accepted draft, then the failed test and the residual, or the bonus.
                const int64_t used = acc.n_accepted < st.gamma ? acc.n_accepted + 2 : st.gamma + 1;
                for (int64_t k = 0; k < used; ++k) {
                    s.target->uniform();
                }
            } else if (is_greedy(*s.target)) {
                acc = accept_greedy(st.drafts, rows, n_vocab);
            } else {
                target_probs.resize(static_cast<size_t>(st.gamma + 1));
                for (int64_t r = 0; r <= st.gamma; ++r) {
                    sampling_probs(rows + r * n_vocab, n_vocab, s.target->params(), target_probs[static_cast<size_t>(r)]);
                }
                acc = accept_sampled(st.drafts, target_probs, st.q, *s.target);
            }
            stats.record(st.gamma, acc.n_accepted);

            // The pending token and the a accepted drafts now have exact K/V; the rest is rolled back.
            kv.truncate(s.kv_seq, st.n + acc.n_accepted + 1);
            for (int64_t k = 0; k <= acc.n_accepted && s.running; ++k) {
                const int32_t tok = k < acc.n_accepted ? st.drafts[static_cast<size_t>(k)] : acc.next;
                --s.remaining;
                s.running = emit(i, tok);
            }
            s.pending = acc.next;
            if (!s.running) {
                continue;
            }

            const auto t1 = std::chrono::steady_clock::now();
            verify_view v = verification_view(s, st, 0);
            v.n_accepted = acc.n_accepted;
            s.selector->update(v, be);
            stats.select_s += seconds_since(t1);
        }
    }
}

} // namespace specattn
