// Micro-benchmark of the draft-selection and sampling kernels at Llama-8B shapes (L 32, H 32, HK 8, D 128):
// score reduce (one launch = one layer, all sequences' sinks: rows 0 and γ, every query head) and top-k (one
// launch = every layer × sequence, k = 7% of the domain) at 32K and 128K domain, batch 1 and 16; then Quest
// selection (one layer, page 16) and the sampling kernels at V = 151936.
//
//     build/bench/select_bench [--reps N]          (on the GPU machine)
//
// µs per launch are medians of device-event timings with a cold L2 (a 256 MB memset between repetitions, outside
// the timed region). The floor: the reduce must read every collected logit once (2 rows × H × domain × 2 B per
// sequence) and write the scores; top-k must read every score once (4 B each). GB/s = those bytes / median time,
// against the card's device-to-device copy (bytes read + written), timed the same way.
//
// Measured (H200, 2026-11-29, 15-20 reps, cold L2; copy 4255 GB/s), µs per launch:
//   reduce, 1 layer, logit / weight:  B1 32K 7.7 / 8.8   B16 32K 30.1 / 32.6   B1 128K 11.0 / 11.3
//                                     B16 128K 84.0 / 101.4 (77% / 64% of copy)
//   top-k 7%, all 32 layers, head-shared (x8 copies) / per KV head (L x HK jobs):
//       B1 32K 34.0 / 57.2   B16 32K 129 / 753   B1 128K 172 / 283   B16 128K 685 / 4090
//   (a variant with warp-aggregated histogram atomics (__match_any_sync), 4 loads in flight and 16-item
//    compaction tiles measured 1.6-1.9x slower in every top-k row, so the simpler kernel stays.)
//   quest select, 1 layer, S 16: B1 and B16 ~600 (32K) and ~2300 (128K): latency-bound (one warp per page).
//   sampling probs V 151936: R8 385 (T) / 467 (top-k) / 1083 (top-p); R128 702 / 1002 / 2003;
//   sample_from R8 22.3, R128 38.3.
#include "bench_stats.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/select_ops.h"
#include "core/check.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace specattn;

namespace {

__device__ __forceinline__ uint32_t hash_u32(uint64_t i, uint32_t seed) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ static_cast<uint32_t>(i >> 32) ^ seed;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

// Pseudo-random values in [lo, hi): never zeros (METHOD.md: zeros hide wrong indexing).
__global__ void fill_bf16(bf16 * x, int64_t n, uint32_t seed, float lo, float hi) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        x[i] = __float2bfloat16(lo + (hi - lo) * static_cast<float>(hash_u32(i, seed) >> 8) * 0x1.0p-24f);
    }
}
__global__ void fill_f32(float * x, int64_t n, uint32_t seed, float lo, float hi) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        x[i] = lo + (hi - lo) * static_cast<float>(hash_u32(i, seed) >> 8) * 0x1.0p-24f;
    }
}

template <typename T> T * device_alloc(size_t n) {
    void * p = nullptr;
    SPECATTN_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    return static_cast<T *>(p);
}
template <typename T> T * upload(const std::vector<T> & v) {
    T * d = device_alloc<T>(v.size());
    SPECATTN_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}
unsigned blocks_of(int64_t n) {
    return static_cast<unsigned>((n + 255) / 256);
}

struct timing {
    double median_us = 0;
    double std_us = 0;
};

void * g_flush = nullptr;
constexpr size_t flush_bytes = size_t{256} << 20;

// Median and std of `reps` timings of fn, each after an L2 flush outside the timed region.
template <typename F> timing time_cold(F && fn, int reps) {
    cudaEvent_t a, b;
    SPECATTN_CUDA_CHECK(cudaEventCreate(&a));
    SPECATTN_CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 2; ++i) {
        fn();
    }
    std::vector<double> us;
    for (int i = 0; i < reps; ++i) {
        SPECATTN_CUDA_CHECK(cudaMemsetAsync(g_flush, i & 0xff, flush_bytes));
        SPECATTN_CUDA_CHECK(cudaEventRecord(a));
        fn();
        SPECATTN_CUDA_CHECK(cudaEventRecord(b));
        SPECATTN_CUDA_CHECK(cudaEventSynchronize(b));
        float t = 0;
        SPECATTN_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
        us.push_back(1e3 * t);
    }
    SPECATTN_CUDA_CHECK(cudaEventDestroy(a));
    SPECATTN_CUDA_CHECK(cudaEventDestroy(b));
    const auto [median, sd] = median_and_std(us);
    return {median, sd};
}

constexpr int64_t n_layer = 32;
constexpr int64_t n_head = 32;
constexpr int64_t n_head_kv = 8;
constexpr int64_t head_dim = 128;

void row(const char * what, const char * shape, const timing & t, double bytes, double copy_gbps) {
    const double gbps = bytes / (t.median_us * 1e-6) / 1e9;
    std::printf("| %-22s | %-30s | %9.1f | %6.1f | %8.0f | %5.0f%% |\n", what, shape, t.median_us, t.std_us, gbps,
                100.0 * gbps / copy_gbps);
}

void bench_reduce_top_k(int64_t batch, int64_t domain, int reps, double copy_gbps) {
    char shape[96];
    std::snprintf(shape, sizeof(shape), "B %lld, domain %lldK", static_cast<long long>(batch),
                  static_cast<long long>(domain / 1024));
    // Collected logits of one layer: [2B][H][domain] bf16, rows 0 and γ of each sequence.
    const int64_t n_collect = 2 * batch;
    const int64_t head_stride = domain;
    const int64_t row_stride = n_head * head_stride;
    bf16 * logits = device_alloc<bf16>(static_cast<size_t>(n_collect * row_stride));
    fill_bf16<<<blocks_of(n_collect * row_stride), 256>>>(logits, n_collect * row_stride, 1, -8.0f, 8.0f);
    float * lse = device_alloc<float>(static_cast<size_t>(n_collect * n_head));
    fill_f32<<<blocks_of(n_collect * n_head), 256>>>(lse, n_collect * n_head, 2, 8.0f, 12.0f);
    // Scores: [B][L][domain] fp32 (head-shared) or [B][L][HK][domain] (per KV head).
    const int64_t layer_stride_shared = domain;
    const int64_t per_seq_shared = n_layer * domain;
    float * scores = device_alloc<float>(static_cast<size_t>(batch * n_layer * n_head_kv * domain));
    fill_f32<<<blocks_of(batch * n_layer * n_head_kv * domain), 256>>>(scores, batch * n_layer * n_head_kv * domain, 3,
                                                                       -40.0f, 40.0f);
    SPECATTN_CUDA_CHECK(cudaGetLastError());

    for (int mode = 0; mode < 2; ++mode) {
        std::vector<score_reduce_job> jobs;
        for (int64_t s = 0; s < batch; ++s) {
            score_reduce_job j;
            j.collect0 = static_cast<int32_t>(2 * s);
            j.n_rows = 2;
            j.domain = static_cast<int32_t>(domain);
            j.mode = mode ? score_reduce_mode::score_reduce_mode_weight : score_reduce_mode::score_reduce_mode_logit;
            j.n_groups = 1;
            j.out_offset = s * per_seq_shared;
            jobs.push_back(j);
        }
        score_reduce_params p;
        p.logits = logits;
        p.lse = lse;
        p.collect_row_stride = row_stride;
        p.collect_head_stride = head_stride;
        p.jobs = upload(jobs);
        p.scores = scores;
        p.n_jobs = batch;
        p.n_head = n_head;
        p.n_head_kv = n_head_kv;
        p.layer = 3;
        p.layer_stride = layer_stride_shared;
        p.group_stride = 0;
        p.max_domain = domain;
        p.max_groups = 1;
        const timing t = time_cold([&] { launch_score_reduce(p, nullptr); }, reps);
        const double bytes = static_cast<double>(n_collect * n_head * domain) * 2.0 + batch * domain * 4.0;
        row(mode ? "reduce weight (1 layer)" : "reduce logit (1 layer)", shape, t, bytes, copy_gbps);
        SPECATTN_CUDA_CHECK(cudaFree(const_cast<score_reduce_job *>(p.jobs)));
    }

    const int64_t k = (domain * 7 + 99) / 100;
    int32_t * lists = device_alloc<int32_t>(static_cast<size_t>(batch * n_layer * n_head_kv * k));
    for (int per_head = 0; per_head < 2; ++per_head) {
        std::vector<top_k_job> jobs;
        const int64_t n_groups = per_head ? n_head_kv : 1;
        for (int64_t s = 0; s < batch; ++s) {
            for (int64_t l = 0; l < n_layer; ++l) {
                for (int64_t g = 0; g < n_groups; ++g) {
                    top_k_job j;
                    j.score_offset = ((s * n_layer + l) * n_groups + g) * domain;
                    j.n = static_cast<int32_t>(domain);
                    j.k = static_cast<int32_t>(k);
                    j.list_offset = ((s * n_layer + l) * n_head_kv + g) * k;
                    j.n_copies = per_head ? 1 : static_cast<int32_t>(n_head_kv);
                    j.copy_stride = k;
                    jobs.push_back(j);
                }
            }
        }
        top_k_params p;
        p.scores = scores;
        p.jobs = upload(jobs);
        p.lists = lists;
        p.n_jobs = static_cast<int64_t>(jobs.size());
        p.max_n = domain;
        const timing t = time_cold([&] { launch_top_k(p, nullptr); }, reps);
        const double bytes = static_cast<double>(jobs.size()) * static_cast<double>(domain) * 4.0;
        row(per_head ? "top-k 7% (L x HK jobs)" : "top-k 7% (L jobs, x8 copy)", shape, t, bytes, copy_gbps);
        SPECATTN_CUDA_CHECK(cudaFree(const_cast<top_k_job *>(p.jobs)));
    }
    SPECATTN_CUDA_CHECK(cudaFree(logits));
    SPECATTN_CUDA_CHECK(cudaFree(lse));
    SPECATTN_CUDA_CHECK(cudaFree(scores));
    SPECATTN_CUDA_CHECK(cudaFree(lists));
}

void bench_quest(int64_t batch, int64_t ctx, int reps, double copy_gbps) {
    const int64_t S = 16;
    const int64_t pages_per_seq = ctx / S;
    const int64_t P = batch * pages_per_seq;
    const int64_t meta = P * n_head_kv * head_dim;
    bf16 * kmin = device_alloc<bf16>(static_cast<size_t>(meta));
    bf16 * kmax = device_alloc<bf16>(static_cast<size_t>(meta));
    fill_bf16<<<blocks_of(meta), 256>>>(kmin, meta, 4, -2.0f, 0.0f);
    fill_bf16<<<blocks_of(meta), 256>>>(kmax, meta, 5, 0.0f, 2.0f);
    const int64_t q_stride = (n_head + 2 * n_head_kv) * head_dim;
    bf16 * q = device_alloc<bf16>(static_cast<size_t>(batch * q_stride));
    fill_bf16<<<blocks_of(batch * q_stride), 256>>>(q, batch * q_stride, 6, -1.0f, 1.0f);
    std::vector<int32_t> perm(static_cast<size_t>(P));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
    std::vector<quest_job> jobs;
    const int64_t k_pages = (pages_per_seq * 7 + 99) / 100;
    for (int64_t s = 0; s < batch; ++s) {
        quest_job j;
        j.row = static_cast<int32_t>(s);
        j.page_table_offset = static_cast<int32_t>(s * pages_per_seq);
        j.n_pages_before = static_cast<int32_t>(pages_per_seq - 1);
        j.k_pages = static_cast<int32_t>(k_pages);
        j.slot = static_cast<int32_t>(s);
        jobs.push_back(j);
    }
    const int64_t sel_cap = k_pages * S;
    quest_select_params p;
    p.q = q;
    p.q_row_stride = q_stride;
    p.kmin = kmin;
    p.kmax = kmax;
    p.page_table = upload(perm);
    p.jobs = upload(jobs);
    p.sel_pos = device_alloc<int32_t>(static_cast<size_t>(batch * n_head_kv * sel_cap));
    p.n_jobs = batch;
    p.layer = 0;
    p.n_layer = 1;
    p.sel_cap = sel_cap;
    p.n_head = n_head;
    p.n_head_kv = n_head_kv;
    p.head_dim = head_dim;
    p.page_size = S;
    p.max_pages_before = pages_per_seq - 1;
    const timing t = time_cold([&] { launch_quest_select(p, nullptr); }, reps);
    char shape[96];
    std::snprintf(shape, sizeof(shape), "B %lld, ctx %lldK, S 16, 7%%", static_cast<long long>(batch),
                  static_cast<long long>(ctx / 1024));
    row("quest select (1 layer)", shape, t, static_cast<double>(meta) * 2.0 * 2.0, copy_gbps);
    SPECATTN_CUDA_CHECK(cudaFree(kmin));
    SPECATTN_CUDA_CHECK(cudaFree(kmax));
    SPECATTN_CUDA_CHECK(cudaFree(q));
    SPECATTN_CUDA_CHECK(cudaFree(const_cast<int32_t *>(p.page_table)));
    SPECATTN_CUDA_CHECK(cudaFree(const_cast<quest_job *>(p.jobs)));
    SPECATTN_CUDA_CHECK(cudaFree(p.sel_pos));
}

void bench_sampling(int64_t n_rows, int reps, double copy_gbps) {
    const int64_t V = 151936;
    float * logits = device_alloc<float>(static_cast<size_t>(n_rows * V));
    fill_f32<<<blocks_of(n_rows * V), 256>>>(logits, n_rows * V, 8, -12.0f, 12.0f);
    float * probs = device_alloc<float>(static_cast<size_t>(n_rows * V));
    double * work = device_alloc<double>(static_cast<size_t>(n_rows * V));
    const sample_config configs[] = {{1.0f, 0, 1.0f, 0.0f}, {0.8f, 50, 1.0f, 0.0f}, {0.7f, 0, 0.9f, 0.0f}};
    const char * names[] = {"probs T only", "probs top-k 50", "probs top-p 0.9"};
    char shape[96];
    std::snprintf(shape, sizeof(shape), "R %lld, V 151936", static_cast<long long>(n_rows));
    for (int c = 0; c < 3; ++c) {
        sample_config * d_cfg = upload(std::vector<sample_config>(static_cast<size_t>(n_rows), configs[c]));
        sample_probs_params p;
        p.logits = logits;
        p.logits_row_stride = V;
        p.configs = d_cfg;
        p.probs = probs;
        p.probs_row_stride = V;
        p.work = work;
        p.n_rows = n_rows;
        p.n_vocab = V;
        const timing t = time_cold([&] { launch_sample_probs(p, nullptr); }, reps);
        row(names[c], shape, t, static_cast<double>(n_rows * V) * 8.0, copy_gbps);
        SPECATTN_CUDA_CHECK(cudaFree(d_cfg));
    }
    std::vector<double> u(static_cast<size_t>(n_rows));
    for (size_t i = 0; i < u.size(); ++i) {
        u[i] = (static_cast<double>(i) + 0.5) / static_cast<double>(u.size());
    }
    sample_from_params sp;
    sp.probs = probs;
    sp.row_stride = V;
    sp.uniforms = upload(u);
    sp.out = device_alloc<int32_t>(static_cast<size_t>(n_rows));
    sp.n_rows = n_rows;
    sp.n_vocab = V;
    const timing t = time_cold([&] { launch_sample_from(sp, nullptr); }, reps);
    row("sample_from", shape, t, static_cast<double>(n_rows * V) * 4.0, copy_gbps);
    SPECATTN_CUDA_CHECK(cudaFree(logits));
    SPECATTN_CUDA_CHECK(cudaFree(probs));
    SPECATTN_CUDA_CHECK(cudaFree(work));
    SPECATTN_CUDA_CHECK(cudaFree(const_cast<double *>(sp.uniforms)));
    SPECATTN_CUDA_CHECK(cudaFree(sp.out));
}

} // namespace

int main(int argc, char ** argv) {
    int reps = 30;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(3, std::atoi(argv[++i]));
        }
    }
    try {
        cudaDeviceProp prop{};
        SPECATTN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        SPECATTN_CUDA_CHECK(cudaMalloc(&g_flush, flush_bytes));
        // The ceiling: a 1 GiB device-to-device copy, bytes read + written.
        const size_t copy_bytes = size_t{1} << 30;
        void * a = nullptr;
        void * b = nullptr;
        SPECATTN_CUDA_CHECK(cudaMalloc(&a, copy_bytes));
        SPECATTN_CUDA_CHECK(cudaMalloc(&b, copy_bytes));
        SPECATTN_CUDA_CHECK(cudaMemset(a, 1, copy_bytes));
        const timing tc =
            time_cold([&] { SPECATTN_CUDA_CHECK(cudaMemcpyAsync(b, a, copy_bytes, cudaMemcpyDeviceToDevice)); },
                      std::min(reps, 10));
        const double copy_gbps = 2.0 * static_cast<double>(copy_bytes) / (tc.median_us * 1e-6) / 1e9;
        SPECATTN_CUDA_CHECK(cudaFree(a));
        SPECATTN_CUDA_CHECK(cudaFree(b));
        std::printf("%s, %d SMs, L2 %d MB; copy %.0f GB/s (read + write); %d reps, cold L2\n\n", prop.name,
                    prop.multiProcessorCount, prop.l2CacheSize >> 20, copy_gbps, reps);
        std::printf("| %-22s | %-30s | %9s | %6s | %8s | %6s |\n", "kernel", "shape (L 32, H 32, HK 8)", "median us",
                    "std", "GB/s", "% copy");
        std::printf("|%s|%s|%s|%s|%s|%s|\n", std::string(24, '-').c_str(), std::string(32, '-').c_str(),
                    std::string(11, '-').c_str(), std::string(8, '-').c_str(), std::string(10, '-').c_str(),
                    std::string(8, '-').c_str());
        for (int64_t domain : {int64_t{32768}, int64_t{131072}}) {
            for (int64_t batch : {int64_t{1}, int64_t{16}}) {
                bench_reduce_top_k(batch, domain, reps, copy_gbps);
            }
        }
        for (int64_t batch : {int64_t{1}, int64_t{16}}) {
            bench_quest(batch, 32768, reps, copy_gbps);
            bench_quest(batch, 131072, reps, copy_gbps);
        }
        bench_sampling(8, reps, copy_gbps);
        bench_sampling(128, reps, copy_gbps);
        std::printf("\nrepro: select_bench --reps %d\n", reps);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "select_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
