#include "tp/collectives.h"

#include "core/check.h"

#include <algorithm>
#include <exception>
#include <omp.h>
#include <thread>

namespace specattn {

void single_rank_collectives::all_gather(const float * send, int64_t n, float * recv) {
    if (send != recv) {
        std::copy_n(send, n, recv);
    }
}

// One rank's view of a cpu_collectives_group. Each collective: post the buffer, wait for every rank, read every
// rank's buffer, wait again (so no rank overwrites a buffer another is still reading), write the result.
class cpu_collectives_group::endpoint : public collectives {
  public:
    endpoint(cpu_collectives_group & g, int32_t rank) : group_(g), rank_(rank) {}
    int32_t rank() const override { return rank_; }
    int32_t n_ranks() const override { return group_.n_ranks(); }

    void all_reduce_sum(float * buf, int64_t n) override {
        group_.posted_[static_cast<size_t>(rank_)] = buf;
        group_.barrier();
        sum_.assign(group_.posted_[0], group_.posted_[0] + n);
        for (int32_t r = 1; r < n_ranks(); ++r) {
            const float * b = group_.posted_[static_cast<size_t>(r)];
            for (int64_t i = 0; i < n; ++i) {
                sum_[static_cast<size_t>(i)] += b[i];
            }
        }
        group_.barrier();
        std::copy(sum_.begin(), sum_.end(), buf);
    }

    void all_gather(const float * send, int64_t n, float * recv) override {
        group_.posted_[static_cast<size_t>(rank_)] = send;
        group_.barrier();
        for (int32_t r = 0; r < n_ranks(); ++r) {
            std::copy_n(group_.posted_[static_cast<size_t>(r)], n, recv + r * n);
        }
        group_.barrier();
    }

  private:
    cpu_collectives_group & group_;
    int32_t rank_;
    std::vector<float> sum_;
};

cpu_collectives_group::cpu_collectives_group(int32_t n_ranks) : posted_(static_cast<size_t>(n_ranks), nullptr) {
    SPECATTN_CHECK(n_ranks >= 1, "a collectives group needs at least one rank");
    for (int32_t r = 0; r < n_ranks; ++r) {
        ranks_.push_back(std::make_unique<endpoint>(*this, r));
    }
}

cpu_collectives_group::~cpu_collectives_group() = default;

collectives & cpu_collectives_group::rank(int32_t r) {
    return *ranks_[static_cast<size_t>(r)];
}

void cpu_collectives_group::barrier() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t gen = generation_;
    if (!aborted_ && ++arrived_ == n_ranks()) {
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

void cpu_collectives_group::abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    aborted_ = true;
    cv_.notify_all();
}

void cpu_collectives_group::run_ranks(const std::function<void(int32_t rank)> & fn) {
    const int32_t n = n_ranks();
    if (n == 1) {
        fn(0);
        return;
    }
    aborted_ = false;
    arrived_ = 0;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
    int32_t first_failed = -1;
    std::mutex failed_mutex;
    const int omp_threads = std::max(1, omp_get_max_threads() / n);
    std::vector<std::thread> threads;
    for (int32_t r = 0; r < n; ++r) {
        threads.emplace_back([&, r] {
            omp_set_num_threads(omp_threads);
            try {
                fn(r);
            } catch (...) {
                errors[static_cast<size_t>(r)] = std::current_exception();
                {
                    std::lock_guard<std::mutex> lock(failed_mutex);
                    if (first_failed < 0) {
                        first_failed = r;
                    }
                }
                abort();
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

} // namespace specattn
