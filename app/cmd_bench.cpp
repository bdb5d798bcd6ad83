// `specattn bench`: decoding strategies side by side on the same prompts in one process, llama-bench style:
// list-valued --spec / --draft-len / --spec-ratio run as a cross product, each repeated (mean ± std), with
// tokens/s, τ, acceptance, the speed ratio against plain autoregressive decoding, and whether greedy output was
// identical to it. Markdown by default; --json or --csv for machines.
// Long-context GPU runs: --preset (a model shape with random weights), --ctx-len and --batch lists (one engine per
// pair; pairs that do not fit the GPU are reported and skipped), synthetic prefills (random K/V: decoding reads the
// same bytes without paying a 128K prefill), and the memory traffic of autoregressive decoding (weights + KV bytes
// per step) in GB/s and as a share of the card's measured copy bandwidth.
#include "common.h"

#include "core/check.h"
#include "model/presets.h"
#ifdef SPECATTN_HAS_CUDA
#include "backend/cuda/device_info.h"
#endif

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <memory>

namespace specattn {

namespace {

struct bench_options {
    std::string model;
    std::string preset;
    std::vector<std::string> prompts;
    std::vector<std::string> prompt_files;
    std::vector<int64_t> batches = {1};
    std::vector<int32_t> tps = {1};  // tensor-parallel ranks (each a point)
    std::vector<int64_t> ctx_lens;  // random-token prompts of these lengths instead of the texts
    std::string prefill = "auto";   // real | synthetic | auto (synthetic for presets)
    int64_t n_predict = 128;
    int64_t reps = 3;
    float temperature = 0.0f;
    uint64_t seed = 1;
    std::vector<std::string> methods = {"none", "dense", "streaming", "quest", "specextend", "pillar", "specattn"};
    std::vector<int64_t> draft_lens = {4};
    std::vector<double> ratios = {0.07};
    int64_t min_tokens = 256;
    std::string score = "weight";
    int64_t block = 16;
    int64_t ctx_size = 0;
    int threads = 0;
    std::string device = "cpu";
    bool json = false;
    bool csv = false;
};

struct bench_row {
    int64_t batch = 1;
    int32_t tp = 1;
    int64_t prompt_len = 0;
    double step_bytes = 0; // autoregressive decode step: weights + mean KV read
    spec_params sp;
    std::vector<double> tps; // decode tokens/s per repetition
    spec_stats spec;         // of the last repetition
    std::string lossless;    // greedy outputs equal to `none`: "yes", "NO", or "-" (sampling, or none itself)
    double mean() const {
        double s = 0;
        for (double x : tps) {
            s += x;
        }
        return s / static_cast<double>(tps.size());
    }
    double stddev() const {
        if (tps.size() < 2) {
            return 0.0;
        }
        const double m = mean();
        double s = 0;
        for (double x : tps) {
            s += (x - m) * (x - m);
        }
        return std::sqrt(s / static_cast<double>(tps.size() - 1));
    }
};

// Bytes one autoregressive decode step of `batch` sequences must move: every streamed weight once (bf16 on the
// GPU, fp32 on the CPU; the embedding table is gathered, not streamed, unless it doubles as the LM head) and the K/V
// of each sequence's mean context over the run.
double decode_step_bytes(const model_hparams & hp, const std::string & device, int64_t batch, int64_t prompt_len,
                         int64_t n_predict) {
    const double elem = device == "cuda" ? 2.0 : 4.0;
    const double embd = static_cast<double>(hp.n_vocab * hp.n_embd);
    const double streamed = static_cast<double>(hp.n_params()) - (hp.tied_embeddings ? 0.0 : embd);
    const double kv_per_token = 2.0 * static_cast<double>(hp.n_layer * hp.n_embd_kv());
    const double mean_ctx = static_cast<double>(prompt_len) + static_cast<double>(n_predict) / 2.0;
    return elem * (streamed + kv_per_token * mean_ctx * static_cast<double>(batch));
}

std::vector<spec_params> bench_configs(const bench_options & o) {
    std::vector<spec_params> configs;
    for (const std::string & m : o.methods) {
        spec_options so;
        so.method = m;
        so.min_tokens = o.min_tokens;
        so.score = o.score;
        so.block = o.block;
        if (parse_spec_method(m) == spec_method::spec_method_none) {
            spec_params none = to_spec_params(so);
            none.draft_len = 0; // no drafts, no budget: reported as such in JSON / CSV
            none.ratio = 0.0;
            configs.push_back(none);
            continue;
        }
        for (int64_t g : o.draft_lens) {
            for (double r : o.ratios) {
                so.draft_len = g;
                so.ratio = r;
                configs.push_back(to_spec_params(so));
            }
        }
    }
    return configs;
}

// One (prompt length, batch, tp) point: its engine, the strategies side by side, appended to rows.
void bench_point(const bench_options & o, const std::vector<std::string> & texts, int64_t ctx_len, int64_t batch,
                 int32_t tp, model_hparams & hp_out, std::vector<bench_row> & rows) {
    const bool preset = !o.preset.empty();
    const bool synthetic = o.prefill == "synthetic" || (o.prefill == "auto" && preset);
    engine_params ep;
    ep.model_path = preset ? std::string(preset_prefix) + o.preset : o.model;
    ep.n_threads = o.threads;
    ep.device = o.device;
    ep.n_seq_max = batch;
    ep.tp = tp;
    ep.n_ctx = o.ctx_size;
    if (ctx_len > 0 && ep.n_ctx == 0) {
        ep.n_ctx = ctx_len + o.n_predict + 1;
    }
    engine eng(ep, make_load_progress());
    hp_out = eng.get_model().hp;

    // The batch cycles through the prompts; random token ids (seeded, so every strategy sees the same) with --ctx-len.
    std::vector<request> reqs(static_cast<size_t>(batch));
    uint64_t lcg = 0x243f6a8885a308d3ull;
    for (size_t i = 0; i < reqs.size(); ++i) {
        if (ctx_len > 0) {
            reqs[i].prompt.resize(static_cast<size_t>(ctx_len));
            for (int32_t & t : reqs[i].prompt) {
                lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
                t = static_cast<int32_t>((lcg >> 33) % static_cast<uint64_t>(hp_out.n_vocab));
            }
        } else {
            reqs[i].prompt = eng.get_tokenizer().encode(texts[i % texts.size()], true);
        }
        reqs[i].max_tokens = o.n_predict;
        reqs[i].ignore_eos = true; // every strategy decodes the same number of tokens
        reqs[i].synthetic_prefill = synthetic;
        reqs[i].sampling.temperature = o.temperature;
        reqs[i].sampling.seed = o.seed + i;
    }
    const auto prompt_len = static_cast<int64_t>(reqs[0].prompt.size());

    run_stats warm;
    eng.generate(reqs, warm); // warm-up: caches, page faults of the weights
    std::vector<result> reference;
    run_stats ref_stats;
    if (o.temperature <= 0.0f) {
        reference = eng.generate(reqs, ref_stats);
    }
    for (const spec_params & sp : bench_configs(o)) {
        bench_row row;
        row.batch = batch;
        row.tp = tp;
        row.prompt_len = prompt_len;
        row.step_bytes = decode_step_bytes(hp_out, o.device, batch, prompt_len, o.n_predict);
        row.sp = sp;
        row.lossless = "-";
        for (int64_t rep = 0; rep < o.reps; ++rep) {
            run_stats st;
            const std::vector<result> out = eng.generate(reqs, st, nullptr, sp);
            row.tps.push_back(static_cast<double>(st.n_decode_tokens) / st.decode_s);
            row.spec = st.spec;
            if (!reference.empty() && sp.method != spec_method::spec_method_none) {
                bool same = true;
                for (size_t i = 0; i < out.size(); ++i) {
                    same = same && out[i].tokens == reference[i].tokens;
                }
                row.lossless = same && row.lossless != "NO" ? "yes" : "NO";
            }
        }
        rows.push_back(row);
        std::fprintf(stderr, "bench: ctx %lld batch %lld tp %d %-10s gamma %lld ratio %g: %.1f tokens/s\n",
                     static_cast<long long>(prompt_len), static_cast<long long>(batch), tp, spec_method_name(sp.method),
                     static_cast<long long>(sp.draft_len), sp.ratio, row.mean());
    }
}

int run_bench(const bench_options & o) {
    std::vector<std::string> texts = o.prompts;
    for (const std::string & f : o.prompt_files) {
        texts.push_back(read_prompt_file(f));
    }
    if (texts.empty()) {
        texts.push_back("Once upon a time");
    }
    for (const std::string & t : texts) {
        SPECATTN_CHECK(!t.empty(), "the prompt is empty: give some text with -p or -f");
    }
    SPECATTN_CHECK(o.reps >= 1, "--reps must be positive");
    for (int64_t b : o.batches) {
        SPECATTN_CHECK(b >= 1, "--batch values must be positive");
    }
    for (int64_t c : o.ctx_lens) {
        SPECATTN_CHECK(c >= 1, "--ctx-len values must be positive");
    }
    SPECATTN_CHECK(o.preset.empty() || o.model.empty(), "give either --preset or -m, not both");
    SPECATTN_CHECK(o.preset.empty() || o.device == "cuda", "--preset has random weights made on the GPU: add --device cuda");
    SPECATTN_CHECK(o.prefill == "auto" || o.prefill == "real" || o.prefill == "synthetic",
                   "--prefill must be auto, real or synthetic");
    if (!o.preset.empty()) {
        preset_hparams(o.preset); // an unknown name fails here, listing the presets
    }
    std::vector<int64_t> ctx_lens = o.ctx_lens;
    if (ctx_lens.empty()) {
        SPECATTN_CHECK(o.preset.empty(), "a preset has no tokenizer: give prompt lengths with --ctx-len");
        ctx_lens.push_back(0); // the texts
    }

    double copy_gbs = 0.0;
    std::string device = o.device;
#ifdef SPECATTN_HAS_CUDA
    if (o.device == "cuda") {
        device = cuda_device_summary();
        copy_gbs = cuda_copy_bandwidth_gbs();
        std::fprintf(stderr, "bench: %s, device-to-device copy %.0f GB/s\n", device.c_str(), copy_gbs);
    }
#endif
    model_hparams hp;
    std::vector<bench_row> rows;
    std::vector<std::string> skipped;
    for (int64_t c : ctx_lens) {
        for (int64_t b : o.batches) {
            for (int32_t tp : o.tps) {
                try {
                    bench_point(o, texts, c, b, tp, hp, rows);
                } catch (const error & e) {
                    // Points beyond the GPU's memory are expected in a sweep; anything else is a real error.
                    const std::string what = e.what();
                    if (what.find("out of memory") == std::string::npos) {
                        throw;
                    }
                    skipped.push_back(string_format("ctx %lld batch %lld tp %d: %s", static_cast<long long>(c),
                                                    static_cast<long long>(b), tp, what.c_str()));
                    std::fprintf(stderr, "bench: skipped %s\n", skipped.back().c_str());
                }
            }
        }
    }
    SPECATTN_CHECK(!rows.empty(), "no benchmark point fit: %s", skipped.empty() ? "?" : skipped.front().c_str());
    // The `none` row of the same point is each row's baseline.
    const auto base_of = [&](const bench_row & r) {
        for (const bench_row & b : rows) {
            if (b.sp.method == spec_method::spec_method_none && b.batch == r.batch && b.tp == r.tp &&
                b.prompt_len == r.prompt_len) {
                return b.mean();
            }
        }
        return 0.0;
    };
    // Autoregressive rows: achieved memory traffic (steps/s × bytes per step).
    const auto gbs_of = [&](const bench_row & r) {
        return r.sp.method == spec_method::spec_method_none
                   ? r.mean() / static_cast<double>(r.batch) * r.step_bytes / 1e9
                   : 0.0;
    };

    if (o.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const bench_row & r : rows) {
            const double base = base_of(r);
            nlohmann::json j = spec_stats_json(r.spec, r.sp);
            j["tokens_per_s"] = r.mean();
            j["tokens_per_s_std"] = r.stddev();
            j["speedup_vs_none"] = base > 0 ? r.mean() / base : 0.0;
            j["lossless"] = r.lossless;
            j["batch"] = r.batch;
            j["tp"] = r.tp;
            j["prompt_tokens"] = r.prompt_len;
            j["n_predict"] = o.n_predict;
            j["model"] = hp.arch_name;
            j["device"] = device;
            j["decode_step_bytes"] = r.step_bytes;
            j["hbm_gb_per_s"] = gbs_of(r);
            j["copy_gb_per_s"] = copy_gbs;
            out.push_back(j);
        }
        std::puts(out.dump(1).c_str());
        return 0;
    }
    if (o.csv) {
        std::puts("prompt_tokens,batch,tp,strategy,gamma,ratio,tau,acceptance,tokens_per_s,tokens_per_s_std,"
                  "speedup_vs_none,hbm_gb_per_s,lossless");
        for (const bench_row & r : rows) {
            const double base = base_of(r);
            std::printf("%lld,%lld,%d,%s,%lld,%g,%.3f,%.4f,%.2f,%.2f,%.3f,%.1f,%s\n",
                        static_cast<long long>(r.prompt_len), static_cast<long long>(r.batch), r.tp,
                        spec_method_name(r.sp.method),
                        static_cast<long long>(r.sp.draft_len), r.sp.ratio, r.spec.tau(), r.spec.acceptance_rate(),
                        r.mean(), r.stddev(), base > 0 ? r.mean() / base : 0.0, gbs_of(r), r.lossless.c_str());
        }
        return 0;
    }
    std::printf("model %s%s (%lld layers), %s, %lld new tokens, %s, %lld reps%s\n\n",
                o.preset.empty() ? "" : ("preset " + o.preset + ", ").c_str(), hp.arch_name.c_str(),
                static_cast<long long>(hp.n_layer), device.c_str(), static_cast<long long>(o.n_predict),
                o.temperature <= 0 ? "greedy" : "sampled", static_cast<long long>(o.reps),
                copy_gbs > 0 ? string_format(", copy %.0f GB/s", copy_gbs).c_str() : "");
    std::puts("| prompt | batch | tp | strategy | γ | ratio | τ | acceptance | tokens/s | × none | GB/s | % copy | "
              "lossless |");
    std::puts("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const bench_row & r : rows) {
        const bool none = r.sp.method == spec_method::spec_method_none;
        const double base = base_of(r);
        const double gbs = gbs_of(r);
        std::printf("| %lld | %lld | %d | %s | %s | %s | %s | %s | %.1f ± %.1f | %.2f | %s | %s | %s |\n",
                    static_cast<long long>(r.prompt_len), static_cast<long long>(r.batch), r.tp,
                    spec_method_name(r.sp.method),
                    none ? "-" : std::to_string(r.sp.draft_len).c_str(),
                    none ? "-" : string_format("%g", r.sp.ratio).c_str(),
                    none ? "1.00" : string_format("%.2f", r.spec.tau()).c_str(),
                    none ? "-" : string_format("%.3f", r.spec.acceptance_rate()).c_str(), r.mean(), r.stddev(),
                    base > 0 ? r.mean() / base : 0.0, none ? string_format("%.0f", gbs).c_str() : "-",
                    none && copy_gbs > 0 ? string_format("%.0f%%", 100.0 * gbs / copy_gbs).c_str() : "-",
                    r.lossless.c_str());
    }
    for (const std::string & sk : skipped) {
        std::printf("\nskipped: %s\n", sk.c_str());
    }
    return 0;
}

} // namespace

void add_bench_command(CLI::App & app, int & exit_code) {
    auto o = std::make_shared<bench_options>();
    CLI::App * cmd = app.add_subcommand("bench", "Compare decoding strategies on the same prompts");
    cmd->add_option("-m,--model", o->model, "HF model directory or llama2.c .bin (default: stories15M)");
    cmd->add_option("--preset", o->preset,
                    "A model shape with random weights, for speed only (--device cuda): " + [] {
                        std::string l;
                        for (const std::string & n : preset_names()) {
                            l += (l.empty() ? "" : ", ") + n;
                        }
                        return l;
                    }());
    cmd->add_option("--ctx-len", o->ctx_lens, "Prompt lengths of random tokens (comma-separated; each a point)")
        ->delimiter(',');
    cmd->add_option("--prefill", o->prefill, "real, synthetic (random K/V, only the last prompt token computed), "
                                             "or auto (synthetic for presets)")
        ->capture_default_str();
    cmd->add_option("-p,--prompt", o->prompts, "Prompt text (repeatable; the batch cycles through them)");
    cmd->add_option("-f,--file", o->prompt_files, "Prompt file (repeatable)");
    cmd->add_option("-b,--batch", o->batches, "Sequences decoded together (comma-separated; each a point)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--tp", o->tps, "Tensor-parallel ranks (comma-separated; each a point; --device cpu simulates "
                                    "them in one process)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-n,--n-predict", o->n_predict, "New tokens per sequence")->capture_default_str();
    cmd->add_option("-r,--reps", o->reps, "Repetitions of each configuration")->capture_default_str();
    cmd->add_option("--temp", o->temperature, "Temperature (0: greedy, and outputs are checked against none)")
        ->capture_default_str();
    cmd->add_option("-s,--seed", o->seed, "Seed of sampled runs")->capture_default_str();
    cmd->add_option("--spec", o->methods, "Strategies (comma-separated)")->delimiter(',')->capture_default_str();
    cmd->add_option("--draft-len", o->draft_lens, "Draft lengths (comma-separated)")->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--spec-ratio", o->ratios, "Budget ratios (comma-separated)")->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--spec-min-tokens", o->min_tokens, "Budget floor")->capture_default_str();
    cmd->add_option("--spec-score", o->score, "specattn score mode: logit or weight")->capture_default_str();
    cmd->add_option("--spec-block", o->block, "Block size of streaming and quest")->capture_default_str();
    cmd->add_option("-c,--ctx-size", o->ctx_size, "Context length per sequence (0: the model's, at most 8192)");
    cmd->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)");
    cmd->add_option("--device", o->device, "Backend: cpu or cuda")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "JSON output");
    cmd->add_flag("--csv", o->csv, "CSV output");
    cmd->callback([o, &exit_code]() { exit_code = run_bench(*o); });
}

} // namespace specattn
