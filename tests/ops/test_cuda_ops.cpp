// Every CUDA op against the CPU reference ops (backend/cpu/ops.h) on odd shapes: row counts 1, 17, 97, unusual
// widths, NaN-poisoned padding and unused slots so that anything read or written out of bounds fails.
// Inputs are rounded to bf16 first, so the references see exactly what the kernels see; tolerances are in
// ops_test_util.h. Every test skips when there is no GPU.
#include "backend/cpu/ops.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/gemm.h"
#include "kernels/paged_kv.h"
#include "model/rope.h"
#include "ops_test_util.h"

#include <algorithm>
#include <cstring>
#include <string>

using namespace specattn;
using namespace specattn::test;

namespace {

const int64_t row_counts[] = {1, 17, 97};

bool is_nan_bits(uint16_t b) {
    return std::isnan(bf16_to_f32(b));
}

} // namespace

TEST(cuda_ops, embed_gathers_rows_exactly) {
    SPECATTN_REQUIRE_GPU();
    const int64_t n_vocab = 311;
    const int64_t n_embd = 50;
    const std::vector<uint16_t> table = to_bf16(random_vec(static_cast<size_t>(n_vocab * n_embd), 1));
    for (int64_t n_rows : row_counts) {
        std::vector<int32_t> tokens(static_cast<size_t>(n_rows));
        for (int64_t r = 0; r < n_rows; ++r) {
            tokens[static_cast<size_t>(r)] = static_cast<int32_t>((r * 37 + 5) % n_vocab);
        }
        tokens[0] = static_cast<int32_t>(n_vocab - 1);
        const device_buffer d_table = upload(table);
        const device_buffer d_tok = upload(tokens);
        const device_buffer d_out = upload(std::vector<float>(static_cast<size_t>((n_rows + 1) * n_embd), nan_f));
        embed_params p;
        p.table = bptr(d_table);
        p.tokens = dptr<int32_t>(d_tok);
        p.out = dptr<float>(d_out);
        p.n_rows = n_rows;
        p.n_embd = n_embd;
        launch_embed(p, nullptr);
        const std::vector<float> out = download<float>(d_out, static_cast<size_t>((n_rows + 1) * n_embd));
        for (int64_t r = 0; r < n_rows; ++r) {
            for (int64_t i = 0; i < n_embd; ++i) {
                ASSERT_EQ(out[static_cast<size_t>(r * n_embd + i)],
                          bf16_to_f32(table[static_cast<size_t>(tokens[static_cast<size_t>(r)] * n_embd + i)]))
                    << "rows " << n_rows << " r " << r << " i " << i;
            }
        }
        for (int64_t i = 0; i < n_embd; ++i) {
            ASSERT_TRUE(std::isnan(out[static_cast<size_t>(n_rows * n_embd + i)])) << "wrote past the last row";
        }
    }
}

TEST(cuda_ops, rmsnorm_with_and_without_residual_and_row_gather) {
    SPECATTN_REQUIRE_GPU();
    double worst = 0.0;
    for (int64_t n_rows : row_counts) {
        for (int64_t n : {64, 288, 4096, 4100, 12296, 20000}) { // vectorized (multiples of 8 up to 16384), strided
            for (int mode = 0; mode < 3; ++mode) {              // 0 plain, 1 + residual, 2 + residual + gather
                const std::string name =
                    "rows " + std::to_string(n_rows) + " n " + std::to_string(n) + " mode " + std::to_string(mode);
                const size_t sz = static_cast<size_t>(n_rows * n);
                std::vector<float> x = random_vec(sz, 2, -2.0f, 2.0f);
                const std::vector<uint16_t> res = to_bf16(random_vec(sz, 3));
                const std::vector<float> w = random_vec(static_cast<size_t>(n), 4, 0.5f, 1.5f);
                std::vector<int32_t> rows;
                for (int64_t r = n_rows - 1; r >= 0; r -= 3) {
                    rows.push_back(static_cast<int32_t>(r)); // reversed, sparse
                }
                const int64_t n_out = mode == 2 ? static_cast<int64_t>(rows.size()) : n_rows;

                const device_buffer d_x = upload(x);
                const device_buffer d_res = upload(res);
                const device_buffer d_w = upload(w);
                const device_buffer d_rows = upload(rows);
                const device_buffer d_out =
                    upload(std::vector<uint16_t>(static_cast<size_t>((n_out + 1) * n), f32_to_bf16(nan_f)));
                rmsnorm_params p;
                p.x = dptr<float>(d_x);
                p.residual = mode >= 1 ? bptr(d_res) : nullptr;
                p.weight = dptr<float>(d_w);
                p.rows = mode == 2 ? dptr<int32_t>(d_rows) : nullptr;
                p.out = bptr(d_out);
                p.n_rows = n_out;
                p.n = n;
                p.eps = 1e-5f;
                launch_rmsnorm(p, nullptr);

                // Reference: cpu_add then cpu_rmsnorm on the (gathered) rows.
                std::vector<float> xr = x;
                std::vector<float> ref(static_cast<size_t>(n_out * n));
                for (int64_t i = 0; i < n_out; ++i) {
                    const int64_t src = mode == 2 ? rows[static_cast<size_t>(i)] : i;
                    float * xs = xr.data() + src * n;
                    if (mode >= 1) {
                        const std::vector<float> rf =
                            from_bf16(std::vector<uint16_t>(res.begin() + src * n, res.begin() + (src + 1) * n));
                        cpu_add(xs, rf.data(), n);
                    }
                    cpu_rmsnorm(xs, 1, n, w.data(), 1e-5f, ref.data() + i * n);
                }
                const std::vector<float> out =
                    from_bf16(download<uint16_t>(d_out, static_cast<size_t>((n_out + 1) * n)));
                const double err = rel_l2(out.data(), ref.data(), ref.size());
                worst = std::max(worst, err);
                EXPECT_LE(err, tol_bf16_out) << name;
                for (int64_t i = 0; i < n; ++i) {
                    ASSERT_TRUE(std::isnan(out[static_cast<size_t>(n_out * n + i)])) << name << ": wrote past the end";
                }
                // The residual stream is updated in place (fp32, exact up to summation order: none here).
                const std::vector<float> x_after = download<float>(d_x, sz);
                for (int64_t i = 0; i < n_out; ++i) {
                    const int64_t src = mode == 2 ? rows[static_cast<size_t>(i)] : i;
                    for (int64_t j = 0; j < n; ++j) {
                        ASSERT_EQ(x_after[static_cast<size_t>(src * n + j)], xr[static_cast<size_t>(src * n + j)])
                            << name;
                    }
                }
            }
        }
    }
    RecordProperty("rel_l2", std::to_string(worst));
    std::printf("[ op ] rmsnorm worst rel_l2 %.3g (tol %.0e)\n", worst, tol_bf16_out);
}

// A weight vector that does not start on 16 bytes (one float into its buffer) takes the strided path and gives the
// same result as the aligned copy through the vectorized one, within fp32 summation order.
TEST(cuda_ops, rmsnorm_unaligned_weights_take_the_strided_path) {
    SPECATTN_REQUIRE_GPU();
    const int64_t n = 4096;
    const int64_t n_rows = 3;
    const std::vector<float> x = random_vec(static_cast<size_t>(n_rows * n), 31, -2.0f, 2.0f);
    std::vector<float> w(static_cast<size_t>(n + 1));
    const std::vector<float> w0 = random_vec(static_cast<size_t>(n), 32, 0.5f, 1.5f);
    std::copy(w0.begin(), w0.end(), w.begin() + 1);
    const device_buffer d_w = upload(w);
    std::vector<float> out[2];
    for (int unaligned = 0; unaligned < 2; ++unaligned) {
        const device_buffer d_x = upload(x);
        const device_buffer d_w0 = upload(w0);
        const device_buffer d_out = upload(std::vector<uint16_t>(static_cast<size_t>(n_rows * n), 0));
        rmsnorm_params p;
        p.x = dptr<float>(d_x);
        p.weight = unaligned ? dptr<float>(d_w) + 1 : dptr<float>(d_w0);
        p.out = bptr(d_out);
        p.n_rows = n_rows;
        p.n = n;
        p.eps = 1e-5f;
        launch_rmsnorm(p, nullptr);
        out[unaligned] = from_bf16(download<uint16_t>(d_out, static_cast<size_t>(n_rows * n)));
    }
    EXPECT_LE(rel_l2(out[1].data(), out[0].data(), out[0].size()), tol_bf16_out);
}

TEST(cuda_ops, qkv_prep_bias_qk_norm_rope_both_layouts) {
    SPECATTN_REQUIRE_GPU();
    struct shape {
        int64_t n_head, n_head_kv, head_dim;
        rope_layout layout;
        bool bias, qk_norm;
    };
    const shape shapes[] = {
        {4, 2, 16, rope_layout::rope_layout_half_split, true, false},   // Qwen2-like
        {6, 6, 48, rope_layout::rope_layout_interleaved, false, false}, // stories15M
        {8, 2, 128, rope_layout::rope_layout_half_split, false, true},  // Qwen3-like
        {16, 2, 64, rope_layout::rope_layout_half_split, true, true},
        {4, 1, 256, rope_layout::rope_layout_interleaved, false, true},
    };
    double worst = 0.0;
    for (const shape & s : shapes) {
        for (int64_t n_rows : row_counts) {
            const std::string name = "H " + std::to_string(s.n_head) + " HK " + std::to_string(s.n_head_kv) + " D " +
                                     std::to_string(s.head_dim) + " rows " + std::to_string(n_rows);
            const int64_t n_heads = s.n_head + 2 * s.n_head_kv;
            const int64_t width = n_heads * s.head_dim;
            const std::vector<uint16_t> qkv = to_bf16(random_vec(static_cast<size_t>(n_rows * width), 5, -3.0f, 3.0f));
            const std::vector<float> bias = random_vec(static_cast<size_t>(width), 6);
            const std::vector<float> qn = random_vec(static_cast<size_t>(s.head_dim), 7, 0.5f, 1.5f);
            const std::vector<float> kn = random_vec(static_cast<size_t>(s.head_dim), 8, 0.5f, 1.5f);
            rope_params rp;
            rp.theta = 500000.0f;
            rp.layout = s.layout;
            const std::vector<float> inv_freq = rope_inv_freq(rp, s.head_dim);
            std::vector<int32_t> pos(static_cast<size_t>(n_rows));
            for (int64_t r = 0; r < n_rows; ++r) {
                pos[static_cast<size_t>(r)] = static_cast<int32_t>((r * 977 + 13) % 5003);
            }

            const device_buffer d_qkv = upload(qkv);
            const device_buffer d_bias = upload(bias);
            const device_buffer d_qn = upload(qn);
            const device_buffer d_kn = upload(kn);
            const device_buffer d_freq = upload(inv_freq);
            const device_buffer d_pos = upload(pos);
            qkv_prep_params p;
            p.qkv = bptr(d_qkv);
            p.bias = s.bias ? dptr<float>(d_bias) : nullptr;
            p.q_norm = s.qk_norm ? dptr<float>(d_qn) : nullptr;
            p.k_norm = s.qk_norm ? dptr<float>(d_kn) : nullptr;
            p.inv_freq = dptr<float>(d_freq);
            p.positions = dptr<int32_t>(d_pos);
            p.n_rows = n_rows;
            p.n_head = s.n_head;
            p.n_head_kv = s.n_head_kv;
            p.head_dim = s.head_dim;
            p.pairs = s.layout == rope_layout::rope_layout_interleaved ? rope_pairs::rope_pairs_interleaved
                                                                       : rope_pairs::rope_pairs_half_split;
            p.eps = 1e-6f;
            launch_qkv_prep(p, nullptr);

            // Reference: the CPU backend's sequence (bias in the matmul, then q/k RMSNorm, then RoPE).
            std::vector<float> ref = from_bf16(qkv);
            for (int64_t r = 0; r < n_rows; ++r) {
                float * row = ref.data() + r * width;
                if (s.bias) {
                    cpu_add(row, bias.data(), width);
                }
                float * q = row;
                float * k = row + s.n_head * s.head_dim;
                if (s.qk_norm) {
                    cpu_rmsnorm(q, s.n_head, s.head_dim, qn.data(), 1e-6f, q);
                    cpu_rmsnorm(k, s.n_head_kv, s.head_dim, kn.data(), 1e-6f, k);
                }
                cpu_rope(q, s.n_head, s.head_dim, pos[static_cast<size_t>(r)], inv_freq.data(), s.layout);
                cpu_rope(k, s.n_head_kv, s.head_dim, pos[static_cast<size_t>(r)], inv_freq.data(), s.layout);
            }
            const std::vector<float> out = from_bf16(download<uint16_t>(d_qkv, qkv.size()));
            const double err = rel_l2(out.data(), ref.data(), ref.size());
            worst = std::max(worst, err);
            EXPECT_LE(err, tol_bf16_out) << name;
        }
    }
    RecordProperty("rel_l2", std::to_string(worst));
    std::printf("[ op ] qkv_prep worst rel_l2 %.3g (tol %.0e)\n", worst, tol_bf16_out);
}

TEST(cuda_ops, swiglu) {
    SPECATTN_REQUIRE_GPU();
    double worst = 0.0;
    for (int64_t n_rows : row_counts) {
        for (int64_t n_ff : {160, 768, 1001}) {
            const std::vector<uint16_t> gu =
                to_bf16(random_vec(static_cast<size_t>(n_rows * 2 * n_ff), 9, -4.0f, 4.0f));
            const device_buffer d_gu = upload(gu);
            const device_buffer d_out =
                upload(std::vector<uint16_t>(static_cast<size_t>((n_rows + 1) * n_ff), f32_to_bf16(nan_f)));
            swiglu_params p;
            p.gate_up = bptr(d_gu);
            p.out = bptr(d_out);
            p.n_rows = n_rows;
            p.n_ff = n_ff;
            launch_swiglu(p, nullptr);
            const std::vector<float> g = from_bf16(gu);
            std::vector<float> ref(static_cast<size_t>(n_rows * n_ff));
            for (int64_t r = 0; r < n_rows; ++r) {
                cpu_swiglu(g.data() + r * 2 * n_ff, g.data() + r * 2 * n_ff + n_ff, n_ff, ref.data() + r * n_ff);
            }
            const std::vector<float> out =
                from_bf16(download<uint16_t>(d_out, static_cast<size_t>((n_rows + 1) * n_ff)));
            const double err = rel_l2(out.data(), ref.data(), ref.size());
            worst = std::max(worst, err);
            EXPECT_LE(err, tol_bf16_out) << "rows " << n_rows << " n_ff " << n_ff;
            EXPECT_TRUE(std::isnan(out[static_cast<size_t>(n_rows * n_ff)])) << "wrote past the end";
        }
    }
    RecordProperty("rel_l2", std::to_string(worst));
    std::printf("[ op ] swiglu worst rel_l2 %.3g (tol %.0e)\n", worst, tol_bf16_out);
}

TEST(cuda_ops, gemm_bf16_and_f32_outputs) {
    SPECATTN_REQUIRE_GPU();
    cublaslt_gemm gemm;
    struct nk {
        int64_t n, k;
    };
    const nk shapes[] = {{96, 64}, {288, 288}, {768, 288}, {97, 50}, {512, 64}, {4096, 1024}};
    double worst_bf16 = 0.0;
    double worst_f32 = 0.0;
    for (const nk & s : shapes) {
        for (int64_t m : row_counts) {
            const std::vector<float> x = from_bf16(to_bf16(random_vec(static_cast<size_t>(m * s.k), 10)));
            matrix w;
            w.n_out = s.n;
            w.n_in = s.k;
            w.w = from_bf16(to_bf16(random_vec(static_cast<size_t>(s.n * s.k), 11)));
            std::vector<float> ref(static_cast<size_t>(m * s.n));
            cpu_matmul(x.data(), m, w, nullptr, ref.data());

            const device_buffer d_x = upload(to_bf16(x));
            const device_buffer d_w = upload(to_bf16(w.w));
            const device_buffer d_y16 = upload(std::vector<uint16_t>(ref.size(), f32_to_bf16(nan_f)));
            const device_buffer d_y32 = upload(std::vector<float>(ref.size(), nan_f));
            gemm.run(bptr(d_x), bptr(d_w), d_y16.as<void>(), gemm_out::gemm_out_bf16, m, s.n, s.k, nullptr);
            gemm.run(bptr(d_x), bptr(d_w), d_y32.as<void>(), gemm_out::gemm_out_f32, m, s.n, s.k, nullptr);
            const std::vector<float> y16 = from_bf16(download<uint16_t>(d_y16, ref.size()));
            const std::vector<float> y32 = download<float>(d_y32, ref.size());
            const std::string name =
                "m " + std::to_string(m) + " n " + std::to_string(s.n) + " k " + std::to_string(s.k);
            const double e16 = rel_l2(y16.data(), ref.data(), ref.size());
            const double e32 = rel_l2(y32.data(), ref.data(), ref.size());
            worst_bf16 = std::max(worst_bf16, e16);
            worst_f32 = std::max(worst_f32, e32);
            EXPECT_LE(e16, tol_bf16_out) << name << " bf16 out";
            EXPECT_LE(e32, tol_f32_out) << name << " f32 out";
        }
    }
    RecordProperty("rel_l2_bf16", std::to_string(worst_bf16));
    RecordProperty("rel_l2_f32", std::to_string(worst_f32));
    std::printf("[ op ] gemm worst rel_l2 bf16-out %.3g (tol %.0e), f32-out %.3g (tol %.0e)\n", worst_bf16,
                tol_bf16_out, worst_f32, tol_f32_out);
}

// The KV append fused into qkv_prep: each row's prepared K and V heads land at the shared layout's offsets
// (paged_kv_offset) of one layer, bit for bit as written in place, and nothing else in the pools is touched.
TEST(cuda_ops, qkv_prep_appends_kv_in_the_shared_layout) {
    SPECATTN_REQUIRE_GPU();
    for (int64_t n_rows : row_counts) {
        paged_kv_layout layout;
        layout.n_layer = 2;
        layout.n_pages = 64;
        layout.n_head_kv = 3;
        layout.page_size = 7; // odd on purpose
        layout.head_dim = 48;
        const int64_t n_head = 6;
        const int64_t stride = (n_head + 2 * layout.n_head_kv) * layout.head_dim;
        const std::vector<uint16_t> qkv = to_bf16(random_vec(static_cast<size_t>(n_rows * stride), 12));
        // Rows of one sequence whose pages are scattered through the pool; positions 3 .. 3 + n_rows - 1.
        std::vector<int32_t> seq_pages(static_cast<size_t>(layout.n_pages));
        for (int64_t i = 0; i < layout.n_pages; ++i) {
            seq_pages[static_cast<size_t>(i)] = static_cast<int32_t>((i * 29 + 11) % layout.n_pages);
        }
        std::vector<int32_t> page(static_cast<size_t>(n_rows));
        std::vector<int32_t> slot(static_cast<size_t>(n_rows));
        for (int64_t r = 0; r < n_rows; ++r) {
            const int64_t pos = 3 + r;
            page[static_cast<size_t>(r)] = seq_pages[static_cast<size_t>(pos / layout.page_size)];
            slot[static_cast<size_t>(r)] = static_cast<int32_t>(pos % layout.page_size);
        }
        const size_t pool_n = static_cast<size_t>(layout.total_elems());
        const device_buffer d_qkv = upload(qkv);
        const device_buffer d_k = upload(std::vector<uint16_t>(pool_n, f32_to_bf16(nan_f)));
        const device_buffer d_v = upload(std::vector<uint16_t>(pool_n, f32_to_bf16(nan_f)));
        const device_buffer d_page = upload(page);
        const device_buffer d_slot = upload(slot);
        std::vector<int32_t> pos(static_cast<size_t>(n_rows));
        for (int64_t r = 0; r < n_rows; ++r) {
            pos[static_cast<size_t>(r)] = static_cast<int32_t>(3 + r);
        }
        const device_buffer d_pos = upload(pos);
        rope_params rp;
        rp.theta = 10000.0f;
        rp.layout = rope_layout::rope_layout_half_split;
        const device_buffer d_freq = upload(rope_inv_freq(rp, layout.head_dim));
        const int64_t layer = 1;
        qkv_prep_params p;
        p.qkv = bptr(d_qkv);
        p.inv_freq = dptr<float>(d_freq);
        p.positions = dptr<int32_t>(d_pos);
        p.n_rows = n_rows;
        p.n_head = n_head;
        p.n_head_kv = layout.n_head_kv;
        p.head_dim = layout.head_dim;
        p.k_pool = bptr(d_k) + layer * layout.layer_elems();
        p.v_pool = bptr(d_v) + layer * layout.layer_elems();
        p.page = dptr<int32_t>(d_page);
        p.slot = dptr<int32_t>(d_slot);
        p.page_size = layout.page_size;
        launch_qkv_prep(p, nullptr);
        const std::vector<uint16_t> prepped = download<uint16_t>(d_qkv, qkv.size()); // K roped, V as given
        const std::vector<uint16_t> k = download<uint16_t>(d_k, pool_n);
        const std::vector<uint16_t> v = download<uint16_t>(d_v, pool_n);
        std::vector<bool> written(pool_n, false);
        const paged_kv_seq seq{seq_pages.data(), 3 + n_rows};
        for (int64_t r = 0; r < n_rows; ++r) {
            for (int64_t h = 0; h < layout.n_head_kv; ++h) {
                const int64_t off = paged_kv_offset(layout, seq, layer, h, 3 + r);
                for (int64_t d = 0; d < layout.head_dim; ++d) {
                    const size_t i = static_cast<size_t>(off + d);
                    const size_t k_src = static_cast<size_t>(r * stride + (n_head + h) * layout.head_dim + d);
                    const size_t v_src = k_src + static_cast<size_t>(layout.n_head_kv * layout.head_dim);
                    ASSERT_EQ(k[i], prepped[k_src]);
                    ASSERT_EQ(v[i], prepped[v_src]);
                    ASSERT_EQ(v[i], qkv[v_src]); // V heads pass through unchanged (no bias, no norm)
                    written[i] = true;
                }
            }
        }
        for (size_t i = 0; i < pool_n; ++i) {
            if (!written[i]) {
                ASSERT_TRUE(is_nan_bits(k[i]) && is_nan_bits(v[i])) << "rows " << n_rows << ": stray write at " << i;
            }
        }
    }
}

TEST(cuda_ops, argmax_lowest_index_on_ties_and_never_nan) {
    SPECATTN_REQUIRE_GPU();
    for (int64_t n_rows : row_counts) {
        for (int64_t n_vocab : {512, 32000, 151937}) {
            std::vector<float> logits = random_vec(static_cast<size_t>(n_rows * n_vocab), 13, -10.0f, 10.0f);
            std::vector<int32_t> expect(static_cast<size_t>(n_rows));
            for (int64_t r = 0; r < n_rows; ++r) {
                float * row = logits.data() + r * n_vocab;
                // Ties at the maximum (two or three places), a NaN and +0/-0 noise; row 0 of each size all-equal.
                const int64_t a = (r * 7919) % n_vocab;
                const int64_t b = (a + 1 + r * 13) % n_vocab;
                row[a] = 50.0f;
                row[b] = 50.0f;
                row[(a + n_vocab / 2) % n_vocab] = nan_f;
                if (r == 0) {
                    std::fill(row, row + n_vocab, 1.0f);
                }
                int64_t best = -1;
                for (int64_t i = 0; i < n_vocab; ++i) {
                    if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best])) {
                        best = i;
                    }
                }
                expect[static_cast<size_t>(r)] = static_cast<int32_t>(best);
            }
            const device_buffer d_logits = upload(logits);
            const device_buffer d_out = upload(std::vector<int32_t>(static_cast<size_t>(n_rows), -7));
            argmax_params p;
            p.logits = dptr<float>(d_logits);
            p.out = dptr<int32_t>(d_out);
            p.n_rows = n_rows;
            p.n_vocab = n_vocab;
            launch_argmax(p, nullptr);
            EXPECT_EQ(download<int32_t>(d_out, static_cast<size_t>(n_rows)), expect)
                << "rows " << n_rows << " vocab " << n_vocab;
        }
    }
}
