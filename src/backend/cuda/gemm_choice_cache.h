// The GEMM choices tuning made (cublaslt_gemm::tune_invariant), kept in a file across processes.
//
// Tuning times close candidates whose order changes from one process to the next (clock ramp, other work on the
// GPU), and another algorithm computes other bits: the same command then decodes other greedy tokens with random
// weights, and speculative decoding accepts a different number of them (τ 2.83 in one process, 2.96 in the next,
// docs/performance.md session 21), and the first process on a cold GPU can keep a slower kernel. So the first
// tuning of a shape on a device decides for later processes too, as it does for later backends of one process.
//
// The file (default $XDG_CACHE_HOME/specattn/gemm_choices.json, else ~/.cache/...; SPECATTN_GEMM_CACHE=PATH, or
// =0 for none) is a JSON object {"format": gemm_choice_cache_format, "choices": {key: {"gemv": bool, "algo":
// hex}}}. A file that is not one is never overwritten (it may be the user's, named by mistake): lookups and stores
// then report why, and tuning runs as without a file. Writes go to a temporary file renamed over the old one, so a
// reader never sees half a file; two processes tuning at once may each keep only their own new entries.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace specattn {

inline constexpr const char * gemm_choice_cache_format = "specattn-gemm-choices-1";

struct gemm_cached_choice {
    bool gemv = false;
    // cublasLtMatmulAlgo_t's 8 words: cuBLASLt documents the struct as restorable from its bytes with the same
    // library version, which is part of the key; tune_invariant also checks an entry runs before using it.
    std::array<uint64_t, 8> algo{};
};

// The file's path from SPECATTN_GEMM_CACHE and the home directories; "" when there is none (=0, or no home).
std::string gemm_choice_cache_path_from_env();

// The choice stored under key in the file at path; nullopt when the file or the entry is missing, or when the
// file cannot be read as a cache (then *problem says why, in one line).
std::optional<gemm_cached_choice> gemm_choice_cache_load(const std::string & path, const std::string & key,
                                                         std::string * problem);

// Adds or replaces key's choice in the file at path (creating it and its directory); false, with *problem set,
// when the file is not a cache or cannot be written.
bool gemm_choice_cache_store(const std::string & path, const std::string & key, const gemm_cached_choice & choice,
                             std::string * problem);

} // namespace specattn
