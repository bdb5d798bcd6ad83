// `specattn tokenize`: prints the ids of a text as a JSON array (no BOS unless --add-special).
#include "common.h"

#include "core/check.h"
#include "core/mapped_file.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace specattn {

namespace {

struct tokenize_options {
    std::string model;
    std::string file;
    std::string text;
    bool add_special = false;
    bool pieces = false;
};

int run_tokenize(const tokenize_options & o) {
    SPECATTN_CHECK(o.file.empty() || o.text.empty(), "give either TEXT or -f FILE, not both");
    SPECATTN_CHECK(!o.file.empty() || !o.text.empty(), "nothing to tokenize: give TEXT or -f FILE");
    std::string path = o.model.empty() ? default_model_path() : o.model;
    // A llama2.c checkpoint means the tokenizer.bin beside it; a directory, tokenizer.json or tokenizer.bin is
    // loaded as it is.
    const std::string name = path.substr(path.find_last_of('/') + 1);
    const bool is_tokenizer_file = name == "tokenizer.bin" || (name.size() > 5 && name.ends_with(".json"));
    if (!is_tokenizer_file && !is_directory(path)) {
        path = default_tokenizer_path(path);
    }
    const std::unique_ptr<tokenizer> tok = load_tokenizer(path);
    const std::string text = o.file.empty() ? o.text : read_prompt_file(o.file);
    const std::vector<int32_t> ids = tok->encode(text, o.add_special);
    nlohmann::json out;
    if (o.pieces) {
        out = nlohmann::json::array();
        for (int32_t id : ids) {
            out.push_back({{"id", id}, {"piece", tok->id_to_piece(id)}});
        }
    } else {
        out = ids;
    }
    std::puts(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
}

} // namespace

void add_tokenize_command(CLI::App & app, int & exit_code) {
    auto o = std::make_shared<tokenize_options>();
    CLI::App * cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
    cmd->add_option("-m,--model", o->model, "Model (HF directory, llama2.c .bin) or tokenizer.json / tokenizer.bin");
    cmd->add_option("-f,--file", o->file, "Read the text from a file");
    cmd->add_option("text", o->text, "Text to tokenize");
    cmd->add_flag("--add-special", o->add_special, "Add BOS / the tokenizer's template tokens");
    cmd->add_flag("--pieces", o->pieces, "Print {id, piece} objects instead of bare ids");
    cmd->callback([o, &exit_code]() { exit_code = run_tokenize(*o); });
}

} // namespace specattn
