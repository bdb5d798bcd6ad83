// `specattn bench`: decoding strategies side by side on the same prompts in one process, llama-bench style:
// list-valued --spec / --draft-len / --spec-ratio run as a cross product, each repeated (mean ± std), with
// tokens/s, τ, acceptance, the speed ratio against plain autoregressive decoding, and whether greedy output was
// identical to it. Markdown by default; --json or --csv for machines.
#include "common.h"

#include "core/check.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <memory>

namespace specattn {

namespace {

struct bench_options {
    std::string model;
    std::vector<std::string> prompts;
    std::vector<std::string> prompt_files;
    int64_t batch = 1;
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
    SPECATTN_CHECK(o.batch >= 1 && o.reps >= 1, "--batch and --reps must be positive");
    engine_params ep;
    ep.model_path = o.model;
    ep.n_ctx = o.ctx_size;
    ep.n_threads = o.threads;
    ep.device = o.device;
    ep.n_seq_max = o.batch;
    engine eng(ep, make_load_progress());

    // The batch cycles through the prompts.
    std::vector<request> reqs(static_cast<size_t>(o.batch));
    for (size_t i = 0; i < reqs.size(); ++i) {
        reqs[i].prompt = eng.get_tokenizer().encode(texts[i % texts.size()], true);
        reqs[i].max_tokens = o.n_predict;
        reqs[i].ignore_eos = true; // every strategy decodes the same number of tokens
        reqs[i].sampling.temperature = o.temperature;
        reqs[i].sampling.seed = o.seed + i;
    }

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

    run_stats warm;
    eng.generate(reqs, warm); // warm-up: caches, page faults of the weights
    std::vector<result> reference;
    run_stats ref_stats;
    if (o.temperature <= 0.0f) {
        reference = eng.generate(reqs, ref_stats);
    }
    std::vector<bench_row> rows;
    for (const spec_params & sp : configs) {
        bench_row row;
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
        std::fprintf(stderr, "bench: %-10s gamma %lld ratio %g: %.1f tokens/s\n", spec_method_name(sp.method),
                     static_cast<long long>(sp.draft_len), sp.ratio, row.mean());
    }
    double base = 0.0;
    for (const bench_row & r : rows) {
        if (r.sp.method == spec_method::spec_method_none) {
            base = r.mean();
        }
    }

    const model_hparams & hp = eng.get_model().hp;
    const int64_t prompt_len = static_cast<int64_t>(reqs[0].prompt.size());
    if (o.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const bench_row & r : rows) {
            nlohmann::json j = spec_stats_json(r.spec, r.sp);
            j["tokens_per_s"] = r.mean();
            j["tokens_per_s_std"] = r.stddev();
            j["speedup_vs_none"] = base > 0 ? r.mean() / base : 0.0;
            j["lossless"] = r.lossless;
            j["batch"] = o.batch;
            j["prompt_tokens"] = prompt_len;
            j["n_predict"] = o.n_predict;
            j["model"] = hp.arch_name;
            out.push_back(j);
        }
        std::puts(out.dump(1).c_str());
        return 0;
    }
    if (o.csv) {
        std::puts("strategy,gamma,ratio,tau,acceptance,tokens_per_s,tokens_per_s_std,speedup_vs_none,lossless");
        for (const bench_row & r : rows) {
            std::printf("%s,%lld,%g,%.3f,%.4f,%.2f,%.2f,%.3f,%s\n", spec_method_name(r.sp.method),
                        static_cast<long long>(r.sp.draft_len), r.sp.ratio, r.spec.tau(), r.spec.acceptance_rate(),
                        r.mean(), r.stddev(), base > 0 ? r.mean() / base : 0.0, r.lossless.c_str());
        }
        return 0;
    }
    std::printf("model %s (%lld layers), backend cpu, batch %lld, prompt %lld tokens, %lld new tokens, %s, %lld reps\n\n",
                hp.arch_name.c_str(), static_cast<long long>(hp.n_layer), static_cast<long long>(o.batch),
                static_cast<long long>(prompt_len), static_cast<long long>(o.n_predict),
                o.temperature <= 0 ? "greedy" : "sampled", static_cast<long long>(o.reps));
    std::puts("| strategy | γ | ratio | τ | acceptance | tokens/s | × none | lossless |");
    std::puts("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const bench_row & r : rows) {
        const bool none = r.sp.method == spec_method::spec_method_none;
        std::printf("| %s | %s | %s | %s | %s | %.1f ± %.1f | %.2f | %s |\n", spec_method_name(r.sp.method),
                    none ? "-" : std::to_string(r.sp.draft_len).c_str(),
                    none ? "-" : string_format("%g", r.sp.ratio).c_str(),
                    none ? "1.00" : string_format("%.2f", r.spec.tau()).c_str(),
                    none ? "-" : string_format("%.3f", r.spec.acceptance_rate()).c_str(), r.mean(), r.stddev(),
                    base > 0 ? r.mean() / base : 0.0, r.lossless.c_str());
    }
    return 0;
}

} // namespace

void add_bench_command(CLI::App & app, int & exit_code) {
    auto o = std::make_shared<bench_options>();
    CLI::App * cmd = app.add_subcommand("bench", "Compare decoding strategies on the same prompts");
    cmd->add_option("-m,--model", o->model, "HF model directory or llama2.c .bin (default: stories15M)");
    cmd->add_option("-p,--prompt", o->prompts, "Prompt text (repeatable; the batch cycles through them)");
    cmd->add_option("-f,--file", o->prompt_files, "Prompt file (repeatable)");
    cmd->add_option("-b,--batch", o->batch, "Sequences decoded together")->capture_default_str();
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
