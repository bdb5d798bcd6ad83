// The collectives a tensor-parallel rank calls (docs/tensor_parallel.md), one object per rank, as NCCL's
// communicator is: every rank of a group makes the same calls in the same order with the same sizes. The CPU group
// below runs each rank on its own thread (one thread per GPU is also the NCCL plan) and computes each collective
// as an explicit sum or concatenation in rank order; a CUDA/NCCL group implements the same interface on device
// pointers and the compute stream.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace specattn {

class collectives {
  public:
    virtual ~collectives() = default;
    virtual int32_t rank() const = 0;
    virtual int32_t n_ranks() const = 0;
    // buf[i] becomes the sum over every rank's buf[i], added in rank order: ((b0 + b1) + b2) + ..., the same bits on
    // every rank and in every run.  buf: [n]
    virtual void all_reduce_sum(float * buf, int64_t n) = 0;
    // recv[r·n, (r+1)·n) becomes rank r's send[0, n), for every rank r.  send: [n]  recv: [n_ranks · n]
    virtual void all_gather(const float * send, int64_t n, float * recv) = 0;
};

// A group of one: every collective is the identity (what a backend runs without tensor parallelism).
class single_rank_collectives : public collectives {
  public:
    int32_t rank() const override { return 0; }
    int32_t n_ranks() const override { return 1; }
    void all_reduce_sum(float *, int64_t) override {}
    void all_gather(const float * send, int64_t n, float * recv) override;
};

// N ranks in one process, one thread each (run_ranks). A collective waits until every rank has posted its buffer.
class cpu_collectives_group {
  public:
    explicit cpu_collectives_group(int32_t n_ranks);
    ~cpu_collectives_group();
    int32_t n_ranks() const { return static_cast<int32_t>(ranks_.size()); }
    collectives & rank(int32_t r);

    // Runs fn(r) for every rank r on its own thread and waits for all. If a rank throws, the others are released
    // from any collective they wait in (they throw too) and the first rank's exception is rethrown here, so a bad
    // input fails instead of hanging. OpenMP threads are shared out among the ranks.
    void run_ranks(const std::function<void(int32_t rank)> & fn);

  private:
    class endpoint;
    friend class endpoint;
    // Waits until every rank has arrived; throws once the group is aborted.
    void barrier();
    void abort();

    std::vector<std::unique_ptr<endpoint>> ranks_;
    std::vector<const float *> posted_; // [n_ranks] the buffers of the collective in progress
    std::mutex mutex_;
    std::condition_variable cv_;
    int32_t arrived_ = 0;
    uint64_t generation_ = 0;
    bool aborted_ = false;
};

} // namespace specattn
