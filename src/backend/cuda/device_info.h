// Facts about the GPU that benchmarks report beside their figures.
#pragma once

#include <cstdint>
#include <string>

namespace specattn {

// The device's name and memory, one line ("NVIDIA H200, 139.8 GiB").
std::string cuda_device_summary();
// Device-to-device copy bandwidth in GB/s (bytes read + bytes written per second), median of 10 cudaMemcpy of
// 1 GiB timed with events: the ceiling memory-bound kernels are measured against (METHOD.md).
double cuda_copy_bandwidth_gbs();
// The current device's L2 cache in bytes and its multiprocessors.
int64_t cuda_l2_cache_bytes();
int cuda_sm_count();
// The current device's compute capability as 10 major + minor (90: Hopper H100 / H200).
int cuda_compute_capability();

} // namespace specattn
