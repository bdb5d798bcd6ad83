// Attention of verify tiles of 33-64 query vectors at head dim 128 on one warpgroup with wgmma (Hopper, sm_90a);
// optionally also of 17-32 (attention_plan_config::wgmma_row_tiles 2; the M of 64 then computes empty rows).
//
// The batch-invariant plans give such tiles (a G = 4 verify of 9-16 rows, a G = 8 one of 5-8) to
// attention_dsplit_kernel with four row tiles: 16 warps, one CTA per SM, and a CTA barrier every 64 positions that
// the warps wait at for 30% of their stalls, with nothing else on the SM to fill the gap (69-81% of the copy
// bandwidth, docs/perf_attention.md session 21). Here one warpgroup (4 warps, 128 threads) holds all 64 vectors:
// warp w the row tile of vectors 16 w .. 16 w + 15, each thread (g, c) = (lane / 4, lane % 4) its rows g and g + 8.
// Per 64-position block it issues
//   8 wgmma m64n64k16 for S = Q Kᵀ (Q's A fragments in registers, K from shared memory, head dims in k-step order),
//   4 wgmma m64n128k16 for O += P V (P's A fragments packed straight from the S registers, positions in order),
// where the split-D CTA issues 512 mma.sync. A row's 64 positions live in one quad, so P never goes through shared
// memory, and the only barrier is the copy ring's, among 128 threads: two CTAs per SM hide each other's.
//
// K and V of a block are stored as two halves of 64 head dims, [half][position][64]: rows of 128 bytes with the
// 128-byte swizzle the wgmma descriptors read (16-byte piece j of row r at piece j ^ (r % 8)), 3 blocks deep.
// Copies carry stream_kv's L2 policy as a constant (mma.cuh): with a createpolicy result in this loop ptxas 13.0
// emits the copy encoding that faults (class 0xdae, "Illegal instruction"; tools/check_cache_hint_copies.py).
// Evict-first keeps weight mode's rows in L2 for the score reduce: verify9 + collect + reduce at 1 x 128K 224.9 ->
// 216.1 us, the kernel's HBM writes 32.6 -> 9.9 MB (H100, session 22).
//
// NOTE(attn): a vector's arithmetic is attention_dsplit_kernel's step for step, so the invariant plans' guarantee
// holds across the two kernels (a decode row alone there, the same row in a tile here: the same bits):
//   - S over head dims in 16-wide k-steps in order (wgmma and mma.sync give the same fp32 bits, wgmma.cuh);
//   - mask_chunk per 16-position chunk (collected logits stored there), the block max from the four chunk maxima;
//   - the lazy running max: it moves when the block max exceeds it by more than attention_lazy_max;
//   - P = exp2(s - m) against the max the block ends with (split-D recomputes P where it moved, to the same bits),
//     rounded to bf16 for P V; the chunk sums in the same order (pairs, then across the quad), l rescaled before
//     the block's sums are added;
//   - O rescaled, then P V in 16-position k-steps in position order.
#pragma once

#include "kernels/attention_dsplit.cuh"
#include "kernels/wgmma.cuh"

namespace specattn {

constexpr int attention_wg_threads = 128; // one warpgroup
constexpr int attention_wg_stages = 3;
constexpr int attention_wg_head_dim = 128;
// One half of a K or V block: 64 positions x 64 head dims of bf16, 128-byte rows.
constexpr uint32_t attention_wg_half_bytes = attention_kv_block * 64 * sizeof(bf16);
constexpr uint32_t attention_wg_block_bytes = 2 * attention_wg_half_bytes;

// Dynamic shared memory: 1 KB of slack to align the ring to the swizzle's 1024 bytes, the K and V ring (96 KB),
// the offset ring. 99 KB: two CTAs per SM.
constexpr size_t attention_wg_smem_bytes() {
    return 1024 + static_cast<size_t>(attention_wg_stages) * 2 * attention_wg_block_bytes + attention_ring_bytes();
}

namespace attention_detail {

// Stages the 64 whole rows (128 head dims) at offsets off[0 .. 64) of one pool into the two swizzled halves at dst
// (1024-byte aligned) under the L2 policy `policy`: thread t copies 16-byte piece t % 8 of both halves of rows
// t / 8 + 16 k, so its shared addresses differ by immediates (the XOR phase row % 8 is the same for all four rows).
__device__ __forceinline__ void load_rows_wg(uint32_t dst, const bf16 * pool, const int64_t * off, uint64_t policy) {
    constexpr int rows_per_pass = attention_wg_threads / 8;
    constexpr int passes = attention_kv_block / rows_per_pass;
    const int tid = static_cast<int>(threadIdx.x);
    const int row = tid / 8;
    const int piece = tid % 8;
    copy_real_rows<passes, rows_per_pass, 2, rows_per_pass * 128, attention_wg_half_bytes, 64>(
        dst + static_cast<uint32_t>(row * 128 + ((piece ^ (row & 7)) << 4)), pool + piece * 8, off, row, policy);
}

} // namespace attention_detail

// grid: [n_work]  block: attention_wg_threads  dynamic smem: attention_wg_smem_bytes()
// Tiles of at most 64 vectors, head_dim exactly 128, no summed rows (logit-mode Collect-2-Query stays on split-D).
__global__ void __launch_bounds__(attention_wg_threads, 2) attention_wg_kernel(const attention_params p) {
    using namespace attention_detail;
    constexpr int KT = attention_kv_block;
    constexpr int CH = attention_chunk;
    constexpr int HD = attention_wg_head_dim;
    constexpr int NKS = HD / 16; // k-steps of Q Kᵀ
    constexpr int NS = attention_wg_stages;
    constexpr uint32_t HB = attention_wg_half_bytes;
    constexpr uint32_t BB = attention_wg_block_bytes;
    static_assert(KT == 4 * CH && KT == 64, "a block is four chunks and one wgmma N of 64");

    extern __shared__ __align__(16) unsigned char smem_raw[];
    const uint32_t raw = smem_addr(smem_raw);
    const uint32_t ring = (raw + 1023u) & ~1023u; // stage s: K at ring + 2 s BB, V BB after it
    int64_t * off_s = reinterpret_cast<int64_t *>(smem_raw + (ring - raw) + NS * 2 * BB); // [ring][KT]
    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % warp_size;
    const int warp = tid / warp_size; // row tile: vectors 16 warp ..
    const int fr = lane / 4;
    const int fc = lane % 4;
    const attention_work w = p.work[blockIdx.x];
    const attention_segment sg = p.segs[w.seg];
    const int group = static_cast<int>(p.n_head / p.n_head_kv);
    const int hd = static_cast<int>(p.head_dim);
    const int nq = w.n_rows * group;
    const work_rows rows = work_rows_of(p, sg, w);

    // The copy schedule of attention_dsplit_kernel with K and V of a block together: blocks b + 1 and b + 2 in
    // flight while b is computed; row offsets three blocks ahead in a ring of 4; positions past kv_end read the
    // last real row (masked).
    const int n_blk = (w.kv_end - w.kv_begin + KT - 1) / KT;
    const auto offset_of = [&](int blk) {
        return row_offset(p, sg, rows, min(w.kv_begin + blk * KT + tid, w.kv_end - 1), w.kv_end);
    };
    const auto offsets = [&](int blk) { return off_s + (blk % attention_offset_ring) * KT; };
    const auto k_stage = [&](int blk) { return ring + static_cast<uint32_t>(blk % NS) * 2 * BB; };
    // KV is read once per pass: evict-first where the plan asks (attention_params::stream_kv), as constants.
    const uint64_t kv_policy = p.stream_kv ? l2_policy_evict_first_bits : l2_policy_evict_normal_bits;
    const auto load_block = [&](int blk) {
        if (blk < n_blk) {
            load_rows_wg(k_stage(blk), p.k_pool, offsets(blk), kv_policy);
            load_rows_wg(k_stage(blk) + BB, p.v_pool, offsets(blk), kv_policy);
        }
    };
    static_assert(attention_offset_ring == 4 && NS == 3, "the schedule above");
    const auto start_pipeline = [&] {
        if (tid < KT) {
#pragma unroll
            for (int b = 0; b < 3; ++b) {
                off_s[b * KT + tid] = b < n_blk ? offset_of(b) : -1;
            }
        }
        __syncthreads();
        load_block(0);
        cp_async_commit();
        load_block(1);
        cp_async_commit();
    };
    if (w.early_copy) {
        start_pipeline();
    }
    pdl_wait();
    if (!w.early_copy) {
        start_pipeline();
    }

    int vlo[2];
    int vlim[2];
    bf16 * crow[2];
    uint32_t qf[NKS][4];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const tile_vector v = tile_vector_of(p, sg, w, warp * 16 + fr + 8 * i, true, -1);
        vlo[i] = v.vlo;
        vlim[i] = v.vlim;
        crow[i] = v.crow;
        load_q_fragments(qf, i, v, false, fc, hd, [](int) { return 0u; });
    }
    const bool collects = crow[0] != nullptr || crow[1] != nullptr;

    float m[2] = {-CUDART_INF_F, -CUDART_INF_F}; // running max, log2 units
    float l[2] = {0.0f, 0.0f};
    float o[HD / 8][4];
#pragma unroll
    for (int dt = 0; dt < HD / 8; ++dt) {
        o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
    }
    const float qscale = p.scale * log2e;
    for (int blk = 0; blk < n_blk; ++blk) {
        cp_async_wait<1>();
        fence_proxy_async_shared(); // this thread's copies of block blk, to the proxy wgmma reads through
        // Block blk is in shared memory; every thread's wgmma of block blk - 1 are done (waited for below), so its
        // stage takes block blk + 2.
        __syncthreads();
        load_block(blk + 2);
        cp_async_commit(); // empty groups past the last block keep the wait count uniform
        const int ahead = blk + 3;
        int64_t next_off = -1;
        if (tid < KT && ahead < n_blk) {
            next_off = offset_of(ahead); // in flight during the compute below
        }
        const uint32_t k_tile = k_stage(blk);
        const uint32_t v_tile = k_tile + BB;

        // S = Q Kᵀ: k-step ks reads head dims 16 ks .. of every position, 32 bytes on within a half.
        float s[KT / 8][4];
#pragma unroll
        for (int nt = 0; nt < KT / 8; ++nt) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        }
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < NKS; ++ks) {
            wgmma_m64n64k16(s, qf[ks], wgmma_desc_sw128(k_tile + (ks / 4) * HB + (ks % 4) * 32, 16, 1024));
        }
        wgmma_commit();
        wgmma_wait<0>();

        // Mask chunk by chunk (collected logits stored there), the block max, the lazy running max.
        float cmax[2][4];
#pragma unroll
        for (int part = 0; part < 4; ++part) {
            float(&chunk)[2][4] = *reinterpret_cast<float(*)[2][4]>(&s[2 * part]);
            const int vc = w.kv_begin + blk * KT + part * CH;
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                cmax[i][part] = mask_chunk(chunk, i, vc, fc, w.kv_end, vlo[i], vlim[i], crow[i], collects, p.scale,
                                           qscale, [](int, int, float, float) {});
            }
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const float bmax = fmaxf(fmaxf(cmax[i][0], cmax[i][1]), fmaxf(cmax[i][2], cmax[i][3]));
            const bool raise = bmax > __fadd_rn(m[i], attention_lazy_max); // -inf + x = -inf: a first finite max
            const float m_new = raise ? bmax : m[i];
            const float m_use = m_new == -CUDART_INF_F ? 0.0f : m_new;
            float csum[4];
#pragma unroll
            for (int part = 0; part < 4; ++part) {
                float sum = 0.0f;
#pragma unroll
                for (int nt = 2 * part; nt < 2 * part + 2; ++nt) {
                    const float p0 = exp2f(__fsub_rn(s[nt][2 * i], m_use));
                    const float p1 = exp2f(__fsub_rn(s[nt][2 * i + 1], m_use));
                    sum = __fadd_rn(__fadd_rn(sum, p0), p1);
                    s[nt][2 * i] = p0;
                    s[nt][2 * i + 1] = p1;
                }
                sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, 1));
                csum[part] = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, 2));
            }
            if (raise) {
                const float alpha = exp2f(__fsub_rn(m[i], m_new)); // 0 from -inf
                l[i] = __fmul_rn(l[i], alpha);
#pragma unroll
                for (int dt = 0; dt < HD / 8; ++dt) {
                    o[dt][2 * i] = __fmul_rn(o[dt][2 * i], alpha);
                    o[dt][2 * i + 1] = __fmul_rn(o[dt][2 * i + 1], alpha);
                }
                m[i] = m_new;
            }
            l[i] = __fadd_rn(l[i], __fadd_rn(__fadd_rn(__fadd_rn(csum[0], csum[1]), csum[2]), csum[3]));
        }

        // O += P V: k-step ks covers positions 16 ks .. (V rows 16 ks .., both halves through the leading offset).
        uint32_t pa[KT / CH][4];
#pragma unroll
        for (int ks = 0; ks < KT / CH; ++ks) {
            pa[ks][0] = pack_bf16x2(s[2 * ks][0], s[2 * ks][1]);
            pa[ks][1] = pack_bf16x2(s[2 * ks][2], s[2 * ks][3]);
            pa[ks][2] = pack_bf16x2(s[2 * ks + 1][0], s[2 * ks + 1][1]);
            pa[ks][3] = pack_bf16x2(s[2 * ks + 1][2], s[2 * ks + 1][3]);
        }
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < KT / CH; ++ks) {
            wgmma_m64n128k16_trans_b(o, pa[ks], wgmma_desc_sw128(v_tile + ks * CH * 128, HB, 1024));
        }
        wgmma_commit();
        wgmma_wait<0>();
        if (tid < KT) {
            off_s[(ahead % attention_offset_ring) * KT + tid] = next_off;
        }
    }

    // Each thread writes its two vectors' O rows (all head dims): out or the chunk's normalized partial.
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int qi = warp * 16 + fr + 8 * i;
        if (qi >= nq) {
            continue;
        }
        const float inv = l[i] > 0.0f ? __frcp_rn(l[i]) : 0.0f;
        const float lse2 = l[i] > 0.0f ? __fadd_rn(m[i], log2f(l[i])) : -CUDART_INF_F;
#pragma unroll
        for (int dt = 0; dt < HD / 8; ++dt) {
            const int d = dt * 8 + 2 * fc;
            store_output(p, sg, w, qi, d, make_float2(__fmul_rn(o[dt][2 * i], inv), __fmul_rn(o[dt][2 * i + 1], inv)),
                         lse2, d == 0);
        }
    }
    pdl_launch_dependents();
}

} // namespace specattn
