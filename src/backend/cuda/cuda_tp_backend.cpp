#include "backend/cuda/cuda_tp_backend.h"

#include "backend/cuda/cuda_check.h"
#include "core/check.h"

#include <cstdlib>
#include <cstring>

namespace specattn {

tp_transport tp_transport_from_env() {
    const char * e = std::getenv("SPECATTN_TP_TRANSPORT");
    if (e == nullptr || e[0] == '\0' || std::strcmp(e, "nccl") == 0) {
        return tp_transport::tp_transport_nccl;
    }
    SPECATTN_CHECK(std::strcmp(e, "local") == 0, "SPECATTN_TP_TRANSPORT must be nccl or local, not '%s'", e);
    return tp_transport::tp_transport_local;
}

bool tp_transport_forced() {
    const char * e = std::getenv("SPECATTN_TP_TRANSPORT");
    return e != nullptr && e[0] != '\0';
}

void cuda_tp_check_devices(int32_t n_ranks, tp_transport transport) {
    int n_dev = 0;
    const cudaError_t e = cudaGetDeviceCount(&n_dev);
    SPECATTN_CHECK(e == cudaSuccess && n_dev > 0, "no CUDA device found (%s); --device cpu --tp %d simulates the ranks",
                   e == cudaSuccess ? "0 devices" : cudaGetErrorString(e), n_ranks);
    switch (transport) {
    case tp_transport::tp_transport_nccl:
        SPECATTN_CHECK(n_ranks <= n_dev, "--tp %d needs %d GPUs (one per rank), this machine has %d", n_ranks, n_ranks,
                       n_dev);
        break;
    case tp_transport::tp_transport_local:
        break;
    }
}

cuda_tp_backend::cuda_tp_backend(const model & m, int32_t n_ranks, int64_t n_pages, int64_t page_size, int64_t max_rows,
                                 tp_transport transport, std::vector<int> devices, int64_t decode_rows)
    : tp_backend(m, n_ranks) {
    if (devices.empty()) {
        cuda_tp_check_devices(n_ranks, transport);
        for (int32_t r = 0; r < n_ranks; ++r) {
            devices.push_back(transport == tp_transport::tp_transport_nccl ? r : 0);
        }
    }
    SPECATTN_CHECK(static_cast<int32_t>(devices.size()) == n_ranks, "%zu GPUs given for %d ranks", devices.size(),
                   n_ranks);
    // Scratch for a whole [max_rows, n_embd] fp32 all-reduce of every rank in one chunk (sinks go in chunks).
    const size_t scratch = static_cast<size_t>(n_ranks) * static_cast<size_t>(max_rows * m.hp.n_embd) * sizeof(float);
    switch (transport) {
    case tp_transport::tp_transport_nccl:
        group_ = make_nccl_group(devices, scratch);
        break;
    case tp_transport::tp_transport_local:
        group_ = make_cuda_local_group(n_ranks, devices[0], scratch);
        break;
    }
    // Concurrently: each rank's warm-up pass meets the others in the collectives.
    run_ranks([&](int32_t r) {
        const auto i = static_cast<size_t>(r);
        ranks_[i] = std::make_unique<cuda_backend>(shards_[i], plan_[i], group_->rank(r), n_pages, page_size, max_rows,
                                                   decode_rows);
    });
}

cuda_tp_backend::~cuda_tp_backend() {
    for (int32_t r = 0; r < static_cast<int32_t>(ranks_.size()); ++r) {
        cudaSetDevice(group_->device(r)); // each rank's buffers and stream are freed on its device
        ranks_[static_cast<size_t>(r)].reset();
    }
}

void cuda_tp_backend::run_ranks(const std::function<void(int32_t)> & fn) {
    SPECATTN_CHECK(!failed_, "a tensor-parallel rank failed earlier and its collectives were aborted: start again");
    run_rank_threads(
        n_ranks(),
        [&](int32_t r) {
            SPECATTN_CUDA_CHECK(cudaSetDevice(group_->device(r)));
            fn(r);
        },
        [this] {
            failed_ = true;
            group_->abort();
        });
}

void cuda_tp_backend::each_rank(const std::function<void(int32_t)> & fn) {
    for (int32_t r = 0; r < n_ranks(); ++r) {
        SPECATTN_CUDA_CHECK(cudaSetDevice(group_->device(r)));
        fn(r);
    }
}

} // namespace specattn
