// Launchers of the sampling and acceptance kernels (src/kernels/sample.cuh): sampling_probs, sample_from,
// accept_sampled and accept_greedy on the device.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/select_ops.h"
#include "core/check.h"
#include "kernels/sample.cuh"

#include <climits>

namespace specattn {

namespace {

unsigned int grid_of_rows(int64_t n, const char * what) {
    SPECATTN_CHECK(n > 0 && n <= INT32_MAX, "%s: %lld blocks do not fit a CUDA grid", what, static_cast<long long>(n));
    return static_cast<unsigned int>(n);
}

void check_vocab(int64_t n_vocab, const char * what) {
    SPECATTN_CHECK(n_vocab > 0 && n_vocab <= INT32_MAX - sample_threads, "%s: vocabulary of %lld does not fit int32",
                   what, static_cast<long long>(n_vocab));
}

} // namespace

void launch_sample_probs(const sample_probs_params & p, cudaStream_t stream) {
    if (p.n_rows == 0) {
        return;
    }
    check_vocab(p.n_vocab, "sampling probabilities");
    SPECATTN_CHECK(p.work != nullptr, "sampling probabilities: the fp64 work rows are missing");
    sample_probs_kernel<<<grid_of_rows(p.n_rows, "sampling probabilities"), sample_threads, 0, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_sample_from(const sample_from_params & p, cudaStream_t stream) {
    if (p.n_rows == 0) {
        return;
    }
    check_vocab(p.n_vocab, "sample");
    sample_from_kernel<<<grid_of_rows(p.n_rows, "sample"), sample_threads, 0, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_accept_sampled(const accept_sampled_params & p, cudaStream_t stream) {
    if (p.n_seqs == 0) {
        return;
    }
    check_vocab(p.n_vocab, "accept");
    accept_sampled_kernel<<<grid_of_rows(p.n_seqs, "accept"), sample_threads, 0, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

void launch_accept_greedy(const argmax_params & am, const accept_greedy_params & p, cudaStream_t stream) {
    if (p.n_seqs == 0) {
        return;
    }
    SPECATTN_CHECK(am.out == p.argmax_ids, "greedy accept: the argmax must write p.argmax_ids");
    launch_argmax(am, stream);
    constexpr int threads = 128;
    accept_greedy_kernel<<<grid_of_rows((p.n_seqs + threads - 1) / threads, "greedy accept"), threads, 0, stream>>>(p);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

} // namespace specattn
