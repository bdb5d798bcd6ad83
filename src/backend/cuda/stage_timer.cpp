#include "backend/cuda/stage_timer.h"

#include "backend/cuda/cuda_check.h"

#include <cstdio>
#include <cstdlib>

namespace specattn {

stage_timer::stage_timer() {
    const char * env = std::getenv("SPECATTN_CUDA_PROFILE");
    on_ = env != nullptr && env[0] == '1';
}

stage_timer::~stage_timer() {
    if (!on_ || passes_ == 0) {
        return;
    }
    double sum = 0.0;
    for (const auto & [name, ms] : total_ms_) {
        sum += ms;
    }
    std::fprintf(stderr, "cuda profile: %ld passes, device %.3f ms/pass, host preparation %.3f ms/pass\n", passes_,
                 sum / static_cast<double>(passes_), host_s_ * 1e3 / static_cast<double>(passes_));
    for (const auto & [name, ms] : total_ms_) {
        std::fprintf(stderr, "  %-14s %9.3f ms/pass  %5.1f%%\n", name.c_str(), ms / static_cast<double>(passes_),
                     100.0 * ms / sum);
    }
    for (cudaEvent_t e : pool_) {
        cudaEventDestroy(e);
    }
}

void stage_timer::begin(cudaStream_t stream) {
    if (!on_) {
        return;
    }
    used_ = 0;
    names_.clear();
    mark("start", stream);
}

void stage_timer::mark(const char * stage, cudaStream_t stream) {
    if (!on_) {
        return;
    }
    if (used_ == pool_.size()) {
        cudaEvent_t e = nullptr;
        SPECATTN_CUDA_CHECK(cudaEventCreate(&e));
        pool_.push_back(e);
    }
    SPECATTN_CUDA_CHECK(cudaEventRecord(pool_[used_++], stream));
    names_.push_back(stage);
}

void stage_timer::end(double host_prepare_s) {
    if (!on_) {
        return;
    }
    for (size_t i = 1; i < used_; ++i) {
        float ms = 0.0f;
        SPECATTN_CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[i - 1], pool_[i]));
        total_ms_[names_[i]] += ms;
    }
    host_s_ += host_prepare_s;
    ++passes_;
}

} // namespace specattn
