// Attention of decode, draft and verify tiles (up to 64 query vectors) with the head dims of O split over warps.
//
// Same work items, pipeline, masks, outputs and side outputs as attention_kernel (attention.cuh; read its header
// first); what differs is how the warps share a KV block. attention_kernel gives every warp all head dims of O for
// its query vectors, so a warp holds 64 fp32 accumulators per row tile (128 for a G = 4 verify's two) and rescales
// them all for each 16-position chunk: 2 warps per scheduler, and verify tiles measured at 72-80% of the copy
// bandwidth where decode reached 93-98% (docs/perf_attention.md, session 11), bound by the warps' instruction streams.
//
// Here a CTA has 4 warps per row tile of 16 query vectors (NRT = 1, 2 or 4 row tiles: 128, 256 or 512 threads; 4
// for the invariant plans' verify tiles of 33-64 vectors, a G = 8 verify of 5-8 rows or G = 4 of 9-16, so that these
// too read their KV once; one CTA per SM; at head dim 128 on Hopper attention_wg.cuh's warpgroup kernel takes those
// by default), and in iteration b of its loop warp `part` of row tile rt
//   1. settles the running max of block b - 1 (below) and recomputes that block's P where it moved;
//   2. computes S = Q Kᵀ of the tile's vectors over chunk `part` (16 positions) of block b (Q in registers), masks
//      it, stores collected logits, and publishes each vector's chunk max and P = exp2(S - m) (bf16) against the
//      vector's running max m as it stands, with the chunk sums;
//   3. accumulates O[:, slice part] += P V of block b - 1 over all its 64 positions, for head dims
//      [part HD/4, (part + 1) HD/4): 16 fp32 accumulators per thread at HD = 128.
// One CTA barrier per iteration separates what a block publishes from its use one iteration later (P, maxima and
// sums are double-buffered; V of a block is read one iteration after its K, so V has its own ring). K and V rows
// are stored without padding, 16-byte pieces swizzled by row (load_rows).
// The running max is lazy: it moves only when a block's max exceeds it by more than attention_lazy_max (always in
// a vector's first block), and then every warp recomputes that vector's P of block b - 1 and rescales (one more
// barrier of the row tile's warps); otherwise P > 1 up to 2^8 is kept, and the final normalization by l, summed
// against the same reference, gives the same softmax. The decision is per vector, from the chunk maxima every warp
// reads alike, so each of the 4 warps tracks the same (m, l) of its vectors and writes its own slice of O at the end:
// no merge of warps.
// NOTE(attn): a vector's arithmetic (when its max moves, the chunk order of its sums, the P V k-steps in position
// order) does not depend on NRT or on which other vectors share its tile, so a decode row alone and the same row in
// a verify tile get the same bits (the batch-invariant plans use this kernel for all their tiles).
#pragma once

#include "kernels/attention.cuh"

namespace specattn {

// The running max of a vector moves only when a block's max exceeds it by more than this (log2 units): P holds
// values up to 2^8 (bf16 and fp32 have the range).
constexpr float attention_lazy_max = 8.0f;

// P rows (bf16) of a block: 64 positions + 8 so ldmatrix's 8 rows hit distinct banks.
constexpr int attention_dsplit_p_stride = attention_kv_block + 8;
// K and V blocks in their rings: two in flight while one is read (V of block b is read one iteration after K).
constexpr int attention_dsplit_k_stages = 3;
constexpr int attention_dsplit_v_stages = 3;

// K or V rows of a block, swizzled instead of padded (load_rows<..., true>): the 6 KB the padding would take are
// what lets V have its own 3-stage ring beside K's at two CTAs per SM.
constexpr size_t attention_dsplit_block_bytes(int hd) {
    return static_cast<size_t>(attention_kv_block) * hd * sizeof(bf16);
}
// Per row tile and buffer: P [16][p_stride] bf16, then the chunk maxima and sums [16][4] fp32 each.
constexpr size_t attention_dsplit_tile_bytes() {
    return static_cast<size_t>(16) * (attention_dsplit_p_stride * sizeof(bf16) + 2 * 4 * sizeof(float));
}

// Dynamic shared memory of attention_dsplit_kernel<HD, NRT>: the K and V rings, the offset ring, and two buffers of
// the row tiles' P, maxima and sums. 109 KB at HD = 128 and NRT = 2: two CTAs per SM.
constexpr size_t attention_dsplit_smem_bytes(int hd, int nrt) {
    return (attention_dsplit_k_stages + attention_dsplit_v_stages) * attention_dsplit_block_bytes(hd) +
           attention_ring_bytes() + 2 * static_cast<size_t>(nrt) * attention_dsplit_tile_bytes();
}

// Resident CTAs per SM the instance is compiled for: at NRT = 4 one CTA's 512 threads at 128 registers take the
// whole register file (two would force 64 registers and spills).
constexpr int attention_dsplit_min_ctas(int hd, int nrt) {
    return nrt == 4 ? 1 : attention_min_ctas(hd);
}

// grid: [n_work]  block: NRT * attention_threads  dynamic smem: attention_dsplit_smem_bytes(HD, NRT)
template <int HD, int NRT, bool SUMS>
__global__ void __launch_bounds__(NRT * attention_threads, attention_dsplit_min_ctas(HD, NRT))
    attention_dsplit_kernel(const attention_params p) {
    using namespace attention_detail;
    constexpr int KT = attention_kv_block;
    constexpr int CH = attention_chunk;
    constexpr int NT = NRT * attention_threads;
    constexpr int NKS = HD / 16;   // k-steps of Q Kᵀ
    constexpr int SLICE = HD / 4;  // head dims of O per warp
    constexpr int NDT = SLICE / 8; // n-tiles of P V per warp
    constexpr int PS = attention_dsplit_p_stride;
    static_assert((NRT == 1 || NRT == 2 || NRT == 4) && KT == 4 * CH && NDT % 2 == 0, "tile shape");

    extern __shared__ __align__(16) unsigned char smem_raw[];
    constexpr size_t BB = attention_dsplit_block_bytes(HD);
    constexpr int KS = attention_dsplit_k_stages;
    constexpr int VS = attention_dsplit_v_stages;
    bf16 * k_ring = reinterpret_cast<bf16 *>(smem_raw);                           // [KS][KT][HD]
    bf16 * v_ring = reinterpret_cast<bf16 *>(smem_raw + KS * BB);                 // [VS][KT][HD]
    int64_t * off_s = reinterpret_cast<int64_t *>(smem_raw + (KS + VS) * BB);     // [ring][KT]
    unsigned char * tiles_s = smem_raw + (KS + VS) * BB + attention_ring_bytes(); // [2][NRT] tiles
    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % warp_size;
    const int warp = tid / warp_size;
    const int rt = warp / 4;   // this warp's row tile
    const int part = warp % 4; // its chunk of each block (S, P) and its slice of the head dims (O)
    const int fr = lane / 4;   // fragment row (and row of the second half: fr + 8)
    const int fc = lane % 4;   // fragment column pair
    // The plan (work, segments, page table) was uploaded before the forward's first grid: readable before pdl_wait.
    const attention_work w = p.work[blockIdx.x];
    const attention_segment sg = p.segs[w.seg];
    const int group = static_cast<int>(p.n_head / p.n_head_kv);
    const int hd = static_cast<int>(p.head_dim);
    const int nq = w.n_rows * group;
    const bool sum_vec = SUMS && w.sum_slot >= 0; // one more vector, nq: the sum of the summed rows' queries
    // Row tiles past the tile's vectors (a short tile in an NRT = 2 launch) only help load the blocks.
    const bool active = rt * 16 < nq + (sum_vec ? 1 : 0);
    const work_rows rows = work_rows_of(p, sg, w);
    const bool vec16 = hd % 8 == 0;

    // Copies: K of block b and V of block b - 1 in iteration b - 2, one group per iteration, so iteration b waits for
    // all but the newest group. Row offsets are computed by threads < KT three blocks ahead into a ring of 4.
    // Positions past kv_end (the last block's tail) read the last real row instead (masked, and finite, so P = 0
    // times it adds 0): load_rows then copies whole rows without a zero-fill (REAL_ROWS).
    const int n_blk = (w.kv_end - w.kv_begin + KT - 1) / KT;
    const auto offset_of = [&](int blk) {
        return row_offset(p, sg, rows, min(w.kv_begin + blk * KT + tid, w.kv_end - 1), w.kv_end);
    };
    const auto offsets = [&](int blk) { return off_s + (blk % attention_offset_ring) * KT; };
    // KV is read once per pass: evict-first where the plan asks (attention_params::stream_kv).
    const uint64_t kv_policy = p.stream_kv ? l2_policy_evict_first() : l2_policy_evict_normal();
    const auto load_k = [&](int blk) {
        if (blk < n_blk) {
            load_rows<HD, NT, true, true>(k_ring + (blk % KS) * KT * HD, p.k_pool, offsets(blk), hd, vec16, kv_policy);
        }
    };
    const auto load_v = [&](int blk) {
        if (blk < n_blk) {
            load_rows<HD, NT, true, true>(v_ring + (blk % VS) * KT * HD, p.v_pool, offsets(blk), hd, vec16, kv_policy);
        }
    };
    static_assert(attention_offset_ring == 4 && KS == 3 && VS == 3, "the schedule above");
    // The pipeline's first copies (K and V of block 0, K of block 1) and the offsets of blocks 0-2. Issued before
    // pdl_wait where the plan says those rows were written by earlier passes (attention_work::early_copy): their
    // latency then overlaps the grid ahead and this CTA's own loads of q below.
    const auto start_pipeline = [&] {
        if (tid < KT) {
#pragma unroll
            for (int b = 0; b < 3; ++b) {
                off_s[b * KT + tid] = b < n_blk ? offset_of(b) : -1;
            }
        }
        __syncthreads();
        load_k(0);
        load_v(0);
        cp_async_commit();
        load_k(1);
        cp_async_commit();
    };
    if (w.early_copy) {
        start_pipeline();
    }
    pdl_wait(); // q, the newest K/V rows and selection lists come from the grids ahead
    if (!w.early_copy) {
        start_pipeline();
    }

    // This thread's vectors qi = rt * 16 + fr + 8 i: their attended range, collected logit row, Q fragments (the
    // sum vector's after it is built, below, so the other vectors' loads are in flight meanwhile).
    int vlo[2];
    int vlim[2];
    bf16 * crow[2];
    uint32_t qf[NKS][4];
    const int sum_vlim = SUMS ? sum_vector_limit(sg, w, sum_vec) : -1;
    int sum_at = -1;           // which of the thread's two vectors is the sum vector
    float * sum_row = nullptr; // the sum vector's partial row
    bf16 * sum_q = reinterpret_cast<bf16 *>(tiles_s);
    const auto sum_pair = [&](int d) { return *reinterpret_cast<const uint32_t *>(sum_q + d); };
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const tile_vector v = tile_vector_of(p, sg, w, rt * 16 + fr + 8 * i, true, sum_vlim);
        vlo[i] = v.vlo;
        vlim[i] = v.vlim;
        crow[i] = v.crow;
        if (SUMS && v.is_sum) {
            sum_at = i;
            sum_row = sum_row_of(p, w);
        }
        load_q_fragments(qf, i, v, false, fc, hd, sum_pair);
    }
    // The sum vector, built by the CTA into the first P tile (free until the first block's P, which comes after the
    // loop's first CTA barrier) and read from there into the Q fragments of its threads.
    if constexpr (SUMS) {
        if (sum_vec) { // the same for the whole CTA
            for (int d = 2 * tid; d < HD; d += 2 * NT) {
                *reinterpret_cast<uint32_t *>(sum_q + d) = d < hd ? sum_vector_pair(p, sg, w, group, d) : 0u;
            }
            __syncthreads();
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                if (i == sum_at) {
                    load_q_fragments(qf, i, tile_vector{}, true, fc, hd, sum_pair);
                }
            }
        }
    }
    const bool collects = crow[0] != nullptr || crow[1] != nullptr;

    float m[2] = {-CUDART_INF_F, -CUDART_INF_F}; // running max, log2 units
    float l[2] = {0.0f, 0.0f};                   // running sum of the whole row
    float acc[NDT][4];
#pragma unroll
    for (int dt = 0; dt < NDT; ++dt) {
        acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
    }
    // This row tile's P, chunk maxima and chunk sums of block b: buffer b % 2.
    const auto p_tile = [&](int b) {
        return reinterpret_cast<bf16 *>(tiles_s + ((b & 1) * NRT + rt) * attention_dsplit_tile_bytes());
    };
    const auto cmax_tile = [&](int b) { return reinterpret_cast<float *>(p_tile(b) + 16 * PS); };
    const auto csum_tile = [&](int b) { return cmax_tile(b) + 16 * 4; };
    // Barrier of the row tile's 4 warps. Constant ids (1 + rt): with a computed one ptxas reserves all 16. At NRT = 2
    // the second test folds away (the code of NRT <= 2 as before NRT = 4 was added).
    const auto tile_barrier = [&] {
        if (rt == 0) {
            named_barrier(1, attention_threads);
        } else if (NRT == 2 || rt == 1) {
            named_barrier(2, attention_threads);
        } else if (rt == 2) {
            named_barrier(3, attention_threads);
        } else {
            named_barrier(4, attention_threads);
        }
    };

    // s: this thread's masked logits (log2 units) of its chunk of the latest block, kept one iteration for step 1.
    float s[2][4];
    // P = exp2(s - m) of vector i (= fr + 8 i) over this warp's chunk of block b into its P tile (bf16), and the
    // chunk sum. m = -inf (nothing attended yet) uses 0: exp2 of the masked -inf stays 0, the rest is recomputed.
    const auto publish_p = [&](int b, int i, float m_ref, bool write) {
        const float m_use = m_ref == -CUDART_INF_F ? 0.0f : m_ref;
        bf16 * pt = p_tile(b) + (fr + 8 * i) * PS + part * CH + 2 * fc;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
            const float p0 = exp2f(__fsub_rn(s[nt][2 * i], m_use));
            const float p1 = exp2f(__fsub_rn(s[nt][2 * i + 1], m_use));
            sum = __fadd_rn(__fadd_rn(sum, p0), p1);
            if (write) {
                *reinterpret_cast<uint32_t *>(pt + nt * 8) = pack_bf16x2(p0, p1);
            }
        }
        sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, 1));
        sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, 2));
        if (write && fc == 0) {
            csum_tile(b)[(fr + 8 * i) * 4 + part] = sum;
        }
    };

    const float qscale = p.scale * log2e;
    for (int blk = 0; blk <= n_blk; ++blk) {
        // Iteration blk: S and P of block blk (if any), P V of block blk - 1 (if any).
        cp_async_wait<1>();
        // K of blk and V of blk - 1 are in shared memory; every warp is done with iteration blk - 1: with K of
        // blk - 1, V of blk - 2 and the P buffer of blk - 2, which the copies and publishing below reuse.
        __syncthreads();
        load_v(blk + 1);
        load_k(blk + 2);
        cp_async_commit(); // empty groups past the last block keep the wait count uniform
        const int ahead = blk + 3;
        int64_t next_off = -1;
        if (tid < KT && ahead < n_blk) {
            next_off = offset_of(ahead); // in flight during the compute below
        }
        const int prev = blk - 1;
        if (active && prev >= 0) {
            // 1. Block prev's maxima, published before the barrier: a vector whose block max exceeds its running
            // max by more than attention_lazy_max (always in its first block) takes it, and every warp recomputes
            // that vector's P of its chunk of block prev and rescales. Per vector, from data every warp reads
            // alike, so the 4 warps agree; only the extra barrier is shared.
            float m_new[2];
            bool raise[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const float4 c4 = *reinterpret_cast<const float4 *>(cmax_tile(prev) + (fr + 8 * i) * 4);
                const float bmax = fmaxf(fmaxf(c4.x, c4.y), fmaxf(c4.z, c4.w));
                raise[i] = bmax > __fadd_rn(m[i], attention_lazy_max); // -inf + x = -inf: a first finite max raises
                m_new[i] = raise[i] ? bmax : m[i];
            }
            // The same 16 vectors in every warp of the row tile, so the vote agrees across them.
            if (__any_sync(0xffffffffu, raise[0] || raise[1])) {
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    publish_p(prev, i, m_new[i], raise[i]); // every lane: the sums shuffle across the warp
                }
                tile_barrier(); // the recomputed P and sums published
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    if (raise[i]) {
                        const float alpha = exp2f(__fsub_rn(m[i], m_new[i])); // 0 from -inf
                        l[i] = __fmul_rn(l[i], alpha);
#pragma unroll
                        for (int dt = 0; dt < NDT; ++dt) {
                            acc[dt][2 * i] = __fmul_rn(acc[dt][2 * i], alpha);
                            acc[dt][2 * i + 1] = __fmul_rn(acc[dt][2 * i + 1], alpha);
                        }
                        m[i] = m_new[i];
                    }
                }
            }
        }
        const int vc = w.kv_begin + blk * KT + part * CH; // first position of this warp's chunk of block blk
        if (active && blk < n_blk) {
            // 2. S over the chunk, masked, its collected logits stored; chunk maxima, P and chunk sums published.
            // Row part CH + (lane & 7) + 8 (lane / 16), piece 2 ks + (lane / 8) % 2, swizzled by row % 8 = lane % 8.
            const bf16 * k_row = k_ring + (blk % KS) * KT * HD + (part * CH + (lane & 7) + (lane >> 4) * 8) * HD;
            const int k_piece = ((lane >> 3) & 1) ^ (lane & 7);
#pragma unroll
            for (int nt = 0; nt < 2; ++nt) {
                s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            }
#pragma unroll
            for (int ks = 0; ks < NKS; ++ks) {
                uint32_t kb[4];
                ldmatrix_x4(kb, smem_addr(k_row + (((2 * ks) ^ k_piece) << 3)));
                mma_bf16_16816(s[0], qf[ks], kb[0], kb[1]);
                mma_bf16_16816(s[1], qf[ks], kb[2], kb[3]);
            }
            if (SUMS && sum_at >= 0) {
                // The sum vector's logits, unmasked, where computed (attention.cuh defers them; here that spilled):
                // one branch per chunk, taken by the quad that holds the vector.
                const bool first = sum_at == 0; // selects: an index computed at run time would put s in memory
                const float x[2][2] = {{first ? s[0][0] : s[0][2], first ? s[0][1] : s[0][3]},
                                       {first ? s[1][0] : s[1][2], first ? s[1][1] : s[1][3]}};
                store_summed_chunk(sum_row, vc, fc, w.kv_end, x);
            }
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const float cmax = mask_chunk(s, i, vc, fc, w.kv_end, vlo[i], vlim[i], crow[i], collects, p.scale,
                                              qscale, [](int, int, float, float) {});
                if (fc == 0) {
                    cmax_tile(blk)[(fr + 8 * i) * 4 + part] = cmax;
                }
                publish_p(blk, i, m[i], true);
            }
        }
        if (active && prev >= 0) {
            // 3. O[:, slice] += P V over block prev's 64 positions, in position order.
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const float4 c4 = *reinterpret_cast<const float4 *>(csum_tile(prev) + (fr + 8 * i) * 4);
                l[i] = __fadd_rn(l[i], __fadd_rn(__fadd_rn(__fadd_rn(c4.x, c4.y), c4.z), c4.w));
            }
            const bf16 * p_lane = p_tile(prev) + (lane & 15) * PS + (lane >> 4) * 8;
            // Row ks CH + (lane & 7) + 8 ((lane / 8) % 2), piece part SLICE / 8 + 2 dp + lane / 16, swizzled.
            const bf16 * v_row = v_ring + (prev % VS) * KT * HD + ((lane & 7) + ((lane >> 3) & 1) * 8) * HD;
            const int v_piece = (lane >> 4) ^ (lane & 7);
#pragma unroll
            for (int ks = 0; ks < KT / CH; ++ks) {
                uint32_t pa[4];
                ldmatrix_x4(pa, smem_addr(p_lane + ks * CH));
#pragma unroll
                for (int dp = 0; dp < NDT / 2; ++dp) {
                    uint32_t vb[4];
                    ldmatrix_x4_trans(vb,
                                      smem_addr(v_row + ks * CH * HD + (((part * SLICE / 8 + 2 * dp) ^ v_piece) << 3)));
                    mma_bf16_16816(acc[2 * dp], pa, vb[0], vb[1]);
                    mma_bf16_16816(acc[2 * dp + 1], pa, vb[2], vb[3]);
                }
            }
        }
        if (tid < KT) {
            off_s[(ahead % attention_offset_ring) * KT + tid] = next_off;
        }
    }

    // Each warp writes its slice of O of its vectors: out (unsplit tile) or the chunk's normalized partial; the
    // log-sum-exp once per vector (slice 0).
    if (active) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int qi = rt * 16 + fr + 8 * i;
            if (qi >= nq) {
                continue;
            }
            const float inv = l[i] > 0.0f ? __frcp_rn(l[i]) : 0.0f;
            const float lse2 = l[i] > 0.0f ? __fadd_rn(m[i], log2f(l[i])) : -CUDART_INF_F;
#pragma unroll
            for (int dt = 0; dt < NDT; ++dt) {
                const int d = part * SLICE + dt * 8 + 2 * fc;
                if (d < hd) {
                    store_output(p, sg, w, qi, d,
                                 make_float2(__fmul_rn(acc[dt][2 * i], inv), __fmul_rn(acc[dt][2 * i + 1], inv)), lse2,
                                 d == 0);
                }
            }
        }
    }
    pdl_launch_dependents();
}

} // namespace specattn
