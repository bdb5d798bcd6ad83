// The POD parameter structs of every CUDA kernel in src/kernels/*.cuh. Kept apart from the kernels so host code
// (launchers in src/backend/cuda/, tests in tests/ops/, benchmarks) can fill them without nvcc. No engine headers:
// kernels see raw pointers, counts and the paged KV layout of paged_kv.h, nothing else.
//
// Dimensions used in the shape comments:
//   R  rows of the batch (one token of one sequence each)     E  n_embd        F  n_ff        V  n_vocab
//   H  query heads   HK  KV heads   G = H / HK (GQA group)   D  head_dim      P  n_pages     S  page_size
//
// Counts are int64_t as everywhere in the engine; kernels narrow them to int32 only where the launcher has
// checked that the product fits (see the launchers' checks).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace specattn {

using bf16 = __nv_bfloat16;

// Embedding gather: out[r] = float(table[tokens[r]]). Token ids are validated on the host.
struct embed_params {
    const bf16 * table = nullptr;     // [V, E]
    const int32_t * tokens = nullptr; // [R]
    float * out = nullptr;            // [R, E] the fp32 residual stream
    int64_t n_rows = 0;
    int64_t n_embd = 0;
};

// RMSNorm with an optional fused residual add, as transformers computes it:
//     x[src] += residual[src]   (when residual != nullptr; written back, x is the fp32 residual stream)
//     out[r]  = weight * (x[src] * rsqrt(mean(x[src]²) + eps))        src = rows ? rows[r] : r
// `rows` gathers output rows (the LM head needs only the rows whose logits are wanted).
struct rmsnorm_params {
    float * x = nullptr;             // [R_in, E]
    const bf16 * residual = nullptr; // [R_in, E] or nullptr
    const float * weight = nullptr;  // [E]
    const int32_t * rows = nullptr;  // [R] or nullptr (identity)
    bf16 * out = nullptr;            // [R, E]
    int64_t n_rows = 0;              // R: output rows
    int64_t n = 0;                   // E
    float eps = 1e-5f;
};

// Which pairs of a head's dimensions RoPE rotates together (mirrors model/hparams.h's rope_layout, which kernels
// may not include).
enum class rope_pairs : int32_t {
    rope_pairs_interleaved, // (x0,x1), (x2,x3), ...: llama2.c
    rope_pairs_half_split,  // (x0,x_{D/2}), ...: Hugging Face's rotate_half
};

// The step between the QKV projection and attention, in place on the fused QKV activations, per head:
//     + bias (Qwen2), RMSNorm with q_norm / k_norm (Qwen3, q and k heads only), RoPE (q and k heads only).
// Done in fp32 from and to bf16. Layout of one row: H query heads, then HK key heads, then HK value heads. Then,
// optionally, the paged KV append of the row's K and V heads.
struct qkv_prep_params {
    bf16 * qkv = nullptr;                // [R, (H + 2 HK) * D]
    const float * bias = nullptr;        // [(H + 2 HK) * D] or nullptr
    const float * q_norm = nullptr;      // [D] or nullptr
    const float * k_norm = nullptr;      // [D] or nullptr (set together with q_norm)
    const float * inv_freq = nullptr;    // [D / 2] from model/rope.h (scaling already applied)
    const int32_t * positions = nullptr; // [R]
    int64_t n_rows = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0; // even, <= 256
    rope_pairs pairs = rope_pairs::rope_pairs_half_split;
    float eps = 1e-6f;
    // The paged KV append, fused: with k_pool set, each row's prepared K and V heads are also stored in one layer of
    // the pools (layout: src/kernels/paged_kv.h) at the physical (page, slot) the host resolved for the row.
    bf16 * k_pool = nullptr;        // [P, HK, S, D] this layer's part of the K pool, or nullptr: no append
    bf16 * v_pool = nullptr;        // [P, HK, S, D]
    const int32_t * page = nullptr; // [R] physical page of the row's position
    const int32_t * slot = nullptr; // [R] slot in that page
    int64_t page_size = 0;
};

// out = silu(gate) * up with gate and up side by side in one row (the fused gate/up projection).
struct swiglu_params {
    const bf16 * gate_up = nullptr; // [R, 2F]: gate [0, F), up [F, 2F)
    bf16 * out = nullptr;           // [R, F]
    int64_t n_rows = 0;
    int64_t n_ff = 0;
};

// ---- attention over the paged cache (attention.cuh) ----

// A run of consecutive batch rows of one sequence at consecutive positions: rows [row0, row0 + n_rows) sit at
// positions [pos0, pos0 + n_rows). Its pages are page_table[page0 ...] in sequence order.
//
// Sparse draft rows (sel >= 0): a row at position pos attends exactly to the sel_n positions of its selection list
//     sel_pos[((sel * n_layer + layer) * n_head_kv + kv_head) * sel_cap + i],  i < sel_n  (ascending, < sel_recent)
// followed by every position in [sel_recent, pos] (sel_recent <= pos). The kernel walks a virtual KV index
// v in [0, sel_n + pos - sel_recent + 1): v < sel_n is list entry v, else position sel_recent + v - sel_n; work
// ranges [kv_begin, kv_end) of sparse segments are in this virtual index. No sliding window on sparse rows.
//
// Score collection (Collect-2-Query, dense rows only): bit b of collect_mask marks row collect_row0 + b of the
// segment; collected rows take consecutive collect indices from collect0 in row order. (Relative to collect_row0 so
// that collecting a prefill chunk's last row does not cut the segment, and so the tiling, of the rows before it.)
// Bit b of sum_mask marks row collect_row0 + b as a summed row instead (logit mode without per-head logit rows).
// Logits are linear in the query, so Σ_{summed rows r, heads h of a KV head} q_{r,h}·k = (Σ q_{r,h})·k: a tile with
// summed rows computes one more query vector, their sum (the sum vector), and writes its scaled logits into a
// partial row per KV head (attention_work::sum_slot), which the score reduce adds up over slots and KV heads.
struct attention_segment {
    int32_t row0 = 0;
    int32_t n_rows = 0;
    int32_t pos0 = 0;
    int32_t page0 = 0;
    int32_t sel = -1; // selection slot; -1: dense causal
    int32_t sel_n = 0;
    int32_t sel_recent = 0;
    int32_t collect0 = -1;
    int32_t collect_row0 = 0;
    uint32_t collect_mask = 0;
    uint32_t sum_mask = 0;
};

// One CTA's work: a tile of up to attention_tile_queries / G consecutive rows of a segment, all G query heads of
// one KV head, over KV indices [kv_begin, kv_end) (one of n_split chunks of the tile's range; positions for dense
// segments, virtual indices for sparse ones).
struct attention_work {
    int32_t seg = 0;
    int32_t kv_head = 0;
    int32_t row0 = 0;   // first row of the tile, relative to the segment
    int32_t n_rows = 0; // rows in the tile
    int32_t kv_begin = 0;
    int32_t kv_end = 0;
    int32_t split = 0;   // which chunk
    int32_t n_split = 0; // chunks of this tile; 1: the CTA writes `out` directly
    // Tiles with summed rows: their sum vector (query vector n_rows G of the tile) writes partial row sum_slot of every
    // KV head; -1: no summed rows.
    int32_t sum_slot = -1;
    // 1: the first two KV blocks of this work are rows that no kernel of this forward writes (dense rows on pages
    // none of the batch's rows append to), so attention_dsplit_kernel may copy them before pdl_wait: the grids that
    // wrote them ended before the grid ahead of it began (every kernel calls pdl_launch_dependents only after its
    // pdl_wait). 0: copy after pdl_wait.
    int32_t early_copy = 0;
};

// Query vectors (row, head) one CTA holds: rows of a tile × G <= this (4 mma row tiles of 16).
constexpr int64_t attention_tile_queries = 64;
// The same for a batch-invariant plan without the split-D kernel: two mma row tiles, both computed by every warp
// (attention.cuh).
constexpr int64_t attention_invariant_tile_queries = 32;
// KV positions a CTA stages per pipeline step; KV chunks of split tiles are multiples of it.
constexpr int attention_kv_block = 64;
// Collected rows per segment: collect_mask has 32 bits (the plan starts a new segment when needed).
constexpr int64_t attention_collect_rows = 32;

// Attention of every batch row over its own sequence: dense rows at position pos attend to [lo, pos],
// lo = max(0, pos - window + 1) with a sliding window, else 0; sparse rows as attention_segment says. K/V of the
// batch's rows must already be in the pools. Partial results of split tiles are merged by the combine kernel with
// their log-sum-exp (flash-decoding).
struct attention_params {
    const bf16 * q = nullptr;                 // [R, q_row_stride]: head h of row r at q + r * q_row_stride + h * D
    int64_t q_row_stride = 0;                 // elements
    const bf16 * k_pool = nullptr;            // [P, HK, S, D] this layer's part of the K pool
    const bf16 * v_pool = nullptr;            // [P, HK, S, D]
    const int32_t * page_table = nullptr;     // [n_table] page lists of the segments' sequences
    const attention_segment * segs = nullptr; // [n_seg] in row order
    const attention_work * work = nullptr;    // [n_work], one CTA each
    const int32_t * row_slot = nullptr;       // [R] first partial slot of a row of a split tile, else -1
    const int32_t * row_n_split = nullptr;    // [R] chunks of the row's tile
    float * partial_o = nullptr;              // [n_slots, H, D] normalized partial outputs of split tiles
    float * partial_lse = nullptr;            // [n_slots, H] their log2-sum-exp (scores in log2 units)
    bf16 * out = nullptr;                     // [R, H, D]
    int64_t n_work = 0;
    int64_t mtiles_per_warp = 1; // warp shape, from the plan: 16-vector row tiles per warp (1 or 2; attention.cuh)
    // > 0: the plan's tiles hold at most 16 split_d_row_tiles query vectors and run attention_dsplit_kernel
    // (attention_dsplit.cuh) with that many row tiles (1, 2 or 4) instead of attention_kernel.
    int64_t split_d_row_tiles = 0;
    // With split_d_row_tiles 2 or 4: run attention_wg_kernel (attention_wg.cuh) where the launcher can (head dim
    // 128, no summed rows, sm_90a code on a compute capability 9.0 GPU); elsewhere split-D as above.
    bool wgmma = false;
    // The split-D kernel copies K and V as evict-first in L2 (read once per pass), so lines written for a reader
    // right after the kernel (collected logit rows, summed partial rows) stay in L2 for it.
    bool stream_kv = false;
    int64_t n_seg = 0;
    int64_t n_slots = 0; // partial slots in use; 0: no tile is split and the combine pass is skipped
    int64_t n_rows = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0; // even, <= 256
    int64_t page_size = 0;
    int64_t page_shift = -1;    // paged_kv_place_of's: log2(page_size) for power-of-two pages, else -1 (from the plan:
                                // computed in the kernel it cost 8 bytes of spills)
    int64_t sliding_window = 0; // 0: full causal attention
    float scale = 1.0f;         // softmax scale, 1/sqrt(D)
    // Sparse draft rows (segments with sel >= 0): the selection lists, written by the selection kernels.
    const int32_t * sel_pos = nullptr; // [n_sel, n_layer, HK, sel_cap] ascending positions
    int64_t sel_cap = 0;
    int64_t layer = 0; // this layer's index into sel_pos
    int64_t n_layer = 1;
    // Score collection (segments with collect_mask != 0): for collected row c (position pos) and query head h,
    // collect_logits[c][h][t] = q·k_t * scale for every attended t <= pos (other entries untouched) and
    // collect_lse[c][h] = ln Σ_t exp(q·k_t * scale) over the attended positions.
    bf16 * collect_logits = nullptr; // [n_collect, H, collect_cap]
    float * collect_lse = nullptr;   // [n_collect, H]
    int64_t collect_cap = 0;
    // Summed rows (segments with sum_mask != 0): for a tile's partial slot s and KV head kh,
    //     sum_partial[(s * HK + kh) * sum_cap + t] = bf16(Σ_{summed rows r of the tile, heads h of kh} q_{r,h})·k_t *
    //     scale
    // for every t of the work's KV range [kv_begin, kv_end) up to the tile's last summed row's position (some
    // further ones too: callers read only t below every summed row's position + 1); other entries untouched.
    float * sum_partial = nullptr; // [n_sum_slots, HK, sum_cap]
    int64_t sum_cap = 0;           // even
    int64_t n_sum_slots = 0;       // 0: no summed rows (the kernel instance without the summing code runs)
};

// Greedy sampling: out[r] = argmax of row r, lowest index among ties, NaN never wins (as sampling/sampler.cpp).
struct argmax_params {
    const float * logits = nullptr; // [R, V]
    int32_t * out = nullptr;        // [R]
    int64_t n_rows = 0;
    int64_t n_vocab = 0;
};

// Skinny GEMM (skinny_gemm.cuh): y[r] = x[r] · Wᵀ for a few rows (decode, draft, verify), bf16 in, fp32
// accumulation, bf16 or fp32 out. Batch-invariant: how K is split (`splits` even-ish ranges of 128-wide stages) and
// the order partial sums are added (split 0, 1, ... by the CTA that finishes last) depend on (N, K) only, so a row's
// result does not depend on R. One launch serves at most skinny_gemm_max_rows rows; the launcher loops over chunks.
// y = x · Wᵀ for a few rows (kernels/gemv.cuh); the launcher splits R into groups of at most 8.
struct gemv_params {
    const bf16 * x = nullptr; // [R, K] row-major, 16-B aligned rows (K % 8 == 0)
    const bf16 * w = nullptr; // [N, K] row-major (PyTorch's [out, in]), 16-B aligned
    void * y = nullptr;       // [R, N] bf16 or fp32 (out_f32)
    int64_t m = 0;            // R
    int64_t n = 0;            // N
    int64_t k = 0;            // K
    bool out_f32 = false;
};

struct skinny_gemm_params {
    const bf16 * x = nullptr;     // [R, K] row-major, 16-B aligned rows (K % 8 == 0)
    const bf16 * w = nullptr;     // [N, K] row-major (PyTorch's [out, in])
    void * y = nullptr;           // [R, N] bf16 or fp32 (out_f32)
    float * partial = nullptr;    // [splits, 64, N rounded up to 4] split-K partial sums; unused when splits == 1
    int32_t * counters = nullptr; // [ceil(N / 128)] CTAs done per row block; zero before and after each launch
    int64_t m = 0;                // R
    int64_t n = 0;                // N
    int64_t k = 0;                // K
    int32_t splits = 1;           // K ranges (<= 16), from skinny_gemm_splits(N, K): never from R
    bool out_f32 = false;
};

} // namespace specattn
