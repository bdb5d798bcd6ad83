// Draft KV selectors: one interface, a closed set of implementations (spec/selectors/, one file each).
// A selector is the policy; the backend holds the state (backend/selection.h). Per sequence, a selector says
//   - where each draft row attends (draft_view: the held list's length and the recent window, or quest),
//   - which score sinks a verification (or the prefill's last row) fills (add_sinks),
//   - what to hold next, after a verification (update: a top k of a sink, or a fixed list).
// So a selection is computed where the attention runs and never crosses to the host.
#pragma once

#include "backend/backend.h"
#include "model/hparams.h"
#include "spec/spec_params.h"

#include <memory>
#include <vector>

namespace specattn {

// A verification, or the prefill's last row, as a selector sees it.
struct verify_view {
    int32_t seq = -1;       // kv_block_manager sequence
    bool prefill = false;
    int64_t first_row = 0;  // batch row of the pending token (verify) or of the last prompt token (prefill)
    int64_t first_pos = 0;  // its position
    int64_t n_rows = 0;     // γ_eff + 1 for a verification, 1 after prefill
    int64_t n_accepted = 0; // a: drafts accepted (0 after prefill; set only for update)
    int64_t domain = 0;     // v: the selection covers positions [0, v); drafts also see every position >= v
    int64_t seqlen_k = 0;   // KV entries including the verify rows
};

class draft_selector {
  public:
    virtual ~draft_selector() = default;
    virtual spec_method method() const = 0;
    // Where the draft row at position pos attends.
    virtual draft_attention draft_view(int64_t pos) const = 0;
    // Appends the score sinks the verification (or prefill row) v must fill to its batch; none by default.
    virtual void add_sinks(const verify_view & v, forward_batch & batch) const;
    // Chooses what the next drafts read, after prefill and after every verification.
    virtual void update(const verify_view & v, backend & be) = 0;
};

std::unique_ptr<draft_selector> make_selector(const spec_params & p, const model_hparams & hp, int64_t n_ctx);

// ---- shared by the selector implementations -------------------------------------------------------------------

// Selectors that hold a top-k list per layer (or per KV head) chosen from a score sink, plus the recent window
// [domain, pos]: specattn, specextend, pillar.
class top_k_selector : public draft_selector {
  public:
    top_k_selector(const spec_params & p, int64_t n_ctx) : p_(p), n_ctx_(n_ctx) {}
    draft_attention draft_view(int64_t pos) const override;

  protected:
    // One sink of v's sequence summing `rows` (offsets from v.first_row) over the domain.
    void add_sink(const verify_view & v, forward_batch & batch, int32_t id, std::vector<int64_t> rows,
                  score_mode mode, bool per_kv_head) const;
    // Holds the top k of sink `id` with the budget of v, and makes v.domain the start of the recent window.
    void hold_top_k(const verify_view & v, backend & be, int32_t id);

    spec_params p_;
    int64_t n_ctx_;
    int64_t n_list_ = 0;
    int64_t recent_from_ = 0;
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
