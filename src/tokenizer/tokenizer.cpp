// Loading entry points: load_tokenizer picks the format by content (JSON text or llama2.c's binary layout) and
// finds tokenizer_config.json beside a tokenizer.json.
#include "tokenizer/tokenizer.h"

#include "core/check.h"
#include "core/mapped_file.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/llama2c_tokenizer.h"

#include <algorithm>

namespace specattn {

namespace {

// JSON starts with '{' after optional whitespace; tokenizer.bin starts with a small little-endian int32, whose
// first bytes would be '{' only for a max_token_length of 123 (then followed by NUL bytes, which JSON never has).
bool looks_like_json(std::string_view data) {
    size_t i = 0;
    while (i < data.size() && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')) {
        ++i;
    }
    if (i == data.size() || data[i] != '{') {
        return false;
    }
    return data.substr(0, 4).find('\0') == std::string_view::npos;
}

std::string parent_dir(const std::string & path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

} // namespace

bool tokenizer::is_special(int32_t id) const {
    return std::binary_search(special_ids_.begin(), special_ids_.end(), id);
}

std::unique_ptr<tokenizer> load_tokenizer(const std::string & path) {
    std::string file = path;
    if (is_directory(path)) {
        file = path + "/tokenizer.json";
        if (!file_exists(file)) {
            file = path + "/tokenizer.bin";
        }
        SPECATTN_CHECK(file_exists(file), "%s has no tokenizer.json (nor tokenizer.bin)", path.c_str());
    }
    SPECATTN_CHECK(file_exists(file), "tokenizer file %s does not exist", file.c_str());
    const mapped_file mapped(file);
    const std::string_view data(reinterpret_cast<const char *>(mapped.data()), mapped.size());
    if (!looks_like_json(data)) {
        return load_llama2c_tokenizer(data, file);
    }
    const std::string config_path = parent_dir(file) + "/tokenizer_config.json";
    const std::string config = file_exists(config_path) ? read_text_file(config_path) : std::string();
    return load_hf_tokenizer(data, file, config, config_path);
}

std::unique_ptr<tokenizer> load_tokenizer_json(std::string_view tokenizer_json, std::string_view config_json) {
    return load_hf_tokenizer(tokenizer_json, "tokenizer.json", config_json, "tokenizer_config.json");
}

} // namespace specattn
