// The sampling and acceptance kernels (backend/cuda/select_ops.h) against the CPU definitions themselves:
// sampling_probs and sampler::sample_from (sampling/sampler.h), accept_sampled and accept_greedy (spec/verify.h).
// Uniforms come from a twin of the CPU's sampler (same seed), so the GPU sees exactly the numbers the CPU draws;
// tokens must be equal, probabilities within 1e-5 relative with the same support. Vocabulary sizes 7, 512,
// 32000, 151936; rows at a padded stride with NaN in the padding.
#include "backend/cuda/select_ops.h"
#include "ops_test_util.h"
#include "sampling/sampler.h"
#include "spec/verify.h"

#include <algorithm>
#include <cstdio>
#include <string>

using namespace specattn;
using namespace specattn::test;

namespace {

const int64_t vocab_sizes[] = {7, 512, 32000, 151936};

std::string config_name(const sample_config & c) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "T%g_k%d_p%g_minp%g", static_cast<double>(c.temperature), c.top_k,
                  static_cast<double>(c.top_p), static_cast<double>(c.min_p));
    return buf;
}

std::string vname(int64_t n_vocab) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "V%lld", static_cast<long long>(n_vocab));
    return buf;
}

sampling_params to_cpu(const sample_config & c) {
    sampling_params p;
    p.temperature = c.temperature;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    return p;
}

// LLM-like logits: a Gaussian bulk, a few large ones; `quantized` rounds to steps of 0.5 so that many tie.
std::vector<float> make_logits(int64_t n, uint32_t seed, bool quantized) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> bulk(0.0f, 2.5f);
    std::vector<float> x(static_cast<size_t>(n));
    for (float & v : x) {
        v = bulk(rng);
        if (rng() % 97 == 0) {
            v += 8.0f;
        }
        if (quantized) {
            v = std::round(v * 2.0f) / 2.0f;
        }
    }
    return x;
}

std::vector<sample_config> test_configs(int64_t n_vocab) {
    const int32_t k_small = static_cast<int32_t>(std::min<int64_t>(n_vocab - 1, 40));
    return {
        {0.0f, 0, 1.0f, 0.0f},       // greedy
        {1.0f, 0, 1.0f, 0.0f},       // temperature only
        {0.7f, k_small, 1.0f, 0.0f}, // top-k
        {1.3f, 0, 0.9f, 0.0f},       // top-p
        {0.8f, 0, 1.0f, 0.05f},      // min-p
        {0.9f, k_small, 0.8f, 0.02f}, {1.0f, 1, 1.0f, 0.0f}, {2.0f, static_cast<int32_t>(n_vocab + 3), 0.5f, 0.0f},
        {0.6f, 0, 0.95f, 0.0f},
    };
}

struct prob_rows {
    std::vector<float> probs; // [R, stride], NaN padding
    int64_t stride = 0;
};

// Runs sample_probs over rows of logits (one config each) and checks them against sampling_probs.
void run_probs(const std::vector<std::vector<float>> & logits, const std::vector<sample_config> & configs,
               int64_t n_vocab, const std::string & what, prob_rows & out) {
    const int64_t R = static_cast<int64_t>(logits.size());
    const int64_t stride = n_vocab + 5;
    std::vector<float> in(static_cast<size_t>(R * stride), nan_f);
    for (int64_t r = 0; r < R; ++r) {
        std::copy(logits[static_cast<size_t>(r)].begin(), logits[static_cast<size_t>(r)].end(),
                  in.begin() + r * stride);
    }
    const device_buffer d_in = upload(in);
    const device_buffer d_cfg = upload(configs);
    const device_buffer d_out = upload(std::vector<float>(static_cast<size_t>(R * stride), nan_f));
    const device_buffer d_work(static_cast<size_t>(R * n_vocab) * sizeof(double));
    sample_probs_params p;
    p.logits = dptr<float>(d_in);
    p.logits_row_stride = stride;
    p.configs = dptr<sample_config>(d_cfg);
    p.probs = dptr<float>(d_out);
    p.probs_row_stride = stride;
    p.work = d_work.as<double>();
    p.n_rows = R;
    p.n_vocab = n_vocab;
    launch_sample_probs(p, nullptr);
    out.probs = download<float>(d_out, static_cast<size_t>(R * stride));
    out.stride = stride;
    std::vector<float> ref;
    for (int64_t r = 0; r < R; ++r) {
        const sample_config & c = configs[static_cast<size_t>(r)];
        sampling_probs(logits[static_cast<size_t>(r)].data(), n_vocab, to_cpu(c), ref);
        const float * got = out.probs.data() + r * stride;
        for (int64_t i = 0; i < n_vocab; ++i) {
            const float e = ref[static_cast<size_t>(i)];
            if (e == 0.0f) {
                ASSERT_EQ(got[i], 0.0f) << what << " row " << r << " " << config_name(c) << " id " << i;
            } else {
                ASSERT_NEAR(got[i], e, 1e-5 * e) << what << " row " << r << " " << config_name(c) << " id " << i;
            }
        }
        for (int64_t i = n_vocab; i < stride; ++i) {
            ASSERT_TRUE(std::isnan(got[i])) << what << ": wrote into the padding of row " << r;
        }
    }
}

} // namespace

TEST(cuda_sample, probs_match_sampling_probs) {
    SPECATTN_REQUIRE_GPU();
    for (int64_t n_vocab : vocab_sizes) {
        const std::vector<sample_config> configs = test_configs(n_vocab);
        std::vector<std::vector<float>> logits;
        std::vector<sample_config> row_cfg;
        uint32_t seed = static_cast<uint32_t>(n_vocab);
        for (const sample_config & c : configs) {
            for (int quantized = 0; quantized < 2; ++quantized) {
                logits.push_back(make_logits(n_vocab, seed++, quantized != 0));
                row_cfg.push_back(c);
            }
        }
        // -inf and NaN logits, a +inf logit, and an exact tie at the top-k boundary.
        std::vector<float> special = make_logits(n_vocab, seed++, false);
        for (int64_t i = 0; i < n_vocab; i += 3) {
            special[static_cast<size_t>(i)] = -INFINITY;
        }
        special[static_cast<size_t>(n_vocab / 2)] = nan_f;
        logits.push_back(special);
        row_cfg.push_back({0.9f, 0, 0.9f, 0.0f});
        logits.push_back(special);
        row_cfg.push_back({0.0f, 0, 1.0f, 0.0f});
        special[static_cast<size_t>(n_vocab - 1)] = INFINITY;
        logits.push_back(special);
        row_cfg.push_back({1.0f, 0, 1.0f, 0.0f});
        prob_rows out;
        run_probs(logits, row_cfg, n_vocab, vname(n_vocab), out);
    }
}

TEST(cuda_sample, probs_tie_rule_is_exercised) {
    SPECATTN_REQUIRE_GPU();
    // All logits equal: top-k keeps the k lowest ids and top-p a prefix of ids; the opposite rule would keep others.
    const int64_t n_vocab = 512;
    std::vector<std::vector<float>> logits(3, std::vector<float>(static_cast<size_t>(n_vocab), 0.25f));
    const std::vector<sample_config> cfg = {{1.0f, 17, 1.0f, 0.0f}, {1.0f, 0, 0.3f, 0.0f}, {0.5f, 100, 0.5f, 0.0f}};
    prob_rows out;
    run_probs(logits, cfg, n_vocab, "all-equal", out);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    for (int64_t r = 0; r < 3; ++r) {
        ASSERT_GT(out.probs[static_cast<size_t>(r * out.stride)], 0.0f) << "row " << r << ": id 0 must survive";
        ASSERT_EQ(out.probs[static_cast<size_t>(r * out.stride + n_vocab - 1)], 0.0f) << "row " << r;
    }
}

TEST(cuda_sample, sample_from_matches_cpu_tokens) {
    SPECATTN_REQUIRE_GPU();
    for (int64_t n_vocab : vocab_sizes) {
        const std::vector<sample_config> configs = test_configs(n_vocab);
        std::vector<std::vector<float>> logits;
        std::vector<sample_config> row_cfg;
        for (int rep = 0; rep < 4; ++rep) {
            for (const sample_config & c : configs) {
                logits.push_back(
                    make_logits(n_vocab, static_cast<uint32_t>(1000 + rep * 31 + logits.size()), rep == 3));
                row_cfg.push_back(c);
            }
        }
        prob_rows pr;
        run_probs(logits, row_cfg, n_vocab, vname(n_vocab), pr);
        ASSERT_FALSE(::testing::Test::HasFatalFailure());
        const int64_t R = static_cast<int64_t>(logits.size());
        // CPU tokens from the GPU's probabilities (so only the draw is compared) with a seeded sampler.
        sampling_params sp;
        sp.temperature = 1.0f;
        sp.seed = 77 + static_cast<uint64_t>(n_vocab);
        sampler cpu(sp);
        sampler twin(sp);
        std::vector<double> u(static_cast<size_t>(R));
        std::vector<int32_t> ref(static_cast<size_t>(R));
        for (int64_t r = 0; r < R; ++r) {
            const std::vector<float> row(pr.probs.begin() + r * pr.stride, pr.probs.begin() + r * pr.stride + n_vocab);
            u[static_cast<size_t>(r)] = twin.uniform();
            ref[static_cast<size_t>(r)] = cpu.sample_from(row);
        }
        // Edge uniforms: 0 and the largest below 1.
        std::vector<double> u_edge = u;
        u_edge[0] = 0.0;
        u_edge[1] = 1.0 - 0x1.0p-53;
        const device_buffer d_probs = upload(pr.probs);
        for (int pass = 0; pass < 2; ++pass) {
            const std::vector<double> & uu = pass == 0 ? u : u_edge;
            const device_buffer d_u = upload(uu);
            const device_buffer d_out = upload(std::vector<int32_t>(static_cast<size_t>(R + 1), -9));
            sample_from_params p;
            p.probs = dptr<float>(d_probs);
            p.row_stride = pr.stride;
            p.uniforms = dptr<double>(d_u);
            p.out = dptr<int32_t>(d_out);
            p.n_rows = R;
            p.n_vocab = n_vocab;
            launch_sample_from(p, nullptr);
            const std::vector<int32_t> got = download<int32_t>(d_out, static_cast<size_t>(R + 1));
            for (int64_t r = 0; r < R; ++r) {
                int32_t want = ref[static_cast<size_t>(r)];
                if (pass == 1 && r < 2) { // the edges, against a direct inverse CDF in id order
                    const float * row = pr.probs.data() + r * pr.stride;
                    double total = 0.0;
                    for (int64_t i = 0; i < n_vocab; ++i) {
                        total += row[i];
                    }
                    const double target = uu[static_cast<size_t>(r)] * total;
                    double cum = 0.0;
                    want = -1;
                    for (int64_t i = 0; i < n_vocab && want < 0; ++i) {
                        cum += row[i];
                        if (row[i] > 0.0f && target < cum) {
                            want = static_cast<int32_t>(i);
                        }
                    }
                    for (int64_t i = n_vocab - 1; i >= 0 && want < 0; --i) {
                        if (row[i] > 0.0f) {
                            want = static_cast<int32_t>(i);
                        }
                    }
                }
                ASSERT_EQ(got[static_cast<size_t>(r)], want) << "V" << n_vocab << " row " << r << " pass " << pass
                                                             << " " << config_name(row_cfg[static_cast<size_t>(r)]);
            }
            ASSERT_EQ(got[static_cast<size_t>(R)], -9) << "wrote past the last row";
        }
    }
}

namespace {

// One batch of sequences with γ drafts each: target and draft logits (the draft a perturbed target), drafts drawn
// from q, then the CPU rule and the kernel with the same uniforms.
void run_accept_sampled(int64_t n_vocab, uint32_t seed) {
    const int64_t n_seqs = 13;
    std::mt19937 rng(seed);
    std::vector<accept_seq> seqs;
    std::vector<std::vector<float>> p_rows;
    std::vector<std::vector<float>> q_rows;
    std::vector<int32_t> drafts;
    std::vector<double> uniforms;
    std::vector<accept_result> ref;
    for (int64_t s = 0; s < n_seqs; ++s) {
        const int64_t gamma = static_cast<int64_t>(rng() % 8); // 0 drafts too
        sample_config cfg = test_configs(n_vocab)[1 + s % 8];
        cfg.temperature = std::max(cfg.temperature, 0.5f);
        const sampling_params cpu_cfg = to_cpu(cfg);
        accept_seq as;
        as.p_row0 = static_cast<int32_t>(p_rows.size());
        as.q_row0 = static_cast<int32_t>(q_rows.size());
        as.n_drafts = static_cast<int32_t>(gamma);
        std::vector<std::vector<float>> p;
        std::vector<std::vector<float>> q;
        std::vector<int32_t> d;
        sampling_params draw_cfg;
        draw_cfg.temperature = 1.0f;
        draw_cfg.seed = seed * 1000 + static_cast<uint64_t>(s);
        sampler draw(draw_cfg);
        // Noise: none for some sequences (p == q: everything accepted), much for others (early rejections).
        const float noise = (s % 4 == 0) ? 0.0f : 0.3f * static_cast<float>(s % 5);
        for (int64_t i = 0; i <= gamma; ++i) {
            std::vector<float> tl = make_logits(n_vocab, seed + static_cast<uint32_t>(97 * s + i), s % 3 == 2);
            std::vector<float> pr;
            sampling_probs(tl.data(), n_vocab, cpu_cfg, pr);
            p.push_back(pr);
            if (i < gamma) {
                std::normal_distribution<float> nd(0.0f, 1.0f);
                for (float & v : tl) {
                    v += noise * nd(rng);
                }
                std::vector<float> qr;
                sampling_probs(tl.data(), n_vocab, cpu_cfg, qr);
                d.push_back(draw.sample_from(qr));
                q.push_back(qr);
            }
        }
        // Sometimes a draft with p(d) = 0: always rejected.
        if (gamma > 0 && s % 5 == 1) {
            for (int64_t t = 0; t < n_vocab; ++t) {
                if (p[0][static_cast<size_t>(t)] == 0.0f && q[0][static_cast<size_t>(t)] > 0.0f) {
                    d[0] = static_cast<int32_t>(t);
                    break;
                }
            }
        }
        sampling_params acc_cfg;
        acc_cfg.temperature = 1.0f;
        acc_cfg.seed = seed * 7 + static_cast<uint64_t>(s);
        sampler cpu(acc_cfg);
        sampler twin(acc_cfg);
        for (int64_t i = 0; i <= gamma; ++i) {
            uniforms.push_back(twin.uniform());
        }
        ref.push_back(accept_sampled(d, p, q, cpu));
        seqs.push_back(as);
        p_rows.insert(p_rows.end(), p.begin(), p.end());
        q_rows.insert(q_rows.end(), q.begin(), q.end());
        drafts.insert(drafts.end(), d.begin(), d.end());
    }
    const int64_t stride = n_vocab + 3;
    const auto flatten = [&](const std::vector<std::vector<float>> & rows) {
        std::vector<float> f(std::max<size_t>(rows.size(), 1) * static_cast<size_t>(stride), nan_f);
        for (size_t r = 0; r < rows.size(); ++r) {
            std::copy(rows[r].begin(), rows[r].end(), f.begin() + static_cast<int64_t>(r) * stride);
        }
        return f;
    };
    const device_buffer d_p = upload(flatten(p_rows));
    const device_buffer d_q = upload(flatten(q_rows));
    const device_buffer d_d = upload(drafts.empty() ? std::vector<int32_t>{0} : drafts);
    const device_buffer d_u = upload(uniforms);
    const device_buffer d_s = upload(seqs);
    const device_buffer d_na = upload(std::vector<int32_t>(static_cast<size_t>(n_seqs), -9));
    const device_buffer d_next = upload(std::vector<int32_t>(static_cast<size_t>(n_seqs), -9));
    accept_sampled_params ap;
    ap.p = dptr<float>(d_p);
    ap.q = dptr<float>(d_q);
    ap.row_stride = stride;
    ap.drafts = dptr<int32_t>(d_d);
    ap.uniforms = dptr<double>(d_u);
    ap.seqs = dptr<accept_seq>(d_s);
    ap.n_accepted = dptr<int32_t>(d_na);
    ap.next = dptr<int32_t>(d_next);
    ap.n_seqs = n_seqs;
    ap.n_vocab = n_vocab;
    launch_accept_sampled(ap, nullptr);
    const std::vector<int32_t> na = download<int32_t>(d_na, static_cast<size_t>(n_seqs));
    const std::vector<int32_t> next = download<int32_t>(d_next, static_cast<size_t>(n_seqs));
    int64_t n_rejected = 0;
    for (int64_t s = 0; s < n_seqs; ++s) {
        ASSERT_EQ(na[static_cast<size_t>(s)], ref[static_cast<size_t>(s)].n_accepted) << "V" << n_vocab << " seq " << s;
        ASSERT_EQ(next[static_cast<size_t>(s)], ref[static_cast<size_t>(s)].next) << "V" << n_vocab << " seq " << s;
        n_rejected += ref[static_cast<size_t>(s)].n_accepted < seqs[static_cast<size_t>(s)].n_drafts ? 1 : 0;
    }
    ASSERT_GT(n_rejected, 0) << "no sequence exercised the residual";
    ASSERT_LT(n_rejected, n_seqs) << "no sequence exercised the bonus";
}

} // namespace

TEST(cuda_sample, accept_sampled_matches_cpu) {
    SPECATTN_REQUIRE_GPU();
    uint32_t seed = 3;
    for (int64_t n_vocab : vocab_sizes) {
        run_accept_sampled(n_vocab, seed++);
    }
}

TEST(cuda_sample, accept_greedy_matches_cpu) {
    SPECATTN_REQUIRE_GPU();
    for (int64_t n_vocab : vocab_sizes) {
        std::mt19937 rng(static_cast<uint32_t>(n_vocab));
        const int64_t n_seqs = 9;
        std::vector<accept_seq> seqs;
        std::vector<float> logits;
        std::vector<int32_t> drafts;
        std::vector<accept_result> ref;
        for (int64_t s = 0; s < n_seqs; ++s) {
            const int64_t gamma = static_cast<int64_t>(rng() % 7);
            accept_seq as;
            as.p_row0 = static_cast<int32_t>(logits.size() / static_cast<size_t>(n_vocab));
            as.q_row0 = static_cast<int32_t>(drafts.size());
            as.n_drafts = static_cast<int32_t>(gamma);
            std::vector<float> tl;
            for (int64_t i = 0; i <= gamma; ++i) {
                std::vector<float> row = make_logits(n_vocab, static_cast<uint32_t>(rng()), true); // ties
                tl.insert(tl.end(), row.begin(), row.end());
            }
            std::vector<int32_t> d;
            const int64_t agree = static_cast<int64_t>(rng() % (gamma + 1)); // drafts that match the argmax
            for (int64_t i = 0; i < gamma; ++i) {
                const int32_t am = argmax(tl.data() + i * n_vocab, n_vocab);
                d.push_back(i < agree ? am : static_cast<int32_t>((am + 1 + rng() % (n_vocab - 1)) % n_vocab));
            }
            ref.push_back(accept_greedy(d, tl.data(), n_vocab));
            seqs.push_back(as);
            logits.insert(logits.end(), tl.begin(), tl.end());
            drafts.insert(drafts.end(), d.begin(), d.end());
        }
        const int64_t n_p_rows = static_cast<int64_t>(logits.size()) / n_vocab;
        const device_buffer d_l = upload(logits);
        const device_buffer d_ids = upload(std::vector<int32_t>(static_cast<size_t>(n_p_rows), -9));
        const device_buffer d_d = upload(drafts.empty() ? std::vector<int32_t>{0} : drafts);
        const device_buffer d_s = upload(seqs);
        const device_buffer d_na = upload(std::vector<int32_t>(static_cast<size_t>(n_seqs), -9));
        const device_buffer d_next = upload(std::vector<int32_t>(static_cast<size_t>(n_seqs), -9));
        argmax_params am;
        am.logits = dptr<float>(d_l);
        am.out = dptr<int32_t>(d_ids);
        am.n_rows = n_p_rows;
        am.n_vocab = n_vocab;
        accept_greedy_params gp;
        gp.argmax_ids = dptr<int32_t>(d_ids);
        gp.drafts = dptr<int32_t>(d_d);
        gp.seqs = dptr<accept_seq>(d_s);
        gp.n_accepted = dptr<int32_t>(d_na);
        gp.next = dptr<int32_t>(d_next);
        gp.n_seqs = n_seqs;
        launch_accept_greedy(am, gp, nullptr);
        const std::vector<int32_t> na = download<int32_t>(d_na, static_cast<size_t>(n_seqs));
        const std::vector<int32_t> next = download<int32_t>(d_next, static_cast<size_t>(n_seqs));
        for (int64_t s = 0; s < n_seqs; ++s) {
            ASSERT_EQ(na[static_cast<size_t>(s)], ref[static_cast<size_t>(s)].n_accepted) << "V" << n_vocab << " " << s;
            ASSERT_EQ(next[static_cast<size_t>(s)], ref[static_cast<size_t>(s)].next) << "V" << n_vocab << " " << s;
        }
    }
}
