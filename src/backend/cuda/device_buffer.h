// Owning handles of device memory and pinned host memory: allocated once (construction, reserve), freed in the
// destructor. Allocation failures throw through SPECATTN_CUDA_CHECK with an out-of-memory hint.
#pragma once

#include "backend/cuda/cuda_check.h"

#include <cstddef>
#include <utility>

namespace specattn {

class device_buffer {
  public:
    device_buffer() = default;
    explicit device_buffer(size_t bytes) : bytes_(bytes) {
        if (bytes_ > 0) {
            SPECATTN_CUDA_CHECK(cudaMalloc(&ptr_, bytes_));
        }
    }
    ~device_buffer() { cudaFree(ptr_); }
    device_buffer(device_buffer && o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
    device_buffer & operator=(device_buffer && o) noexcept {
        std::swap(ptr_, o.ptr_);
        std::swap(bytes_, o.bytes_);
        return *this;
    }
    device_buffer(const device_buffer &) = delete;
    device_buffer & operator=(const device_buffer &) = delete;

    template <typename T> T * as() const { return static_cast<T *>(ptr_); }
    size_t bytes() const { return bytes_; }

  private:
    void * ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Page-locked host memory: the only kind cudaMemcpyAsync copies without a hidden synchronization.
class pinned_buffer {
  public:
    pinned_buffer() = default;
    explicit pinned_buffer(size_t bytes) : bytes_(bytes) {
        if (bytes_ > 0) {
            SPECATTN_CUDA_CHECK(cudaMallocHost(&ptr_, bytes_));
        }
    }
    ~pinned_buffer() { cudaFreeHost(ptr_); }
    pinned_buffer(pinned_buffer && o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
    pinned_buffer & operator=(pinned_buffer && o) noexcept {
        std::swap(ptr_, o.ptr_);
        std::swap(bytes_, o.bytes_);
        return *this;
    }
    pinned_buffer(const pinned_buffer &) = delete;
    pinned_buffer & operator=(const pinned_buffer &) = delete;

    template <typename T> T * as() const { return static_cast<T *>(ptr_); }
    size_t bytes() const { return bytes_; }

  private:
    void * ptr_ = nullptr;
    size_t bytes_ = 0;
};

} // namespace specattn
