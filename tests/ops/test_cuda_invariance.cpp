// Batch invariance of the decode / draft / verify path (forward_batch::prefill == false): a row's result must not
// depend on what else is in the batch, bit for bit, or greedy speculative decoding could not equal greedy
// autoregressive decoding on the GPU. The GEMMs here; the attention plan's invariant tiles and splits in
// tests/unit (plan only) and end to end in test_cuda_spec.cpp.
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/gemm.h"
#include "ops_test_util.h"

#include <algorithm>
#include <cstring>

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

// The invariant plan, on the host (runs without a GPU): one 16-vector tile per work item whatever the batch, and KV
// chunks that start at multiples of attention_invariant_chunk, so a decode row and the same row inside a verify
// tile see the same chunk boundaries.
TEST(cuda_invariance, plan_tiles_and_splits_do_not_depend_on_the_batch) {
    std::vector<int32_t> pages(128);
    for (int32_t i = 0; i < 128; ++i) {
        pages[static_cast<size_t>(i)] = i;
    }
    attention_plan_config cfg;
    cfg.n_head = 32;
    cfg.n_head_kv = 8; // G = 4: 4 rows per tile
    cfg.page_size = 16;
    cfg.slot_capacity = 1 << 20;
    cfg.invariant = true;
    const auto chunks_of_row = [&](const std::vector<attention_plan_row> & rows, int64_t pos) {
        attention_plan plan;
        attention_plan_build(rows, cfg, plan);
        std::vector<std::pair<int32_t, int32_t>> out; // (kv_begin, kv_end) of KV head 0's work covering pos
        for (const attention_work & w : plan.work) {
            const attention_segment & s = plan.segs[static_cast<size_t>(w.seg)];
            EXPECT_LE(w.n_rows * 4, 16) << "one mma row tile per work item";
            EXPECT_EQ(w.kv_begin % attention_invariant_chunk, 0) << "chunks start at multiples of the chunk";
            const int64_t first = s.pos0 + w.row0;
            if (w.kv_head == 0 && pos >= first && pos < first + w.n_rows) {
                out.emplace_back(w.kv_begin, std::min<int32_t>(w.kv_end, static_cast<int32_t>(pos + 1)));
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    const auto row = [&](int32_t seq, int64_t pos) {
        attention_plan_row r;
        r.pages = &pages;
        r.seq = seq;
        r.pos = pos;
        return r;
    };
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
}
