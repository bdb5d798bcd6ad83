// The collectives a tensor-parallel rank calls (docs/tensor_parallel.md), one object per rank, as NCCL's
// communicator is: every rank of a group makes the same calls in the same order with the same sizes. The CPU group
// below runs each rank on its own thread (one thread per GPU is also what cuda_tp_backend does) and computes each
// collective as an explicit sum or concatenation in rank order, on host memory, before it returns. The CUDA groups
// (backend/cuda/cuda_collectives.h: NCCL, and one GPU shared by threads for tests) implement the same calls on device
// memory: they enqueue on the rank's stream (coll_exec::stream) and return without waiting.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace specattn {

// Element types of collective buffers.
enum class tp_dtype : int32_t {
    tp_dtype_f32,
    tp_dtype_bf16,
};

size_t tp_dtype_size(tp_dtype t);

// How a collective runs. Host groups take host buffers and no stream; device groups device buffers of the rank's
// GPU and the rank's cudaStream_t (as void *, so this header needs no CUDA).
struct coll_exec {
    void * stream = nullptr;
    // true: each element is summed in rank order, ((b0 + b1) + b2) + ..., the same bits whatever the buffer's size
    // (batch invariance: decode, draft, verify). false: any order that is fixed for a given size (NCCL's ring;
    // prefill, which need not be batch-invariant, docs/tensor_parallel.md "Determinism").
    bool rank_ordered = true;
};

class collectives {
  public:
    virtual ~collectives() = default;
    virtual int32_t rank() const = 0;
    virtual int32_t n_ranks() const = 0;
    // recv[i] becomes the sum over every rank's send[i] (accumulated in fp32, stored as recv_type), the same bits on
    // every rank and in every run. recv may be send when the types agree.  send: [n]  recv: [n]
    virtual void all_reduce_sum(const void * send, tp_dtype send_type, void * recv, tp_dtype recv_type, int64_t n,
                                const coll_exec & exec) = 0;
    // recv[r·n, (r+1)·n) becomes rank r's send[0, n), for every rank r.  send: [n]  recv: [n_ranks · n]
    virtual void all_gather(const void * send, void * recv, tp_dtype type, int64_t n, const coll_exec & exec) = 0;
    // Whether the device calls may be captured into a CUDA graph (NCCL's may; a group that meets on the host not).
    virtual bool capturable() const { return true; }

    // Host fp32, in place (the CPU backend's calls).  buf: [n]
    void all_reduce_sum(float * buf, int64_t n) {
        all_reduce_sum(buf, tp_dtype::tp_dtype_f32, buf, tp_dtype::tp_dtype_f32, n, {});
    }
    void all_gather(const float * send, int64_t n, float * recv) {
        all_gather(send, recv, tp_dtype::tp_dtype_f32, n, {});
    }
};

// A group of one on the host: a sum is the identity, a gather a copy (what a backend runs without tensor parallelism;
// the CUDA backend never calls it on device memory).
class single_rank_collectives : public collectives {
  public:
    int32_t rank() const override { return 0; }
    int32_t n_ranks() const override { return 1; }
    void all_reduce_sum(const void * send, tp_dtype send_type, void * recv, tp_dtype recv_type, int64_t n,
                        const coll_exec & exec) override;
    void all_gather(const void * send, void * recv, tp_dtype type, int64_t n, const coll_exec & exec) override;
};

// Runs fn(r) for every rank r on its own thread and waits for all. When a rank throws, on_failure() runs once (it
// must release the ranks waiting in a collective, so that they throw too) and the first rank's exception is
// rethrown here: a bad input fails instead of hanging. A group of one runs on the calling thread.
void run_rank_threads(int32_t n_ranks, const std::function<void(int32_t rank)> & fn,
                      const std::function<void()> & on_failure);

// The meeting point of N rank threads: wait() returns once all N have arrived; after abort() every waiting and later
// wait() throws ("another rank failed") until reset().
class rank_barrier {
  public:
    explicit rank_barrier(int32_t n) : n_(n) {}
    void wait();
    void abort();
    void reset();

  private:
    int32_t n_;
    std::mutex mutex_;
    std::condition_variable cv_;
    int32_t arrived_ = 0;
    uint64_t generation_ = 0;
    bool aborted_ = false;
};

// N ranks in one process, one thread each (run_ranks), host fp32 buffers. A collective waits until every rank has
// posted its buffer.
class cpu_collectives_group {
  public:
    explicit cpu_collectives_group(int32_t n_ranks);
    ~cpu_collectives_group();
    int32_t n_ranks() const { return static_cast<int32_t>(ranks_.size()); }
    collectives & rank(int32_t r);

    // run_rank_threads with this group's abort; OpenMP threads are shared out among the ranks.
    void run_ranks(const std::function<void(int32_t rank)> & fn);

  private:
    class endpoint;
    friend class endpoint;

    std::vector<std::unique_ptr<endpoint>> ranks_;
    std::vector<const float *> posted_; // [n_ranks] the buffers of the collective in progress
    rank_barrier barrier_;
};

} // namespace specattn
