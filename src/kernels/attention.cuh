// Attention of many rows over the paged KV cache on tensor cores: GQA-packed, split over KV (flash-decoding),
// sparse draft rows (position lists) and the Collect-2-Query score side output.
// Prefill tiles run here; decode, draft and verify tiles (up to 32 query vectors, 64 in invariant plans) run
// attention_dsplit.cuh's kernel, which shares this file's work items, copies and helpers
// (attention_plan_config::split_d; off, everything runs here).
//
// One CTA owns one KV head and a tile of rows of one segment with ALL G query heads of that KV head packed into the
// M dimension (query vector qi = row_in_tile * G + g, up to 64: 4 mma row tiles of 16), so each KV page is read
// once per tile: once for a decode step or a verify pass, once per tile of a prefill chunk.
//
// Pipeline: K and V blocks of attention_kv_block (64) positions go global -> shared memory by cp.async, stages
// deep, bf16 rows padded by 16 B so ldmatrix hits distinct banks. One position's row of one head is D contiguous
// bf16 whatever the page size, so dense, paged and gathered (sparse) positions load the same way.
// Warps: 4. The tile's ceil(M / 16) row tiles of 16 vectors (1, 2 or 4) go to the warps in one of two shapes, MPW
// (row tiles per warp, a launch-wide choice of the plan, attention_params::mtiles_per_warp):
//   MPW = 1: WM = ceil(M / 16) warps split M, one row tile each, WK = 4 / WM split each KV block (heuristic plans);
//   MPW = 2 (tiles of at most 32 vectors): every warp takes all (1 or 2) row tiles, WK = 4.
// The WK warps split each KV block into 16-position chunks (warp k takes chunks k, k + WK, ...). Per chunk a warp
// does S = Q Kᵀ (mma m16n8k16, fp32) for each of its row tiles from one load of the K fragments, the mask, an
// online softmax in log2 units in registers, and O += P V (P re-packed from the S accumulators as the A operand)
// from one load of the V fragments. At the end of a chunk the WK partial (m, l, O) of each query vector are merged
// through shared memory in warp order.
// NOTE(attn): the per-vector float arithmetic uses explicitly rounded operations (__fmul_rn, __fmaf_rn, ...): the
// compiler then cannot contract them differently in the unrolled copies of the row-tile loop, so a vector computes
// the same bits in row tile 0 and row tile 1.
// NOTE(attn): with MPW = 2, WK is 4 whatever the tile holds: every query vector sees the same chunk-to-warp
// assignment, online-softmax order and merge order whether its tile has 1 row or 8, so a decode row and the same
// row inside a verify tile get the same bits (the batch-invariant plan always launches MPW = 2), while all 28 query
// vectors of a G = 4 verify read each K/V block from global memory once and share each K/V fragment load.
//
// Outputs: unsplit tiles write `out` (bf16); split tiles write normalized partials and their log2-sum-exp per KV
// chunk, merged by attention_combine_kernel (attention_combine.cuh). Collected rows also write their scaled logits
// straight from the S registers (bf16) and their natural-log LSE (here, or in the combine for split rows). A tile
// with summed rows (logit-mode Collect-2-Query, kernel instance SUMS) computes one more query vector, the sum of
// their queries over the KV head's G heads, whose logits (Σ q)·k are the summed scores: stored as an fp32 partial
// row per KV head (attention_params::sum_partial), its softmax and P V computed and never written.
//
// Positions outside the work's range, list entries past sel_n and head dims past head_dim are never read from
// global memory (cp.async zero-fills them), so NaN in unwritten slots cannot leak in.
//
// HD is the padded head dim (64, 128 or 256): exactly 64 and 128 are the fast paths; other even head dims run
// zero-padded in the next instance up (16-byte copies when head_dim % 8 == 0, else 4-byte ones).
#pragma once

#include "kernels/common.cuh"
#include "kernels/mma.cuh"
#include "kernels/paged_kv.h"

#include <math_constants.h>

#include <climits>

namespace specattn {

constexpr int attention_threads = 128;
// NOTE(attn): 2 blocks (64 KB at D = 128) in flight while one is computed, 2 CTAs per SM. 4 stages (1 CTA per SM)
// measured 30-40% slower on the H200 (bench/kernel_bench.cu, 2026-11-29).
constexpr int attention_stages = 3;
constexpr int attention_chunk = 16; // KV positions of one warp step (the k of the P V mma)

// Shared-memory row stride of staged K / V (bf16 elements).
constexpr int attention_smem_stride(int hd) {
    return hd + 8;
}

// Row offsets are computed one block ahead of their copy into a ring of this many blocks (see the main loop).
constexpr int attention_offset_ring = attention_stages + 1;

// Dynamic shared memory of attention_kernel<HD, MPW>: the K/V stages (the final merge reuses the first, one row
// tile at a time), the offset ring, and with MPW = 2 the tile's queries (32 vectors of HD bf16, 16-byte pieces
// XOR-swizzled by row so ldmatrix is conflict-free).
// NOTE(attn): MPW = 2 reads Q fragments from shared memory per chunk instead of holding 2 x 32 registers of them
// beside 2 x 64 accumulators. The 8 KB (D = 128) just fit beside two CTAs' stages in the SM's 228 KB.
constexpr size_t attention_stage_bytes(int hd) {
    return static_cast<size_t>(attention_stages) * 2 * attention_kv_block * attention_smem_stride(hd) * sizeof(bf16);
}
constexpr size_t attention_ring_bytes() {
    return static_cast<size_t>(attention_offset_ring) * attention_kv_block * sizeof(int64_t);
}
constexpr size_t attention_smem_bytes(int hd, int mpw) {
    return attention_stage_bytes(hd) + attention_ring_bytes() +
           (mpw == 2 ? static_cast<size_t>(32) * hd * sizeof(bf16) : 0);
}

namespace attention_detail {

constexpr float log2e = 1.4426950408889634f;
constexpr float ln2 = 0.6931471805599453f;

// Collect index of row r of a segment, or -1 when the row is not collected.
__device__ __forceinline__ int collect_index(const attention_segment & sg, int r) {
    const int b = r - sg.collect_row0;
    if (b < 0 || b >= 32 || ((sg.collect_mask >> b) & 1u) == 0) {
        return -1;
    }
    return sg.collect0 + __popc(sg.collect_mask & ((1u << b) - 1u));
}

// Whether row r of a segment is a summed row (attention_segment::sum_mask).
__device__ __forceinline__ bool summed_row(const attention_segment & sg, int r) {
    const int b = r - sg.collect_row0;
    return b >= 0 && b < 32 && ((sg.sum_mask >> b) & 1u) != 0;
}

// The tile's summed rows (attention_segment::sum_mask), bit r - w.row0 for row r (tiles hold at most 64 rows).
__device__ __forceinline__ uint64_t tile_summed_rows(const attention_segment & sg, const attention_work & w) {
    uint64_t rows = 0;
    for (int r = w.row0; r < w.row0 + w.n_rows; ++r) {
        rows |= summed_row(sg, r) ? 1ull << (r - w.row0) : 0ull;
    }
    return rows;
}

// Dims d, d + 1 of a tile's sum vector: the sum in fp32 of the queries of its summed rows' G heads of the work's
// KV head, times the softmax scale, rounded once to bf16. Its logits are then the scaled ones the partial rows hold:
// no multiply where the kernels store them (per position, in the warps that hold the vector).
__device__ __forceinline__ uint32_t sum_vector_pair(const attention_params & p, const attention_segment & sg,
                                                    const attention_work & w, int group, int d) {
    // The (row, head) pairs in row then head order, loaded 8 at a time before their adds (the same order of adds
    // as one at a time), so the loads of the two summed rows of a G = 4 tile overlap: one round trip, not two.
    constexpr int batch = 8;
    uint64_t left = tile_summed_rows(sg, w); // rows still to load, bit r - row0
    const bf16 * q0 = p.q + static_cast<int64_t>(sg.row0 + w.row0) * p.q_row_stride +
                      static_cast<int64_t>(w.kv_head) * group * p.head_dim + d;
    float x = 0.0f;
    float y = 0.0f;
    int r = __ffsll(static_cast<long long>(left)) - 1;
    int g = 0;
    while (left != 0) {
        float2 f[batch];
        int n = 0;
#pragma unroll
        for (int k = 0; k < batch; ++k) {
            if (left != 0) {
                f[k] = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(
                    q0 + static_cast<int64_t>(r) * p.q_row_stride + g * p.head_dim));
                n = k + 1;
                if (++g == group) {
                    g = 0;
                    left &= left - 1;
                    r = __ffsll(static_cast<long long>(left)) - 1;
                }
            }
        }
#pragma unroll
        for (int k = 0; k < batch; ++k) {
            if (k < n) {
                x += f[k].x;
                y += f[k].y;
            }
        }
    }
    return pack_bf16x2(__fmul_rn(x, p.scale), __fmul_rn(y, p.scale));
}

// Stores the scaled logits x[0], x[1] of positions v0, v0 + 1 of a collected row at dst (= row + v0) where ok:
// one 4-byte store for both where the row allows it (collect_cap or a window may make v0 odd), 2-byte ones at the
// edges.
__device__ __forceinline__ void store_collected(bf16 * dst, const float * x, const bool (&ok)[2], float scale) {
    if (ok[0] && ok[1] && (reinterpret_cast<uintptr_t>(dst) & 3u) == 0) {
        *reinterpret_cast<__nv_bfloat162 *>(dst) =
            __floats2bfloat162_rn(__fmul_rn(x[0], scale), __fmul_rn(x[1], scale));
        return;
    }
#pragma unroll
    for (int e = 0; e < 2; ++e) {
        if (ok[e]) {
            dst[e] = __float2bfloat16(__fmul_rn(x[e], scale));
        }
    }
}

// Stores a sum vector's logits a, b (already scaled: sum_vector_pair) of positions v0, v0 + 1 into its partial row,
// as far as kv_end goes.
__device__ __forceinline__ void store_summed(float * sum_row, int v0, int kv_end, float a, float b) {
    if (v0 + 1 < kv_end) {
        *reinterpret_cast<float2 *>(sum_row + v0) = make_float2(a, b);
    } else if (v0 < kv_end) {
        sum_row[v0] = a;
    }
}

// Stores a sum vector's logits of the 16-position chunk from vc that its thread fc holds, x[nt] at positions
// vc + 8 nt + 2 fc and the next one, as far as kv_end goes.
__device__ __forceinline__ void store_summed_chunk(float * sum_row, int vc, int fc, int kv_end,
                                                   const float (&x)[2][2]) {
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
        store_summed(sum_row, vc + nt * 8 + 2 * fc, kv_end, x[nt][0], x[nt][1]);
    }
}

// Row i of S (the thread's vector rows fr + 8 i) over a 16-position chunk starting at vc, in place: positions
// outside the vector's range [vlo, vlim] or past kv_end become -inf, the others are scaled to log2 units. Before
// that, a collected vector's scaled logits go to crow (collects: any of the thread's vectors is collected), and
// raw(nt, v0, a, b) sees each raw column pair (v0, v0 + 1) (the sum vector's). Returns the vector's chunk max: its
// 16 columns live in one quad.
template <typename Raw>
__device__ __forceinline__ float mask_chunk(float (&s)[2][4], int i, int vc, int fc, int kv_end, int vlo, int vlim,
                                            bf16 * crow, bool collects, float scale, float qscale, Raw && raw) {
    float cmax = -CUDART_INF_F;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
        const int v0 = vc + nt * 8 + 2 * fc; // this thread's two adjacent columns: v0, v0 + 1
        bool ok[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int v = v0 + e;
            ok[e] = v < kv_end && v <= vlim && v >= vlo;
        }
        raw(nt, v0, s[nt][2 * i], s[nt][2 * i + 1]);
        if (collects && crow != nullptr) { // dense rows: v is the position
            store_collected(crow + v0, &s[nt][2 * i], ok, scale);
        }
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            float & x = s[nt][2 * i + e];
            x = ok[e] ? __fmul_rn(x, qscale) : -CUDART_INF_F;
            cmax = fmaxf(cmax, x);
        }
    }
    cmax = fmaxf(cmax, __shfl_xor_sync(0xffffffffu, cmax, 1));
    return fmaxf(cmax, __shfl_xor_sync(0xffffffffu, cmax, 2));
}

// Dims d, d + 1 of query vector qi's attention output, already normalized (o = O / l), and its log2-sum-exp:
// an unsplit tile writes out (bf16) and, for a collected row, the natural-log LSE; a split tile its normalized
// partial and log2-sum-exp for the combine. with_lse: the one writer of the vector's LSE.
__device__ __forceinline__ void store_output(const attention_params & p, const attention_segment & sg,
                                             const attention_work & w, int qi, int d, float2 o, float lse2,
                                             bool with_lse) {
    const int group = static_cast<int>(p.n_head / p.n_head_kv);
    const int r = w.row0 + qi / group;
    const int64_t row = sg.row0 + r;
    const int64_t h = static_cast<int64_t>(w.kv_head) * group + qi % group;
    if (w.n_split == 1) {
        *reinterpret_cast<__nv_bfloat162 *>(p.out + (row * p.n_head + h) * p.head_dim + d) =
            __floats2bfloat162_rn(o.x, o.y);
        const int ci = with_lse ? collect_index(sg, r) : -1;
        if (ci >= 0) {
            p.collect_lse[static_cast<int64_t>(ci) * p.n_head + h] = __fmul_rn(lse2, ln2);
        }
    } else {
        const int64_t slot = static_cast<int64_t>(p.row_slot[row]) + w.split;
        *reinterpret_cast<float2 *>(p.partial_o + (slot * p.n_head + h) * p.head_dim + d) = o;
        if (with_lse) {
            p.partial_lse[slot * p.n_head + h] = lse2;
        }
    }
}

// What a thread needs of one query vector of its tile (vector qi: row w.row0 + qi / G, head qi % G of the work's
// KV head; vector nq, when the tile sums rows, is the sum vector).
struct tile_vector {
    bool valid = false;       // a real (row, head) of the tile
    bool is_sum = false;      // the tile's sum vector
    int vlo = 0;              // first attended KV index (a sliding window's start)
    int vlim = -1;            // last attended KV index (-1: none)
    bf16 * crow = nullptr;    // its collected logit row, or nullptr
    const bf16 * q = nullptr; // its query (valid vectors)
};

// The tile's last summed row's position (attention_segment::sum_mask), which the sum vector attends up to; -1
// without summed rows.
__device__ __forceinline__ int sum_vector_limit(const attention_segment & sg, const attention_work & w, bool sum_vec) {
    const uint64_t rows = sum_vec ? tile_summed_rows(sg, w) : 0;
    return rows == 0 ? -1 : sg.pos0 + w.row0 + 63 - __clzll(static_cast<long long>(rows));
}

// Vector qi of the tile; `here` false (a row tile the thread's warp does not hold) gives an empty vector.
__device__ __forceinline__ tile_vector tile_vector_of(const attention_params & p, const attention_segment & sg,
                                                      const attention_work & w, int qi, bool here, int sum_vlim) {
    const int group = static_cast<int>(p.n_head / p.n_head_kv);
    const int nq = w.n_rows * group;
    tile_vector v;
    v.valid = here && qi < nq;
    v.is_sum = here && w.sum_slot >= 0 && qi == nq;
    const int r = w.row0 + qi / group; // row in the segment
    const int pos = sg.pos0 + r;
    const int64_t h = static_cast<int64_t>(w.kv_head) * group + qi % group;
    const bool sparse = sg.sel >= 0;
    v.vlo = sparse || p.sliding_window <= 0 ? 0 : max(0, pos - static_cast<int>(p.sliding_window) + 1);
    v.vlim = v.is_sum ? sum_vlim : (!v.valid ? -1 : (sparse ? sg.sel_n + pos - sg.sel_recent : pos));
    const int ci = v.valid ? collect_index(sg, r) : -1;
    v.crow = ci < 0 ? nullptr : p.collect_logits + (static_cast<int64_t>(ci) * p.n_head + h) * p.collect_cap;
    v.q = p.q + static_cast<int64_t>(sg.row0 + r) * p.q_row_stride + h * p.head_dim;
    return v;
}

// Vector v's A fragments of Q Kᵀ (registers i and i + 2 of each k-step: the thread's rows fr + 8 i), from its query,
// or for the sum vector from sum_pair(d) (dims d, d + 1), zero past head_dim and for empty vectors.
template <int NKS, typename SumPair>
__device__ __forceinline__ void load_q_fragments(uint32_t (&qf)[NKS][4], int i, const tile_vector & v, bool is_sum,
                                                 int fc, int hd, SumPair sum_pair) {
#pragma unroll
    for (int ks = 0; ks < NKS; ++ks) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int d = ks * 16 + half * 8 + 2 * fc;
            uint32_t val = 0;
            if (v.valid && d < hd) {
                val = *reinterpret_cast<const uint32_t *>(v.q + d);
            } else if (is_sum && d < hd) {
                val = sum_pair(d);
            }
            qf[ks][i + 2 * half] = val;
        }
    }
}

// The work's partial row of its sum vector (attention_params::sum_partial).
__device__ __forceinline__ float * sum_row_of(const attention_params & p, const attention_work & w) {
    return p.sum_partial + (static_cast<int64_t>(w.sum_slot) * p.n_head_kv + w.kv_head) * p.sum_cap;
}

// Where a work item's K/V rows are: its sequence's pages, its KV head and, for sparse (draft) rows, its selection
// list.
struct work_rows {
    const int32_t * pages = nullptr;
    const int32_t * list = nullptr; // nullptr: dense rows
    int32_t kv_head = 0;            // the work's KV head
};

__device__ __forceinline__ work_rows work_rows_of(const attention_params & p, const attention_segment & sg,
                                                  const attention_work & w) {
    work_rows k;
    k.pages = p.page_table + sg.page0;
    if (sg.sel >= 0) {
        k.list =
            p.sel_pos + ((static_cast<int64_t>(sg.sel) * p.n_layer + p.layer) * p.n_head_kv + w.kv_head) * p.sel_cap;
    }
    k.kv_head = w.kv_head;
    return k;
}

// Element offset of KV index v's row (this head) in the pools, or -1 when v is past the work's range. Sparse
// segments map v through the selection list (entries < sel_n only) and the recent range.
__device__ __forceinline__ int64_t row_offset(const attention_params & p, const attention_segment & sg,
                                              const work_rows & k, int v, int v_end) {
    if (v >= v_end) {
        return -1;
    }
    int t = v;
    if (k.list != nullptr) {
        t = v < sg.sel_n ? k.list[v] : sg.sel_recent + (v - sg.sel_n);
    }
    // In 32 bits and with the plan's page_shift: the other warps wait for these offsets at the block's barrier.
    const int page_size = static_cast<int>(p.page_size);
    const paged_kv_place<int> at = paged_kv_place_of(t, page_size, static_cast<int>(p.page_shift));
    return paged_kv_page_offset(k.pages[at.index], k.kv_head, at.slot, p.n_head_kv, page_size, p.head_dim);
}

// The copy loop of whole, real rows (load_rows with REAL_ROWS, attention_wg.cuh's load_rows_wg): a thread copies
// PPT 16-byte pieces of each of its NP rows row + RPP it, to shared address d0 + it PASS_BYTES + k PIECE_BYTES from
// s0 + off[row + RPP it] + k PIECE_ELEMS, so it has one shared and one global address and the rest are immediates.
// Its offsets are loaded before its copies (each copy's "memory" clobber would order a later load after it).
template <int NP, int RPP, int PPT, uint32_t PASS_BYTES, uint32_t PIECE_BYTES, int PIECE_ELEMS>
__device__ __forceinline__ void copy_real_rows(uint32_t d0, const bf16 * s0, const int64_t * off, int row,
                                               uint64_t kv_policy) {
    int64_t o[NP];
#pragma unroll
    for (int it = 0; it < NP; ++it) {
        o[it] = off[row + it * RPP];
    }
#pragma unroll
    for (int it = 0; it < NP; ++it) {
#pragma unroll
        for (int k = 0; k < PPT; ++k) {
            cp_async_16(d0 + it * PASS_BYTES + k * PIECE_BYTES, s0 + o[it] + k * PIECE_ELEMS, kv_policy);
        }
    }
}

// Stages the rows at offsets off[0 .. KT) (-1: zero-fill) of one pool into dst; dims >= hd are zero-filled. Rows
// are attention_smem_stride(HD) apart, or with SWZ HD apart with 16-byte piece j of row r at piece j ^ (r % 8)
// (conflict-free ldmatrix without the padding: attention_dsplit.cuh). REAL_ROWS: the caller guarantees every offset
// is a real row (the split-D kernel clamps positions past kv_end to the last one), so whole rows are copied without
// the zero-fill's source size, under the L2 eviction policy kv_policy (l2_policy_*).
template <int HD, int NT, bool SWZ = false, bool REAL_ROWS = false>
__device__ __forceinline__ void load_rows(bf16 * dst, const bf16 * pool, const int64_t * off, int hd, bool vec16,
                                          uint64_t kv_policy = 0) {
    constexpr int KT = attention_kv_block;
    constexpr int ST = SWZ ? HD : attention_smem_stride(HD);
    static_assert(!SWZ || HD >= 64, "a swizzled row spans at least 8 pieces");
    const auto at = [](int j, int col) { return j * ST + (SWZ ? (((col >> 3) ^ (j & 7)) << 3) | (col & 7) : col); };
    const int tid = static_cast<int>(threadIdx.x);
    constexpr int CPR = HD / 8; // 16-byte pieces per row
    if (vec16 && hd == HD) {
        // Whole rows: TPR threads per row, each copying PPT pieces of it (p0, p0 + TPR, ...), so a warp's copy
        // reads whole 128-byte lines and one offset lookup serves PPT copies. A thread per half line (PPT 4 at
        // HD 128) cut the instructions but doubled the memory requests and slowed 128-thread CTAs by 20-30%.
        constexpr int TPR = CPR < 8 ? CPR : 8;
        constexpr int PPT = CPR / TPR;
        constexpr int RPP = NT / TPR; // rows per pass
        constexpr int NP = KT / RPP;  // passes
        static_assert(NT % TPR == 0 && KT % RPP == 0, "passes of whole rows");
        const int row = tid / TPR;
        const int p0 = tid % TPR;
        if constexpr (REAL_ROWS) {
            // Piece p0 + TPR k of row row + RPP it lands at at(row, 8 p0) + RPP it ST + 8 TPR k (with SWZ, TPR = 8
            // and RPP % 8 == 0 keep the XOR phase): copy_real_rows. A block's K at HD 128 in the split-D kernel: 27
            // instructions per thread against 66 on the path below (static SASS, tools/sass_ops.py). That path
            // stays as it was for the prefill kernel, whose instances came out 1-3% longer either way with this
            // addressing (unmeasured in time).
            static_assert(!SWZ || (TPR == 8 && RPP % 8 == 0), "one XOR phase per thread");
            copy_real_rows<NP, RPP, PPT, RPP * ST * sizeof(bf16), TPR * 8 * sizeof(bf16), TPR * 8>(
                smem_addr(dst + at(row, p0 * 8)), pool + p0 * 8, off, row, kv_policy);
        } else {
#pragma unroll
            for (int it = 0; it < NP; ++it) {
                const int j = row + it * RPP;
                const int64_t o = off[j];
                const bf16 * src = pool + (o < 0 ? 0 : o) + p0 * 8;
                const int n = o < 0 ? 0 : 16;
#pragma unroll
                for (int k = 0; k < PPT; ++k) {
                    cp_async_16(smem_addr(dst + at(j, (p0 + k * TPR) * 8)), src + k * TPR * 8, n);
                }
            }
        }
    } else if (vec16) {
        constexpr int RPP = NT / CPR;
        const int col = (tid % CPR) * 8;
        const int bytes = min(max(hd - col, 0), 8) * 2;
#pragma unroll
        for (int it = 0; it < KT / RPP; ++it) {
            const int j = tid / CPR + it * RPP;
            const int64_t o = off[j];
            cp_async_16(smem_addr(dst + at(j, col)), pool + (o < 0 ? 0 : o + col), o < 0 ? 0 : bytes);
        }
    } else {
        constexpr int PPR = HD / 2; // bf16 pairs per row
        for (int e = tid; e < KT * PPR; e += NT) {
            const int j = e / PPR;
            const int col = (e % PPR) * 2;
            const int64_t o = col < hd ? off[j] : -1;
            cp_async_4(smem_addr(dst + at(j, col)), pool + (o < 0 ? 0 : o + col), o < 0 ? 0 : 4);
        }
    }
}

// The K and V rows of a block (load_rows of both pools).
template <int HD, int NT>
__device__ __forceinline__ void load_block(bf16 * k_s, bf16 * v_s, const attention_params & p, const int64_t * off,
                                           bool vec16) {
    const int hd = static_cast<int>(p.head_dim);
    load_rows<HD, NT>(k_s, p.k_pool, off, hd, vec16);
    load_rows<HD, NT>(v_s, p.v_pool, off, hd, vec16);
}

} // namespace attention_detail

// Resident CTAs per SM the register budget is sized for: 2 (shared memory allows no more at HD <= 128); one at
// HD = 256, whose stages fill the SM anyway.
constexpr int attention_min_ctas(int hd) {
    return hd <= 128 ? 2 : 1;
}

// grid: [n_work]  block: attention_threads  dynamic smem: attention_smem_bytes(HD, MPW)
// SUMS: the instance with the summed-row code (attention_params::n_sum_slots > 0); without it the other instances
// carry none of its registers or branches.
template <int HD, int MPW, bool SUMS>
__global__ void __launch_bounds__(attention_threads, attention_min_ctas(HD))
    attention_kernel(const attention_params p) {
    using namespace attention_detail;
    constexpr int KT = attention_kv_block;
    constexpr int CH = attention_chunk;
    constexpr int ST = attention_smem_stride(HD);
    constexpr int NT = attention_threads;
    constexpr int NKS = HD / 16; // k-steps of Q Kᵀ
    constexpr int NDT = HD / 8;  // n-tiles of P V
    constexpr int RS = HD + 4;   // fp32 row stride of the merge buffer
    constexpr bool q_in_smem = MPW == 2;
    static_assert((MPW == 1 || MPW == 2) && KT == 4 * CH && NT == 4 * warp_size, "tile shape");
    static_assert(static_cast<size_t>(4) * 16 * (RS + 2) * sizeof(float) <=
                      attention_stage_bytes(HD) / attention_stages,
                  "a row tile's merge fits one stage");

    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 * stage_s = reinterpret_cast<bf16 *>(smem_raw);                                 // [stages][K, V][KT][ST]
    int64_t * off_s = reinterpret_cast<int64_t *>(smem_raw + attention_stage_bytes(HD)); // [ring][KT]
    bf16 * q_s = reinterpret_cast<bf16 *>(smem_raw + attention_stage_bytes(HD) + attention_ring_bytes()); // [32][HD]

    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % warp_size;
    const int warp = tid / warp_size;
    const int fr = lane / 4; // fragment row (and row of the second half: fr + 8)
    const int fc = lane % 4; // fragment column pair
    pdl_wait(); // when launched as a programmatic dependent (SPECATTN_PDL): q and K/V come from the grid before
    const attention_work w = p.work[blockIdx.x];
    const attention_segment sg = p.segs[w.seg];
    // Narrowing checked by the launcher: H, D, S, positions and row counts fit int32.
    const int group = static_cast<int>(p.n_head / p.n_head_kv);
    const int hd = static_cast<int>(p.head_dim);
    const int nq = w.n_rows * group; // the rows' query vectors
    // A tile with summed rows computes one more: their sum vector, vector nq (attention_segment::sum_mask).
    const bool sum_vec = SUMS && w.sum_slot >= 0;
    // Row tiles of 16 vectors: MPW = 2 gives a warp all (1 or 2) of them, MPW = 1 one per warp along M.
    const int nqx = nq + (sum_vec ? 1 : 0);
    const int n_rt = nqx <= 16 ? 1 : (nqx <= 32 ? 2 : 4);
    const int mpw = MPW == 2 ? n_rt : 1; // row tiles per warp
    const int wm = n_rt / mpw;           // warps along M
    const int wk = 4 / wm;               // warps along KV
    const int warp_m = warp % wm;
    const int warp_k = warp / wm;
    const work_rows rows = work_rows_of(p, sg, w);
    const bool vec16 = hd % 8 == 0;

    // This thread's query vectors (fragment rows fr and fr + 8 of each of the warp's row tiles): the virtual KV
    // range each attends, where its logits go when collected, and (MPW = 1) its Q fragments.
    int vlo[MPW][2];
    int vlim[MPW][2];
    bf16 * crow[MPW][2];
    uint32_t qf[q_in_smem ? 1 : NKS][4];
    // The sum vector attends up to the tile's last summed row; the thread holding it (as its vector 2 mt + i =
    // sum_at) stores its logits into the partial row.
    const int sum_vlim = SUMS ? sum_vector_limit(sg, w, sum_vec) : -1;
    int sum_at = -1;
    float * sum_row = nullptr;
#pragma unroll
    for (int mt = 0; mt < MPW; ++mt) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const tile_vector v = tile_vector_of(p, sg, w, (warp_m * mpw + mt) * 16 + fr + 8 * i, mt < mpw, sum_vlim);
            const bool is_sum = SUMS && v.is_sum;
            vlo[mt][i] = v.vlo;
            vlim[mt][i] = v.vlim;
            crow[mt][i] = v.crow;
            if (is_sum) {
                sum_at = 2 * mt + i;
                sum_row = sum_row_of(p, w);
            }
            if constexpr (!q_in_smem) {
                load_q_fragments(qf, i, v, is_sum, fc, hd, [&](int d) { return sum_vector_pair(p, sg, w, group, d); });
            }
        }
    }
    // Row qi, columns [8 j, 8 j + 8) of the query tile sit in 16-byte piece j ^ (qi % 8) of row qi.
    const auto q_piece = [&](int qi, int j) { return q_s + qi * HD + ((j ^ (qi & 7)) << 3); };
    if constexpr (q_in_smem) {
        // Zeros for vectors past the tile and dims past head_dim, like the register path; published by the barrier
        // before the pipeline.
        for (int e = tid; e < 32 * (HD / 2); e += NT) {
            const int qi = e / (HD / 2);
            const int d = 2 * (e % (HD / 2));
            uint32_t val = 0;
            if (qi < nq && d < hd) {
                const int r = w.row0 + qi / group;
                const int64_t h = static_cast<int64_t>(w.kv_head) * group + qi % group;
                val = *reinterpret_cast<const uint32_t *>(p.q + static_cast<int64_t>(sg.row0 + r) * p.q_row_stride +
                                                          h * hd + d);
            } else if (sum_vec && qi == nq && d < hd) {
                val = sum_vector_pair(p, sg, w, group, d);
            }
            *reinterpret_cast<uint32_t *>(q_piece(qi, d >> 3) + (d & 7)) = val;
        }
    }
    // Chunks no row of this warp attends are skipped (causal prefill tiles, past-the-end rows).
    int warp_vlim = -1;
    int warp_vlo = INT_MAX;
    bool collects = false;
#pragma unroll
    for (int mt = 0; mt < MPW; ++mt) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            warp_vlim = max(warp_vlim, vlim[mt][i]);
            warp_vlo = min(warp_vlo, vlim[mt][i] < 0 ? INT_MAX : vlo[mt][i]);
            collects = collects || crow[mt][i] != nullptr;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2) {
        warp_vlim = max(warp_vlim, __shfl_xor_sync(0xffffffffu, warp_vlim, o));
        warp_vlo = min(warp_vlo, __shfl_xor_sync(0xffffffffu, warp_vlo, o));
    }

    float m[MPW][2]; // running max, log2 units
    float l[MPW][2]; // running sum of this thread's columns
    float acc[MPW][NDT][4];
#pragma unroll
    for (int mt = 0; mt < MPW; ++mt) {
        m[mt][0] = m[mt][1] = -CUDART_INF_F;
        l[mt][0] = l[mt][1] = 0.0f;
#pragma unroll
        for (int dt = 0; dt < NDT; ++dt) {
            acc[mt][dt][0] = acc[mt][dt][1] = acc[mt][dt][2] = acc[mt][dt][3] = 0.0f;
        }
    }

    // Ends the work item: merges the wk warps' (m, l, O) of every query vector through shared memory (the drained
    // stages), one 16-vector row tile per round, in warp order, then writes out (unsplit tile) or the chunk's
    // normalized partial and log2-sum-exp (partial slot w.split). Every thread calls it (it synchronizes the CTA).
    const auto finish = [&](float * buf) {
        float * red_o = buf;                  // [wk][16][RS]
        float * red_ml = red_o + 4 * 16 * RS; // [wk][16][2]: m, l
#pragma unroll
        for (int mt = 0; mt < MPW; ++mt) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                l[mt][i] = __fadd_rn(l[mt][i], __shfl_xor_sync(0xffffffffu, l[mt][i], 1));
                l[mt][i] = __fadd_rn(l[mt][i], __shfl_xor_sync(0xffffffffu, l[mt][i], 2));
            }
        }
        for (int rt = 0; rt < n_rt; ++rt) {
            __syncthreads(); // every warp is done with the stages (or with the previous round)
#pragma unroll
            for (int mt = 0; mt < MPW; ++mt) {
                if (warp_m * mpw + mt == rt) {
#pragma unroll
                    for (int i = 0; i < 2; ++i) {
                        float * o = red_o + (warp_k * 16 + fr + 8 * i) * RS + 2 * fc;
#pragma unroll
                        for (int dt = 0; dt < NDT; ++dt) {
                            *reinterpret_cast<float2 *>(o + dt * 8) =
                                make_float2(acc[mt][dt][2 * i], acc[mt][dt][2 * i + 1]);
                        }
                        if (fc == 0) {
                            red_ml[(warp_k * 16 + fr + 8 * i) * 2] = m[mt][i];
                            red_ml[(warp_k * 16 + fr + 8 * i) * 2 + 1] = l[mt][i];
                        }
                    }
                }
            }
            __syncthreads();
            for (int e = tid; e < 16 * (HD / 2); e += NT) {
                const int qv = e / (HD / 2); // vector in the row tile
                const int qi = rt * 16 + qv;
                const int d = 2 * (e % (HD / 2));
                if (d >= hd || qi >= nq) {
                    continue;
                }
                float mx = -CUDART_INF_F;
                for (int k = 0; k < wk; ++k) {
                    mx = fmaxf(mx, red_ml[(k * 16 + qv) * 2]);
                }
                const float m_use = mx == -CUDART_INF_F ? 0.0f : mx;
                float sum = 0.0f;
                float2 o = make_float2(0.0f, 0.0f);
                for (int k = 0; k < wk; ++k) {
                    const int slot = k * 16 + qv;
                    const float wgt = exp2f(__fsub_rn(red_ml[slot * 2], m_use));
                    const float2 part = *reinterpret_cast<const float2 *>(red_o + slot * RS + d);
                    sum = __fmaf_rn(wgt, red_ml[slot * 2 + 1], sum);
                    o.x = __fmaf_rn(wgt, part.x, o.x);
                    o.y = __fmaf_rn(wgt, part.y, o.y);
                }
                const float inv = sum > 0.0f ? __frcp_rn(sum) : 0.0f;
                const float lse2 = sum > 0.0f ? __fadd_rn(mx, log2f(sum)) : -CUDART_INF_F;
                store_output(p, sg, w, qi, d, make_float2(__fmul_rn(o.x, inv), __fmul_rn(o.y, inv)), lse2, d == 0);
            }
        }
    };

    // Pipeline. The row offsets of block b (page-table and list lookups: dependent global loads) are computed by
    // threads < KT one iteration before block b's copy is issued, into ring slot b % ring, so the copies never wait
    // on them. Slot (b + stages) is written after the compute of iteration b and read after the next barrier.
    const int n_blk = (w.kv_end - w.kv_begin + KT - 1) / KT;
    const auto offset_of = [&](int blk) { return row_offset(p, sg, rows, w.kv_begin + blk * KT + tid, w.kv_end); };
    if (tid < KT) {
#pragma unroll
        for (int s = 0; s < attention_stages; ++s) {
            off_s[s * KT + tid] = s < n_blk ? offset_of(s) : -1;
        }
    }
    __syncthreads();
    const auto load = [&](int blk) {
        bf16 * k_s = stage_s + (blk % attention_stages) * 2 * KT * ST;
        load_block<HD, NT>(k_s, k_s + KT * ST, p, off_s + (blk % attention_offset_ring) * KT, vec16);
    };
#pragma unroll
    for (int s = 0; s < attention_stages - 1; ++s) {
        if (s < n_blk) {
            load(s);
        }
        cp_async_commit(); // empty groups keep the wait count uniform
    }

    const float qscale = p.scale * log2e;
    for (int blk = 0; blk < n_blk; ++blk) {
        cp_async_wait<attention_stages - 2>();
        __syncthreads(); // block blk is in shared memory; every warp is done with block blk - 1's stage
        if (blk + attention_stages - 1 < n_blk) {
            load(blk + attention_stages - 1);
        }
        cp_async_commit();
        const int ahead = blk + attention_stages;
        int64_t next_off = -1;
        if (tid < KT && ahead < n_blk) {
            next_off = offset_of(ahead); // in flight during the compute below
        }
        const bf16 * k_s = stage_s + (blk % attention_stages) * 2 * KT * ST;
        const bf16 * v_s = k_s + KT * ST;
        for (int c = warp_k; c < KT / CH; c += wk) {
            const int vc = w.kv_begin + blk * KT + c * CH;
            if (vc >= w.kv_end || vc > warp_vlim || vc + CH <= warp_vlo) {
                continue;
            }
            // S = Q Kᵀ over 16 positions: two n-tiles of 8 per row tile; the K fragments serve every row tile.
            float s[MPW][2][4];
#pragma unroll
            for (int mt = 0; mt < MPW; ++mt) {
#pragma unroll
                for (int nt = 0; nt < 2; ++nt) {
                    s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.0f;
                }
            }
            const bf16 * k_lane = k_s + (c * CH + (lane & 7) + (lane >> 4) * 8) * ST + ((lane >> 3) & 1) * 8;
#pragma unroll
            for (int ks = 0; ks < NKS; ++ks) {
                uint32_t kb[4];
                ldmatrix_x4(kb, smem_addr(k_lane + ks * 16));
                if constexpr (q_in_smem) {
#pragma unroll
                    for (int mt = 0; mt < MPW; ++mt) {
                        if (mt < mpw) {
                            // ldmatrix rows: lanes 0-15 rows of the row tile at columns 0-7 of the k-step, lanes
                            // 16-31 the same rows at columns 8-15 (registers then match qf's a0..a3).
                            uint32_t qa[4];
                            ldmatrix_x4(qa, smem_addr(q_piece(mt * 16 + (lane & 15), 2 * ks + (lane >> 4))));
                            mma_bf16_16816(s[mt][0], qa, kb[0], kb[1]);
                            mma_bf16_16816(s[mt][1], qa, kb[2], kb[3]);
                        }
                    }
                } else {
                    mma_bf16_16816(s[0][0], qf[q_in_smem ? 0 : ks], kb[0], kb[1]);
                    mma_bf16_16816(s[0][1], qf[q_in_smem ? 0 : ks], kb[2], kb[3]);
                }
            }
            // Mask, collect, and the online softmax of this thread's rows (a row's 16 columns live in one quad).
            uint32_t pa[MPW][4];
            float sv[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}}; // the sum vector's raw logits (its threads only)
#pragma unroll
            for (int mt = 0; mt < MPW; ++mt) {
                if (mt >= mpw) {
                    continue;
                }
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const float cmax = mask_chunk(s[mt], i, vc, fc, w.kv_end, vlo[mt][i], vlim[mt][i], crow[mt][i],
                                                  collects, p.scale, qscale, [&](int nt, int, float a, float b) {
                                                      if constexpr (SUMS) { // a select, not a branch: the store
                                                                            // waits for the chunk's end
                                                          sv[nt][0] = 2 * mt + i == sum_at ? a : sv[nt][0];
                                                          sv[nt][1] = 2 * mt + i == sum_at ? b : sv[nt][1];
                                                      }
                                                  });
                    const float m_new = fmaxf(m[mt][i], cmax);
                    const float m_use = m_new == -CUDART_INF_F ? 0.0f : m_new; // all masked so far: exp2 finite
                    const float alpha = exp2f(__fsub_rn(m[mt][i], m_use));
                    m[mt][i] = m_new;
                    float sum = 0.0f;
#pragma unroll
                    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
                        for (int e = 0; e < 2; ++e) {
                            float & x = s[mt][nt][2 * i + e];
                            x = exp2f(__fsub_rn(x, m_use));
                            sum = __fadd_rn(sum, x);
                        }
                    }
                    l[mt][i] = __fmaf_rn(l[mt][i], alpha, sum);
#pragma unroll
                    for (int dt = 0; dt < NDT; ++dt) {
                        acc[mt][dt][2 * i] = __fmul_rn(acc[mt][dt][2 * i], alpha);
                        acc[mt][dt][2 * i + 1] = __fmul_rn(acc[mt][dt][2 * i + 1], alpha);
                    }
                }
                // P's accumulator layout is the A fragment of a 16x16 tile.
                pa[mt][0] = pack_bf16x2(s[mt][0][0], s[mt][0][1]);
                pa[mt][1] = pack_bf16x2(s[mt][0][2], s[mt][0][3]);
                pa[mt][2] = pack_bf16x2(s[mt][1][0], s[mt][1][1]);
                pa[mt][3] = pack_bf16x2(s[mt][1][2], s[mt][1][3]);
            }
            // O += P V; the V fragments serve every row tile.
            const bf16 * v_lane = v_s + (c * CH + (lane & 7) + ((lane >> 3) & 1) * 8) * ST + (lane >> 4) * 8;
#pragma unroll
            for (int dp = 0; dp < NDT / 2; ++dp) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, smem_addr(v_lane + dp * 16));
#pragma unroll
                for (int mt = 0; mt < MPW; ++mt) {
                    if (mt < mpw) {
                        mma_bf16_16816(acc[mt][2 * dp], pa[mt], vb[0], vb[1]);
                        mma_bf16_16816(acc[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
                    }
                }
            }
            if (SUMS && sum_at >= 0) {
                // The sum vector's scaled logits, unmasked, as far as the work's range goes: once per chunk, after
                // the P V products (stored where computed, a branch of 4 lanes per vector and column pair: verify
                // +7-9% on the H200, against +4-5% this way).
                store_summed_chunk(sum_row, vc, fc, w.kv_end, sv);
            }
        }
        if (tid < KT) {
            off_s[(ahead % attention_offset_ring) * KT + tid] = next_off;
        }
    }
    finish(reinterpret_cast<float *>(stage_s)); // no copy is in flight: every block of the work item was waited for
    // The combine pass (launched as a programmatic dependent) may start its launch now; it still waits for this
    // grid's completion and memory before reading anything.
    pdl_launch_dependents();
}

} // namespace specattn
