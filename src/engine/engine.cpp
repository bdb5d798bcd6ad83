#include "engine/engine.h"

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_tp_backend.h"
#include "core/timer.h"
#include "core/check.h"
#include "core/mapped_file.h"
#include "engine/detokenizer.h"
#include "sampling/stop.h"
#include "spec/selector.h"
#include "spec/spec_decode.h"
#ifdef SPECATTN_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_tp_backend.h"
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <omp.h>
#include <optional>

namespace specattn {

namespace {

// Everything one running request owns.
struct sequence_state {
    const request * req = nullptr;
    int32_t kv_seq = -1;
    int64_t max_new = 0; // tokens this request may still produce in all
    result res;
    std::optional<sampler> smp;
    std::optional<sampler> draft_smp; // speculative drafts draw from their own stream
    std::unique_ptr<draft_selector> selector;
    std::optional<incremental_detokenizer> detok;
    std::optional<stop_matcher> stops;
    int32_t pending = -1; // sampled but not yet fed back: its K/V is not in the cache

    bool running() const { return res.finish == finish_reason::finish_reason_none; }
};

} // namespace

const char * finish_reason_name(finish_reason r) {
    switch (r) {
        case finish_reason::finish_reason_none: return "none";
        case finish_reason::finish_reason_eos: return "eos";
        case finish_reason::finish_reason_stop: return "stop";
        case finish_reason::finish_reason_length: return "length";
        case finish_reason::finish_reason_context: return "context";
    }
    SPECATTN_ABORT("bad finish_reason %d", static_cast<int>(r));
}

std::string default_model_path() {
    const char * env = std::getenv("SPECATTN_MODEL");
    if (env != nullptr && env[0] != '\0') {
        return env;
    }
    return std::string(SPECATTN_DATA_DIR) + "/stories15M/stories15M.bin";
}

std::string default_tokenizer_path(const std::string & model_path) {
    if (is_directory(model_path)) {
        return model_path; // a Hugging Face directory holds its tokenizer.json
    }
    // A file: a llama2.c checkpoint (tokenizer.bin beside it) or a file inside a HF directory (its directory).
    const size_t slash = model_path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : model_path.substr(0, slash);
    return is_llama2c_path(model_path) ? dir + "/tokenizer.bin" : dir;
}

engine::engine(const engine_params & params, const load_progress_fn & progress) : params_(params) {
    const auto t0 = std::chrono::steady_clock::now();
    SPECATTN_CHECK(params_.device == "cpu" || params_.device == "cuda", "unknown device '%s' (cpu or cuda)",
                   params_.device.c_str());
    // Before loading anything, and the same in every build: a user must not wait for 16 GB to learn this.
    SPECATTN_CHECK(params_.tp >= 1, "--tp must be at least 1 (got %d)", params_.tp);
#ifndef SPECATTN_HAS_CUDA
    SPECATTN_CHECK(params_.device != "cuda", "this build has no CUDA backend (configure with -DSPECATTN_CUDA=ON)");
#else
    if (params_.device == "cuda" && params_.tp > 1) {
        cuda_tp_check_devices(params_.tp, tp_transport_from_env()); // one GPU per rank, NCCL (tensor_parallel.md)
    }
#endif
    if (params_.model_path.empty()) {
        params_.model_path = default_model_path();
        SPECATTN_CHECK(file_exists(params_.model_path),
                       "default model %s not found: run scripts/setup.sh, or pass -m MODEL",
                       params_.model_path.c_str());
    }
    if (params_.n_threads > 0) {
        omp_set_num_threads(params_.n_threads);
    }
    model_ = load_model(params_.model_path, progress);
    // A preset has no tokenizer unless one is given: its requests are token ids and its results carry no text.
    if (!model_.random_weights || !params_.tokenizer_path.empty()) {
        const std::string tok_path =
            params_.tokenizer_path.empty() ? default_tokenizer_path(params_.model_path) : params_.tokenizer_path;
        tokenizer_ = load_tokenizer(tok_path);
        SPECATTN_CHECK(tokenizer_->n_vocab() <= model_.hp.n_vocab,
                       "tokenizer %s has %d tokens but the model's vocabulary has only %lld", tok_path.c_str(),
                       tokenizer_->n_vocab(), static_cast<long long>(model_.hp.n_vocab));
    }

    eos_ids_ = model_.hp.eos_ids;
    if (tokenizer_ && tokenizer_->eos_id() >= 0) {
        eos_ids_.push_back(tokenizer_->eos_id());
    }
    std::sort(eos_ids_.begin(), eos_ids_.end());
    eos_ids_.erase(std::unique(eos_ids_.begin(), eos_ids_.end()), eos_ids_.end());

    constexpr int64_t cpu_default_ctx = 8192;
    n_ctx_ = params_.n_ctx > 0 ? params_.n_ctx : std::min(model_.hp.n_ctx_train, cpu_default_ctx);
    SPECATTN_CHECK(n_ctx_ <= model_.hp.n_ctx_train, "--ctx-size %lld exceeds the model's trained context of %lld",
                   static_cast<long long>(n_ctx_), static_cast<long long>(model_.hp.n_ctx_train));
    SPECATTN_CHECK(params_.n_seq_max > 0, "the engine needs room for at least one sequence");
    SPECATTN_CHECK(params_.page_size > 0 && params_.page_size <= 1024, "KV page size must be in [1, 1024]");
    const int64_t n_pages = params_.n_seq_max * kv_pages_for(n_ctx_, params_.page_size);
    kv_ = std::make_unique<kv_block_manager>(n_pages, params_.page_size);
    if (params_.make_backend) {
        backend_ = params_.make_backend(model_, n_pages, params_.page_size);
        SPECATTN_CHECK(backend_ != nullptr, "engine: the caller's backend factory made no backend");
    } else if (params_.device == "cuda") {
#ifdef SPECATTN_HAS_CUDA
        // Workspaces for a whole prefill chunk or one row per sequence, whichever is larger.
        const int64_t max_rows = std::max(params_.n_batch, params_.n_seq_max);
        if (params_.tp != 1 || tp_transport_forced()) {
            backend_ = std::make_unique<cuda_tp_backend>(model_, params_.tp, n_pages, params_.page_size, max_rows,
                                                         tp_transport_from_env(), std::vector<int>{}, params_.n_seq_max);
        } else {
            backend_ = std::make_unique<cuda_backend>(model_, n_pages, params_.page_size, max_rows, params_.n_seq_max);
        }
#endif
    } else if (params_.tp != 1) {
        backend_ = std::make_unique<cpu_tp_backend>(model_, params_.tp, n_pages, params_.page_size);
    } else {
        backend_ = std::make_unique<cpu_backend>(model_, n_pages, params_.page_size);
    }
    load_s_ = seconds_since(t0);
}

engine::~engine() = default;

const tokenizer & engine::get_tokenizer() const {
    SPECATTN_CHECK(tokenizer_ != nullptr, "%s has no tokenizer (a preset with random weights): give --tokenizer, or "
                   "use it where prompts are token ids (specattn bench)", model_.path.c_str());
    return *tokenizer_;
}

void engine::validate(const request & r) const {
    const auto n_prompt = static_cast<int64_t>(r.prompt.size());
    SPECATTN_CHECK(n_prompt > 0, "the prompt is empty: give some text with -p or -f");
    SPECATTN_CHECK(n_prompt < n_ctx_,
                   "the prompt has %lld tokens but the context holds %lld (including at least one new token); "
                   "shorten the prompt or raise --ctx-size",
                   static_cast<long long>(n_prompt), static_cast<long long>(n_ctx_));
    SPECATTN_CHECK(r.max_tokens == -1 || r.max_tokens > 0, "-n must be positive (or -1: until the context is full)");
    SPECATTN_CHECK(r.max_tokens == -1 || n_prompt + r.max_tokens <= n_ctx_,
                   "-n %lld with a %lld-token prompt exceeds the context of %lld tokens; lower -n or raise --ctx-size",
                   static_cast<long long>(r.max_tokens), static_cast<long long>(n_prompt),
                   static_cast<long long>(n_ctx_));
    for (int32_t id : r.prompt) {
        SPECATTN_CHECK(id >= 0 && id < model_.hp.n_vocab, "prompt token id %d is outside the vocabulary of %lld", id,
                       static_cast<long long>(model_.hp.n_vocab));
    }
    specattn::validate(r.sampling);
}

std::vector<result> engine::generate(const std::vector<request> & requests, run_stats & stats,
                                     const text_callback & on_text, const spec_params & spec) {
    const bool speculative = spec.method != spec_method::spec_method_none;
    if (speculative) {
        specattn::validate(spec);
    }
    SPECATTN_CHECK(static_cast<int64_t>(requests.size()) <= params_.n_seq_max,
                   "%zu prompts but this engine was set up for at most %lld sequences at once", requests.size(),
                   static_cast<long long>(params_.n_seq_max));
    for (const request & r : requests) {
        validate(r);
    }
    std::vector<sequence_state> seqs(requests.size());
    // Whatever happens below, the sequences' KV pages go back to the pool and the backend forgets their selections.
    struct release_guard {
        kv_block_manager & kv;
        backend & be;
        std::vector<sequence_state> & seqs;
        ~release_guard() {
            for (const sequence_state & s : seqs) {
                if (s.kv_seq >= 0) {
                    kv.remove_sequence(s.kv_seq);
                    be.release_selection(s.kv_seq);
                }
            }
        }
    } guard{*kv_, *backend_, seqs};
    for (size_t i = 0; i < requests.size(); ++i) {
        sequence_state & s = seqs[i];
        s.req = &requests[i];
        s.kv_seq = kv_->add_sequence();
        const auto n_prompt = static_cast<int64_t>(s.req->prompt.size());
        s.max_new = s.req->max_tokens == -1 ? n_ctx_ - n_prompt : s.req->max_tokens;
        s.smp.emplace(s.req->sampling);
        if (speculative) {
            sampling_params draft_params = s.req->sampling;
            draft_params.seed ^= 0x9e3779b97f4a7c15ull; // independent of the acceptance / residual stream
            s.draft_smp.emplace(draft_params);
            s.selector = make_selector(spec, model_.hp, n_ctx_);
        }
        if (tokenizer_) {
            s.detok.emplace(*tokenizer_, s.req->prompt);
        }
        s.stops.emplace(s.req->stop);
    }

    // Appends one sampled token to a sequence: EOS, stop strings, -n and the context end finish it.
    auto emit_token = [&](size_t i, int32_t tok) {
        sequence_state & s = seqs[i];
        const bool is_eos = std::binary_search(eos_ids_.begin(), eos_ids_.end(), tok);
        std::string text;
        if (is_eos && !s.req->ignore_eos) {
            s.res.finish = finish_reason::finish_reason_eos;
        } else {
            s.res.tokens.push_back(tok);
            bool stopped = false;
            text = s.detok ? s.stops->feed(s.detok->push(tok), stopped) : std::string();
            if (stopped) {
                s.res.finish = finish_reason::finish_reason_stop;
            } else if (static_cast<int64_t>(s.res.tokens.size()) >= s.max_new) {
                // Without -n the limit is the context: the last token sits at position n_ctx - 1.
                s.res.finish = s.req->max_tokens == -1 ? finish_reason::finish_reason_context
                                                       : finish_reason::finish_reason_length;
            }
        }
        if (!s.running() && s.res.finish != finish_reason::finish_reason_stop) {
            bool stopped = false;
            text += s.detok ? s.stops->feed(s.detok->flush(), stopped) : std::string();
            text += s.stops->flush();
        }
        s.res.text += text;
        if (on_text && !text.empty()) {
            on_text(i, text);
        }
        s.pending = tok;
    };

    // Prefill: every prompt in chunks of at most n_batch rows, logits of each prompt's last row.
    auto t0 = std::chrono::steady_clock::now();
    forward_batch batch;
    // The next token of every logit row of `batch`, row j belonging to seqs[rows_of[j]], picked by the backend:
    // only ids come back, never [rows, vocab] logits. Each sampling sequence draws its uniform here, on the host,
    // exactly as its sampler::sample would, so the tokens do not depend on the backend drawing them.
    std::vector<int32_t> ids;
    std::vector<sampling_params> row_params;
    std::vector<double> uniforms;
    auto next_tokens = [&](const std::vector<size_t> & rows_of) {
        const bool greedy = std::all_of(rows_of.begin(), rows_of.end(),
                                        [&](size_t i) { return is_greedy(seqs[i].smp->params()); });
        if (greedy) {
            backend_->forward_argmax(batch, *kv_, ids);
            return;
        }
        row_params.clear();
        uniforms.clear();
        for (size_t i : rows_of) {
            sampler & smp = *seqs[i].smp;
            row_params.push_back(smp.params());
            uniforms.push_back(is_greedy(smp.params()) ? 0.0 : smp.uniform());
        }
        backend_->forward_sample(batch, *kv_, row_params, uniforms, ids);
    };
    std::vector<float> logits;
    for (size_t i = 0; i < seqs.size(); ++i) {
        const std::vector<int32_t> & prompt = seqs[i].req->prompt;
        const auto n_prompt = static_cast<int64_t>(prompt.size());
        // A synthetic prefill computes only the last prompt token; the others' K/V are what the pools hold.
        const int64_t first = seqs[i].req->synthetic_prefill ? n_prompt - 1 : 0;
        kv_->append(seqs[i].kv_seq, first);
        if (first > 0) {
            uint64_t seed = 1469598103934665603ull; // FNV-1a of the prompt: its context is a function of it
            for (int32_t t : prompt) {
                seed = (seed ^ static_cast<uint32_t>(t)) * 1099511628211ull;
            }
            backend_->synthetic_kv(*kv_, seqs[i].kv_seq, first, seed);
        }
        for (int64_t start = first; start < n_prompt; start += params_.n_batch) {
            const int64_t n = std::min(params_.n_batch, n_prompt - start);
            batch.clear();
            kv_->append(seqs[i].kv_seq, n);
            const bool last = start + n == n_prompt;
            batch.add_sequence_rows(seqs[i].kv_seq, prompt.data() + start, n, start, last);
            batch.prefill = true;
            // The last prompt row's attention seeds the first selection.
            const verify_view seed_view = prefill_view(seqs[i].kv_seq, n - 1, n_prompt);
            if (last && speculative) {
                seqs[i].selector->add_sinks(seed_view, batch);
            }
            if (last) {
                next_tokens({i});
            } else {
                backend_->forward(batch, *kv_, logits);
            }
            if (last) {
                emit_token(i, ids[0]);
                if (speculative) {
                    seqs[i].selector->update(seed_view, *backend_);
                }
            }
        }
        stats.n_prompt_tokens += n_prompt;
    }
    stats.prefill_s += seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    if (speculative) {
        std::vector<spec_sequence> spec_seqs(seqs.size());
        for (size_t i = 0; i < seqs.size(); ++i) {
            sequence_state & s = seqs[i];
            spec_sequence & ss = spec_seqs[i];
            ss.kv_seq = s.kv_seq;
            ss.pending = s.pending;
            ss.remaining = s.max_new - static_cast<int64_t>(s.res.tokens.size());
            ss.target = &*s.smp;
            ss.draft = &*s.draft_smp;
            ss.selector = s.selector.get();
            ss.running = s.running();
        }
        if (stats.spec.reached.empty()) {
            stats.spec.reset(spec.draft_len);
        }
        const int64_t produced_before = stats.spec.produced;
        spec_decode(*backend_, *kv_, model_.hp, spec, spec_seqs,
                    [&](size_t i, int32_t tok) {
                        emit_token(i, tok);
                        return seqs[i].running();
                    },
                    stats.spec);
        stats.n_decode_tokens += stats.spec.produced - produced_before;
    }

    // Decode: one row per running sequence per step; the pending token goes in, the next comes out.

    std::vector<size_t> rows_of;
    for (;;) {
        batch.clear();
        rows_of.clear();
        for (size_t i = 0; i < seqs.size(); ++i) {
            sequence_state & s = seqs[i];
            if (!s.running()) {
                continue;
            }
            const int64_t pos = kv_->length(s.kv_seq);
            kv_->append(s.kv_seq, 1);
            batch.add_sequence_rows(s.kv_seq, &s.pending, 1, pos, true);
            rows_of.push_back(i);
        }
        if (rows_of.empty()) {
            break;
        }
        next_tokens(rows_of);
        stats.n_decode_tokens += static_cast<int64_t>(rows_of.size());
        for (size_t j = 0; j < rows_of.size(); ++j) {
            emit_token(rows_of[j], ids[j]);
        }
    }
    stats.decode_s += seconds_since(t0);

    std::vector<result> out;
    out.reserve(seqs.size());
    for (sequence_state & s : seqs) {
        stats.n_gen_tokens += static_cast<int64_t>(s.res.tokens.size());
        out.push_back(std::move(s.res));
    }
    return out;
}

} // namespace specattn
