// The collectives of tensor parallelism (tp/collectives.h) on device memory, for cuda_backend ranks
// (docs/tensor_parallel.md). Two groups of N ranks in one process, one thread per rank:
//
//   nccl_group        one GPU per rank, one NCCL communicator (ncclCommInitAll). An all-reduce is an ncclAllGather
//                     of the ranks' buffers and a sum in rank order by one kernel (tp_ops.h), so each element adds
//                     the ranks in the same order whatever the buffer's size: batch-invariant, and the CPU group's
//                     semantics. Calls without coll_exec::rank_ordered (prefill) use ncclAllReduce and the same
//                     kernel as a cast. Everything is enqueued on the rank's stream and may be captured in a graph.
//   cuda_local_group  every rank on one GPU (a test vehicle: NCCL refuses two ranks of a communicator on one GPU).
//                     Ranks meet on the host: each waits for its stream, the sum kernel reads every rank's buffer
//                     in rank order. It synchronizes, so it cannot be captured (capturable() is false).
//
// Both hold, per rank, a scratch buffer fixed at construction (graphs bake addresses in): larger all-reduces run in
// chunks, which changes nothing in a rank-ordered sum.
#pragma once

#include "tp/collectives.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace specattn {

class cuda_collectives_group {
  public:
    virtual ~cuda_collectives_group() = default;
    virtual int32_t n_ranks() const = 0;
    virtual collectives & rank(int32_t r) = 0;
    // The CUDA device of rank r.
    virtual int device(int32_t r) const = 0;
    // After a rank failed: releases the others from any collective they wait in (they fail too). The group cannot
    // be used afterwards.
    virtual void abort() = 0;
};

// devices[r] is rank r's GPU. scratch_bytes per rank (on its GPU). Throws specattn::error with NCCL's reason when
// the communicators cannot be made (NCCL refuses, for one, two ranks on the same GPU).
std::unique_ptr<cuda_collectives_group> make_nccl_group(const std::vector<int> & devices, size_t scratch_bytes);
// n_ranks ranks on `device`.
std::unique_ptr<cuda_collectives_group> make_cuda_local_group(int32_t n_ranks, int device, size_t scratch_bytes);

// The version of the NCCL library loaded at run time, as "2.27.3".
std::string nccl_version_string();

} // namespace specattn
