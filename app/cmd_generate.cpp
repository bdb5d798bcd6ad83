// `specattn generate`: text in, continuation out. The continuation streams to stdout; statistics go to stderr,
// or everything goes to stdout as one JSON object with --json.
#include "common.h"

#include "core/check.h"
#include "engine/engine.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <random>

namespace specattn {

namespace {

struct generate_options {
    std::string model;
    std::string tokenizer;
    std::vector<std::string> prompts;
    std::vector<std::string> prompt_files;
    std::vector<std::string> prompt_ids;
    int64_t n_predict = -1;
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    int64_t seed = -1;
    std::vector<std::string> stop;
    bool ignore_eos = false;
    bool no_special = false;
    bool echo = false;
    bool json = false;
    int64_t ctx_size = 0;
    int threads = 0;
    std::string device = "cpu";
    int32_t tp = 1;
    spec_options spec;
};

nlohmann::json stats_json(const engine & eng, const run_stats & st, uint64_t seed) {
    return {
        {"load_s", eng.load_seconds()},
        {"prompt_tokens", st.n_prompt_tokens},
        {"generated_tokens", st.n_gen_tokens},
        {"prefill_s", st.prefill_s},
        {"decode_s", st.decode_s},
        {"prompt_tokens_per_s", st.prefill_s > 0 ? static_cast<double>(st.n_prompt_tokens) / st.prefill_s : 0.0},
        {"generation_tokens_per_s",
         st.decode_s > 0 ? static_cast<double>(st.n_decode_tokens) / st.decode_s : 0.0},
        {"seed", seed},
    };
}

int run_generate(const generate_options & o) {
    uint64_t seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
    const spec_params sp = to_spec_params(o.spec);

    std::vector<std::string> texts = o.prompts;
    for (const std::string & f : o.prompt_files) {
        texts.push_back(read_prompt_file(f));
    }
    for (const std::string & t : texts) {
        SPECATTN_CHECK(!t.empty(), "the prompt is empty: give some text with -p or -f");
    }
    const size_t n_requests = texts.size() + o.prompt_ids.size();
    SPECATTN_CHECK(n_requests > 0, "no prompt: give one with -p TEXT, -f FILE or --prompt-ids IDS");

    engine_params ep;
    ep.model_path = o.model;
    ep.tokenizer_path = o.tokenizer;
    ep.n_ctx = o.ctx_size;
    ep.n_seq_max = static_cast<int64_t>(n_requests);
    ep.n_threads = o.threads;
    ep.device = o.device;
    ep.tp = o.tp;
    engine eng(ep, make_load_progress());

    std::vector<request> reqs(n_requests);
    for (size_t i = 0; i < n_requests; ++i) {
        request & r = reqs[i];
        if (i < texts.size()) {
            r.prompt = eng.get_tokenizer().encode(texts[i], !o.no_special);
        } else {
            r.prompt = parse_id_list(o.prompt_ids[i - texts.size()]);
        }
        r.max_tokens = o.n_predict;
        r.sampling.temperature = o.temperature;
        r.sampling.top_k = o.top_k;
        r.sampling.top_p = o.top_p;
        r.sampling.min_p = o.min_p;
        r.sampling.seed = seed + i; // each request its own stream, all reproducible from one --seed
        r.stop = o.stop;
        r.ignore_eos = o.ignore_eos;
    }

    // One prompt streams as it goes; several print in order when done.
    const bool stream = !o.json && n_requests == 1;
    if (stream && o.echo) {
        std::fputs(texts.empty() ? "" : texts[0].c_str(), stdout);
        std::fflush(stdout);
    }
    run_stats st;
    text_callback on_text = nullptr;
    if (stream) {
        on_text = [](size_t, const std::string & t) {
            std::fwrite(t.data(), 1, t.size(), stdout);
            std::fflush(stdout);
        };
    }
    const std::vector<result> results = eng.generate(reqs, st, on_text, sp);

    if (o.json) {
        nlohmann::json items = nlohmann::json::array();
        for (size_t i = 0; i < results.size(); ++i) {
            items.push_back({{"prompt_token_ids", reqs[i].prompt},
                             {"token_ids", results[i].tokens},
                             {"text", results[i].text},
                             {"finish_reason", finish_reason_name(results[i].finish)}});
        }
        nlohmann::json out = results.size() == 1 ? items[0] : nlohmann::json{{"results", items}};
        out["stats"] = stats_json(eng, st, seed);
        if (sp.method != spec_method::spec_method_none) {
            out["stats"]["spec"] = spec_stats_json(st.spec, sp);
        }
        // Invalid UTF-8 a model produced is replaced rather than crashing the dump.
        std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        return 0;
    }
    if (stream) {
        std::fputc('\n', stdout);
    } else {
        for (size_t i = 0; i < results.size(); ++i) {
            if (o.echo && i < texts.size()) {
                std::fputs(texts[i].c_str(), stdout);
            }
            std::fwrite(results[i].text.data(), 1, results[i].text.size(), stdout);
            std::fputs(i + 1 < results.size() ? "\n\n" : "\n", stdout);
        }
    }
    std::fflush(stdout);
    const nlohmann::json s = stats_json(eng, st, seed);
    std::fprintf(stderr,
                 "load %.2f s | prompt %lld tokens, %.1f tokens/s | generation %lld tokens, %.1f tokens/s | "
                 "finish %s | seed %llu\n",
                 eng.load_seconds(), static_cast<long long>(st.n_prompt_tokens),
                 s["prompt_tokens_per_s"].get<double>(), static_cast<long long>(st.n_gen_tokens),
                 s["generation_tokens_per_s"].get<double>(), finish_reason_name(results.back().finish),
                 static_cast<unsigned long long>(seed));
    if (sp.method != spec_method::spec_method_none) {
        std::fprintf(stderr, "%s\n", spec_stats_line(st.spec, sp).c_str());
    }
    return 0;
}

} // namespace

void add_generate_command(CLI::App & app, int & exit_code) {
    auto o = std::make_shared<generate_options>();
    CLI::App * cmd = app.add_subcommand("generate", "Generate a continuation of a prompt");
    cmd->add_option("-m,--model", o->model, "HF model directory or llama2.c .bin (default: stories15M)");
    cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json or tokenizer.bin (default: the model's)");
    cmd->add_option("-p,--prompt", o->prompts, "Prompt text (repeat for a batch)");
    cmd->add_option("-f,--file", o->prompt_files, "Read a prompt from a file (repeatable)");
    cmd->add_option("--prompt-ids", o->prompt_ids, "A prompt as comma-separated token ids (repeatable)");
    cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (-1: until EOS or the context is full)");
    cmd->add_option("--temp", o->temperature, "Temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--top-k", o->top_k, "Top-k (0: off)")->capture_default_str();
    cmd->add_option("--top-p", o->top_p, "Top-p (1: off)")->capture_default_str();
    cmd->add_option("--min-p", o->min_p, "Min-p (0: off)")->capture_default_str();
    cmd->add_option("-s,--seed", o->seed, "RNG seed (-1: random, printed in the stats)");
    cmd->add_option("--stop", o->stop, "Stop string (repeatable); not included in the output");
    cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating after end-of-sequence tokens");
    cmd->add_flag("--no-special", o->no_special, "Do not add BOS / the tokenizer's special tokens to the prompt");
    cmd->add_flag("--echo", o->echo, "Print the prompt before the continuation");
    cmd->add_flag("--json", o->json, "Print one JSON object (ids, text, stats) instead of text");
    cmd->add_option("-c,--ctx-size", o->ctx_size, "Context length per sequence (0: the model's, at most 8192)");
    cmd->add_option("-t,--threads", o->threads, "CPU threads (0: all cores)");
    cmd->add_option("--device", o->device, "Backend: cpu or cuda")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    cmd->add_option("--tp", o->tp, "Tensor-parallel ranks (--device cpu simulates them in one process)")
        ->capture_default_str();
    add_spec_options(*cmd, o->spec);
    cmd->callback([o, &exit_code]() { exit_code = run_generate(*o); });
}

} // namespace specattn
