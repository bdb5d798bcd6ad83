// The engine: a model, its tokenizer, a backend and the KV block manager, and the generation loop that ties
// them together (prompt → prefill → decode step by step → stop → text). Requests run together as one batch.
#pragma once

#include "backend/backend.h"
#include "kv/block_manager.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "spec/spec_params.h"
#include "spec/spec_stats.h"
#include "tokenizer/tokenizer.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace specattn {

struct engine_params {
    std::string model_path;     // HF directory or llama2.c .bin; empty: the default model (default_model_path())
    std::string tokenizer_path; // empty: the model's own (tokenizer.json in the directory, tokenizer.bin beside a .bin)
    int64_t n_ctx = 0;          // context length per sequence; 0: the model's, capped at 8192 on the CPU
    int64_t n_seq_max = 1;      // sequences that can run at once
    int64_t page_size = 16;     // KV page size in tokens
    int64_t n_batch = 512;      // most rows in one prefill forward
    int n_threads = 0;          // 0: all cores
    std::string device = "cpu"; // "cpu" (the reference backend) or "cuda" (needs a build with SPECATTN_CUDA)
    int32_t tp = 1;             // tensor-parallel ranks (docs/tensor_parallel.md): CPU, simulated; CUDA, a GPU each
    // A backend of the caller's instead of the device's (tests): given the model, the KV pool's pages and page size.
    std::function<std::unique_ptr<backend>(const model &, int64_t n_pages, int64_t page_size)> make_backend;
};

struct request {
    std::vector<int32_t> prompt;
    int64_t max_tokens = -1; // -1: until EOS, a stop string or the end of the context
    sampling_params sampling;
    std::vector<std::string> stop;
    bool ignore_eos = false;
    // Benchmarks: compute only the last prompt token; the K/V of the others are pseudo-random values derived from the
    // prompt's tokens (the same prompt gets the same context in every run, whatever pages it lands on). Decoding
    // then reads a context of the prompt's length without paying its prefill.
    bool synthetic_prefill = false;
};

enum class finish_reason : int32_t {
    finish_reason_none,   // still running
    finish_reason_eos,    // an end-of-sequence token (not included in the output)
    finish_reason_stop,   // a stop string (not included in the text)
    finish_reason_length, // max_tokens reached
    finish_reason_context, // the context is full
};
const char * finish_reason_name(finish_reason r);

struct result {
    std::vector<int32_t> tokens; // generated ids (EOS excluded)
    std::string text;            // their text, cut before a stop string
    finish_reason finish = finish_reason::finish_reason_none;
};

struct run_stats {
    int64_t n_prompt_tokens = 0;
    int64_t n_gen_tokens = 0;    // tokens in the results (EOS excluded)
    int64_t n_decode_tokens = 0; // tokens sampled by decode steps (the first token of each request comes from prefill)
    double prefill_s = 0.0;
    double decode_s = 0.0;
    spec_stats spec; // filled when speculative decoding ran
};

// Streaming: called with each piece of new text of request i as soon as it is final.
using text_callback = std::function<void(size_t i, const std::string & text)>;

class engine {
  public:
    explicit engine(const engine_params & params, const load_progress_fn & progress = nullptr);
    ~engine();

    // Runs the requests to completion, autoregressively or with speculative decoding (spec.method). Throws
    // specattn::error for requests that cannot run (empty prompt, prompt or -n beyond the context, more requests
    // than n_seq_max) before doing any work.
    std::vector<result> generate(const std::vector<request> & requests, run_stats & stats,
                                 const text_callback & on_text = nullptr, const spec_params & spec = {});

    const model & get_model() const { return model_; }
    // Throws specattn::error for a preset without a tokenizer.
    const tokenizer & get_tokenizer() const;
    int64_t n_ctx() const { return n_ctx_; }
    double load_seconds() const { return load_s_; }
    // The end-of-sequence ids: the tokenizer's EOS plus those of config.json / generation_config.json.
    const std::vector<int32_t> & eos_ids() const { return eos_ids_; }

  private:
    void validate(const request & r) const;

    engine_params params_;
    model model_;
    std::unique_ptr<tokenizer> tokenizer_;
    std::unique_ptr<kv_block_manager> kv_;
    std::unique_ptr<backend> backend_;
    std::vector<int32_t> eos_ids_;
    int64_t n_ctx_ = 0;
    double load_s_ = 0.0;
};

// The model used when none is given: $SPECATTN_MODEL, else stories15M as scripts/setup.sh installs it.
std::string default_model_path();
// The tokenizer that belongs to a model path.
std::string default_tokenizer_path(const std::string & model_path);

} // namespace specattn
