#include "core/check.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace specattn {

std::string string_format(const char * fmt, ...) {
    va_list args;
    va_start(args, fmt);
    va_list copy;
    va_copy(copy, args);
    const int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
    if (n > 0) {
        std::vsnprintf(out.data(), out.size() + 1, fmt, args);
    }
    va_end(args);
    return out;
}

void abort_with(const char * file, int line, const std::string & msg) {
    std::fprintf(stderr, "specattn: internal error at %s:%d: %s\n", file, line, msg.c_str());
    std::fflush(stderr);
    std::abort();
}

} // namespace specattn
