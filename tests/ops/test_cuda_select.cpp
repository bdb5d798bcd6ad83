// The draft-selection kernels (score reduce, top-k, Quest metadata and selection; backend/cuda/select_ops.h)
// against CPU oracles that copy the engine's CPU semantics: spec/selector.cpp's accumulate_scores and
// top_k_positions, spec/selectors/quest.cpp's bound. Odd shapes, many jobs per launch, NaN-poisoned unused
// memory and sentinel-filled outputs, so that anything read or written out of bounds fails. Tie-heavy inputs carry
// a check that they discriminate: the oracle with the opposite tie rule must disagree with the kernel there.
#include "backend/cuda/device_info.h"
#include "backend/cuda/select_ops.h"
#include "ops_test_util.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>

using namespace specattn;
using namespace specattn::test;

namespace {

constexpr int32_t sentinel = -7;

// spec/selector.cpp's top_k_positions, copied: higher score first, equal scores by lower position, ascending.
// higher_ties flips the tie rule (used only to show that a test input discriminates).
std::vector<int32_t> oracle_top_k(const float * score, int64_t n, int64_t k, bool higher_ties = false) {
    k = std::clamp<int64_t>(k, 0, n);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    auto better = [score, higher_ties](int64_t a, int64_t b) {
        return score[a] > score[b] || (score[a] == score[b] && (higher_ties ? a > b : a < b));
    };
    std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
    idx.resize(static_cast<size_t>(k));
    std::sort(idx.begin(), idx.end());
    return std::vector<int32_t>(idx.begin(), idx.end());
}

// ---- score reduce ----

struct reduce_case {
    int64_t n_head, n_head_kv, n_collect, head_stride;
    bool discard = false; // score_reduce_params::discard: lines dropped once read must still give every score
    std::string name() const {
        char buf[96];
        std::snprintf(buf, sizeof(buf), "H%lld_HK%lld_C%lld_stride%lld%s", static_cast<long long>(n_head),
                      static_cast<long long>(n_head_kv), static_cast<long long>(n_collect),
                      static_cast<long long>(head_stride), discard ? "_discard" : "");
        return buf;
    }
};

void run_reduce_case(const reduce_case & rc, uint32_t seed) {
    const int64_t H = rc.n_head;
    const int64_t HK = rc.n_head_kv;
    const int64_t C = rc.n_collect;
    const int64_t hs = rc.head_stride;
    const int64_t rs = H * hs + 8; // collect row stride: a gap between rows, also poisoned
    std::mt19937 rng(seed);
    // Valid length of each collect row (pos_c + 1); beyond it the buffer stays NaN.
    std::vector<int64_t> valid(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
        valid[static_cast<size_t>(c)] = hs - static_cast<int64_t>(rng() % 5);
    }
    std::vector<float> logits(static_cast<size_t>(C * rs), nan_f);
    std::vector<float> lse(static_cast<size_t>(C * H));
    std::uniform_real_distribution<float> dist(-6.0f, 4.0f);
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t h = 0; h < H; ++h) {
            double mx = -1e30;
            for (int64_t p = 0; p < valid[static_cast<size_t>(c)]; ++p) {
                const float v = bf16_round(dist(rng));
                logits[static_cast<size_t>(c * rs + h * hs + p)] = v;
                mx = std::max(mx, static_cast<double>(v));
            }
            double s = 0.0;
            for (int64_t p = 0; p < valid[static_cast<size_t>(c)]; ++p) {
                s += std::exp(logits[static_cast<size_t>(c * rs + h * hs + p)] - mx);
            }
            lse[static_cast<size_t>(c * H + h)] = static_cast<float>(mx + std::log(s));
        }
    }
    // Sinks: rows, domain, mode and grouping vary; domains never exceed the rows' valid lengths.
    std::vector<score_reduce_job> jobs;
    int64_t out_size = 0;
    const int64_t layer = 2;
    const int64_t n_layer = 3;
    int64_t max_domain = 0;
    for (int64_t c0 = 0; c0 < C; ++c0) {
        for (int64_t nr = 1; nr <= 2 && c0 + nr <= C; ++nr) {
            for (int mode = 0; mode < 2; ++mode) {
                if (rc.discard && (nr != 2 || c0 % 2 != 0 || mode != c0 / 2 % 2)) {
                    continue; // with discard every row has one reader: rows (0, 1), (2, 3), ...
                }
                score_reduce_job j;
                j.collect0 = static_cast<int32_t>(c0);
                j.n_rows = static_cast<int32_t>(nr);
                int64_t dom = std::min(valid[static_cast<size_t>(c0)], valid[static_cast<size_t>(c0 + nr - 1)]);
                dom -= static_cast<int64_t>(rng() % 9);
                j.domain = static_cast<int32_t>(std::max<int64_t>(dom, 1));
                j.mode =
                    mode ? score_reduce_mode::score_reduce_mode_weight : score_reduce_mode::score_reduce_mode_logit;
                j.n_groups = static_cast<int32_t>(((c0 + nr + mode) % 2) ? HK : 1);
                j.out_offset = out_size + static_cast<int64_t>(rng() % 3); // also misaligned outputs
                jobs.push_back(j);
                max_domain = std::max<int64_t>(max_domain, j.domain);
            }
        }
    }
    const int64_t group_stride = max_domain + 3;
    const int64_t layer_stride = HK * group_stride + 5;
    for (score_reduce_job & j : jobs) {
        j.out_offset += out_size;
        out_size = j.out_offset + n_layer * layer_stride;
    }
    const std::vector<uint16_t> logits_bf = to_bf16(logits);
    const device_buffer d_logits = upload(logits_bf);
    if (rc.discard) {
        // Rows as the engine has them when the reduce drops them: written just before (dirty in L2) over other
        // contents in memory (NaN, pushed out of L2 by a larger write). A line dropped before every lane's load of
        // it has returned hands that lane the NaN.
        const device_buffer d_right = upload(logits_bf);
        ASSERT_EQ(cudaMemset(d_logits.as<void>(), 0xff, logits_bf.size() * sizeof(uint16_t)), cudaSuccess); // NaN
        const device_buffer flush(static_cast<size_t>(4 * cuda_l2_cache_bytes()));
        ASSERT_EQ(cudaMemset(flush.as<void>(), 0, flush.bytes()), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(d_logits.as<void>(), d_right.as<void>(), logits_bf.size() * sizeof(uint16_t),
                             cudaMemcpyDeviceToDevice),
                  cudaSuccess);
    }
    const device_buffer d_lse = upload(lse);
    const device_buffer d_jobs = upload(jobs);
    const device_buffer d_scores = upload(std::vector<float>(static_cast<size_t>(out_size), nan_f));
    score_reduce_params p;
    p.logits = bptr(d_logits);
    p.lse = dptr<float>(d_lse);
    p.collect_row_stride = rs;
    p.collect_head_stride = hs;
    p.jobs = dptr<score_reduce_job>(d_jobs);
    p.scores = dptr<float>(d_scores);
    p.n_jobs = static_cast<int64_t>(jobs.size());
    p.n_head = H;
    p.n_head_kv = HK;
    p.layer = layer;
    p.layer_stride = layer_stride;
    p.group_stride = group_stride;
    p.max_domain = max_domain;
    p.max_groups = HK;
    p.discard = rc.discard;
    launch_score_reduce(p, nullptr);
    const std::vector<float> out = download<float>(d_scores, static_cast<size_t>(out_size));

    std::vector<char> written(static_cast<size_t>(out_size), 0);
    for (size_t ji = 0; ji < jobs.size(); ++ji) {
        const score_reduce_job & j = jobs[ji];
        const int64_t per_group = j.n_groups == 1 ? H : H / HK;
        for (int64_t g = 0; g < j.n_groups; ++g) {
            // accumulate_scores: per row, per head of the group, acc[p] += s or exp(s - lse), in fp32.
            std::vector<float> acc(static_cast<size_t>(j.domain), 0.0f);
            double mag = 0.0;
            for (int64_t r = 0; r < j.n_rows; ++r) {
                const int64_t c = j.collect0 + r;
                for (int64_t h = g * per_group; h < (g + 1) * per_group; ++h) {
                    const float * row = logits.data() + c * rs + h * hs;
                    const float l = lse[static_cast<size_t>(c * H + h)];
                    for (int64_t q = 0; q < j.domain; ++q) {
                        const float f =
                            j.mode == score_reduce_mode::score_reduce_mode_logit ? row[q] : std::exp(row[q] - l);
                        acc[static_cast<size_t>(q)] += f;
                        mag = std::max(mag, static_cast<double>(std::fabs(f)));
                    }
                }
            }
            const int64_t base = j.out_offset + layer * layer_stride + g * group_stride;
            for (int64_t q = 0; q < j.domain; ++q) {
                const float ref = acc[static_cast<size_t>(q)];
                const float got = out[static_cast<size_t>(base + q)];
                written[static_cast<size_t>(base + q)] = 1;
                ASSERT_NEAR(got, ref, 1e-5 * std::fabs(ref) + 2e-6 * mag * static_cast<double>(per_group * j.n_rows))
                    << rc.name() << " job " << ji << " group " << g << " p " << q;
            }
        }
    }
    for (int64_t i = 0; i < out_size; ++i) {
        if (!written[static_cast<size_t>(i)]) {
            ASSERT_TRUE(std::isnan(out[static_cast<size_t>(i)])) << rc.name() << ": wrote outside every sink at " << i;
        }
    }
}

} // namespace

TEST(cuda_select, score_reduce_matches_cpu_sums) {
    SPECATTN_REQUIRE_GPU();
    const reduce_case cases[] = {
        {12, 4, 5, 97},   // G 3, scalar path (stride not a multiple of 8)
        {8, 8, 3, 1064},  // G 1, vector path
        {16, 2, 4, 2056}, // G 8, vector path, domains over two CTAs
        {32, 8, 2, 54},
        // Rows of 2048 (whole 128-byte lines where the row starts on one: collect row 0) dropped as they are read;
        // weight and logit jobs, one reader per row.
        {16, 2, 4, 2048, true},
    };
    uint32_t seed = 11;
    for (const reduce_case & rc : cases) {
        run_reduce_case(rc, seed++);
    }
}

// ---- top-k ----

namespace {

enum class score_kind { random, ties, all_equal, with_neg_inf };

std::vector<float> make_scores(int64_t n, score_kind kind, std::mt19937 & rng) {
    std::vector<float> s(static_cast<size_t>(n));
    std::uniform_real_distribution<float> dist(-40.0f, 40.0f);
    const float levels[] = {-INFINITY, -1.0f, 0.0f, -0.0f, 2.5f, 2.5f, 7.0f};
    for (int64_t i = 0; i < n; ++i) {
        float v = 0.0f;
        switch (kind) {
        case score_kind::random:
            v = dist(rng);
            break;
        case score_kind::ties:
            v = levels[rng() % 7];
            break;
        case score_kind::all_equal:
            v = 1.25f;
            break;
        case score_kind::with_neg_inf:
            v = (rng() % 3 == 0) ? -INFINITY : dist(rng);
            break;
        }
        s[static_cast<size_t>(i)] = v;
    }
    return s;
}

struct top_k_case {
    int64_t n, k;
    score_kind kind;
    int32_t n_copies;
};

// Runs every case as one job of a single launch; scores at odd offsets (misaligned rows), NaN between rows.
void run_top_k_launch(const std::vector<top_k_case> & cases, uint32_t seed, bool check_discrimination) {
    std::mt19937 rng(seed);
    std::vector<float> scores;
    std::vector<top_k_job> jobs;
    std::vector<std::vector<float>> rows;
    int64_t list_size = 0;
    int64_t max_n = 0;
    for (const top_k_case & tc : cases) {
        const int64_t pad = 1 + static_cast<int64_t>(rng() % 4);
        scores.insert(scores.end(), static_cast<size_t>(pad), nan_f);
        rows.push_back(make_scores(tc.n, tc.kind, rng));
        top_k_job j;
        j.score_offset = static_cast<int64_t>(scores.size());
        j.n = static_cast<int32_t>(tc.n);
        j.k = static_cast<int32_t>(tc.k);
        j.n_copies = tc.n_copies;
        j.copy_stride = std::max<int64_t>(std::min(tc.k, tc.n), 0) + 3;
        j.list_offset = list_size + 1;
        list_size = j.list_offset + j.copy_stride * tc.n_copies + 2;
        scores.insert(scores.end(), rows.back().begin(), rows.back().end());
        jobs.push_back(j);
        max_n = std::max(max_n, tc.n);
    }
    scores.insert(scores.end(), 5, nan_f);
    const device_buffer d_scores = upload(scores);
    const device_buffer d_jobs = upload(jobs);
    const device_buffer d_lists = upload(std::vector<int32_t>(static_cast<size_t>(list_size), sentinel));
    top_k_params p;
    p.scores = dptr<float>(d_scores);
    p.jobs = dptr<top_k_job>(d_jobs);
    p.lists = dptr<int32_t>(d_lists);
    p.n_jobs = static_cast<int64_t>(jobs.size());
    p.max_n = max_n;
    launch_top_k(p, nullptr);
    const std::vector<int32_t> lists = download<int32_t>(d_lists, static_cast<size_t>(list_size));
    std::vector<char> written(static_cast<size_t>(list_size), 0);
    for (size_t ji = 0; ji < jobs.size(); ++ji) {
        const top_k_job & j = jobs[ji];
        const std::vector<int32_t> ref = oracle_top_k(rows[ji].data(), j.n, j.k);
        char name_buf[96];
        std::snprintf(name_buf, sizeof(name_buf), "job %zu n %d k %d kind %d", ji, j.n, j.k,
                      static_cast<int>(cases[ji].kind));
        const std::string name = name_buf;
        for (int32_t c = 0; c < j.n_copies; ++c) {
            const int64_t base = j.list_offset + c * j.copy_stride;
            std::vector<int32_t> got(lists.begin() + base, lists.begin() + base + static_cast<int64_t>(ref.size()));
            for (size_t i = 0; i < ref.size(); ++i) {
                written[static_cast<size_t>(base) + i] = 1;
            }
            ASSERT_EQ(got, ref) << name << " copy " << c;
        }
        if (check_discrimination && cases[ji].kind != score_kind::random && j.k > 0 && j.k < j.n) {
            ASSERT_NE(oracle_top_k(rows[ji].data(), j.n, j.k, /*higher_ties=*/true), ref)
                << name << ": this input does not tell the tie rules apart";
        }
    }
    for (int64_t i = 0; i < list_size; ++i) {
        if (!written[static_cast<size_t>(i)]) {
            ASSERT_EQ(lists[static_cast<size_t>(i)], sentinel) << "wrote outside every list at " << i;
        }
    }
}

} // namespace

TEST(cuda_select, top_k_matches_cpu_on_small_and_tied_rows) {
    SPECATTN_REQUIRE_GPU();
    std::vector<top_k_case> cases;
    const int64_t ns[] = {1, 2, 7, 17, 54, 97, 1000, 4097};
    const score_kind kinds[] = {score_kind::random, score_kind::ties, score_kind::all_equal, score_kind::with_neg_inf};
    for (int64_t n : ns) {
        for (score_kind kind : kinds) {
            for (int64_t k : {int64_t{0}, int64_t{1}, n / 3, n - 1, n, n + 5}) {
                cases.push_back({n, k, kind, static_cast<int32_t>(1 + (n + k) % 3)});
            }
        }
    }
    run_top_k_launch(cases, 5, /*check_discrimination=*/false);
    // Tied inputs where the tie rule decides the answer, checked to discriminate.
    std::vector<top_k_case> tied;
    for (int64_t n : {int64_t{97}, int64_t{1000}, int64_t{4097}}) {
        tied.push_back({n, n / 2 + 1, score_kind::all_equal, 1});
        tied.push_back({n, n / 3, score_kind::ties, 2});
    }
    run_top_k_launch(tied, 6, /*check_discrimination=*/true);
}

TEST(cuda_select, top_k_matches_cpu_on_long_rows) {
    SPECATTN_REQUIRE_GPU();
    // Both sides of the shared-memory path (top_k_smem_keys = 40960) and 128K+ domains in one launch.
    std::vector<top_k_case> cases;
    for (int64_t n : {int64_t{32768}, int64_t{40960}, int64_t{40961}, int64_t{131075}}) {
        cases.push_back({n, (n * 7 + 99) / 100, score_kind::random, 8});
        cases.push_back({n, (n * 7 + 99) / 100, score_kind::ties, 1});
        cases.push_back({n, n / 2, score_kind::with_neg_inf, 1});
        cases.push_back({n, n - 3, score_kind::all_equal, 1});
    }
    run_top_k_launch(cases, 7, /*check_discrimination=*/false);
}

TEST(cuda_select, top_k_many_jobs_like_a_step) {
    SPECATTN_REQUIRE_GPU();
    // n_layer × groups × sequences jobs with domains that differ per sequence.
    std::vector<top_k_case> cases;
    for (int64_t seq = 0; seq < 5; ++seq) {
        const int64_t n = 3000 + seq * 1731;
        for (int64_t l = 0; l < 9; ++l) {
            cases.push_back({n, (n * 7 + 99) / 100, l % 4 == 3 ? score_kind::ties : score_kind::random,
                             static_cast<int32_t>(1 + l % 4)});
        }
    }
    run_top_k_launch(cases, 8, /*check_discrimination=*/false);
}

// ---- Quest ----

namespace {

struct quest_case {
    int64_t n_head, n_head_kv, head_dim, page_size;
    bool integer_data; // small integers: every sum is exact in fp32, so ties and the tie rule are exact
};

void run_quest_case(const quest_case & qc, uint32_t seed) {
    const int64_t H = qc.n_head;
    const int64_t HK = qc.n_head_kv;
    const int64_t G = H / HK;
    const int64_t D = qc.head_dim;
    const int64_t S = qc.page_size;
    const int64_t L = 2;
    const int64_t P = 61; // pool pages
    const int64_t layer = 1;
    char name_buf[96];
    std::snprintf(name_buf, sizeof(name_buf), "H%lld_HK%lld_D%lld_S%lld_%s", static_cast<long long>(H),
                  static_cast<long long>(HK), static_cast<long long>(D), static_cast<long long>(S),
                  qc.integer_data ? "int" : "float");
    const std::string name = name_buf;
    std::mt19937 rng(seed);
    const auto value = [&]() {
        if (qc.integer_data) {
            return static_cast<float>(static_cast<int>(rng() % 5) - 2);
        }
        return bf16_round(std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng));
    };
    // K pool [L][P][HK][S][D]: random keys, NaN beyond each page's valid slots.
    std::vector<int32_t> n_valid_of(static_cast<size_t>(P));
    for (int64_t pg = 0; pg < P; ++pg) {
        n_valid_of[static_cast<size_t>(pg)] = static_cast<int32_t>(pg % 7 == 3 ? 1 + rng() % S : S);
    }
    std::vector<float> kpool(static_cast<size_t>(L * P * HK * S * D), nan_f);
    for (int64_t l = 0; l < L; ++l) {
        for (int64_t pg = 0; pg < P; ++pg) {
            for (int64_t h = 0; h < HK; ++h) {
                for (int64_t s = 0; s < n_valid_of[static_cast<size_t>(pg)]; ++s) {
                    for (int64_t c = 0; c < D; ++c) {
                        kpool[static_cast<size_t>((((l * P + pg) * HK + h) * S + s) * D + c)] = value();
                    }
                }
            }
        }
    }
    // Metadata of every page but one (it stays NaN, and no job uses it), both layers in one launch.
    std::vector<int32_t> pages;
    std::vector<int32_t> n_valid;
    for (int64_t pg = 0; pg < P; ++pg) {
        if (pg != 5) {
            pages.push_back(static_cast<int32_t>(pg));
            n_valid.push_back(n_valid_of[static_cast<size_t>(pg)]);
        }
    }
    const device_buffer d_k = upload(to_bf16(kpool));
    const size_t n_meta = static_cast<size_t>(L * P * HK * D);
    const device_buffer d_kmin = upload(to_bf16(std::vector<float>(n_meta, nan_f)));
    const device_buffer d_kmax = upload(to_bf16(std::vector<float>(n_meta, nan_f)));
    const device_buffer d_pages = upload(pages);
    const device_buffer d_valid = upload(n_valid);
    quest_meta_params mp;
    mp.k_pool = bptr(d_k);
    mp.kmin = bptr(d_kmin);
    mp.kmax = bptr(d_kmax);
    mp.pages = dptr<int32_t>(d_pages);
    mp.n_valid = dptr<int32_t>(d_valid);
    mp.n_entries = static_cast<int64_t>(pages.size());
    mp.n_layer = L;
    mp.n_pages = P;
    mp.n_head_kv = HK;
    mp.page_size = S;
    mp.head_dim = D;
    launch_quest_meta(mp, nullptr);
    const std::vector<float> kmin = from_bf16(download<uint16_t>(d_kmin, n_meta));
    const std::vector<float> kmax = from_bf16(download<uint16_t>(d_kmax, n_meta));
    for (int64_t l = 0; l < L; ++l) {
        for (int64_t pg = 0; pg < P; ++pg) {
            for (int64_t h = 0; h < HK; ++h) {
                for (int64_t c = 0; c < D; ++c) {
                    const size_t m = static_cast<size_t>(((l * P + pg) * HK + h) * D + c);
                    if (pg == 5) {
                        ASSERT_TRUE(std::isnan(kmin[m]) && std::isnan(kmax[m])) << name << ": page not listed";
                        continue;
                    }
                    float lo = INFINITY;
                    float hi = -INFINITY;
                    for (int64_t s = 0; s < n_valid_of[static_cast<size_t>(pg)]; ++s) {
                        const float k =
                            bf16_round(kpool[static_cast<size_t>((((l * P + pg) * HK + h) * S + s) * D + c)]);
                        lo = std::min(lo, k);
                        hi = std::max(hi, k);
                    }
                    ASSERT_EQ(kmin[m], lo) << name << " layer " << l << " page " << pg << " head " << h << " c " << c;
                    ASSERT_EQ(kmax[m], hi) << name << " layer " << l << " page " << pg << " head " << h << " c " << c;
                }
            }
        }
    }

    // Selection: jobs over sequences with random page tables (never page 5), several rows and budgets.
    const int64_t n_rows = 9;
    const int64_t q_row_stride = (H + 2 * HK) * D + 6;
    std::vector<float> q(static_cast<size_t>(n_rows * q_row_stride), nan_f);
    for (int64_t r = 0; r < n_rows; ++r) {
        for (int64_t i = 0; i < H * D; ++i) {
            q[static_cast<size_t>(r * q_row_stride + i)] = value();
        }
    }
    std::vector<int32_t> page_table;
    std::vector<quest_job> jobs;
    const int64_t n_sel = 4;
    int64_t max_before = 0;
    const int64_t n_before_list[] = {1, 2, 9, 17, 40, 54};
    for (int64_t ji = 0; ji < 11; ++ji) {
        quest_job j;
        j.row = static_cast<int32_t>(ji % n_rows);
        j.page_table_offset = static_cast<int32_t>(page_table.size());
        j.n_pages_before = static_cast<int32_t>(n_before_list[ji % 6]);
        const int64_t ks[] = {1, j.n_pages_before / 3, j.n_pages_before - 1, j.n_pages_before + 2};
        j.k_pages = static_cast<int32_t>(std::max<int64_t>(1, ks[ji % 4]));
        j.slot = static_cast<int32_t>(ji % n_sel);
        for (int64_t pgi = 0; pgi <= j.n_pages_before; ++pgi) {
            int32_t pg = 5;
            while (pg == 5 || n_valid_of[static_cast<size_t>(pg)] != S) {
                pg = static_cast<int32_t>(rng() % P);
            }
            page_table.push_back(pg);
        }
        jobs.push_back(j);
        max_before = std::max<int64_t>(max_before, j.n_pages_before);
    }
    // Each (slot, layer) is written by one job only: later jobs of a slot go to a different layer's launch.
    // Here every job of a slot shares it, so give each job its own slot instead.
    for (size_t ji = 0; ji < jobs.size(); ++ji) {
        jobs[ji].slot = static_cast<int32_t>(ji);
    }
    const int64_t n_slots = static_cast<int64_t>(jobs.size());
    const int64_t sel_cap = (max_before + 2) * S + 3;
    const size_t n_sel_pos = static_cast<size_t>(n_slots * L * HK * sel_cap);
    const device_buffer d_q = upload(to_bf16(q));
    const device_buffer d_pt = upload(page_table);
    const device_buffer d_jobs = upload(jobs);
    const device_buffer d_sel = upload(std::vector<int32_t>(n_sel_pos, sentinel));
    quest_select_params sp;
    sp.q = bptr(d_q);
    sp.q_row_stride = q_row_stride;
    sp.kmin = bptr(d_kmin) + layer * P * HK * D;
    sp.kmax = bptr(d_kmax) + layer * P * HK * D;
    sp.page_table = dptr<int32_t>(d_pt);
    sp.jobs = dptr<quest_job>(d_jobs);
    sp.sel_pos = dptr<int32_t>(d_sel);
    sp.n_jobs = static_cast<int64_t>(jobs.size());
    sp.layer = layer;
    sp.n_layer = L;
    sp.sel_cap = sel_cap;
    sp.n_head = H;
    sp.n_head_kv = HK;
    sp.head_dim = D;
    sp.page_size = S;
    sp.max_pages_before = max_before;
    launch_quest_select(sp, nullptr);
    const std::vector<int32_t> sel = download<int32_t>(d_sel, n_sel_pos);
    std::vector<char> written(n_sel_pos, 0);
    bool tie_sensitive = false;
    for (size_t ji = 0; ji < jobs.size(); ++ji) {
        const quest_job & j = jobs[ji];
        for (int64_t h = 0; h < HK; ++h) {
            // quest.cpp's bound over the page metadata, with the same bf16 query the kernel reads.
            std::vector<float> bound(static_cast<size_t>(j.n_pages_before));
            for (int64_t b = 0; b < j.n_pages_before; ++b) {
                const int64_t pg = page_table[static_cast<size_t>(j.page_table_offset + b)];
                float best = -INFINITY;
                for (int64_t g = 0; g < G; ++g) {
                    const float * qg = q.data() + j.row * q_row_stride + (h * G + g) * D;
                    float s = 0.0f;
                    for (int64_t c = 0; c < D; ++c) {
                        const size_t m = static_cast<size_t>(((layer * P + pg) * HK + h) * D + c);
                        const float qv = bf16_round(qg[c]);
                        s += std::max(qv * kmin[m], qv * kmax[m]);
                    }
                    best = std::max(best, s);
                }
                bound[static_cast<size_t>(b)] = best;
            }
            const std::vector<int32_t> top = oracle_top_k(bound.data(), j.n_pages_before, j.k_pages);
            if (top != oracle_top_k(bound.data(), j.n_pages_before, j.k_pages, /*higher_ties=*/true)) {
                tie_sensitive = true;
            }
            const int64_t base = ((j.slot * L + layer) * HK + h) * sel_cap;
            std::vector<int32_t> ref;
            for (int32_t b : top) {
                for (int64_t t = 0; t < S; ++t) {
                    ref.push_back(static_cast<int32_t>(b * S + t));
                }
            }
            std::vector<int32_t> got(sel.begin() + base, sel.begin() + base + static_cast<int64_t>(ref.size()));
            for (size_t i = 0; i < ref.size(); ++i) {
                written[static_cast<size_t>(base) + i] = 1;
            }
            if (qc.integer_data) {
                ASSERT_EQ(got, ref) << name << " job " << ji << " head " << h;
            } else {
                // fp32 sums in another order: any set whose bounds are within rounding of the reference's.
                ASSERT_EQ(got.size(), ref.size()) << name << " job " << ji << " head " << h;
                float kth = INFINITY;
                for (int32_t b : top) {
                    kth = std::min(kth, bound[static_cast<size_t>(b)]);
                }
                for (size_t i = 0; i < got.size(); i += static_cast<size_t>(S)) {
                    const int32_t b = got[i] / static_cast<int32_t>(S);
                    ASSERT_TRUE(got[i] % S == 0 && b >= 0 && b < j.n_pages_before) << name << " job " << ji;
                    ASSERT_GE(bound[static_cast<size_t>(b)], kth - 1e-4f * (1.0f + std::fabs(kth)))
                        << name << " job " << ji << " head " << h << " page " << b;
                    for (int64_t t = 0; t < S; ++t) {
                        ASSERT_EQ(got[i + static_cast<size_t>(t)], b * S + t) << name << " job " << ji;
                    }
                    if (i > 0) {
                        ASSERT_LT(got[i - 1], got[i]) << name << ": positions not ascending";
                    }
                }
            }
        }
    }
    if (qc.integer_data) {
        ASSERT_TRUE(tie_sensitive) << name << ": no job where the tie rule decides the selection";
    }
    for (size_t i = 0; i < n_sel_pos; ++i) {
        if (!written[i]) {
            ASSERT_EQ(sel[i], sentinel) << name << ": wrote outside every selection at " << i;
        }
    }
}

} // namespace

TEST(cuda_select, quest_metadata_and_selection_match_cpu) {
    SPECATTN_REQUIRE_GPU();
    const quest_case cases[] = {
        {32, 8, 128, 16, true}, // Llama-8B heads, exact integer data: ties decided by the rule
        {12, 3, 64, 5, true},   // odd page size
        {8, 8, 62, 3, false},   // G 1, odd head_dim / 2
        {16, 1, 128, 16, false} // G 16
    };
    uint32_t seed = 21;
    for (const quest_case & qc : cases) {
        run_quest_case(qc, seed++);
    }
}
