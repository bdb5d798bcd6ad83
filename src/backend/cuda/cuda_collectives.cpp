#include "backend/cuda/cuda_collectives.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/tp_ops.h"
#include "core/check.h"

#include <nccl.h>

#include <algorithm>
#include <atomic>

namespace specattn {

// NOTE(tp): the NCCL overload of SPECATTN_CUDA_CHECK's status check lives here, the one file that calls NCCL, so
// that cuda_check.h (included everywhere) needs no nccl.h.
inline void cuda_check_status(ncclResult_t s, const char * stmt, const char * func, const char * file, int line) {
    if (s != ncclSuccess) {
        const char * last = ncclGetLastError(nullptr);
        cuda_fail("NCCL", ncclGetErrorString(s), last != nullptr && last[0] != '\0' ? last : "no detail", stmt, func,
                  file, line);
    }
}

std::string nccl_version_string() {
    int v = 0;
    if (ncclGetVersion(&v) != ncclSuccess) {
        return "unknown";
    }
    return string_format("%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

namespace {

ncclDataType_t nccl_type(tp_dtype t) {
    switch (t) {
    case tp_dtype::tp_dtype_f32:
        return ncclFloat32;
    case tp_dtype::tp_dtype_bf16:
        return ncclBfloat16;
    }
    SPECATTN_ABORT("unknown tp_dtype %d", static_cast<int>(t));
}

const char * byte_ptr(const void * p, int64_t elems, tp_dtype t) {
    return static_cast<const char *>(p) + static_cast<size_t>(elems) * tp_dtype_size(t);
}

char * byte_ptr(void * p, int64_t elems, tp_dtype t) {
    return static_cast<char *>(p) + static_cast<size_t>(elems) * tp_dtype_size(t);
}

// Sets a device for the life of a scope, restoring the caller's.
class device_scope {
  public:
    explicit device_scope(int dev) {
        SPECATTN_CUDA_CHECK(cudaGetDevice(&prev_));
        SPECATTN_CUDA_CHECK(cudaSetDevice(dev));
    }
    ~device_scope() { cudaSetDevice(prev_); }

  private:
    int prev_ = 0;
};

// ---- NCCL -----------------------------------------------------------------------------------------------------

class nccl_endpoint : public collectives {
  public:
    nccl_endpoint(ncclComm_t comm, int32_t rank, int32_t n_ranks, size_t scratch_bytes)
        : comm_(comm), rank_(rank), n_ranks_(n_ranks), scratch_(scratch_bytes) {}
    int32_t rank() const override { return rank_; }
    int32_t n_ranks() const override { return n_ranks_; }

    void all_reduce_sum(const void * send, tp_dtype send_type, void * recv, tp_dtype recv_type, int64_t n,
                        const coll_exec & exec) override {
        const auto stream = static_cast<cudaStream_t>(exec.stream);
        // A chunk of every rank's elements fits the scratch.
        const auto chunk =
            static_cast<int64_t>(scratch_.bytes() / (static_cast<size_t>(n_ranks_) * tp_dtype_size(send_type)));
        SPECATTN_CHECK(chunk > 0, "NCCL collectives: no scratch for an all-reduce");
        for (int64_t o = 0; o < n; o += chunk) {
            const int64_t m = std::min(chunk, n - o);
            tp_sum_params p;
            p.src_type = send_type;
            p.out = byte_ptr(recv, o, recv_type);
            p.out_type = recv_type;
            p.n = m;
            if (exec.rank_ordered) {
                SPECATTN_CUDA_CHECK(ncclAllGather(byte_ptr(send, o, send_type), scratch_.as<void>(),
                                                  static_cast<size_t>(m), nccl_type(send_type), comm_, stream));
                p.n_src = n_ranks_;
                for (int32_t r = 0; r < n_ranks_; ++r) {
                    p.src[r] = byte_ptr(scratch_.as<void>(), r * m, send_type);
                }
            } else {
                SPECATTN_CUDA_CHECK(ncclAllReduce(byte_ptr(send, o, send_type), scratch_.as<void>(),
                                                  static_cast<size_t>(m), nccl_type(send_type), ncclSum, comm_,
                                                  stream));
                p.n_src = 1;
                p.src[0] = scratch_.as<void>();
            }
            launch_tp_sum(p, stream);
        }
    }

    void all_gather(const void * send, void * recv, tp_dtype type, int64_t n, const coll_exec & exec) override {
        SPECATTN_CUDA_CHECK(ncclAllGather(send, recv, static_cast<size_t>(n), nccl_type(type), comm_,
                                          static_cast<cudaStream_t>(exec.stream)));
    }

  private:
    ncclComm_t comm_;
    int32_t rank_;
    int32_t n_ranks_;
    device_buffer scratch_; // [n_ranks, chunk] of the send type
};

class nccl_group : public cuda_collectives_group {
  public:
    nccl_group(const std::vector<int> & devices, size_t scratch_bytes) : devices_(devices) {
        SPECATTN_CHECK(!devices.empty() && devices.size() <= static_cast<size_t>(tp_max_ranks),
                       "NCCL group of %zu ranks (1 to %d)", devices.size(), tp_max_ranks);
        comms_.resize(devices.size(), nullptr);
        const ncclResult_t s = ncclCommInitAll(comms_.data(), static_cast<int>(devices.size()), devices.data());
        if (s != ncclSuccess) {
            const char * last = ncclGetLastError(nullptr);
            throw error(string_format("NCCL could not make a communicator of %zu ranks on GPUs %s: %s (%s)",
                                      devices.size(), device_list().c_str(), ncclGetErrorString(s),
                                      last != nullptr && last[0] != '\0' ? last : "no detail"));
        }
        for (size_t r = 0; r < devices.size(); ++r) {
            device_scope ds(devices[r]);
            ranks_.push_back(std::make_unique<nccl_endpoint>(comms_[r], static_cast<int32_t>(r),
                                                             static_cast<int32_t>(devices.size()), scratch_bytes));
        }
    }
    ~nccl_group() override {
        ranks_.clear();
        if (!aborted_) {
            for (ncclComm_t c : comms_) {
                ncclCommDestroy(c);
            }
        }
    }
    int32_t n_ranks() const override { return static_cast<int32_t>(devices_.size()); }
    collectives & rank(int32_t r) override { return *ranks_[static_cast<size_t>(r)]; }
    int device(int32_t r) const override { return devices_[static_cast<size_t>(r)]; }
    void abort() override {
        if (!aborted_.exchange(true)) {
            for (ncclComm_t c : comms_) {
                ncclCommAbort(c); // NCCL kernels still waiting for a failed rank return
            }
        }
    }

  private:
    std::string device_list() const {
        std::string s;
        for (int d : devices_) {
            s += (s.empty() ? "" : ",") + std::to_string(d);
        }
        return s;
    }

    std::vector<int> devices_;
    std::vector<ncclComm_t> comms_;
    std::vector<std::unique_ptr<nccl_endpoint>> ranks_;
    std::atomic<bool> aborted_{false};
};

// ---- one GPU shared by the ranks -----------------------------------------------------------------------------

class cuda_local_group : public cuda_collectives_group {
  public:
    cuda_local_group(int32_t n, int device, size_t scratch_bytes)
        : device_(device), posted_(static_cast<size_t>(n), nullptr), barrier_(n) {
        SPECATTN_CHECK(n >= 1 && n <= tp_max_ranks, "local CUDA group of %d ranks (1 to %d)", n, tp_max_ranks);
        device_scope ds(device);
        for (int32_t r = 0; r < n; ++r) {
            ranks_.push_back(std::make_unique<endpoint>(*this, r, scratch_bytes));
        }
    }
    int32_t n_ranks() const override { return static_cast<int32_t>(ranks_.size()); }
    collectives & rank(int32_t r) override { return *ranks_[static_cast<size_t>(r)]; }
    int device(int32_t) const override { return device_; }
    void abort() override { barrier_.abort(); }

  private:
    class endpoint : public collectives {
      public:
        endpoint(cuda_local_group & g, int32_t rank, size_t scratch_bytes)
            : group_(g), rank_(rank), scratch_(scratch_bytes) {}
        int32_t rank() const override { return rank_; }
        int32_t n_ranks() const override { return group_.n_ranks(); }
        bool capturable() const override { return false; }

        // Each chunk: every rank's send is complete (its stream is idle), then each rank sums all ranks' chunks in
        // rank order into its scratch, waits until no rank reads a send any more, and copies its sum to recv.
        void all_reduce_sum(const void * send, tp_dtype send_type, void * recv, tp_dtype recv_type, int64_t n,
                            const coll_exec & exec) override {
            const auto stream = static_cast<cudaStream_t>(exec.stream);
            const auto chunk = static_cast<int64_t>(scratch_.bytes() / sizeof(float));
            SPECATTN_CHECK(chunk > 0, "local CUDA collectives: no scratch for an all-reduce");
            for (int64_t o = 0; o < n; o += chunk) {
                const int64_t m = std::min(chunk, n - o);
                SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
                group_.posted_[static_cast<size_t>(rank_)] = byte_ptr(send, o, send_type);
                group_.barrier_.wait();
                tp_sum_params p;
                p.n_src = n_ranks();
                for (int32_t r = 0; r < n_ranks(); ++r) {
                    p.src[r] = group_.posted_[static_cast<size_t>(r)];
                }
                p.src_type = send_type;
                p.out = scratch_.as<void>();
                p.out_type = recv_type;
                p.n = m;
                launch_tp_sum(p, stream);
                SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
                group_.barrier_.wait();
                SPECATTN_CUDA_CHECK(cudaMemcpyAsync(byte_ptr(recv, o, recv_type), scratch_.as<void>(),
                                                    static_cast<size_t>(m) * tp_dtype_size(recv_type),
                                                    cudaMemcpyDeviceToDevice, stream));
            }
            SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
        }

        void all_gather(const void * send, void * recv, tp_dtype type, int64_t n, const coll_exec & exec) override {
            const auto stream = static_cast<cudaStream_t>(exec.stream);
            SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
            group_.posted_[static_cast<size_t>(rank_)] = send;
            group_.barrier_.wait();
            for (int32_t r = 0; r < n_ranks(); ++r) {
                SPECATTN_CUDA_CHECK(cudaMemcpyAsync(byte_ptr(recv, r * n, type), group_.posted_[static_cast<size_t>(r)],
                                                    static_cast<size_t>(n) * tp_dtype_size(type),
                                                    cudaMemcpyDeviceToDevice, stream));
            }
            SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
            group_.barrier_.wait();
        }

      private:
        cuda_local_group & group_;
        int32_t rank_;
        device_buffer scratch_; // [chunk] of at most 4-byte elements
    };

    int device_;
    std::vector<const void *> posted_; // [n_ranks] the buffers of the collective in progress
    rank_barrier barrier_;
    std::vector<std::unique_ptr<endpoint>> ranks_;
};

} // namespace

std::unique_ptr<cuda_collectives_group> make_nccl_group(const std::vector<int> & devices, size_t scratch_bytes) {
    return std::make_unique<nccl_group>(devices, scratch_bytes);
}

std::unique_ptr<cuda_collectives_group> make_cuda_local_group(int32_t n_ranks, int device, size_t scratch_bytes) {
    return std::make_unique<cuda_local_group>(n_ranks, device, scratch_bytes);
}

} // namespace specattn
