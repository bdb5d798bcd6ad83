// `specattn info`: the numbers a user needs before a bug report or a benchmark: architecture, shapes, parameter
// count, KV bytes per token, tokenizer, build options.
#include "common.h"

#include "engine/engine.h"
#include "model/presets.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <thread>

namespace specattn {

namespace {

struct info_options {
    std::string model;
    bool json = false;
};

int run_info(const info_options & o) {
    // A preset (model/presets.h) is a shape without weights or tokenizer: nothing to load, no engine to build.
    const bool preset = is_preset_path(o.model);
    std::unique_ptr<engine> eng;
    model shape;
    if (preset) {
        shape = load_model(o.model);
    } else {
        engine_params ep;
        ep.model_path = o.model;
        ep.n_ctx = 1; // info needs no KV cache
        eng = std::make_unique<engine>(ep, make_load_progress());
    }
    const model & m = preset ? shape : eng->get_model();
    const model_hparams & hp = m.hp;
    const int64_t kv_elems_per_token = 2 * hp.n_layer * hp.n_head_kv * hp.head_dim;
    nlohmann::json j = {
        {"path", m.path},
        {"architecture", hp.arch_name},
        {"family", model_arch_name(hp.arch)},
        {"n_vocab", hp.n_vocab},
        {"n_embd", hp.n_embd},
        {"n_ff", hp.n_ff},
        {"n_layer", hp.n_layer},
        {"n_head", hp.n_head},
        {"n_head_kv", hp.n_head_kv},
        {"head_dim", hp.head_dim},
        {"n_ctx_train", hp.n_ctx_train},
        {"sliding_window", hp.sliding_window},
        {"rope_theta", hp.rope.theta},
        {"rope_layout", hp.rope.layout == rope_layout::rope_layout_interleaved ? "interleaved" : "half_split"},
        {"rope_scaling", hp.rope.scaling == rope_scaling_type::rope_scaling_llama3   ? "llama3"
                         : hp.rope.scaling == rope_scaling_type::rope_scaling_linear ? "linear"
                                                                                      : "none"},
        {"norm_eps", hp.norm_eps},
        {"qkv_bias", hp.qkv_bias},
        {"qk_norm", hp.qk_norm},
        {"tied_embeddings", hp.tied_embeddings},
        {"weight_dtype", hp.weight_dtype},
        {"n_params", hp.n_params()},
        {"kv_bytes_per_token_bf16", kv_elems_per_token * 2},
        {"kv_bytes_per_token_f32", kv_elems_per_token * 4},
    };
    if (eng) {
        const tokenizer & tok = eng->get_tokenizer();
        j["tokenizer_vocab"] = tok.n_vocab();
        j["bos_id"] = tok.bos_id();
        j["eos_ids"] = eng->eos_ids();
        j["has_chat_template"] = !tok.chat_template().empty();
        j["backend"] = "cpu";
        j["load_s"] = eng->load_seconds();
    } else {
        j["tokenizer_vocab"] = nullptr; // presets have no tokenizer; their weights are made on the GPU
        j["backend"] = "cuda (random weights)";
    }
    j["cpu_threads"] = std::thread::hardware_concurrency();
    if (o.json) {
        std::puts(j.dump(1).c_str());
        return 0;
    }
    for (const auto & [k, v] : j.items()) {
        std::printf("%-24s %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
    }
    return 0;
}

} // namespace

void add_info_command(CLI::App & app, int & exit_code) {
    auto o = std::make_shared<info_options>();
    CLI::App * cmd = app.add_subcommand("info", "Print a model's architecture and sizes");
    cmd->add_option("-m,--model", o->model, "HF model directory or llama2.c .bin (default: stories15M)");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback([o, &exit_code]() { exit_code = run_info(*o); });
}

} // namespace specattn
