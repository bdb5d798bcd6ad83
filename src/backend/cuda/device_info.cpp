#include "backend/cuda/device_info.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "core/check.h"

#include <algorithm>
#include <vector>

namespace specattn {

std::string cuda_device_summary() {
    int dev = 0;
    SPECATTN_CUDA_CHECK(cudaGetDevice(&dev));
    cudaDeviceProp prop{};
    SPECATTN_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    return string_format("%s, %.1f GiB", prop.name, static_cast<double>(prop.totalGlobalMem) / (1ull << 30));
}

namespace {

int current_device_attribute(cudaDeviceAttr attr) {
    int dev = 0;
    int value = 0;
    SPECATTN_CUDA_CHECK(cudaGetDevice(&dev));
    SPECATTN_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, dev));
    return value;
}

} // namespace

int64_t cuda_l2_cache_bytes() {
    return current_device_attribute(cudaDevAttrL2CacheSize);
}

int cuda_sm_count() {
    return current_device_attribute(cudaDevAttrMultiProcessorCount);
}

int cuda_compute_capability() {
    return 10 * current_device_attribute(cudaDevAttrComputeCapabilityMajor) +
           current_device_attribute(cudaDevAttrComputeCapabilityMinor);
}

double cuda_copy_bandwidth_gbs() {
    constexpr size_t bytes = size_t{1} << 30;
    device_buffer src(bytes);
    device_buffer dst(bytes);
    SPECATTN_CUDA_CHECK(cudaMemset(src.as<void>(), 1, bytes));
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    SPECATTN_CUDA_CHECK(cudaEventCreate(&start));
    SPECATTN_CUDA_CHECK(cudaEventCreate(&stop));
    std::vector<float> ms;
    for (int rep = 0; rep < 12; ++rep) {
        SPECATTN_CUDA_CHECK(cudaEventRecord(start));
        SPECATTN_CUDA_CHECK(cudaMemcpy(dst.as<void>(), src.as<void>(), bytes, cudaMemcpyDeviceToDevice));
        SPECATTN_CUDA_CHECK(cudaEventRecord(stop));
        SPECATTN_CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0;
        SPECATTN_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        if (rep >= 2) { // the first copies warm up
            ms.push_back(t);
        }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return 2.0 * static_cast<double>(bytes) / (static_cast<double>(ms[ms.size() / 2]) * 1e-3) / 1e9;
}

} // namespace specattn
