// Draft KV selectors: one interface, a closed set of implementations (spec/selectors/, one file each).
// A selector decides which cached positions each draft row attends to (kv_position_source), and may learn from
// the attention of verification rows (update). One selector instance belongs to one sequence.
#pragma once

#include "backend/backend.h"
#include "model/hparams.h"
#include "spec/spec_params.h"

#include <memory>
#include <vector>

namespace specattn {

// Which verify rows a selector needs captured (see attention_capture).
enum class capture_rows : int32_t {
    capture_rows_none,       // streaming, quest, dense: nothing learned from verification
    capture_rows_first_last, // specattn: Collect-2-Query
    capture_rows_all,        // specextend (row a is known only after acceptance), pillar (all rows)
};

// What a selector sees of one verification, or of the prefill's last row.
struct verify_view {
    bool prefill = false;
    int64_t first_pos = 0;  // position of row 0: the pending token (verify) or the last prompt token (prefill)
    int64_t n_rows = 0;     // γ_eff + 1 for a verification, 1 after prefill
    int64_t n_accepted = 0; // a: drafts accepted (0 after prefill)
    int64_t domain = 0;     // v: the selection covers positions [0, v); drafts also see every position >= v
    int64_t seqlen_k = 0;   // KV entries including the verify rows
    std::vector<const attention_capture *> rows; // [n_rows]; nullptr where not captured
};

class draft_selector : public kv_position_source {
  public:
    virtual spec_method method() const = 0;
    virtual capture_rows needs() const = 0;
    // Chooses what the next drafts read, after prefill and after every verification.
    virtual void update(const verify_view & v) = 0;
};

std::unique_ptr<draft_selector> make_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx);

// ---- shared by the selector implementations -------------------------------------------------------------------

// The k highest scores of score[0, n), ties to the lower position, returned in ascending position order.
std::vector<int64_t> top_k_positions(const float * score, int64_t n, int64_t k);

// Adds Σ over heads [h0, h1) of f(head, p) for p in [0, n) to acc, f being the capture's scaled logit (logit mode)
// or softmax weight (weight mode).  acc: [n]
void accumulate_scores(const attention_capture & cap, const model_hparams & hp, int64_t layer, int64_t h0, int64_t h1,
                       score_mode mode, int64_t n, float * acc);

// A selection held as position lists per (layer, KV head) plus the recent window [recent_from, pos]; the common
// state of specattn, specextend, pillar and dense. Head-shared selections store one list per layer.
class list_selector : public draft_selector {
  public:
    list_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx, bool per_kv_head);
    void positions(const attention_query & q, std::vector<int64_t> & out) const override;

  protected:
    // For every layer (and KV head, if per_kv_head), sums f over the rows and the query heads (of that KV head's
    // group), keeps the top k positions of [0, domain) and makes domain the start of the recent window.
    // The mean over rows and heads is a constant factor and does not change the top k, so it is not formed.
    void select_top_k(const std::vector<const attention_capture *> & rows, score_mode mode, int64_t domain, int64_t k);
    std::vector<int64_t> & list(int64_t layer, int64_t kv_head);
    // The budget k for a verification.
    int64_t budget(const verify_view & v) const { return spec_budget(p_, n_ctx_, v.seqlen_k, v.domain); }

    spec_params p_;
    int64_t n_ctx_;
    const model_hparams & hp_;
    bool per_kv_head_;
    int64_t recent_from_ = 0;
    std::vector<std::vector<int64_t>> lists_; // [n_layer * (per_kv_head ? n_head_kv : 1)], each sorted, < recent_from
};

std::unique_ptr<draft_selector> make_dense_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx);
std::unique_ptr<draft_selector> make_streaming_selector(const spec_params & p, const model_hparams & hp,
                                                        int64_t n_ctx);
std::unique_ptr<draft_selector> make_quest_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx);
std::unique_ptr<draft_selector> make_specextend_selector(const spec_params & p, const model_hparams & hp,
                                                         int64_t n_ctx);
std::unique_ptr<draft_selector> make_pillar_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx);
std::unique_ptr<draft_selector> make_specattn_selector(const spec_params & p, const model_hparams & hp,
                                                       int64_t n_ctx);

} // namespace specattn
