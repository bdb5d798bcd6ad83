// The paged attention kernel (plan + split-KV kernel + combine) against a naive CPU reference that walks each
// sequence's page list position by position (as vLLM's kernel tests do). Cases cover decode (1 row per
// sequence), verify (a few rows), prefill (many rows, several tiles), GQA ratios 1, 4 and 8, sequence lengths 1,
// 17, 97 and 4099 (split KV and the log-sum-exp merge), page boundaries with odd page sizes, a sliding window,
// and head dims on both the fast (64, 128) and the padded generic path (8, 48, 96, 256).
// Poison: every pool slot no row may read, the K/V part of the query rows, the partial workspaces and the output
// rows past the batch are NaN, so a read or write out of range fails the test.
#include "backend/cpu/ops.h"
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/cuda_ops.h"
#include "kernels/paged_kv.h"
#include "ops_test_util.h"

#include <algorithm>
#include <numeric>
#include <string>

using namespace specattn;
using namespace specattn::test;

namespace {

struct attn_case {
    const char * name;
    std::vector<int64_t> rows; // rows per sequence (the last rows of each sequence)
    std::vector<int64_t> lens; // sequence length after the rows, per sequence
    int64_t group;             // G
    int64_t n_head_kv;
    int64_t head_dim;
    int64_t page_size;
    int64_t window = 0;
};

void PrintTo(const attn_case & c, std::ostream * os) {
    *os << c.name;
}

class attention_test : public ::testing::TestWithParam<attn_case> {};

std::vector<int64_t> repeat(int64_t v, int64_t n) {
    return std::vector<int64_t>(static_cast<size_t>(n), v);
}
std::vector<int64_t> ramp(int64_t n, int64_t step, int64_t first) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        v[static_cast<size_t>(i)] = first + i * step;
    }
    return v;
}

} // namespace

TEST_P(attention_test, matches_naive_reference) {
    SPECATTN_REQUIRE_GPU();
    const attn_case & c = GetParam();
    const int64_t n_head = c.group * c.n_head_kv;
    const int64_t hd = c.head_dim;
    const size_t n_seq = c.rows.size();

    // Pages: every sequence takes its pages from a shuffled pool with spare pages left unused (NaN).
    paged_kv_layout layout;
    layout.n_layer = 2;
    layout.n_head_kv = c.n_head_kv;
    layout.page_size = c.page_size;
    layout.head_dim = hd;
    int64_t pages_needed = 0;
    for (int64_t len : c.lens) {
        pages_needed += (len + c.page_size - 1) / c.page_size;
    }
    layout.n_pages = pages_needed + 5;
    std::vector<int32_t> perm(static_cast<size_t>(layout.n_pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(42));
    std::vector<std::vector<int32_t>> seq_pages(n_seq);
    size_t next_page = 0;
    for (size_t s = 0; s < n_seq; ++s) {
        const int64_t np = (c.lens[s] + c.page_size - 1) / c.page_size;
        for (int64_t i = 0; i < np; ++i) {
            seq_pages[s].push_back(perm[next_page++]);
        }
    }

    // Pools: valid positions of layer 1 get random bf16, everything else NaN (including layer 0).
    const size_t pool_n = static_cast<size_t>(layout.total_elems());
    std::vector<uint16_t> k_pool(pool_n, f32_to_bf16(nan_f));
    std::vector<uint16_t> v_pool(pool_n, f32_to_bf16(nan_f));
    const int64_t layer = 1;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (size_t s = 0; s < n_seq; ++s) {
        const paged_kv_seq view{seq_pages[s].data(), c.lens[s]};
        for (int64_t t = 0; t < c.lens[s]; ++t) {
            for (int64_t h = 0; h < c.n_head_kv; ++h) {
                const int64_t off = paged_kv_offset(layout, view, layer, h, t);
                for (int64_t d = 0; d < hd; ++d) {
                    k_pool[static_cast<size_t>(off + d)] = f32_to_bf16(2.0f * dist(rng)); // peaky enough softmax
                    v_pool[static_cast<size_t>(off + d)] = f32_to_bf16(dist(rng));
                }
            }
        }
    }

    // Rows and their queries; the row stride leaves room for K and V heads, poisoned.
    std::vector<attention_plan_row> rows;
    std::vector<size_t> row_seq;
    for (size_t s = 0; s < n_seq; ++s) {
        for (int64_t i = 0; i < c.rows[s]; ++i) {
            rows.push_back(attention_plan_row{&seq_pages[s], static_cast<int32_t>(s), c.lens[s] - c.rows[s] + i});
            row_seq.push_back(s);
        }
    }
    const auto n_rows = static_cast<int64_t>(rows.size());
    const int64_t q_stride = (n_head + 2 * c.n_head_kv) * hd;
    std::vector<uint16_t> q(static_cast<size_t>(n_rows * q_stride), f32_to_bf16(nan_f));
    for (int64_t r = 0; r < n_rows; ++r) {
        for (int64_t i = 0; i < n_head * hd; ++i) {
            q[static_cast<size_t>(r * q_stride + i)] = f32_to_bf16(dist(rng));
        }
    }

    attention_plan_config pc;
    pc.n_head = n_head;
    pc.n_head_kv = c.n_head_kv;
    pc.page_size = c.page_size;
    pc.sliding_window = c.window;
    pc.n_sm = 132; // fixed so the split does not depend on the test machine
    pc.slot_capacity = 8192;
    attention_plan plan;
    attention_plan_build(rows, pc, plan);

    const device_buffer d_q = upload(q);
    const device_buffer d_k = upload(k_pool);
    const device_buffer d_v = upload(v_pool);
    const device_buffer d_table = upload(plan.page_table);
    const device_buffer d_segs(plan.segs.size() * sizeof(attention_segment));
    const device_buffer d_work(plan.work.size() * sizeof(attention_work));
    SPECATTN_CUDA_CHECK(cudaMemcpy(d_segs.as<void>(), plan.segs.data(), d_segs.bytes(), cudaMemcpyHostToDevice));
    SPECATTN_CUDA_CHECK(cudaMemcpy(d_work.as<void>(), plan.work.data(), d_work.bytes(), cudaMemcpyHostToDevice));
    const device_buffer d_row_slot = upload(plan.row_slot);
    const device_buffer d_row_split = upload(plan.row_n_split);
    const size_t n_slots = static_cast<size_t>(std::max<int64_t>(plan.n_slots, 1));
    const device_buffer d_po = upload(std::vector<float>(n_slots * static_cast<size_t>(n_head * hd), nan_f));
    const device_buffer d_pl = upload(std::vector<float>(n_slots * static_cast<size_t>(n_head), nan_f));
    const size_t out_n = static_cast<size_t>((n_rows + 2) * n_head * hd);
    const device_buffer d_out = upload(std::vector<uint16_t>(out_n, f32_to_bf16(nan_f)));

    attention_params p;
    p.q = bptr(d_q);
    p.q_row_stride = q_stride;
    p.k_pool = bptr(d_k) + layer * layout.layer_elems();
    p.v_pool = bptr(d_v) + layer * layout.layer_elems();
    p.page_table = dptr<int32_t>(d_table);
    p.segs = d_segs.as<attention_segment>();
    p.work = d_work.as<attention_work>();
    p.row_slot = dptr<int32_t>(d_row_slot);
    p.row_n_split = dptr<int32_t>(d_row_split);
    p.partial_o = dptr<float>(d_po);
    p.partial_lse = dptr<float>(d_pl);
    p.out = bptr(d_out);
    p.n_work = static_cast<int64_t>(plan.work.size());
    p.n_slots = plan.n_slots;
    p.n_rows = n_rows;
    p.n_head = n_head;
    p.n_head_kv = c.n_head_kv;
    p.head_dim = hd;
    p.page_size = c.page_size;
    p.sliding_window = c.window;
    p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    launch_attention(p, nullptr);
    const std::vector<float> out = from_bf16(download<uint16_t>(d_out, out_n));

    // Naive reference in fp32 over the same bf16 values.
    std::vector<float> ref(static_cast<size_t>(n_rows * n_head * hd));
    std::vector<float> qf(static_cast<size_t>(hd));
    std::vector<float> kf(static_cast<size_t>(hd));
    for (int64_t r = 0; r < n_rows; ++r) {
        const size_t s = row_seq[static_cast<size_t>(r)];
        const paged_kv_seq view{seq_pages[s].data(), c.lens[s]};
        const int64_t pos = rows[static_cast<size_t>(r)].pos;
        const int64_t lo = c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t kvh = h / c.group;
            for (int64_t d = 0; d < hd; ++d) {
                qf[static_cast<size_t>(d)] = bf16_to_f32(q[static_cast<size_t>(r * q_stride + h * hd + d)]);
            }
            std::vector<float> sc;
            float mx = -INFINITY;
            for (int64_t t = lo; t <= pos; ++t) {
                const int64_t off = paged_kv_offset(layout, view, layer, kvh, t);
                for (int64_t d = 0; d < hd; ++d) {
                    kf[static_cast<size_t>(d)] = bf16_to_f32(k_pool[static_cast<size_t>(off + d)]);
                }
                sc.push_back(cpu_dot(qf.data(), kf.data(), hd) * p.scale);
                mx = std::max(mx, sc.back());
            }
            double sum = 0.0;
            for (float & x : sc) {
                x = std::exp(x - mx);
                sum += x;
            }
            float * o = ref.data() + (r * n_head + h) * hd;
            for (int64_t t = lo; t <= pos; ++t) {
                const int64_t off = paged_kv_offset(layout, view, layer, kvh, t);
                const float wgt = static_cast<float>(sc[static_cast<size_t>(t - lo)] / sum);
                for (int64_t d = 0; d < hd; ++d) {
                    o[d] += wgt * bf16_to_f32(v_pool[static_cast<size_t>(off + d)]);
                }
            }
        }
    }
    const double err = rel_l2(out.data(), ref.data(), ref.size());
    EXPECT_LE(err, tol_attention) << c.name << " (" << plan.work.size() << " CTAs, " << plan.n_slots << " slots)";
    for (size_t i = ref.size(); i < out_n; ++i) {
        ASSERT_TRUE(std::isnan(out[i])) << c.name << ": wrote past the last row";
    }
    std::printf("[ op ] attention %-34s rows %4lld  CTAs %5zu  split slots %5lld  rel_l2 %.3g\n", c.name,
                static_cast<long long>(n_rows), plan.work.size(), static_cast<long long>(plan.n_slots), err);
}

INSTANTIATE_TEST_SUITE_P(grid, attention_test,
                         ::testing::Values(
                             // decode: one row per sequence
                             attn_case{"decode_len1_g1_d64", {1}, {1}, 1, 2, 64, 16},
                             attn_case{"decode_17seq_len17to97_g4_d128", repeat(1, 17), ramp(17, 5, 17), 4, 2, 128, 16},
                             attn_case{"decode_len4099_g8_d128", {1, 1}, {4099, 97}, 8, 1, 128, 16},
                             attn_case{"decode_len4099_g1_d64_ps7", {1}, {4099}, 1, 8, 64, 7},
                             attn_case{"decode_97seq_g4_d48", repeat(1, 97), ramp(97, 3, 1), 4, 2, 48, 16},
                             // verify: a few rows per sequence at the end of long contexts
                             attn_case{"verify_17rows_len4099_g4_d64_ps32", {17}, {4099}, 4, 2, 64, 32},
                             attn_case{"verify_3x7rows_g8_d128", {7, 7, 7}, {97, 4099, 17}, 8, 2, 128, 16},
                             // prefill: whole prompts or chunks, several row tiles
                             attn_case{"prefill_97rows_g1_d48", {97}, {97}, 1, 4, 48, 16},
                             attn_case{"prefill_chunk_97rows_at200_g8_d64_window50", {97}, {297}, 8, 1, 64, 16, 50},
                             attn_case{"prefill_17rows_g4_d8_ps5", {17}, {17}, 4, 2, 8, 5},
                             attn_case{"mixed_1_17_97_g4_d96_ps13", {1, 17, 97}, {4099, 17, 200}, 4, 2, 96, 13},
                             attn_case{"mixed_g8_d256_window1000", {1, 5}, {4099, 1500}, 8, 1, 256, 16, 1000},
                             attn_case{"page_boundary_rows_g4_d128", {16, 1, 1}, {32, 16, 17}, 4, 2, 128, 16}));
