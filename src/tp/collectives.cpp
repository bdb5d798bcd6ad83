#include "tp/collectives.h"

#include "core/check.h"

#include <algorithm>
#include <exception>
#include <omp.h>
#include <thread>

namespace specattn {

size_t tp_dtype_size(tp_dtype t) {
    switch (t) {
    case tp_dtype::tp_dtype_f32:
        return 4;
    case tp_dtype::tp_dtype_bf16:
        return 2;
    }
    SPECATTN_ABORT("unknown tp_dtype %d", static_cast<int>(t));
}

namespace {

// The host groups hold fp32 host buffers only.
void check_host_f32(tp_dtype a, tp_dtype b, const coll_exec & exec) {
    SPECATTN_CHECK(a == tp_dtype::tp_dtype_f32 && b == tp_dtype::tp_dtype_f32 && exec.stream == nullptr,
                   "a host collectives group takes fp32 host buffers and no stream");
}

} // namespace

void single_rank_collectives::all_reduce_sum(const void * send, tp_dtype send_type, void * recv, tp_dtype recv_type,
                                             int64_t n, const coll_exec & exec) {
    check_host_f32(send_type, recv_type, exec);
    if (send != recv) {
        std::copy_n(static_cast<const float *>(send), n, static_cast<float *>(recv));
    }
}

void single_rank_collectives::all_gather(const void * send, void * recv, tp_dtype type, int64_t n,
                                         const coll_exec & exec) {
    check_host_f32(type, type, exec);
    if (send != recv) {
        std::copy_n(static_cast<const float *>(send), n, static_cast<float *>(recv));
    }
}

// One rank's view of a cpu_collectives_group. Each collective: post the buffer, wait for every rank, read every
// rank's buffer, wait again (so no rank overwrites a buffer another is still reading), write the result.
class cpu_collectives_group::endpoint : public collectives {
  public:
    endpoint(cpu_collectives_group & g, int32_t rank) : group_(g), rank_(rank) {}
    int32_t rank() const override { return rank_; }
    int32_t n_ranks() const override { return group_.n_ranks(); }

    void all_reduce_sum(const void * send, tp_dtype send_type, void * recv, tp_dtype recv_type, int64_t n,
                        const coll_exec & exec) override {
        check_host_f32(send_type, recv_type, exec);
        group_.posted_[static_cast<size_t>(rank_)] = static_cast<const float *>(send);
        group_.barrier_.wait();
        sum_.assign(group_.posted_[0], group_.posted_[0] + n);
        for (int32_t r = 1; r < n_ranks(); ++r) {
            const float * b = group_.posted_[static_cast<size_t>(r)];
            for (int64_t i = 0; i < n; ++i) {
                sum_[static_cast<size_t>(i)] += b[i];
            }
        }
        group_.barrier_.wait();
        std::copy(sum_.begin(), sum_.end(), static_cast<float *>(recv));
    }

    void all_gather(const void * send, void * recv, tp_dtype type, int64_t n, const coll_exec & exec) override {
        check_host_f32(type, type, exec);
        group_.posted_[static_cast<size_t>(rank_)] = static_cast<const float *>(send);
        group_.barrier_.wait();
        for (int32_t r = 0; r < n_ranks(); ++r) {
            std::copy_n(group_.posted_[static_cast<size_t>(r)], n, static_cast<float *>(recv) + r * n);
        }
        group_.barrier_.wait();
    }

  private:
    cpu_collectives_group & group_;
    int32_t rank_;
    std::vector<float> sum_;
};

cpu_collectives_group::cpu_collectives_group(int32_t n_ranks)
    : posted_(static_cast<size_t>(std::max(n_ranks, 1)), nullptr), barrier_(n_ranks) {
    SPECATTN_CHECK(n_ranks >= 1, "a collectives group needs at least one rank");
    for (int32_t r = 0; r < n_ranks; ++r) {
        ranks_.push_back(std::make_unique<endpoint>(*this, r));
    }
}

cpu_collectives_group::~cpu_collectives_group() = default;

collectives & cpu_collectives_group::rank(int32_t r) {
    return *ranks_[static_cast<size_t>(r)];
}

void rank_barrier::wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t gen = generation_;
    if (!aborted_ && ++arrived_ == n_) {
        arrived_ = 0;
        ++generation_;
        cv_.notify_all();
        return;
    }
    cv_.wait(lock, [&] { return generation_ != gen || aborted_; });
    if (generation_ == gen) {
        throw error("tensor-parallel collective abandoned: another rank failed");
    }
}

void rank_barrier::abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
    cv_.notify_all();
}

void rank_barrier::reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = false;
    arrived_ = 0;
}

void run_rank_threads(int32_t n, const std::function<void(int32_t rank)> & fn,
                      const std::function<void()> & on_failure) {
    if (n == 1) {
        fn(0);
        return;
    }
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
    int32_t first_failed = -1;
    std::mutex failed_mutex;
    std::vector<std::thread> threads;
    for (int32_t r = 0; r < n; ++r) {
        threads.emplace_back([&, r] {
            try {
                fn(r);
            } catch (...) {
                errors[static_cast<size_t>(r)] = std::current_exception();
                bool first = false;
                {
                    std::lock_guard<std::mutex> lock(failed_mutex);
                    if (first_failed < 0) {
                        first_failed = r;
                        first = true;
                    }
                }
                if (first) {
                    on_failure();
                }
            }
        });
    }
    for (std::thread & t : threads) {
        t.join();
    }
    if (first_failed >= 0) {
        std::rethrow_exception(errors[static_cast<size_t>(first_failed)]);
    }
}

void cpu_collectives_group::run_ranks(const std::function<void(int32_t rank)> & fn) {
    const int32_t n = n_ranks();
    barrier_.reset();
    const int omp_threads = std::max(1, omp_get_max_threads() / n);
    run_rank_threads(
        n,
        [&](int32_t r) {
            if (n > 1) {
                omp_set_num_threads(omp_threads);
            }
            fn(r);
        },
        [this] { barrier_.abort(); });
}

} // namespace specattn
