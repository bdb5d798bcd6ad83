// Error handling, three tiers (STYLE.md §10):
//   SPECATTN_CHECK(cond, fmt, ...)  bad input or a failed resource: throws specattn::error with a formatted message.
//   SPECATTN_ABORT(fmt, ...)        an impossible state (a bug): prints file:line and aborts.
//   SPECATTN_CUDA_CHECK             (CUDA backend, later) one macro for CUDA, cuBLAS and NCCL status codes.
// Exceptions stop at the library boundary: the CLI prints what() on one line and exits non-zero.
#pragma once

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace specattn {

// The one exception type the library throws for bad input, missing files, unsupported models and the like.
class error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// printf-style formatting into a std::string (g++ 12 has no std::format).
std::string string_format(const char * fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void abort_with(const char * file, int line, const std::string & msg);

} // namespace specattn

#define SPECATTN_CHECK(cond, ...)                                          \
    do {                                                                   \
        if (!(cond)) {                                                     \
            throw ::specattn::error(::specattn::string_format(__VA_ARGS__)); \
        }                                                                  \
    } while (0)

namespace specattn {

// A count or index narrowed to int32 (the GPU kernels' fields); throws specattn::error naming `what` when it does
// not fit.
inline int32_t checked_i32(int64_t v, const char * what) {
    SPECATTN_CHECK(v >= 0 && v <= INT32_MAX, "%s %lld does not fit int32", what, static_cast<long long>(v));
    return static_cast<int32_t>(v);
}

} // namespace specattn

#define SPECATTN_ABORT(...) ::specattn::abort_with(__FILE__, __LINE__, ::specattn::string_format(__VA_ARGS__))
