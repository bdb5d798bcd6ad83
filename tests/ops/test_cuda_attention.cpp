// The paged attention kernel (plan + tensor-core split-KV kernel + combine) against a naive CPU reference that
// walks each sequence's page list position by position (as vLLM's kernel tests do), in double precision over the
// same bf16 values. Cases cover decode (1 row per sequence), verify (a few rows), prefill (many rows, several
// tiles), GQA ratios 1, 4 and 8, sequence lengths 1, 17, 97 and 4099 (split KV and the log-sum-exp merge), page
// boundaries with odd page sizes, a sliding window, head dims on the fast (64, 128) and the padded generic path
// (8, 48, 96, 256, 6); sparse draft rows (position lists of every size from 0 to all, recent ranges, different
// selections per sequence, split and unsplit); score collection (first/last and all rows, split and unsplit); and
// the batch-invariant plan (verify tiles of up to 32 query vectors, 512-position chunks). Every case whose tiles hold
// up to 32 query vectors runs through both kernels: attention_dsplit.cuh's (the default) and attention.cuh's.
//
// Poison: every pool slot no row may read (including one slot past each sequence's end), the K/V part of the query
// rows, the partial workspaces, the output rows past the batch, the collect buffers and every selection-list entry
// past sel_n are NaN (or point at NaN slots), so a read or write out of range fails the test.
// attention_mma_layout is the exactness oracle: one-hot keys make every query vector pick one known position, so a
// wrong fragment layout shows up as a wrong value, not as a small error.
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/cuda_ops.h"
#include "core/check.h"
#include "kernels/paged_kv.h"
#include "ops_test_util.h"

#include <algorithm>
#include <initializer_list>
#include <numeric>
#include <string>
#include <tuple>
#include <utility>

using namespace specattn;
using namespace specattn::test;

namespace {

// Collected rows write per-head logit rows; summed ones (attention_plan_row::sum_offset) add their logits over the
// heads into one fp32 score row per sequence (first/last) or per sequence and KV head (all rows).
enum class collect_rows {
    collect_rows_none,
    collect_rows_first_last,
    collect_rows_all,
    collect_rows_sum_first_last,
    collect_rows_sum_all_per_kv_head,
};

struct attn_case {
    const char * name;
    std::vector<int64_t> rows; // rows per sequence (the last rows of each sequence)
    std::vector<int64_t> lens; // sequence length after the rows, per sequence
    int64_t group;             // G
    int64_t n_head_kv;
    int64_t head_dim;
    int64_t page_size;
    int64_t window = 0;
    std::vector<int64_t> sel_n = {}; // per sequence: -1 dense, -2 every position before the recent range, else n
    int64_t recent = 8;              // sparse: dense positions before the first row
    collect_rows collect = collect_rows::collect_rows_none;
    int64_t n_sm = 132;                        // 1: no split
    bool invariant = false;                    // the batch-invariant plan (two row tiles per warp, 512-position chunks)
    int64_t chunk = attention_invariant_chunk; // its KV chunk (a backend's, attention_invariant_chunk_for)
};

void PrintTo(const attn_case & c, std::ostream * os) {
    *os << c.name;
}

// Each case runs with both kernels of decode/verify tiles (attention_plan_config::split_d: attention_dsplit.cuh and
// attention.cuh); cases whose plan has larger tiles run once.
class attention_test : public ::testing::TestWithParam<std::tuple<attn_case, bool>> {};

std::vector<int64_t> repeat(int64_t v, int64_t n) {
    return std::vector<int64_t>(static_cast<size_t>(n), v);
}
// A plan's arrays on the device, as the backend uploads them.
struct device_plan {
    device_buffer table, segs, work, row_slot, row_n_split;
    explicit device_plan(const attention_plan & p)
        : table(upload(p.page_table)), segs(upload(p.segs)), work(upload(p.work)), row_slot(upload(p.row_slot)),
          row_n_split(upload(p.row_n_split)) {}
    attention_plan_device view() const {
        return {table.as<int32_t>(), segs.as<attention_segment>(), work.as<attention_work>(), row_slot.as<int32_t>(),
                row_n_split.as<int32_t>()};
    }
};

std::vector<int64_t> ramp(int64_t n, int64_t step, int64_t first) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        v[static_cast<size_t>(i)] = first + i * step;
    }
    return v;
}

constexpr int64_t n_layer = 2;
constexpr int64_t layer = 1;
constexpr int32_t far_poison = 1 << 30; // list entries of unused slots: reading one faults

} // namespace

TEST_P(attention_test, matches_naive_reference) {
    SPECATTN_REQUIRE_GPU();
    const attn_case & c = std::get<0>(GetParam());
    const bool split_d = std::get<1>(GetParam());
    const int64_t n_head = c.group * c.n_head_kv;
    const int64_t hd = c.head_dim;
    const size_t n_seq = c.rows.size();
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);

    // Pages: every sequence takes pages for len + 1 positions from a shuffled pool; position len and the spare
    // pages stay NaN.
    paged_kv_layout layout;
    layout.n_layer = n_layer;
    layout.n_head_kv = c.n_head_kv;
    layout.page_size = c.page_size;
    layout.head_dim = hd;
    int64_t pages_needed = 0;
    for (int64_t len : c.lens) {
        pages_needed += len / c.page_size + 1;
    }
    layout.n_pages = pages_needed + 5;
    std::vector<int32_t> perm(static_cast<size_t>(layout.n_pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(42));
    std::vector<std::vector<int32_t>> seq_pages(n_seq);
    size_t next_page = 0;
    for (size_t s = 0; s < n_seq; ++s) {
        for (int64_t i = 0; i < c.lens[s] / c.page_size + 1; ++i) {
            seq_pages[s].push_back(perm[next_page++]);
        }
    }
    const size_t pool_n = static_cast<size_t>(layout.total_elems());
    std::vector<uint16_t> k_pool(pool_n, f32_to_bf16(nan_f));
    std::vector<uint16_t> v_pool(pool_n, f32_to_bf16(nan_f));
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

    // Selections: sequence s uses slot 2s + 1 (the others stay far-poisoned); per KV head a sorted random sample
    // of [0, sel_recent); entries past sel_n point at the NaN slot one past the sequence's end.
    std::vector<int64_t> sel_n(n_seq, -1);
    std::vector<int64_t> sel_recent(n_seq, 0);
    int64_t sel_cap = 1;
    for (size_t s = 0; s < n_seq; ++s) {
        if (s < c.sel_n.size() && c.sel_n[s] != -1) {
            sel_recent[s] = std::max<int64_t>(0, c.lens[s] - c.rows[s] - c.recent);
            sel_n[s] = c.sel_n[s] == -2 ? sel_recent[s] : std::min(c.sel_n[s], sel_recent[s]);
            sel_cap = std::max(sel_cap, sel_n[s] + 3);
        }
    }
    const int64_t n_sel = 2 * static_cast<int64_t>(n_seq) + 1;
    std::vector<int32_t> sel_pos(static_cast<size_t>(n_sel * n_layer * c.n_head_kv * sel_cap), far_poison);
    std::vector<std::vector<std::vector<int64_t>>> lists(n_seq); // [seq][kv head] positions
    for (size_t s = 0; s < n_seq; ++s) {
        if (sel_n[s] < 0) {
            continue;
        }
        const auto slot = static_cast<int64_t>(2 * s + 1);
        for (int64_t l = 0; l < n_layer; ++l) {
            for (int64_t h = 0; h < c.n_head_kv; ++h) {
                int32_t * list = sel_pos.data() + ((slot * n_layer + l) * c.n_head_kv + h) * sel_cap;
                std::fill(list, list + sel_cap, static_cast<int32_t>(c.lens[s]));
                if (l != layer) {
                    continue;
                }
                std::vector<int64_t> all(static_cast<size_t>(sel_recent[s]));
                std::iota(all.begin(), all.end(), 0);
                std::shuffle(all.begin(), all.end(), rng);
                all.resize(static_cast<size_t>(sel_n[s]));
                std::sort(all.begin(), all.end());
                for (size_t i = 0; i < all.size(); ++i) {
                    list[i] = static_cast<int32_t>(all[i]);
                }
                lists[s].push_back(all);
            }
        }
    }

    // Summed rows: one target per sequence; the reference scores [sequence][group][position] over the domain
    // (the first row's prefix and itself, as Collect-2-Query's), groups = KV heads or one for all heads.
    const bool sum_mode = c.collect == collect_rows::collect_rows_sum_first_last ||
                          c.collect == collect_rows::collect_rows_sum_all_per_kv_head;
    const bool sum_per_kv = c.collect == collect_rows::collect_rows_sum_all_per_kv_head;
    const int64_t sum_groups = sum_per_kv ? c.n_head_kv : 1;
    const int64_t max_len = *std::max_element(c.lens.begin(), c.lens.end());
    const int64_t sum_cap = (max_len / 2 + 2) * 2; // even, past every position
    std::vector<double> want_scores(n_seq * static_cast<size_t>(sum_groups * sum_cap), 0.0);
    std::vector<int64_t> sum_domain(n_seq, 0);
    for (size_t s = 0; s < n_seq; ++s) {
        sum_domain[s] = c.lens[s] - c.rows[s] + 1;
    }

    // Rows and their queries; the row stride leaves room for K and V heads, poisoned.
    std::vector<attention_plan_row> rows;
    std::vector<size_t> row_seq;
    for (size_t s = 0; s < n_seq; ++s) {
        for (int64_t i = 0; i < c.rows[s]; ++i) {
            attention_plan_row row{&seq_pages[s], static_cast<int32_t>(s), c.lens[s] - c.rows[s] + i};
            if (sel_n[s] >= 0) {
                row.sel = static_cast<int32_t>(2 * s + 1);
                row.sel_n = sel_n[s];
                row.sel_recent = sel_recent[s];
            } else if (c.collect == collect_rows::collect_rows_all) {
                row.collect = true;
            } else if (c.collect == collect_rows::collect_rows_first_last) {
                row.collect = i == 0 || i == c.rows[s] - 1;
            } else if (sum_mode && (sum_per_kv || i == 0 || i == c.rows[s] - 1)) {
                row.sum_target = static_cast<int32_t>(s);
            }
            rows.push_back(row);
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
    pc.n_sm = c.n_sm; // fixed so the split does not depend on the test machine
    pc.slot_capacity = 8192;
    pc.sel_cap = sel_cap;
    pc.collect_cap = *std::max_element(c.lens.begin(), c.lens.end()) + 5;
    pc.invariant = c.invariant;
    pc.invariant_chunk = c.chunk;
    pc.sum_cap = sum_cap;
    pc.split_d = split_d;
    attention_plan plan;
    attention_plan_build(rows, pc, plan);
    if (split_d && plan.split_d_row_tiles == 0) {
        GTEST_SKIP() << c.name << ": tiles of more than 32 query vectors (attention.cuh only)";
    }

    const device_buffer d_q = upload(q);
    const device_buffer d_k = upload(k_pool);
    const device_buffer d_v = upload(v_pool);
    const device_plan d_plan(plan);
    const size_t n_slots = static_cast<size_t>(std::max<int64_t>(plan.n_slots, 1));
    const device_buffer d_po = upload(std::vector<float>(n_slots * static_cast<size_t>(n_head * hd), nan_f));
    const device_buffer d_pl = upload(std::vector<float>(n_slots * static_cast<size_t>(n_head), nan_f));
    const size_t out_n = static_cast<size_t>((n_rows + 2) * n_head * hd);
    const device_buffer d_out = upload(std::vector<uint16_t>(out_n, f32_to_bf16(nan_f)));
    const device_buffer d_sel = upload(sel_pos);
    // One poisoned collect row more than the plan asks for: nothing may land there.
    const size_t cl_n = static_cast<size_t>((plan.n_collect + 1) * n_head * pc.collect_cap);
    const size_t cs_n = static_cast<size_t>((plan.n_collect + 1) * n_head);
    const device_buffer d_cl = upload(std::vector<uint16_t>(cl_n, f32_to_bf16(nan_f)));
    const device_buffer d_cs = upload(std::vector<float>(cs_n, nan_f));

    const attention_plan_device dev = d_plan.view();
    attention_params p = attention_params_from_plan(plan, pc, dev);
    p.q = bptr(d_q);
    p.q_row_stride = q_stride;
    p.k_pool = bptr(d_k) + layer * layout.layer_elems();
    p.v_pool = bptr(d_v) + layer * layout.layer_elems();
    p.partial_o = dptr<float>(d_po);
    p.partial_lse = dptr<float>(d_pl);
    p.out = bptr(d_out);
    p.head_dim = hd;
    p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    p.sel_pos = dptr<int32_t>(d_sel);
    p.layer = layer;
    p.n_layer = n_layer;
    p.collect_logits = bptr(d_cl);
    p.collect_lse = dptr<float>(d_cs);
    const size_t part_n = static_cast<size_t>(std::max<int64_t>(plan.n_sum_slots, 1) * c.n_head_kv * sum_cap);
    const device_buffer d_part = upload(std::vector<float>(part_n, nan_f));
    p.sum_partial = dptr<float>(d_part);
    launch_attention(p, nullptr);
    const std::vector<float> part = download<float>(d_part, part_n);
    const std::vector<float> out = from_bf16(download<uint16_t>(d_out, out_n));
    const std::vector<float> cl = from_bf16(download<uint16_t>(d_cl, cl_n));
    const std::vector<float> cs = download<float>(d_cs, cs_n);

    // Reference in double over the same bf16 values; collected rows checked entry by entry.
    std::vector<float> ref(static_cast<size_t>(n_rows * n_head * hd));
    std::vector<double> sc;
    int64_t ci = 0;
    int64_t n_logits = 0;
    double lse_err = 0.0;
    for (int64_t r = 0; r < n_rows; ++r) {
        const size_t s = row_seq[static_cast<size_t>(r)];
        const attention_plan_row & row = rows[static_cast<size_t>(r)];
        const paged_kv_seq view{seq_pages[s].data(), c.lens[s]};
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t kvh = h / c.group;
            std::vector<int64_t> attended; // ascending positions
            if (row.sel >= 0) {
                attended = lists[s][static_cast<size_t>(kvh)];
                for (int64_t t = row.sel_recent; t <= row.pos; ++t) {
                    attended.push_back(t);
                }
            } else {
                for (int64_t t = c.window > 0 ? std::max<int64_t>(0, row.pos - c.window + 1) : 0; t <= row.pos; ++t) {
                    attended.push_back(t);
                }
            }
            sc.assign(attended.size(), 0.0);
            double mx = -INFINITY;
            for (size_t j = 0; j < attended.size(); ++j) {
                const int64_t off = paged_kv_offset(layout, view, layer, kvh, attended[j]);
                double dot = 0.0;
                for (int64_t d = 0; d < hd; ++d) {
                    dot += static_cast<double>(bf16_to_f32(q[static_cast<size_t>(r * q_stride + h * hd + d)])) *
                           bf16_to_f32(k_pool[static_cast<size_t>(off + d)]);
                }
                sc[j] = dot * p.scale;
                mx = std::max(mx, sc[j]);
            }
            double sum = 0.0;
            for (double x : sc) {
                sum += std::exp(x - mx);
            }
            float * o = ref.data() + (r * n_head + h) * hd;
            for (size_t j = 0; j < attended.size(); ++j) {
                const int64_t off = paged_kv_offset(layout, view, layer, kvh, attended[j]);
                const double wgt = std::exp(sc[j] - mx) / sum;
                for (int64_t d = 0; d < hd; ++d) {
                    o[d] += static_cast<float>(wgt * bf16_to_f32(v_pool[static_cast<size_t>(off + d)]));
                }
            }
            if (row.sum_target >= 0) {
                double * acc =
                    want_scores.data() + (static_cast<int64_t>(s) * sum_groups + (sum_per_kv ? kvh : 0)) * sum_cap;
                for (size_t j = 0; j < attended.size() && attended[j] < sum_domain[s]; ++j) {
                    acc[attended[j]] += sc[j];
                }
            }
            if (!row.collect) {
                continue;
            }
            const float * got = cl.data() + (ci * n_head + h) * pc.collect_cap;
            size_t j = 0;
            for (int64_t t = 0; t < pc.collect_cap; ++t) {
                if (j < attended.size() && attended[j] == t) {
                    const double want = sc[j++];
                    ASSERT_LE(std::fabs(got[t] - want), 2e-3 + 8e-3 * std::fabs(want))
                        << c.name << ": collected row " << ci << " head " << h << " position " << t;
                    ++n_logits;
                } else {
                    ASSERT_TRUE(std::isnan(got[t]))
                        << c.name << ": collect row " << ci << " head " << h << " wrote unattended position " << t;
                }
            }
            const double want_lse = mx + std::log(sum);
            const double e = std::fabs(cs[static_cast<size_t>(ci * n_head + h)] - want_lse);
            lse_err = std::max(lse_err, e);
            ASSERT_LE(e, 1e-3 * std::max(1.0, std::fabs(want_lse))) << c.name << ": lse of collected row " << ci;
        }
        ci += row.collect ? 1 : 0;
    }
    ASSERT_EQ(ci, plan.n_collect);
    // Summed rows, exactly: each work item's partial row holds its tile's sum vector (the fp32 sum over the tile's
    // summed rows and the KV head's G heads of their queries, in that order, times the softmax scale, rounded once
    // to bf16) times each key, up to the tile's last summed row.
    int64_t n_sums = 0;
    ASSERT_EQ(plan.n_sum_slots == 0, !sum_mode) << c.name;
    for (const attention_work & w : plan.work) {
        if (w.sum_slot < 0) {
            continue;
        }
        const attention_segment & sg = plan.segs[static_cast<size_t>(w.seg)];
        const size_t s = row_seq[static_cast<size_t>(sg.row0)];
        const paged_kv_seq view{seq_pages[s].data(), c.lens[s]};
        std::vector<float> qsum(static_cast<size_t>(hd), 0.0f);
        int64_t last = -1;
        for (int32_t r = w.row0; r < w.row0 + w.n_rows; ++r) {
            const int64_t br = sg.row0 + r; // batch row
            if (rows[static_cast<size_t>(br)].sum_target < 0) {
                continue;
            }
            last = rows[static_cast<size_t>(br)].pos;
            for (int64_t g = 0; g < c.group; ++g) {
                for (int64_t d = 0; d < hd; ++d) {
                    qsum[static_cast<size_t>(d)] +=
                        bf16_to_f32(q[static_cast<size_t>(br * q_stride + (w.kv_head * c.group + g) * hd + d)]);
                }
            }
        }
        ASSERT_GE(last, 0) << c.name << ": a sum slot on a tile without summed rows";
        for (int64_t t = w.kv_begin; t < std::min<int64_t>(w.kv_end, last + 1); ++t) {
            const int64_t off = paged_kv_offset(layout, view, layer, w.kv_head, t);
            double want = 0.0;
            double mag = 0.0;
            for (int64_t d = 0; d < hd; ++d) {
                const double x = static_cast<double>(bf16_to_f32(f32_to_bf16(qsum[static_cast<size_t>(d)] * p.scale))) *
                                 bf16_to_f32(k_pool[static_cast<size_t>(off + d)]);
                want += x;
                mag += std::fabs(x);
            }
            const float got = part[static_cast<size_t>((w.sum_slot * c.n_head_kv + w.kv_head) * sum_cap + t)];
            ASSERT_LE(std::fabs(got - want), 1e-5 + 1e-5 * mag)
                << c.name << ": sum vector of slot " << w.sum_slot << " KV head " << w.kv_head << " position " << t;
        }
    }
    // And what that means: the partial rows of each sequence's slots, added up over slots and the group's KV heads
    // as the score reduce does, give the sum over the rows and heads of the logits at every position of the domain
    // (up to the sum vector's bf16 rounding); nothing lands past a sequence's last position.
    for (size_t s = 0; s < n_seq && sum_mode; ++s) {
        const bool has = s < plan.sum_slots.size() && plan.sum_slots[s].second > 0;
        ASSERT_EQ(has, sel_n[s] < 0) << c.name << ": sequence " << s << " (dense rows sum, sparse ones do not)";
        if (!has) {
            continue;
        }
        const auto [slot0, n_slot] = plan.sum_slots[s];
        for (int32_t sl = slot0; sl < slot0 + n_slot; ++sl) {
            for (int64_t kvh = 0; kvh < c.n_head_kv; ++kvh) {
                for (int64_t t = c.lens[s]; t < sum_cap; ++t) {
                    ASSERT_TRUE(std::isnan(part[static_cast<size_t>((sl * c.n_head_kv + kvh) * sum_cap + t)]))
                        << c.name << ": partial slot " << sl << " written past the sequence at " << t;
                }
            }
        }
        for (int64_t g = 0; g < sum_groups; ++g) {
            const double * want = want_scores.data() + (static_cast<int64_t>(s) * sum_groups + g) * sum_cap;
            double row_scale = 0.0;
            for (int64_t t = 0; t < sum_domain[s]; ++t) {
                row_scale = std::max(row_scale, std::fabs(want[t]));
            }
            for (int64_t t = 0; t < sum_domain[s]; ++t) {
                double got = 0.0;
                for (int32_t sl = slot0; sl < slot0 + n_slot; ++sl) {
                    for (int64_t kvh = sum_per_kv ? g : 0; kvh < (sum_per_kv ? g + 1 : c.n_head_kv); ++kvh) {
                        got += part[static_cast<size_t>((sl * c.n_head_kv + kvh) * sum_cap + t)];
                    }
                }
                ASSERT_LE(std::fabs(got - want[t]), 1e-2 + 2e-2 * row_scale)
                    << c.name << ": summed score of sequence " << s << " group " << g << " position " << t;
                ++n_sums;
            }
        }
    }
    if (sum_mode) {
        ASSERT_GT(n_sums, 0);
        n_logits += n_sums;
    }
    for (size_t i = static_cast<size_t>(plan.n_collect * n_head * pc.collect_cap); i < cl_n; ++i) {
        ASSERT_TRUE(std::isnan(cl[i])) << c.name << ": wrote past the last collected row";
    }
    for (size_t i = static_cast<size_t>(plan.n_collect * n_head); i < cs_n; ++i) {
        ASSERT_TRUE(std::isnan(cs[i])) << c.name << ": wrote an LSE past the last collected row";
    }
    const double err = rel_l2(out.data(), ref.data(), ref.size());
    EXPECT_LE(err, tol_attention) << c.name << " (" << plan.work.size() << " CTAs, " << plan.n_slots << " slots)";
    for (size_t i = ref.size(); i < out_n; ++i) {
        ASSERT_TRUE(std::isnan(out[i])) << c.name << ": wrote past the last row";
    }
    std::printf("[ op ] attention %-44s rows %4lld  CTAs %5zu  slots %5lld  rel_l2 %.3g  logits %lld  lse %.2g\n",
                c.name, static_cast<long long>(n_rows), plan.work.size(), static_cast<long long>(plan.n_slots), err,
                static_cast<long long>(n_logits), lse_err);
}

namespace {
constexpr collect_rows fl = collect_rows::collect_rows_first_last;
constexpr collect_rows all_rows = collect_rows::collect_rows_all;
constexpr collect_rows sum_fl = collect_rows::collect_rows_sum_first_last;
constexpr collect_rows sum_all_kv = collect_rows::collect_rows_sum_all_per_kv_head;
} // namespace

INSTANTIATE_TEST_SUITE_P(
    grid, attention_test,
    ::testing::Combine(
        ::testing::Values(
            // decode: one row per sequence
            attn_case{"decode_len1_g1_d64", {1}, {1}, 1, 2, 64, 16},
            attn_case{"decode_17seq_len17to97_g4_d128", repeat(1, 17), ramp(17, 5, 17), 4, 2, 128, 16},
            attn_case{"decode_len4099_g8_d128", {1, 1}, {4099, 97}, 8, 1, 128, 16},
            attn_case{"decode_len4099_g1_d64_ps7", {1}, {4099}, 1, 8, 64, 7},
            attn_case{"decode_97seq_g4_d48", repeat(1, 97), ramp(97, 3, 1), 4, 2, 48, 16},
            attn_case{"decode_len300_g4_d6_ps5", {1, 1}, {300, 17}, 4, 2, 6, 5}, // head dim not a multiple of 8
            // verify: a few rows per sequence at the end of long contexts
            attn_case{"verify_17rows_len4099_g4_d64_ps32", {17}, {4099}, 4, 2, 64, 32},
            attn_case{"verify_3x7rows_g8_d128", {7, 7, 7}, {97, 4099, 17}, 8, 2, 128, 16},
            // prefill: whole prompts or chunks, several row tiles
            attn_case{"prefill_97rows_g1_d48", {97}, {97}, 1, 4, 48, 16},
            attn_case{"prefill_chunk_97rows_at200_g8_d64_window50", {97}, {297}, 8, 1, 64, 16, 50},
            attn_case{"prefill_17rows_g4_d8_ps5", {17}, {17}, 4, 2, 8, 5},
            attn_case{"prefill_200rows_g4_d128", {200}, {1000}, 4, 2, 128, 16},
            attn_case{"mixed_1_17_97_g4_d96_ps13", {1, 17, 97}, {4099, 17, 200}, 4, 2, 96, 13},
            attn_case{"mixed_g8_d256_window1000", {1, 5}, {4099, 1500}, 8, 1, 256, 16, 1000},
            // head dim 256 in decode and verify tiles (the split-D kernel's 256 instance: one CTA per SM)
            attn_case{"verify_7rows_len4099_g4_d256", {7}, {4099}, 4, 2, 256, 16},
            attn_case{"decode_len300_len17_g2_d256_ps7", {1, 1}, {300, 17}, 2, 2, 256, 7},
            attn_case{"page_boundary_rows_g4_d128", {16, 1, 1}, {32, 16, 17}, 4, 2, 128, 16},
            // sparse draft rows: list sizes 0 .. all, recent ranges, per-sequence selections, split and unsplit
            attn_case{"sparse_len1_empty_g4_d128", {1}, {1}, 4, 2, 128, 16, 0, {0}},
            attn_case{"sparse_len17_all_g1_d64", {1}, {17}, 1, 4, 64, 16, 0, {-2}, 3},
            attn_case{"sparse_len97_n20_g8_d128_ps7", {1}, {97}, 8, 1, 128, 7, 0, {20}},
            attn_case{"sparse_len4099_n287_g4_d128", {1}, {4099}, 4, 2, 128, 16, 0, {287}},
            attn_case{"sparse_len4099_all_split_g4_d128", {1}, {4099}, 4, 2, 128, 16, 0, {-2}, 0},
            attn_case{"sparse_len4099_n3000_nosplit_g8_d64", {1}, {4099}, 8, 1, 64, 16, 0, {3000}, 8, {}, 1},
            attn_case{"sparse_3rows_len4099_n500_g4_d128", {3}, {4099}, 4, 2, 128, 16, 0, {500}, 5},
            attn_case{"sparse_batch_mixed_g4_d128",
                      {1, 1, 1, 2, 1},
                      {4099, 97, 17, 300, 1},
                      4,
                      2,
                      128,
                      16,
                      0,
                      {287, -1, 0, 64, 0},
                      8},
            attn_case{"sparse_batch_g1_d48_ps13", {1, 1, 1}, {97, 4099, 33}, 1, 3, 48, 13, 0, {-2, 1000, 5}, 20},
            attn_case{"sparse_and_dense_verify_g8_d128", {7, 1}, {4099, 4099}, 8, 1, 128, 16, 0, {-1, 300}},
            // score collection (Collect-2-Query): first/last or all rows, split and unsplit
            attn_case{"collect_verify_7rows_len4099_split_g4_d128", {7}, {4099}, 4, 2, 128, 16, 0, {}, 8, fl},
            attn_case{"collect_verify_7rows_len4099_nosplit_g4_d128", {7}, {4099}, 4, 2, 128, 16, 0, {}, 8, fl, 1},
            attn_case{"collect_all_7rows_len97_g8_d128", {7}, {97}, 8, 1, 128, 16, 0, {}, 8, all_rows},
            attn_case{"collect_batch_fl_g4_d64_ps7", {7, 7, 1, 2}, {4099, 17, 300, 7}, 4, 2, 64, 7, 0, {}, 8, fl},
            attn_case{"collect_window_g4_d128", {7}, {500}, 4, 2, 128, 16, 100, {}, 8, fl},
            attn_case{"collect_prefill_97rows_all_g1_d48", {97}, {150}, 1, 2, 48, 16, 0, {}, 8, all_rows},
            attn_case{"collect_with_sparse_rows_g4_d128", {7, 1}, {4099, 4099}, 4, 2, 128, 16, 0, {-1, 287}, 8, fl},
            // summed rows (logit mode in the kernel): split and unsplit, one row tile or several per warp or per CTA
            attn_case{"sum_verify_7rows_len4099_split_g4_d128", {7}, {4099}, 4, 2, 128, 16, 0, {}, 8, sum_fl},
            attn_case{"sum_batch_nosplit_g8_d128", {7, 7, 1}, {4099, 97, 300}, 8, 1, 128, 16, 0, {}, 8, sum_fl, 1},
            attn_case{"sum_all_per_kv_g4_d64_ps7", {7, 1}, {300, 17}, 4, 2, 64, 7, 0, {}, 8, sum_all_kv},
            // invariant: tiles of 3 rows (attention.cuh), of all 7 and the sum vector (split-D, four row tiles)
            attn_case{"sum_verify_g8_d128_inv", {7}, {4099}, 8, 1, 128, 16, 0, {}, 8, sum_fl, 132, true},
            // gamma 7 at G = 4: 8 rows and the sum vector, 33 vectors (split-D: one tile of four row tiles)
            attn_case{"inv_sum_verify_8rows_g4_d128", {8, 1}, {4099, 97}, 4, 2, 128, 16, 0, {}, 8, sum_fl, 132, true},
            attn_case{
                "inv_sum_verify_2x8rows_g4_d64_ps7", {8, 8}, {300, 4099}, 4, 2, 64, 7, 0, {}, 8, sum_fl, 132, true},
            attn_case{"inv_verify_8rows_collect_g8_d64", {8, 1}, {4099, 17}, 8, 1, 64, 16, 0, {}, 8, fl, 132, true},
            attn_case{"inv_verify_7rows_g8_d256", {7}, {4099}, 8, 1, 256, 16, 0, {}, 8, fl, 132, true}, // spills
            attn_case{"sum_prefill_97rows_per_kv_g1_d48", {97}, {150}, 1, 2, 48, 16, 0, {}, 8, sum_all_kv},
            attn_case{"sum_with_sparse_rows_g4_d128", {7, 1}, {4099, 4099}, 4, 2, 128, 16, 0, {-1, 287}, 8, sum_fl},
            // the batch-invariant plan: warps of two row tiles, tiles of up to 32 query vectors, 512-position KV chunks
            attn_case{"inv_decode_17seq_len17to97_g4_d128",
                      repeat(1, 17),
                      ramp(17, 5, 17),
                      4,
                      2,
                      128,
                      16,
                      0,
                      {},
                      8,
                      {},
                      132,
                      true},
            attn_case{"inv_decode_len1_len4099_g8_d128_ps7", {1, 1}, {1, 4099}, 8, 1, 128, 7, 0, {}, 8, {}, 132, true},
            attn_case{
                "inv_verify_7rows_len4099_collect_g4_d128_ps7", {7}, {4099}, 4, 2, 128, 7, 0, {}, 8, fl, 132, true},
            attn_case{"inv_verify_3x7rows_collect_all_g8_d128",
                      {7, 7, 7},
                      {97, 4099, 17},
                      8,
                      2,
                      128,
                      16,
                      0,
                      {},
                      8,
                      all_rows,
                      132,
                      true},
            attn_case{"inv_mixed_1_7_1_g1_d64", {1, 7, 1}, {1, 4099, 97}, 1, 4, 64, 16, 0, {}, 8, fl, 132, true},
            attn_case{
                "inv_verify_and_sparse_g4_d128", {7, 1}, {4099, 4099}, 4, 2, 128, 16, 0, {-1, 287}, 8, fl, 132, true},
            attn_case{"inv_sum_verify_3x7rows_g4_d128_ps7",
                      {7, 7, 7},
                      {97, 4099, 17},
                      4,
                      2,
                      128,
                      7,
                      0,
                      {},
                      8,
                      sum_fl,
                      132,
                      true},
            attn_case{"inv_verify_7rows_len17_g4_d48", {7, 1}, {17, 97}, 4, 2, 48, 16, 0, {}, 8, all_rows, 132, true},
            // the chunks a backend may keep instead of 512 (short sequences at batch 1; large batches)
            attn_case{"inv_chunk128_verify_collect_g4_d128",
                      {7, 1},
                      {4099, 300},
                      4,
                      2,
                      128,
                      16,
                      0,
                      {},
                      8,
                      fl,
                      132,
                      true,
                      128},
            attn_case{"inv_chunk4096_mixed_g8_d128_ps7",
                      {1, 7, 1},
                      {5000, 4099, 97},
                      8,
                      1,
                      128,
                      7,
                      0,
                      {},
                      8,
                      fl,
                      132,
                      true,
                      4096}),
        ::testing::Bool()),
    [](const ::testing::TestParamInfo<std::tuple<attn_case, bool>> & case_info) {
        return std::string(std::get<0>(case_info.param).name) + (std::get<1>(case_info.param) ? "_split_d" : "");
    });

// Exactness oracle of the tensor-core path: keys are one-hot (position t has a 1 in dim t), each query vector is a
// large multiple of one key, so softmax picks that position with weight 1 - 1e-6 and the output must equal its V
// row to bf16 precision. A swapped fragment register, row or column shows up as a wrong value here.
TEST(attention_mma_layout, every_query_vector_picks_its_position) {
    SPECATTN_REQUIRE_GPU();
    // Both kernels of a 7-row verify tile: attention.cuh's and the split-D one (attention_dsplit.cuh).
    for (const auto & [hd, split_d] :
         std::initializer_list<std::pair<int64_t, bool>>{{64, false}, {128, false}, {64, true}, {128, true}}) {
        const int64_t group = 4;
        const int64_t n_head_kv = 2;
        const int64_t n_head = group * n_head_kv;
        const int64_t len = hd - 1; // one-hot keys need len <= hd
        const int64_t n_rows = 7;
        const int64_t page_size = 16;
        paged_kv_layout layout{1, len / page_size + 1, n_head_kv, page_size, hd};
        std::vector<int32_t> pages(static_cast<size_t>(layout.n_pages));
        std::iota(pages.rbegin(), pages.rend(), 0);
        std::vector<uint16_t> k_pool(static_cast<size_t>(layout.total_elems()), f32_to_bf16(0.0f));
        std::vector<uint16_t> v_pool(k_pool.size(), f32_to_bf16(nan_f));
        const paged_kv_seq view{pages.data(), len};
        for (int64_t t = 0; t < len; ++t) {
            for (int64_t h = 0; h < n_head_kv; ++h) {
                const int64_t off = paged_kv_offset(layout, view, 0, h, t);
                k_pool[static_cast<size_t>(off + t)] = f32_to_bf16(1.0f);
                for (int64_t d = 0; d < hd; ++d) {
                    v_pool[static_cast<size_t>(off + d)] = f32_to_bf16(static_cast<float>((t * 7 + d * 3 + h) % 251));
                }
            }
        }
        // Query vector (row r, head h) points at a distinct position it may attend.
        std::vector<uint16_t> q(static_cast<size_t>(n_rows * n_head * hd), f32_to_bf16(0.0f));
        std::vector<int64_t> target(static_cast<size_t>(n_rows * n_head));
        for (int64_t r = 0; r < n_rows; ++r) {
            const int64_t pos = len - n_rows + r;
            for (int64_t h = 0; h < n_head; ++h) {
                const int64_t t = (r * 13 + h * 29 + 5) % (pos + 1);
                target[static_cast<size_t>(r * n_head + h)] = t;
                q[static_cast<size_t>((r * n_head + h) * hd + t)] = f32_to_bf16(256.0f);
            }
        }
        std::vector<attention_plan_row> rows;
        for (int64_t r = 0; r < n_rows; ++r) {
            rows.push_back(attention_plan_row{&pages, 0, len - n_rows + r});
        }
        attention_plan_config pc;
        pc.n_head = n_head;
        pc.n_head_kv = n_head_kv;
        pc.page_size = page_size;
        pc.n_sm = 1;
        pc.split_d = split_d;
        attention_plan plan;
        attention_plan_build(rows, pc, plan);
        ASSERT_EQ(plan.split_d_row_tiles, split_d ? 2 : 0);
        const device_buffer d_q = upload(q);
        const device_buffer d_k = upload(k_pool);
        const device_buffer d_v = upload(v_pool);
        const device_plan d_plan(plan);
        const device_buffer d_out = upload(std::vector<uint16_t>(q.size(), f32_to_bf16(nan_f)));
        const attention_plan_device dev = d_plan.view();
        attention_params p = attention_params_from_plan(plan, pc, dev);
        p.q = bptr(d_q);
        p.q_row_stride = n_head * hd;
        p.k_pool = bptr(d_k);
        p.v_pool = bptr(d_v);
        p.out = bptr(d_out);
        p.head_dim = hd;
        p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        ASSERT_EQ(plan.n_slots, 0);
        launch_attention(p, nullptr);
        const std::vector<float> out = from_bf16(download<uint16_t>(d_out, q.size()));
        for (int64_t r = 0; r < n_rows; ++r) {
            for (int64_t h = 0; h < n_head; ++h) {
                const int64_t t = target[static_cast<size_t>(r * n_head + h)];
                const int64_t off = paged_kv_offset(layout, view, 0, h / group, t);
                for (int64_t d = 0; d < hd; ++d) {
                    const float want = bf16_to_f32(v_pool[static_cast<size_t>(off + d)]);
                    const float got = out[static_cast<size_t>((r * n_head + h) * hd + d)];
                    ASSERT_NEAR(got, want, 0.01f * std::max(1.0f, want))
                        << "d" << hd << (split_d ? " split-D" : "") << ": row " << r << " head " << h << " dim " << d
                        << " should be V[" << t << "]";
                }
            }
        }
    }
}

// The plan side of summed rows (no GPU needed): they take no collect index, share a segment's mask base with
// collected rows, a row summing into another target starts a new segment, tiles leave room for the sum vector, and
// each tile with summed rows gets one partial slot, consecutive per target.
TEST(attention_plan, summed_rows_take_no_collect_index_and_get_a_partial_slot_per_tile) {
    const std::vector<int32_t> pages = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
    std::vector<attention_plan_row> rows;
    for (int64_t pos = 100; pos < 107; ++pos) { // sequence 0: rows 0 and 6 sum into target 0, row 3 is collected
        attention_plan_row r{&pages, 0, pos};
        r.sum_target = pos == 100 || pos == 106 ? 0 : -1;
        r.collect = pos == 103;
        rows.push_back(r);
    }
    for (int64_t pos = 50; pos < 53; ++pos) { // sequence 1: row 0 sums into target 1, rows 1-2 into target 2
        attention_plan_row r{&pages, 1, pos};
        r.sum_target = pos == 50 ? 1 : 2;
        rows.push_back(r);
    }
    attention_plan_config cfg;
    cfg.n_head = 8; // G = 4: sequence 0's 7 rows are 28 query vectors, two row tiles
    cfg.n_head_kv = 2;
    cfg.page_size = 16;
    cfg.slot_capacity = 64;
    cfg.collect_cap = 256;
    cfg.sum_cap = 256;
    cfg.n_sm = 1; // no KV split: one work item per tile and KV head
    attention_plan plan;
    attention_plan_build(rows, cfg, plan);
    EXPECT_EQ(plan.n_collect, 1);
    ASSERT_EQ(plan.segs.size(), 3u);
    const attention_segment & a = plan.segs[0];
    EXPECT_EQ(a.n_rows, 7);
    EXPECT_EQ(a.collect_row0, 0);
    EXPECT_EQ(a.collect_mask, 1u << 3);
    EXPECT_EQ(a.collect0, 0);
    EXPECT_EQ(a.sum_mask, (1u << 0) | (1u << 6));
    EXPECT_EQ(plan.segs[1].sum_mask, 1u);
    EXPECT_EQ(plan.segs[2].sum_mask, 3u);
    EXPECT_EQ(plan.segs[2].collect_mask, 0u);
    // Heuristic plan, 28 vectors: MPW = 2, both row tiles in one warp row; the others one row tile.
    ASSERT_EQ(plan.mtiles_per_warp, 2);
    ASSERT_EQ(plan.sum_slots.size(), 3u);
    EXPECT_EQ(plan.sum_slots[0], std::make_pair(0, 1));
    EXPECT_EQ(plan.sum_slots[1], std::make_pair(1, 1));
    EXPECT_EQ(plan.sum_slots[2], std::make_pair(2, 1));
    EXPECT_EQ(plan.n_sum_slots, 3);
    for (const attention_work & w : plan.work) {
        EXPECT_EQ(w.sum_slot, w.seg) << "segment " << w.seg;
    }
    // 16 prefill rows at G = 4 (64 vectors: MPW = 1, a warp row per 16 vectors) whose rows 5 and 15 sum: tiles of
    // 15 rows (60 vectors and the sum vector) and 1 row, a slot each.
    rows.clear();
    for (int64_t pos = 0; pos < 16; ++pos) {
        attention_plan_row r{&pages, 0, pos};
        r.sum_target = pos == 5 || pos == 15 ? 0 : -1;
        rows.push_back(r);
    }
    attention_plan_build(rows, cfg, plan);
    ASSERT_EQ(plan.mtiles_per_warp, 1);
    EXPECT_EQ(plan.n_sum_slots, 2);
    EXPECT_EQ(plan.sum_slots[0], std::make_pair(0, 2));
    ASSERT_EQ(plan.work.size(), 4u); // 2 tiles x 2 KV heads
    for (const attention_work & w : plan.work) {
        EXPECT_EQ(w.sum_slot, w.row0 == 0 ? 0 : 1);
        EXPECT_EQ(w.n_rows, w.row0 == 0 ? 15 : 1);
    }
    // 32 prefill rows with the last one summed: only the tile holding it gives up a row (16, 15, 1), the others stay
    // full.
    rows.clear();
    for (int64_t pos = 0; pos < 32; ++pos) {
        attention_plan_row r{&pages, 0, pos};
        r.sum_target = pos == 31 ? 0 : -1;
        rows.push_back(r);
    }
    attention_plan_build(rows, cfg, plan);
    std::vector<std::pair<int32_t, int32_t>> tiles; // (row0, n_rows) of KV head 0
    for (const attention_work & w : plan.work) {
        if (w.kv_head == 0) {
            tiles.emplace_back(w.row0, w.n_rows);
            EXPECT_EQ(w.sum_slot, w.row0 == 31 ? 0 : -1) << "tile at row " << w.row0;
        }
    }
    std::sort(tiles.begin(), tiles.end());
    const std::vector<std::pair<int32_t, int32_t>> want_tiles = {{0, 16}, {16, 15}, {31, 1}};
    EXPECT_EQ(tiles, want_tiles);
    EXPECT_EQ(plan.n_sum_slots, 1);
    // A summed row must be dense, not collected too, and within sum_cap.
    rows.resize(16);
    rows[5].sum_target = 0;
    rows[5].collect = true;
    EXPECT_THROW(attention_plan_build(rows, cfg, plan), error);
    rows[5].collect = false;
    cfg.sum_cap = 8;
    EXPECT_THROW(attention_plan_build(rows, cfg, plan), error);
}

// attention_params::page_shift (no GPU needed): log2 of power-of-two page sizes, where row_offset shifts instead of
// dividing; -1 for the others (the GPU tests' odd page sizes), which keep the division.
TEST(attention_plan, page_shift_only_for_power_of_two_pages) {
    const std::vector<int32_t> pages = {0, 1, 2, 3, 4, 5, 6, 7};
    for (const auto & [page_size, shift] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 0}, {2, 1}, {16, 4}, {64, 6}, {1024, 10}, {3, -1}, {17, -1}, {48, -1}, {1000, -1}}) {
        attention_plan_config cfg;
        cfg.n_head = 8;
        cfg.n_head_kv = 2;
        cfg.page_size = page_size;
        cfg.slot_capacity = 4096;
        const std::vector<attention_plan_row> rows = {attention_plan_row{&pages, 0, 0}};
        attention_plan plan;
        attention_plan_build(rows, cfg, plan);
        EXPECT_EQ(attention_params_from_plan(plan, cfg, attention_plan_device{}).page_shift, shift)
            << "page size " << page_size;
    }
}

// attention_work::early_copy (no GPU needed): a dense work item may copy its first two KV blocks before waiting for
// the grid ahead only when none of their pages is one the batch's rows append to, by physical page (a page another
// sequence shares counts too); sparse work never.
TEST(attention_plan, early_copy_only_where_no_row_of_the_batch_appends) {
    std::vector<int32_t> pages_a(40);
    std::iota(pages_a.begin(), pages_a.end(), 0); // sequence 0: pages 0-39, positions 0-639
    std::vector<int32_t> pages_b(40);
    std::iota(pages_b.begin(), pages_b.end(), 100);
    pages_b[5] = 37; // sequence 1 reads, at positions 80-95, the page sequence 0 appends to below
    std::vector<attention_plan_row> rows;
    for (int64_t pos = 600; pos < 608; ++pos) { // a verify of sequence 0 on page 37 (positions 592-607)
        rows.push_back(attention_plan_row{&pages_a, 0, pos});
    }
    rows.push_back(attention_plan_row{&pages_b, 1, 500}); // a decode row of sequence 1 (page 131)
    attention_plan_row draft{&pages_b, 2, 400};           // a sparse draft row
    draft.sel = 0;
    draft.sel_n = 64;
    draft.sel_recent = 380;
    rows.push_back(draft);
    attention_plan_config cfg;
    cfg.n_head = 8;
    cfg.n_head_kv = 2;
    cfg.page_size = 16;
    cfg.slot_capacity = 4096;
    cfg.sel_cap = 64;
    cfg.min_chunk = 64; // split into one-block chunks: many work items
    attention_plan plan;
    attention_plan_build(rows, cfg, plan);
    const auto appended = [&](int32_t page) {
        return page == 37 || page == pages_b[500 / 16] || page == pages_b[400 / 16];
    };
    int early = 0;
    int late = 0;
    for (const attention_work & w : plan.work) {
        const attention_segment & s = plan.segs[static_cast<size_t>(w.seg)];
        bool want = s.sel < 0;
        for (int32_t v = w.kv_begin; want && v < std::min(w.kv_end, w.kv_begin + 2 * attention_kv_block); ++v) {
            want = !appended(plan.page_table[static_cast<size_t>(s.page0 + v / 16)]);
        }
        EXPECT_EQ(w.early_copy, want ? 1 : 0) << "segment " << w.seg << " kv " << w.kv_begin << "-" << w.kv_end;
        (want ? early : late) += 1;
        if (s.sel < 0 && w.kv_begin <= 600 && 600 < w.kv_end) {
            EXPECT_EQ(w.early_copy, 0); // holds the verify's own rows
        }
        if (s.sel < 0 && s.pos0 == 500 && w.kv_begin <= 80 && 80 < w.kv_begin + 2 * attention_kv_block) {
            EXPECT_EQ(w.early_copy, 0); // reads the page sequence 0 appends to
        }
    }
    EXPECT_GT(early, 0);
    EXPECT_GT(late, 0);
}
