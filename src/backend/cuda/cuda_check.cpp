// The throwing half of SPECATTN_CUDA_CHECK (cuda_check.h), with a hint for the failures users can act on.
#include "backend/cuda/cuda_check.h"

#include "core/check.h"

#include <cstring>

namespace specattn {

void cuda_fail(const char * kind, const char * name, const char * detail, const char * stmt, const char * func,
               const char * file, int line) {
    const char * base = std::strrchr(file, '/');
    const char * hint = "";
    if (std::strstr(name, "MemoryAllocation") != nullptr || std::strstr(name, "ALLOC_FAILED") != nullptr) {
        hint = ": out of GPU memory; lower --ctx-size or --batch";
    } else if (std::strstr(name, "NoDevice") != nullptr || std::strstr(name, "InsufficientDriver") != nullptr) {
        hint = ": no usable CUDA device; run with --device cpu";
    }
    throw error(string_format("%s error %s (%s) in `%s` at %s:%d (%s)%s", kind, name, detail, stmt,
                              base != nullptr ? base + 1 : file, line, func, hint));
}

} // namespace specattn
