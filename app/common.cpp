#include "common.h"

#include "core/check.h"
#include "core/mapped_file.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace specattn {

load_progress_fn make_load_progress() {
    if (isatty(STDERR_FILENO) == 0) {
        return nullptr;
    }
    return [last = -1](size_t done, size_t total) mutable {
        constexpr size_t min_bytes = 100u << 20;
        if (total < min_bytes) {
            return;
        }
        const int pct = static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total));
        if (pct == last) {
            return;
        }
        last = pct;
        std::fprintf(stderr, "\rloading model: %3d%% (%zu / %zu MiB)", pct, done >> 20, total >> 20);
        if (done >= total) {
            std::fprintf(stderr, "\n");
        }
        std::fflush(stderr);
    };
}

std::string read_prompt_file(const std::string & path) {
    SPECATTN_CHECK(file_exists(path), "prompt file %s does not exist", path.c_str());
    return read_text_file(path);
}

std::vector<int32_t> parse_id_list(const std::string & s) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string::npos) {
            j = s.size();
        }
        const std::string item = s.substr(i, j - i);
        char * end = nullptr;
        errno = 0;
        const long v = std::strtol(item.c_str(), &end, 10);
        SPECATTN_CHECK(!item.empty() && end != nullptr && *end == '\0' && errno == 0 && v >= 0 && v <= INT32_MAX,
                       "bad token id '%s' in '%s' (expected comma-separated non-negative integers)", item.c_str(),
                       s.c_str());
        ids.push_back(static_cast<int32_t>(v));
        i = j + 1;
    }
    return ids;
}

void add_spec_options(CLI::App & cmd, spec_options & o) {
    cmd.add_option("--spec", o.method,
                   "Speculative decoding: none, specattn, streaming, quest, specextend, pillar, dense")
        ->capture_default_str();
    cmd.add_option("--draft-len", o.draft_len, "Draft tokens per iteration (gamma)")->capture_default_str();
    cmd.add_option("--spec-ratio", o.ratio, "Draft KV budget as a fraction of the context")->capture_default_str();
    cmd.add_option("--spec-min-tokens", o.min_tokens, "Draft KV budget floor (tokens)")->capture_default_str();
    cmd.add_option("--spec-score", o.score, "specattn score mode: logit or weight")->capture_default_str();
    cmd.add_option("--spec-block", o.block, "Block size of streaming and quest (tokens)")->capture_default_str();
    cmd.add_option("--spec-collect", o.collect, "specattn verify rows: both (first and last), first or last")
        ->capture_default_str();
}

spec_params to_spec_params(const spec_options & o) {
    spec_params p;
    p.method = parse_spec_method(o.method);
    p.draft_len = o.draft_len;
    p.ratio = o.ratio;
    p.min_tokens = o.min_tokens;
    p.mode = parse_score_mode(o.score);
    p.block_size = o.block;
    p.collect = parse_collect_rows(o.collect);
    validate(p);
    return p;
}

nlohmann::json spec_stats_json(const spec_stats & s, const spec_params & p) {
    return {
        {"method", spec_method_name(p.method)},
        {"draft_len", p.draft_len},
        {"ratio", p.ratio},
        {"min_tokens", p.min_tokens},
        {"score_mode", score_mode_name(p.mode)},
        {"collect", collect_rows_name(p.collect)},
        {"iterations", s.iterations},
        {"tau", s.tau()},
        {"acceptance_rate", s.acceptance_rate()},
        {"acceptance_by_position", s.acceptance_by_position()},
        {"accepted_histogram", s.histogram},
        {"draft_ms", s.draft_s * 1e3},
        {"verify_ms", s.verify_s * 1e3},
        {"select_ms", s.select_s * 1e3},
    };
}

std::string spec_stats_line(const spec_stats & s, const spec_params & p) {
    std::string by_pos;
    for (double a : s.acceptance_by_position()) {
        by_pos += string_format("%s%.2f", by_pos.empty() ? "" : " ", a);
    }
    return string_format("spec %s gamma %lld ratio %g | iterations %lld, tau %.2f, acceptance %.3f [%s] | draft %.0f ms, "
                         "verify %.0f ms, select %.0f ms",
                         spec_method_name(p.method), static_cast<long long>(p.draft_len), p.ratio,
                         static_cast<long long>(s.iterations), s.tau(), s.acceptance_rate(), by_pos.c_str(),
                         s.draft_s * 1e3, s.verify_s * 1e3, s.select_s * 1e3);
}

} // namespace specattn
