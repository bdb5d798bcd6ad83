// Batch invariance of the decode / draft / verify path (forward_batch::prefill == false): a row's result must not
// depend on what else is in the batch, bit for bit, or greedy speculative decoding could not equal greedy
// autoregressive decoding on the GPU. The GEMMs and the attention kernel under the invariant plan here (a row's
// output, collected logits and LSE alone and inside verify passes and batches, bit for bit); the plan's tiles and
// splits here and in tests/unit; end to end in test_cuda_spec.cpp.
#include "backend/cuda/attention_plan.h"
#include "core/check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/gemm.h"
#include "kernels/paged_kv.h"
#include "ops_test_util.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>

using namespace specattn;
using namespace specattn::test;

TEST(cuda_invariance, gemm_rows_do_not_depend_on_the_number_of_rows) {
    SPECATTN_REQUIRE_GPU();
    cublaslt_gemm gemm;
    struct shape {
        int64_t n, k;
        gemm_out out;
    };
    // Llama-8B-like projections, scaled down, and an LM head with fp32 output.
    for (const shape & sh : {shape{1536, 1024, gemm_out::gemm_out_bf16}, shape{1024, 3584, gemm_out::gemm_out_bf16},
                             shape{8192, 512, gemm_out::gemm_out_f32}}) {
        const int64_t m_max = 100;
        const device_buffer x = upload(to_bf16(random_vec(static_cast<size_t>(m_max * sh.k), 1)));
        const device_buffer w = upload(to_bf16(random_vec(static_cast<size_t>(sh.n * sh.k), 2, -0.05f, 0.05f)));
        const size_t elem = sh.out == gemm_out::gemm_out_f32 ? 4 : 2;
        device_buffer y(static_cast<size_t>(m_max * sh.n) * elem);
        std::vector<unsigned char> first_row_ref; // row 0 with m = 1
        std::vector<unsigned char> row5_ref;      // row 5 with m = 7
        for (int64_t m : {1, 2, 7, 16, 33, 100}) {
            gemm.run(bptr(x), bptr(w), y.as<void>(), sh.out, m, sh.n, sh.k, nullptr, /*invariant=*/true);
            SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
            const std::vector<unsigned char> out = download<unsigned char>(y, static_cast<size_t>(m * sh.n) * elem);
            const size_t row = static_cast<size_t>(sh.n) * elem;
            if (m == 1) {
                first_row_ref.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(row));
            } else {
                EXPECT_EQ(std::memcmp(out.data(), first_row_ref.data(), row), 0)
                    << "row 0 of n " << sh.n << " k " << sh.k << " differs between m 1 and m " << m;
            }
            if (m == 7) {
                row5_ref.assign(out.begin() + static_cast<std::ptrdiff_t>(5 * row),
                                out.begin() + static_cast<std::ptrdiff_t>(6 * row));
            } else if (m > 7) {
                EXPECT_EQ(std::memcmp(out.data() + 5 * row, row5_ref.data(), row), 0)
                    << "row 5 of n " << sh.n << " k " << sh.k << " differs between m 7 and m " << m;
            }
        }
    }
}

namespace {

// An invariant plan's config for the Llama-8B layer shape (32 query heads, 8 KV heads: G = 4, 4 rows per tile),
// pages of 16, a workspace that never limits the split.
attention_plan_config llama8b_invariant_config() {
    attention_plan_config cfg;
    cfg.n_head = 32;
    cfg.n_head_kv = 8;
    cfg.page_size = 16;
    cfg.slot_capacity = 1 << 20;
    cfg.invariant = true;
    return cfg;
}

// A sequence's physical pages: page i of the sequence at (i * stride) % n (stride coprime to n: a permutation).
std::vector<int32_t> scattered_pages(int32_t n, int32_t stride = 1) {
    std::vector<int32_t> pages(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
        pages[static_cast<size_t>(i)] = static_cast<int32_t>((static_cast<int64_t>(i) * stride) % n);
    }
    return pages;
}

// A dense (causal) row of sequence seq at position pos over `pages`.
attention_plan_row dense_row(const std::vector<int32_t> & pages, int32_t seq, int64_t pos) {
    attention_plan_row r;
    r.pages = &pages;
    r.seq = seq;
    r.pos = pos;
    return r;
}

} // namespace

// The invariant plan, on the host (runs without a GPU): at most 32 query vectors per work item and one kernel shape
// whatever the batch, and KV chunks that start at multiples of attention_invariant_chunk, so a decode row and the
// same row inside a verify tile see the same chunk boundaries.
TEST(cuda_invariance, plan_tiles_and_splits_do_not_depend_on_the_batch) {
    const std::vector<int32_t> pages = scattered_pages(128);
    attention_plan_config cfg = llama8b_invariant_config();
    const auto chunks_of_row = [&](const std::vector<attention_plan_row> & rows, int64_t pos) {
        attention_plan plan;
        attention_plan_build(rows, cfg, plan);
        EXPECT_EQ(plan.mtiles_per_warp, 2) << "one kernel shape for every invariant plan";
        std::vector<std::pair<int32_t, int32_t>> out; // (kv_begin, kv_end) of KV head 0's work covering pos
        for (const attention_work & w : plan.work) {
            const attention_segment & s = plan.segs[static_cast<size_t>(w.seg)];
            EXPECT_LE(w.n_rows * 4, attention_invariant_tile_queries) << "at most two mma row tiles per work item";
            EXPECT_EQ(w.kv_begin % attention_invariant_chunk, 0) << "chunks start at multiples of the chunk";
            const int64_t first = s.pos0 + w.row0;
            if (w.kv_head == 0 && pos >= first && pos < first + w.n_rows) {
                // Each chunk a work item spans is its own partial result.
                for (int32_t b = w.kv_begin; b < w.kv_end; b += attention_invariant_chunk) {
                    const int32_t e = std::min<int32_t>(b + attention_invariant_chunk, w.kv_end);
                    out.emplace_back(b, std::min<int32_t>(e, static_cast<int32_t>(pos + 1)));
                }
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    const auto row = [&](int32_t seq, int64_t pos) { return dense_row(pages, seq, pos); };
    const int64_t pos = 1027;
    const auto alone = chunks_of_row({row(0, pos)}, pos);
    std::vector<attention_plan_row> verify; // another sequence first, then seven rows around pos
    verify.push_back(row(1, 300));
    for (int64_t p = pos - 2; p <= pos + 4; ++p) {
        verify.push_back(row(0, p));
    }
    auto in_verify = chunks_of_row(verify, pos);
    // The verify tile may hold one more chunk that is empty for this row (clipped to [b, b)); drop those.
    in_verify.erase(std::remove_if(in_verify.begin(), in_verify.end(), [](auto c) { return c.first >= c.second; }),
                    in_verify.end());
    EXPECT_EQ(alone, in_verify);
    EXPECT_EQ(alone.size(), 3u) << "1028 positions in chunks of 512";

    // A backend's longer chunk: the same, at its multiples.
    cfg.invariant_chunk = 2048;
    attention_plan plan;
    attention_plan_build(verify, cfg, plan);
    for (const attention_work & w : plan.work) {
        EXPECT_EQ(w.kv_begin % 2048, 0);
        EXPECT_LE(w.kv_end - w.kv_begin, 2048);
    }
    cfg.invariant_chunk = 1000; // not whole KV blocks
    EXPECT_THROW(attention_plan_build(verify, cfg, plan), specattn::error);
}

// The chunk a backend keeps for its life: full-context rows of a small decode batch fill one wave of CTAs (264 on
// the H200), longer as the batch grows, whole rows once the batch alone fills the wave; a batch that would leave
// much of a wave idle is split over several. Llama-8B shape: 8 KV heads.
TEST(cuda_invariance, invariant_chunk_grows_with_the_decode_batch) {
    EXPECT_EQ(attention_invariant_chunk_for(1, 8, 32768, 132, 2), 1024) << "33 chunks: 264 CTAs, one wave";
    EXPECT_EQ(attention_invariant_chunk_for(8, 8, 32768, 132, 2), 8192) << "4 chunks: 256 CTAs";
    EXPECT_EQ(attention_invariant_chunk_for(24, 8, 32768, 132, 2), 8192)
        << "4 chunks: 768 CTAs in 2.9 waves, not 192 unsplit rows · heads in 73% of one";
    EXPECT_EQ(attention_invariant_chunk_for(40, 8, 32768, 132, 2), 8192) << "320 rows · heads: 1,280 CTAs, 4.8 waves";
    EXPECT_EQ(attention_invariant_chunk_for(64, 8, 32768, 132, 2), 32768);
    EXPECT_EQ(attention_invariant_chunk_for(64, 8, 4096, 132, 2), 4096);
    EXPECT_EQ(attention_invariant_chunk_for(1, 8, 131072, 132, 2), 4032) << "33 chunks of whole KV blocks";
    EXPECT_EQ(attention_invariant_chunk_for(4, 8, 131000, 132, 2), 16384);
    EXPECT_EQ(attention_invariant_chunk_for(1, 8, 4200, 132, 2), 128) << "one short sequence: 264 CTAs, one wave";
    EXPECT_EQ(attention_invariant_chunk_for(8, 8, 4200, 132, 2), 1088);
    EXPECT_EQ(attention_invariant_chunk_for(2, 2, 4096, 132, 2), 128) << "the code model in the GPU spec tests";
    for (int64_t b : {1, 3, 8, 24, 64, 256}) {
        for (int64_t ctx : {1000, 4096, 32768, 131072}) {
            const int64_t c = attention_invariant_chunk_for(b, 8, ctx, 132, 2);
            EXPECT_EQ(c % attention_kv_block, 0);
            EXPECT_GE(c, 128);
            // A split grid keeps its waves at least 70% full, and is no slower by the model than the one-wave rule
            // (floor(264 / units) splits) it replaced.
            const int64_t units = b * 8;
            const int64_t splits = (ctx + c - 1) / c;
            const int64_t ctas = units * splits;
            const int64_t waves = (ctas + 263) / 264;
            if (splits > 1 && c > 128) { // (at the smallest chunk a short context cannot fill a wave)
                EXPECT_GE(10 * ctas, 7 * waves * 264) << "batch " << b << " ctx " << ctx;
            }
            const int64_t blocks = (ctx + attention_kv_block - 1) / attention_kv_block;
            const auto cost = [&](int64_t s) {
                return (units * s + 263) / 264 * ((blocks + s - 1) / s + attention_cta_fixed_blocks);
            };
            const int64_t one_wave = std::min(std::max<int64_t>(1, 264 / units), std::max<int64_t>(1, blocks / 2));
            EXPECT_LE(cost(attention_invariant_splits_for(b, 8, ctx, 132, 2)), cost(one_wave))
                << "batch " << b << " ctx " << ctx;
        }
    }
}

// Per-position chunks (attention_plan_config::invariant_splits, what a backend uses): a row's chunks are those of
// its own position, alone or inside a verification whose rows straddle a change of chunk (the tile is cut there),
// at most `splits` of them, so a short sequence in a long-context engine is split as finely as a long one.
TEST(cuda_invariance, per_position_chunks_do_not_depend_on_the_batch) {
    const std::vector<int32_t> pages = scattered_pages(8200, 37);
    constexpr int64_t splits = 33; // batch 1, 8 KV heads, 132 SMs x 2
    EXPECT_EQ(attention_invariant_splits_for(1, 8, 131072, 132, 2), splits);
    EXPECT_EQ(attention_invariant_chunk_at(6335, splits), 192);
    EXPECT_EQ(attention_invariant_chunk_at(6336, splits), 256) << "6,337 positions / 33 > 192";
    EXPECT_EQ(attention_invariant_chunk_at(130999, splits), 4032);
    EXPECT_EQ(attention_invariant_chunk_at(10, splits), 128);
    attention_plan_config cfg = llama8b_invariant_config();
    cfg.invariant_splits = splits;
    cfg.invariant_chunk = 0; // unused by a per-position plan (the GPU test passes 0 too)
    const auto row = [&](int32_t seq, int64_t pos) { return dense_row(pages, seq, pos); };
    // (kv_begin, kv_end clipped to pos + 1) of KV head 0's work items over position pos; empty ones dropped.
    const auto chunks_of_row = [&](const std::vector<attention_plan_row> & rows, int64_t pos) {
        attention_plan plan;
        attention_plan_build(rows, cfg, plan);
        std::vector<std::pair<int32_t, int32_t>> out;
        for (const attention_work & w : plan.work) {
            const attention_segment & s = plan.segs[static_cast<size_t>(w.seg)];
            const int64_t first = s.pos0 + w.row0;
            if (w.kv_head == 0 && pos >= first && pos < first + w.n_rows) {
                const int32_t e = std::min<int32_t>(w.kv_end, static_cast<int32_t>(pos + 1));
                if (w.kv_begin < e) {
                    out.emplace_back(w.kv_begin, e);
                }
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    for (int64_t center : {int64_t{6336}, int64_t{4098}, int64_t{130996}, int64_t{40}}) {
        std::vector<attention_plan_row> verify{row(1, 2000)};
        for (int64_t p = center - 3; p <= center + 3; ++p) {
            verify.push_back(row(0, p));
        }
        for (int64_t p = center - 3; p <= center + 3; ++p) {
            const auto alone = chunks_of_row({row(0, p)}, p);
            EXPECT_EQ(alone, chunks_of_row(verify, p)) << "position " << p;
            EXPECT_LE(static_cast<int64_t>(alone.size()), splits) << "position " << p;
            const int64_t c = attention_invariant_chunk_at(p, splits);
            for (const auto & [b, e] : alone) {
                EXPECT_EQ(b % c, 0) << "position " << p << ": chunks start at multiples of its chunk";
            }
        }
    }
}

// The single-tile warp shape (attention_plan_config::single_tile_mpw1): decode-only invariant plans
// launch MPW = 1, any plan with a tile of more than 16 query vectors (a G = 4 verification of 5+ rows) MPW = 2;
// off, every invariant plan is MPW = 2.
TEST(cuda_invariance, single_tile_warp_shape_only_for_decode_only_plans) {
    const std::vector<int32_t> pages = scattered_pages(64);
    attention_plan_config cfg = llama8b_invariant_config();
    const auto rows_of = [&](int32_t seq, int64_t pos, int64_t n) {
        std::vector<attention_plan_row> rows;
        for (int64_t p = pos; p < pos + n; ++p) {
            rows.push_back(dense_row(pages, seq, p));
        }
        return rows;
    };
    std::vector<attention_plan_row> decode = rows_of(0, 500, 1);
    const std::vector<attention_plan_row> other = rows_of(1, 300, 1);
    decode.insert(decode.end(), other.begin(), other.end());
    const std::vector<attention_plan_row> verify = rows_of(0, 500, 5);
    attention_plan plan;
    for (bool on : {false, true}) {
        cfg.single_tile_mpw1 = on;
        attention_plan_build(decode, cfg, plan);
        EXPECT_EQ(plan.mtiles_per_warp, on ? 1 : 2) << "decode, experiment " << on;
        attention_plan_build(verify, cfg, plan);
        EXPECT_EQ(plan.mtiles_per_warp, 2) << "verify, experiment " << on;
    }
}

// The split-D kernel (attention_plan_config::split_d) runs every tile of up to 32 query vectors, so a decode row and
// the same row in a verification go through one kernel in invariant and heuristic plans alike: one row tile for
// decode-only plans, two for a G = 4 verification of 5 rows. Invariant plans also give it tiles of 33-64 vectors
// (four row tiles), heuristic ones leave those to attention.cuh (a 16-row prefill tile).
TEST(cuda_invariance, split_d_kernel_for_every_tile_of_up_to_32_vectors) {
    const std::vector<int32_t> pages = scattered_pages(64);
    const auto rows_of = [&](int64_t pos, int64_t n) {
        std::vector<attention_plan_row> rows;
        for (int64_t p = pos; p < pos + n; ++p) {
            rows.push_back(dense_row(pages, 0, p));
        }
        return rows;
    };
    attention_plan plan;
    for (bool invariant : {true, false}) {
        attention_plan_config cfg = llama8b_invariant_config();
        cfg.invariant = invariant;
        cfg.split_d = true;
        attention_plan_build(rows_of(500, 1), cfg, plan);
        EXPECT_EQ(plan.split_d_row_tiles, 1) << "decode, invariant " << invariant;
        attention_plan_build(rows_of(500, 5), cfg, plan);
        EXPECT_EQ(plan.split_d_row_tiles, 2) << "verify, invariant " << invariant;
        attention_plan_build(rows_of(500, 16), cfg, plan);
        EXPECT_EQ(plan.split_d_row_tiles, invariant ? 4 : 0) << "a tile of 64 vectors, invariant " << invariant;
        // The warpgroup kernel (attention_plan_config::wgmma_row_tiles) takes launches of that many row tiles or more.
        cfg.wgmma_row_tiles = 4;
        EXPECT_EQ(attention_params_from_plan(plan, cfg, {}).wgmma, invariant) << "invariant " << invariant;
        attention_plan_build(rows_of(500, 5), cfg, plan);
        EXPECT_FALSE(attention_params_from_plan(plan, cfg, {}).wgmma) << "two row tiles, invariant " << invariant;
        cfg.wgmma_row_tiles = 2;
        EXPECT_TRUE(attention_params_from_plan(plan, cfg, {}).wgmma) << "two row tiles, invariant " << invariant;
        attention_plan_build(rows_of(500, 1), cfg, plan);
        EXPECT_FALSE(attention_params_from_plan(plan, cfg, {}).wgmma) << "one row tile, invariant " << invariant;
        cfg.wgmma_row_tiles = 0;
        cfg.split_d = false;
        attention_plan_build(rows_of(500, 5), cfg, plan);
        EXPECT_EQ(plan.split_d_row_tiles, 0) << "off, invariant " << invariant;
    }
}

// A G = 4 verification of 8 rows (gamma 7) whose first and last rows are summed (Collect-2-Query's logit mode) is 33
// query vectors with its sum vector: the invariant split-D plan keeps it one tile, so its KV is read once per KV
// head (one work item per KV head and chunk), where 32-vector tiles cut it into 7 + 1 rows that both read it. (The
// CUDA backend does not ask for this one: four row tiles made it 1.55x plain verify8 on the H100, so it collects such
// rows per head instead, cuda_selection::plan_rows; tiles of 33-64 vectors without a sum vector keep it.)
TEST(cuda_invariance, summed_verify_of_8_rows_reads_its_kv_once) {
    const std::vector<int32_t> pages = scattered_pages(64);
    for (bool split_d : {true, false}) {
        attention_plan_config cfg = llama8b_invariant_config();
        cfg.split_d = split_d;
        cfg.sum_cap = 1024;
        std::vector<attention_plan_row> rows;
        for (int64_t p = 900; p < 908; ++p) {
            rows.push_back(dense_row(pages, 0, p));
            rows.back().sum_target = p == 900 || p == 907 ? 0 : -1;
        }
        attention_plan plan;
        attention_plan_build(rows, cfg, plan);
        const int64_t chunks = 2; // 908 positions in chunks of 512
        EXPECT_EQ(static_cast<int64_t>(plan.work.size()), cfg.n_head_kv * chunks * (split_d ? 1 : 2))
            << "split-D " << split_d;
        EXPECT_EQ(plan.split_d_row_tiles, split_d ? 4 : 0);
        EXPECT_EQ(plan.n_sum_slots, split_d ? 1 : 2);
    }
    // What the backend asks for instead (cuda_selection::plan_rows): sums only where two row tiles hold them.
    EXPECT_TRUE(attention_sum_vector_fits(4, 7));
    EXPECT_FALSE(attention_sum_vector_fits(4, 8));
    EXPECT_TRUE(attention_sum_vector_fits(2, 7)) << "cuda_spec's fixture, 7 summed rows";
    EXPECT_FALSE(attention_sum_vector_fits(2, 19)) << "cuda_spec's fixture, the 19-row sink it collects";
}

// Draft rows (sparse lists) in an invariant plan are split as the heuristic plan splits them: one draft row of a
// 9,000-entry list gets a wave's worth of CTAs, while a dense row beside it keeps the backend's chunk.
TEST(cuda_invariance, draft_rows_of_an_invariant_plan_are_split_for_the_wave) {
    const std::vector<int32_t> pages = scattered_pages(8192);
    attention_plan_config cfg = llama8b_invariant_config();
    cfg.sel_cap = 16384;
    cfg.invariant_chunk = 4032;
    attention_plan_row draft;
    draft.pages = &pages;
    draft.seq = 0;
    draft.pos = 131000;
    draft.sel = 0;
    draft.sel_n = 9000;
    draft.sel_recent = 130990;
    attention_plan_row dense = draft;
    dense.seq = 1;
    dense.sel = -1;
    dense.sel_n = 0;
    dense.sel_recent = 0;
    attention_plan plan;
    attention_plan_build({draft, dense}, cfg, plan);
    int64_t draft_items = 0;
    int64_t dense_items = 0;
    for (const attention_work & w : plan.work) {
        const attention_segment & s = plan.segs[static_cast<size_t>(w.seg)];
        if (s.sel >= 0) {
            ++draft_items;
        } else {
            ++dense_items;
            EXPECT_EQ(w.kv_begin % cfg.invariant_chunk, 0) << "dense rows keep the backend's chunks";
        }
    }
    EXPECT_EQ(dense_items, 8 * 33) << "131,001 positions in chunks of 4032, per KV head";
    EXPECT_GE(draft_items, 8 * 16) << "the draft row is split along its list (9,011 entries would be 3 chunks)";
}

namespace {

// One attention launch under the invariant plan over a shared paged pool; what it wrote, as raw bits.
struct attn_pass_out {
    std::vector<uint16_t> out;    // [rows, H, D]
    std::vector<uint16_t> logits; // [n_collect, H, cap]
    std::vector<float> lse;       // [n_collect, H]
};

struct attn_world {
    int64_t group, n_head_kv, head_dim, page_size, cap;
    paged_kv_layout layout;
    std::vector<std::vector<int32_t>> pages; // per sequence
    std::vector<int64_t> lens;
    device_buffer k, v, q; // q: [n_seq, max_len, H, D], the query of (sequence, position)
    int64_t max_len = 0;
};

// Sequences of the given lengths on shuffled pages of a NaN-filled pool (one spare NaN position past each end).
attn_world make_world(int64_t group, int64_t n_head_kv, int64_t hd, int64_t page_size,
                      const std::vector<int64_t> & lens) {
    attn_world w{group,           n_head_kv, hd, page_size, 0, {}, {}, lens, device_buffer(1), device_buffer(1),
                 device_buffer(1)};
    w.max_len = *std::max_element(lens.begin(), lens.end());
    w.cap = w.max_len + 3;
    w.layout.n_layer = 1;
    w.layout.n_head_kv = n_head_kv;
    w.layout.page_size = page_size;
    w.layout.head_dim = hd;
    int64_t n_pages = 3;
    for (int64_t len : lens) {
        n_pages += len / page_size + 1;
    }
    w.layout.n_pages = n_pages;
    std::vector<int32_t> perm(static_cast<size_t>(n_pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(11));
    size_t next = 0;
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<uint16_t> kp(static_cast<size_t>(w.layout.total_elems()), f32_to_bf16(nan_f));
    std::vector<uint16_t> vp(kp.size(), f32_to_bf16(nan_f));
    for (int64_t len : lens) {
        std::vector<int32_t> pg;
        for (int64_t i = 0; i < len / page_size + 1; ++i) {
            pg.push_back(perm[next++]);
        }
        const paged_kv_seq view{pg.data(), len};
        for (int64_t t = 0; t < len; ++t) {
            for (int64_t h = 0; h < n_head_kv; ++h) {
                const int64_t off = paged_kv_offset(w.layout, view, 0, h, t);
                for (int64_t d = 0; d < hd; ++d) {
                    kp[static_cast<size_t>(off + d)] = f32_to_bf16(2.0f * dist(rng));
                    vp[static_cast<size_t>(off + d)] = f32_to_bf16(dist(rng));
                }
            }
        }
        w.pages.push_back(pg);
    }
    const int64_t n_head = group * n_head_kv;
    w.k = upload(kp);
    w.v = upload(vp);
    w.q = upload(to_bf16(random_vec(static_cast<size_t>(lens.size() * w.max_len * n_head * hd), 9)));
    return w;
}

struct pass_row {
    int32_t seq;
    int64_t pos;
    bool collect;
};

// Which kernel an invariant plan runs: attention.cuh's for every tile, the split-D kernel for every tile
// (attention_plan_config::split_d, the backends' default), or split-D with its tiles of four row tiles on
// attention_wg.cuh's warpgroup kernel (attention_plan_config::wgmma_row_tiles 2: two and four row tiles; split-D
// where the GPU lacks it).
enum class attn_kernel { tiles, split_d, wgmma };

const char * kernel_name(attn_kernel k) {
    return k == attn_kernel::tiles ? "" : (k == attn_kernel::split_d ? " split-D" : " split-D+wgmma");
}

// chunk: the fixed invariant chunk; splits > 0: per-position chunks instead (attention_plan_config).
attn_pass_out run_pass(const attn_world & w, int64_t chunk, int64_t splits, attn_kernel kernel,
                       const std::vector<pass_row> & rows) {
    const int64_t n_head = w.group * w.n_head_kv;
    const int64_t hd = w.head_dim;
    std::vector<attention_plan_row> plan_rows;
    std::vector<uint16_t> q_rows; // the rows' queries gathered from the world's table
    const std::vector<uint16_t> q_all =
        download<uint16_t>(w.q, static_cast<size_t>(w.lens.size() * w.max_len * n_head * hd));
    for (const pass_row & r : rows) {
        attention_plan_row pr{&w.pages[static_cast<size_t>(r.seq)], r.seq, r.pos};
        pr.collect = r.collect;
        plan_rows.push_back(pr);
        const auto at = q_all.begin() + (r.seq * w.max_len + r.pos) * n_head * hd;
        q_rows.insert(q_rows.end(), at, at + n_head * hd);
    }
    attention_plan_config pc;
    pc.n_head = n_head;
    pc.n_head_kv = w.n_head_kv;
    pc.page_size = w.page_size;
    pc.slot_capacity = 1;
    pc.invariant = true;
    pc.invariant_chunk = chunk;
    pc.invariant_splits = splits;
    pc.collect_cap = w.cap;
    pc.single_tile_mpw1 = attention_decode_mpw1_from_env(); // SPECATTN_ATTN_DECODE_MPW1=0: the plain shape
    pc.split_d = kernel != attn_kernel::tiles;
    pc.wgmma_row_tiles = kernel == attn_kernel::wgmma ? 2 : 0;
    attention_plan plan;
    attention_plan_build(plan_rows, pc, plan);
    const auto n_rows = static_cast<int64_t>(rows.size());
    const device_buffer d_table = upload(plan.page_table);
    const device_buffer d_segs = upload(plan.segs);
    const device_buffer d_work = upload(plan.work);
    const device_buffer d_slot = upload(plan.row_slot);
    const device_buffer d_nsplit = upload(plan.row_n_split);
    const size_t n_slots = static_cast<size_t>(std::max<int64_t>(plan.n_slots, 1));
    const device_buffer d_po = upload(std::vector<float>(n_slots * static_cast<size_t>(n_head * hd), nan_f));
    const device_buffer d_pl = upload(std::vector<float>(n_slots * static_cast<size_t>(n_head), nan_f));
    const device_buffer d_q = upload(q_rows);
    const size_t out_n = static_cast<size_t>(n_rows * n_head * hd);
    const device_buffer d_out = upload(std::vector<uint16_t>(out_n, f32_to_bf16(nan_f)));
    const size_t cl_n = static_cast<size_t>(std::max<int64_t>(plan.n_collect, 1) * n_head * w.cap);
    const size_t cs_n = static_cast<size_t>(std::max<int64_t>(plan.n_collect, 1) * n_head);
    const device_buffer d_cl = upload(std::vector<uint16_t>(cl_n, f32_to_bf16(nan_f)));
    const device_buffer d_cs = upload(std::vector<float>(cs_n, nan_f));
    const attention_plan_device dev{d_table.as<int32_t>(), d_segs.as<attention_segment>(), d_work.as<attention_work>(),
                                    d_slot.as<int32_t>(), d_nsplit.as<int32_t>()};
    attention_params p = attention_params_from_plan(plan, pc, dev);
    p.q = bptr(d_q);
    p.q_row_stride = n_head * hd;
    p.k_pool = bptr(w.k);
    p.v_pool = bptr(w.v);
    p.partial_o = dptr<float>(d_po);
    p.partial_lse = dptr<float>(d_pl);
    p.out = bptr(d_out);
    p.head_dim = hd;
    p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    p.collect_logits = bptr(d_cl);
    p.collect_lse = dptr<float>(d_cs);
    launch_attention(p, nullptr);
    SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
    return {download<uint16_t>(d_out, out_n), download<uint16_t>(d_cl, cl_n), download<float>(d_cs, cs_n)};
}

struct inv_case {
    int64_t group, n_head_kv, head_dim, page_size;
    std::vector<int64_t> lens; // sequence 0 is verified; the others share the batch
    int64_t chunk = attention_invariant_chunk;
    int64_t splits = 0; // > 0: per-position chunks (what a backend runs), chunk unused
};

// Every case once with each kernel; the warpgroup kernel only where it can run (head dim 128).
std::vector<std::pair<inv_case, attn_kernel>> cases_with_every_kernel(const std::vector<inv_case> & cases) {
    std::vector<std::pair<inv_case, attn_kernel>> out;
    for (attn_kernel k : {attn_kernel::tiles, attn_kernel::split_d, attn_kernel::wgmma}) {
        for (const inv_case & c : cases) {
            if (k != attn_kernel::wgmma || c.head_dim == 128) { // attention_wg_head_dim
                out.emplace_back(c, k);
            }
        }
    }
    return out;
}

} // namespace

// The attention kernel under the invariant plan: each row of a 7-row verify of sequence 0 (inside a batch with
// other sequences' decode and verify rows, before and after it) equals, bit for bit, the same row decoded alone, in
// its output, its collected logits and its LSE. Lengths 1, 17, 97, 515, 4099 (515 and 4099: the verify rows
// straddle a 512-position chunk boundary), G 1, 4 and 8, page sizes 16 and 7; pools, partials, outputs and collect
// buffers NaN-poisoned. Every kernel: attention.cuh; the split-D kernel, where a G = 8 verify tile (56 vectors)
// has four row tiles and the row alone one; and at head dim 128 split-D with the verify tiles of two and four row
// tiles on the warpgroup kernel (attention_wg.cuh), against the row alone on split-D.
TEST(cuda_invariance, attention_row_alone_equals_row_in_verify_and_batch) {
    SPECATTN_REQUIRE_GPU();
    const std::vector<inv_case> cases = {
        {4, 2, 128, 16, {4099, 17, 97}},
        {4, 2, 128, 7, {97, 4099}},
        {8, 2, 128, 16, {4099, 1}},
        {1, 4, 64, 16, {17, 4099}},
        {4, 2, 64, 7, {1, 97}},
        {8, 1, 128, 16, {17, 4099, 1}},
        {4, 2, 128, 16, {515, 97}}, // position 508 alone is one chunk; in the verify tile it has an empty second
        // Longer chunks (a backend decoding a large batch keeps one, attention_invariant_chunk_for)
        {4, 2, 128, 16, {2051, 4099, 97}, 2048},
        {8, 1, 128, 7, {4099, 17}, 4096},
        {4, 2, 128, 16, {259, 97}, 128},
        // Per-position chunks: 33 splits (batch 1 on the H200); 6340's verify rows 6333..6339 straddle the change
        // from 192- to 256-position chunks at 6336 (the plan cuts the tile there); 2 splits: 2 long chunks.
        {4, 2, 128, 16, {6340, 97}, 0, 33},
        {8, 1, 128, 7, {4099, 17}, 0, 33},
        {4, 2, 128, 16, {4099, 515}, 0, 2},
        {8, 1, 64, 16, {4099, 97}, 0, 33},
    };
    for (const auto & [c, kernel] : cases_with_every_kernel(cases)) {
        const attn_world w = make_world(c.group, c.n_head_kv, c.head_dim, c.page_size, c.lens);
        const int64_t n_head = c.group * c.n_head_kv;
        const int64_t len0 = c.lens[0];
        const int64_t n_verify = std::min<int64_t>(7, len0);
        // The batch: another sequence's decode row, sequence 0's verify rows (all collected), the others' last rows
        // (and a 3-row verify of the last sequence where it is long enough).
        std::vector<pass_row> batch;
        if (c.lens.size() > 1) {
            batch.push_back({1, c.lens[1] - 1, false});
        }
        const size_t first = batch.size();
        for (int64_t i = 0; i < n_verify; ++i) {
            batch.push_back({0, len0 - n_verify + i, true});
        }
        for (size_t s = 2; s < c.lens.size(); ++s) {
            const int64_t nr = std::min<int64_t>(3, c.lens[s]);
            for (int64_t i = 0; i < nr; ++i) {
                batch.push_back({static_cast<int32_t>(s), c.lens[s] - nr + i, i == nr - 1});
            }
        }
        const attn_pass_out in_batch = run_pass(w, c.chunk, c.splits, kernel, batch);
        std::vector<pass_row> verify_only(batch.begin() + static_cast<std::ptrdiff_t>(first),
                                          batch.begin() + static_cast<std::ptrdiff_t>(first + n_verify));
        const attn_pass_out in_verify = run_pass(w, c.chunk, c.splits, kernel, verify_only);
        const size_t row_n = static_cast<size_t>(n_head * c.head_dim);
        const size_t crow_n = static_cast<size_t>(n_head * w.cap);
        char name_buf[64];
        std::snprintf(
            name_buf, sizeof(name_buf),
            c.splits > 0 ? "G%lld D%lld page %lld len %lld splits %lld" : "G%lld D%lld page %lld len %lld chunk %lld",
            static_cast<long long>(c.group), static_cast<long long>(c.head_dim), static_cast<long long>(c.page_size),
            static_cast<long long>(len0), static_cast<long long>(c.splits > 0 ? c.splits : c.chunk));
        const std::string name = std::string(name_buf) + kernel_name(kernel);
        for (int64_t i = 0; i < n_verify; ++i) {
            const int64_t pos = len0 - n_verify + i;
            const attn_pass_out alone = run_pass(w, c.chunk, c.splits, kernel, {{0, pos, true}});
            for (const uint16_t x : alone.out) {
                ASSERT_FALSE(std::isnan(bf16_to_f32(x))) << name << ": unwritten output, position " << pos;
            }
            const auto same = [&](const attn_pass_out & o, size_t row, size_t crow, const char * where) {
                EXPECT_EQ(std::memcmp(o.out.data() + row * row_n, alone.out.data(), row_n * 2), 0)
                    << name << ": output of position " << pos << " alone differs from " << where;
                // Collected logits: the attended positions [0, pos] and the untouched NaN tail, bit for bit.
                for (int64_t h = 0; h < n_head; ++h) {
                    const uint16_t * a = alone.logits.data() + h * w.cap;
                    const uint16_t * b = o.logits.data() + crow * crow_n + h * w.cap;
                    EXPECT_EQ(std::memcmp(a, b, static_cast<size_t>(pos + 1) * 2), 0)
                        << name << ": logits of position " << pos << " head " << h << " differ in " << where;
                    EXPECT_TRUE(std::isnan(bf16_to_f32(b[pos + 1]))) << name << ": logit past position " << pos;
                }
                EXPECT_EQ(std::memcmp(o.lse.data() + crow * static_cast<size_t>(n_head), alone.lse.data(),
                                      static_cast<size_t>(n_head) * 4),
                          0)
                    << name << ": LSE of position " << pos << " differs in " << where;
            };
            same(in_verify, static_cast<size_t>(i), static_cast<size_t>(i), "the verify pass");
            same(in_batch, first + static_cast<size_t>(i), static_cast<size_t>(i), "the batch");
        }
        std::printf("[ op ] invariant attention %-28s verify rows %lld, batch rows %zu: bit-identical\n", name.c_str(),
                    static_cast<long long>(n_verify), batch.size());
    }
}
