// Tensor parallelism simulated on the CPU (docs/tensor_parallel.md): N cpu_backend ranks, each on its shard of the
// model with K/V pools for its own KV heads, in one process (backend/tp_backend.h). A forward runs every rank on its
// own thread; they meet in the collectives (tp/collectives.h) where cuda_tp_backend's NCCL calls are, and those sum
// in rank order, so the results are the same in every run. The block manager (page ids) is shared by all ranks.
//
// The oracle of the GPU version, and the proof that the partition, the collectives and SpecAttn's cross-rank score
// reduction reproduce the one-rank model: tests/unit/tp.
#pragma once

#include "backend/cpu/cpu_backend.h"
#include "backend/tp_backend.h"
#include "tp/collectives.h"

namespace specattn {

class cpu_tp_backend : public tp_backend<cpu_backend> {
  public:
    // Throws specattn::error when n_ranks does not divide the model's heads (tp/tp_plan.h).
    cpu_tp_backend(const model & m, int32_t n_ranks, int64_t n_pages, int64_t page_size);
    ~cpu_tp_backend() override;

    const char * name() const override { return "cpu-tp"; }

  private:
    void run_ranks(const std::function<void(int32_t)> & fn) override { group_.run_ranks(fn); }

    cpu_collectives_group group_;
};

} // namespace specattn
