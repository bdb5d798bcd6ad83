// Tensor parallelism on GPUs (docs/tensor_parallel.md): N cuda_backend ranks, each on its shard of the model with K/V
// pools for its own KV heads, one host thread per rank, meeting in a cuda_collectives_group (cuda_collectives.h).
// The GPU counterpart of cpu_tp_backend, with the same partition, call sites and block manager (page ids shared).
//
// Transports: NCCL, one GPU per rank (`--device cuda --tp N`); or every rank on one GPU with host-side meetings,
// for tests on a single GPU (NCCL refuses two ranks of a communicator on one GPU). SPECATTN_TP_TRANSPORT=local
// picks the second for an engine; set at all, it also sends --tp 1 through the chosen transport.
#pragma once

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_collectives.h"
#include "backend/tp_backend.h"

#include <memory>
#include <vector>

namespace specattn {

enum class tp_transport : int32_t {
    tp_transport_nccl,  // one GPU per rank
    tp_transport_local, // every rank on one GPU (tests)
};

// SPECATTN_TP_TRANSPORT: "nccl" (default) or "local"; anything else throws.
tp_transport tp_transport_from_env();
// Whether SPECATTN_TP_TRANSPORT is set: then the engine routes --tp 1 through the transport too (a test of it).
bool tp_transport_forced();

// Throws one line unless n_ranks GPUs are there for the transport (before a model is loaded).
void cuda_tp_check_devices(int32_t n_ranks, tp_transport transport);

class cuda_tp_backend : public tp_backend<cuda_backend> {
  public:
    // devices[r]: rank r's GPU; empty: 0, 1, ... (NCCL) or all 0 (local). decode_rows as cuda_backend's. Throws
    // specattn::error with one line when n_ranks does not divide the model's heads, when there are fewer GPUs than
    // ranks, or when NCCL fails.
    cuda_tp_backend(const model & m, int32_t n_ranks, int64_t n_pages, int64_t page_size, int64_t max_rows,
                    tp_transport transport, std::vector<int> devices = {}, int64_t decode_rows = 1);
    ~cuda_tp_backend() override;

    const char * name() const override { return "cuda-tp"; }
    // Rank r's GPU (make it current before calling rank(r)).
    int device(int32_t r) const { return group_->device(r); }

  private:
    // With the rank's device current; a failure aborts the group (and the backend cannot be used again).
    void run_ranks(const std::function<void(int32_t)> & fn) override;
    void each_rank(const std::function<void(int32_t)> & fn) override;

    std::unique_ptr<cuda_collectives_group> group_;
    bool failed_ = false; // a rank failed: the group was aborted
};

} // namespace specattn
