// Wall-clock timing for the engine's statistics (prefill, decode, draft, verify, select).
#pragma once

#include <chrono>

namespace specattn {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace specattn
