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

} // namespace specattn
