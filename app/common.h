// Helpers shared by the subcommands of the `specattn` binary.
#pragma once

#include "engine/engine.h"
#include "model/model.h"

#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace specattn {

// Registers each subcommand's options; the returned callback runs it and gives the exit code.
void add_generate_command(CLI::App & app, int & exit_code);
void add_tokenize_command(CLI::App & app, int & exit_code);
void add_info_command(CLI::App & app, int & exit_code);
void add_bench_command(CLI::App & app, int & exit_code);

// The speculative-decoding flags shared by generate and bench (--spec, --draft-len, ...), stored as strings so
// bench can take comma-separated lists.
struct spec_options {
    std::string method = "none";
    int64_t draft_len = 6;
    double ratio = 0.07;
    int64_t min_tokens = 256;
    std::string score = "weight";
    int64_t block = 16;
    std::string collect = "both";
};
void add_spec_options(CLI::App & cmd, spec_options & o);
spec_params to_spec_params(const spec_options & o);

// stats.spec of the JSON outputs, and the one-line stderr summary.
nlohmann::json spec_stats_json(const spec_stats & s, const spec_params & p);
std::string spec_stats_line(const spec_stats & s, const spec_params & p);

// A progress indicator on stderr while loading large models (only when stderr is a terminal, only above ~100 MB).
load_progress_fn make_load_progress();

// Reads a prompt file; throws specattn::error naming the file.
std::string read_prompt_file(const std::string & path);

// Parses "1,2,3" into ids; throws specattn::error on anything else.
std::vector<int32_t> parse_id_list(const std::string & s);

} // namespace specattn
