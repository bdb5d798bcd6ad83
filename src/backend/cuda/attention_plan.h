// The host-side plan of the paged attention kernel (kernels/attention.cuh) for one forward batch: segments of
// consecutive rows of a sequence, their page lists, and the work list of CTAs (row tiles × KV heads × KV chunks)
// with the partial-output slots of split tiles. It depends on the batch only, so one plan serves every layer.
// Plain C++ on vectors: the backend packs it into its per-forward metadata upload; tests build it the same way.
#pragma once

#include "kernels/kernel_params.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace specattn {

// One row as the plan sees it: its sequence's page list, its position, and how it attends.
struct attention_plan_row {
    const std::vector<int32_t> * pages = nullptr; // the sequence's physical pages (kv_block_manager::pages)
    int32_t seq = 0;
    int64_t pos = 0;
    int32_t sel = -1;       // sparse draft row: selection slot of its position lists; -1: dense causal
    int64_t sel_n = 0;      // sparse: list entries used (<= sel_cap)
    int64_t sel_recent = 0; // sparse: first position of the dense recent range [sel_recent, pos]; <= pos
    bool collect = false;   // dense rows only: write the row's scaled logits and LSE (Collect-2-Query)
    // Dense rows only, instead of collect: the row's scaled logits are summed over query heads into partial rows
    // (attention_params::sum_partial) shared by the rows of the same target; plan.sum_slots[target] lists them.
    // A target's rows must be consecutive rows of the batch, and other rows between them sum into no other target.
    int32_t sum_target = -1;
};

struct attention_plan_config {
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t page_size = 0;
    int64_t sliding_window = 0;
    int64_t n_sm = 132;        // multiprocessors to fill
    int64_t ctas_per_sm = 2;   // resident CTAs per multiprocessor (shared memory bound at head dim 128)
    int64_t min_chunk = 256;   // positions: never split KV finer than this
    int64_t slot_capacity = 0; // partial slots the caller's workspace holds
    int64_t sel_cap = 0;       // entries per selection list (attention_params::sel_cap); 0: no sparse rows
    // Batch invariance (forward_batch::prefill): every row is computed the same whatever else is in the batch.
    // Tiles run one kernel whose per-vector arithmetic does not depend on the tile: with split_d attention_dsplit.cuh,
    // tiles of up to attention_tile_queries vectors (a G = 4 verify of up to 15 rows and its sum vector reads its KV
    // once); else attention.cuh with every warp taking all of a tile's vectors, 4 warps along KV, tiles of up to
    // attention_invariant_tile_queries (a G = 4 verify of up to 8 rows in one tile). A dense row's
    // KV is split at multiples of its chunk (invariant_chunk, or its position's: invariant_splits) from position 0,
    // never by the grid's size; split rows of a tile whose own range ends earlier get empty chunks, which the combine
    // weighs exactly 0. Draft rows (sparse lists) are split like a heuristic plan's: nothing compares their bits. The
    // partial slots may then exceed slot_capacity: the caller grows its workspace to plan.n_slots.
    bool invariant = false;
    // KV positions per chunk of an invariant plan (a multiple of attention_kv_block), when invariant_splits is 0.
    int64_t invariant_chunk = 512;
    // > 0: the chunk of a dense row at position p is attention_invariant_chunk_at(p, invariant_splits) instead, a
    // function of the row's own position, so still the same in every pass; tiles are cut where it changes. A
    // backend sets it from its decode batch (attention_invariant_splits_for): a short sequence in an engine sized
    // for long ones is then split as finely as a long one, not into the few chunks a capacity-sized chunk gives it.
    int64_t invariant_splits = 0;
    // Invariant plans whose tiles all hold at most 16 query vectors (decode passes at G <= 16) launch the one-tile
    // warp shape (MPW = 1, Q in registers) instead of MPW = 2. With one row tile both shapes give each warp the same
    // KV chunks and merge order, so the bits should not change (tests/ops/test_cuda_invariance.cpp checks a row
    // alone against the same row in a verification). On the H200 (2026-11-29, scripts/gpu_session.sh mpw1) it took
    // invariant decode attention at 64 x 32K from 76.7% to 86.9% of the copy bandwidth and Llama-8B decoding at 4K
    // x 64 from 4,024 to 4,291 tok/s. The backends turn it on unless SPECATTN_ATTN_DECODE_MPW1=0
    // (attention_decode_mpw1_from_env); the plan's default stays the plain shape.
    bool single_tile_mpw1 = false;
    // Plans whose tiles all hold at most 32 query vectors (decode, draft, verify), and invariant plans with tiles of
    // up to 64, run the split-D kernel (attention_dsplit.cuh); invariant plans must then use it for every pass that
    // compares bits. The backends turn it on unless SPECATTN_ATTN_SPLIT_D=0 (attention_split_d_from_env).
    bool split_d = false;
    // Split-D launches of at least this many row tiles (4: tiles of 33-64 query vectors, 2: also those of 17-32; 0:
    // none) with head dim 128 and no sum vector run attention_wg.cuh's warpgroup kernel instead, where the build and
    // the GPU have it (sm_90a code, compute capability 9.0; the launcher checks). Same bits per vector. On the H100
    // (2026-12-07, session 22) it took verify9 / verify16 at 1 x 128K from 77% / 70% to 89% / 88% of the copy
    // bandwidth, at 8 x 32K from 82% / 73% to 96% / 94%. The backends set it from SPECATTN_ATTN_WGMMA
    // (attention_wgmma_from_env).
    int64_t wgmma_row_tiles = 0;
    int64_t collect_cap = 0; // positions per collected logit row; 0: no collection
    int64_t sum_cap = 0;     // positions per partial row of summed rows (even, >= the KV range of their tiles)
};

// attention_plan_config::single_tile_mpw1 for a backend: on unless SPECATTN_ATTN_DECODE_MPW1=0.
bool attention_decode_mpw1_from_env();
// attention_plan_config::split_d for a backend: on unless SPECATTN_ATTN_SPLIT_D=0.
bool attention_split_d_from_env();
// attention_plan_config::wgmma_row_tiles for a backend: 4 unless SPECATTN_ATTN_WGMMA is 0 (off) or 2.
int64_t attention_wgmma_from_env();

// Whether `rows` consecutive rows of G query heads and their sum vector fit one split-D tile of two row tiles (32
// query vectors). A backend sums a logit sink's rows in the kernel only then: four row tiles made a summed
// 33-vector verify 1.55x plain verify8 on the H100 (2026-12-06), a cut into two tiles reads the KV twice (1.84x),
// and the per-head logit rows of the collect path cost far less.
constexpr bool attention_sum_vector_fits(int64_t group, int64_t rows) {
    return group * rows + 1 <= 32;
}

// The smallest invariant chunk (the default).
constexpr int64_t attention_invariant_chunk = 512;

// A CTA's cost beyond its KV blocks, in block-times: the pipeline's fill and drain and its share of the combine.
// Fitted to verify attention at 63, 128 and 512 blocks per CTA on the H200 (docs/performance.md, session 13: 3.4).
constexpr int64_t attention_cta_fixed_blocks = 4;

// KV splits of each of `units` equal work units (a tile · KV head) of `blocks` KV blocks, at most max_splits, for a
// grid of `wave` resident CTAs: the s of least modelled time ceil(units s / wave) (ceil(blocks / s) +
// attention_cta_fixed_blocks), the fewest among equals. A few units fill one wave (8: 33 splits, 264 CTAs on the
// H200's 264 slots); units that leave a wave's slots idle take several waves (192: 4 splits, 768 CTAs, 2.9 waves,
// where 192 unsplit CTAs used 73% of one); a wave or more of units stays unsplit unless splitting evens the waves.
int64_t attention_splits_for(int64_t units, int64_t blocks, int64_t wave, int64_t max_splits);

// Invariant KV splits of a backend decoding decode_rows rows of up to ctx positions:
// attention_splits_for(decode_rows · n_head_kv, ctx / 64 blocks, n_sm · ctas_per_sm); a row at position p then takes
// chunks of attention_invariant_chunk_at(p, splits) = ceil((p + 1) / splits) positions in whole KV blocks, at least
// 128. What the heuristic plan does for a uniform batch, as a function of the row alone. At 128K context
// (kernel_bench, H200, 2026-11-29) the rule before session 10, two waves of power-of-two chunks sized by the
// engine's capacity, read KV at 69% (decode) and 52% (verify) of the copy bandwidth at batch 1 against the one-wave
// heuristic's 86% and 68%, and 91% / 76% against 97% / 79% at batch 8.
int64_t attention_invariant_splits_for(int64_t decode_rows, int64_t n_head_kv, int64_t ctx, int64_t n_sm,
                                       int64_t ctas_per_sm);
int64_t attention_invariant_chunk_at(int64_t pos, int64_t splits);
// The chunk of a full-context row (position ctx - 1) of a backend decoding decode_rows sequences.
int64_t attention_invariant_chunk_for(int64_t decode_rows, int64_t n_head_kv, int64_t ctx, int64_t n_sm,
                                      int64_t ctas_per_sm);

// The backend uploads segments and work items as int32 words.
static_assert(sizeof(attention_segment) % sizeof(int32_t) == 0 && sizeof(attention_work) % sizeof(int32_t) == 0);

struct attention_plan {
    std::vector<attention_segment> segs;
    std::vector<int32_t> page_table;
    std::vector<attention_work> work;
    std::vector<int32_t> row_slot;    // [n_rows]
    std::vector<int32_t> row_n_split; // [n_rows]
    int64_t n_slots = 0;
    int64_t n_collect = 0;   // collected rows: collect_logits / collect_lse hold this many rows, in row order
    int64_t n_sum_slots = 0; // partial rows of summed rows (attention_params::sum_partial)
    // [target]: (first slot, slots) of the summed rows of attention_plan_row::sum_target (0 slots: none).
    std::vector<std::pair<int32_t, int32_t>> sum_slots;
    // attention.cuh's warp shape (attention_params::mtiles_per_warp; without split_d): 2 for invariant plans (a row's
    // bits are the same in either shape; single_tile_mpw1 gives decode-only ones 1) and for heuristic plans whose
    // largest tile holds 17-32 query vectors, else 1.
    int64_t mtiles_per_warp = 1;
    // attention_params::split_d_row_tiles: with attention_plan_config::split_d, the largest tile's vectors / 16
    // rounded up to 1, 2 or 4 (4 only in invariant plans), else 0.
    int64_t split_d_row_tiles = 0;
};

// Builds the plan. Rows of one sequence must be consecutive with consecutive positions inside each segment
// (a new segment starts where the sequence, the position run or the row's sparse selection changes). Throws
// specattn::error when a size does not fit the kernel's int32 fields or the config's capacities.
void attention_plan_build(const std::vector<attention_plan_row> & rows, const attention_plan_config & cfg,
                          attention_plan & plan);

// Bytes of a plan's side rows: Collect-2-Query's logit rows (bf16, collect_cap per collected row and query head) and
// summed partial rows (fp32, sum_cap per slot and KV head).
int64_t attention_side_row_bytes(const attention_plan & plan, int64_t n_head, int64_t n_head_kv, int64_t collect_cap,
                                 int64_t sum_cap);
// Whether a pass whose side rows take row_bytes should keep them in L2 for the score reduce: KV copies evict-first
// (attention_params::stream_kv) and the reduce dropping the rows once read (score_reduce_params::discard), so they
// need not reach HBM. Only where they take at most half the L2: on the H100 (2026-12-06) a G = 4 verify of 7 rows
// with the weight-mode reduce at 1 x 128K (17 MB of rows) went from 224.5 to 212.1 us and with the logit-mode sums
// from 209.6 to 202.1, while at 8 x 128K (134 MB, no fit) KV copies evict-first slowed plain verify by 1.6%.
// SPECATTN_COLLECT_IN_L2=0 turns it off.
bool attention_side_rows_in_l2(int64_t row_bytes, int64_t l2_bytes);

// Device addresses of the plan's arrays, however the caller uploaded them.
struct attention_plan_device {
    const int32_t * page_table = nullptr;
    const attention_segment * segs = nullptr;
    const attention_work * work = nullptr;
    const int32_t * row_slot = nullptr;
    const int32_t * row_n_split = nullptr;
};

// The part of attention_params that follows from a plan and its config (counts, metadata, shape, capacities). The
// caller adds the tensors (q, pools, out), the partial workspaces, head_dim and scale, and for sparse or collected
// rows sel_pos / layer / n_layer and collect_logits / collect_lse.
attention_params attention_params_from_plan(const attention_plan & plan, const attention_plan_config & cfg,
                                            const attention_plan_device & dev);

} // namespace specattn
