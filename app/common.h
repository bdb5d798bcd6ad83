// Helpers shared by the subcommands of the `specattn` binary.
#pragma once

#include "model/model.h"

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace specattn {

// Registers each subcommand's options; the returned callback runs it and gives the exit code.
void add_generate_command(CLI::App & app, int & exit_code);
void add_tokenize_command(CLI::App & app, int & exit_code);
void add_info_command(CLI::App & app, int & exit_code);

// A progress indicator on stderr while loading large models (only when stderr is a terminal, only above ~100 MB).
load_progress_fn make_load_progress();

// Reads a prompt file; throws specattn::error naming the file.
std::string read_prompt_file(const std::string & path);

// Parses "1,2,3" into ids; throws specattn::error on anything else.
std::vector<int32_t> parse_id_list(const std::string & s);

} // namespace specattn
