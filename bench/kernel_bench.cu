// Kernel benchmark of the paged attention kernel (decode and verify) against the card's measured copy bandwidth.
//
//     build/bench/kernel_bench [--reps N]          (on the GPU machine; no arguments needed)
//
// The floor: decode and verify attention must read every cached K and V byte of the batch once; queries and
// outputs are negligible beside it (H·D·2 B per row against S·HK·D·4 B of KV). So for each configuration
// bytes = B · S · HK · D · 2 (K and V) · 2 (bf16), and achieved GB/s = bytes / median time; the ceiling is a
// device-to-device cudaMemcpy, timed the same way and counted as bytes read + bytes written. Page tables are
// random permutations of the pool (paged, not contiguous), and the KV pool of each configuration is several times
// the 60 MB L2, so each repetition reads from HBM. The output of one small configuration is checked against a
// double-precision CPU computation first. Prints one table row per configuration, a repro command last.
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
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

// Deterministic pseudo-random bf16 in [-1, 1): never zeros (METHOD.md: zeros hide wrong indexing).
__global__ void fill_random(bf16 * x, int64_t n, uint32_t seed) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        x[i] = __float2bfloat16(static_cast<float>(h & 0xffffu) / 32768.0f - 1.0f);
    }
}

template <typename T> T * device_alloc(size_t n) {
    void * p = nullptr;
    SPECATTN_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
    return static_cast<T *>(p);
}

template <typename T> T * upload(const std::vector<T> & v) {
    T * d = device_alloc<T>(std::max<size_t>(v.size(), 1));
    SPECATTN_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

struct timing {
    double median_ms = 0;
    double std_ms = 0;
};

template <typename F> timing time_events(F && fn, int reps) {
    cudaEvent_t a, b;
    SPECATTN_CUDA_CHECK(cudaEventCreate(&a));
    SPECATTN_CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; ++i) {
        fn(); // warm-up
    }
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        SPECATTN_CUDA_CHECK(cudaEventRecord(a));
        fn();
        SPECATTN_CUDA_CHECK(cudaEventRecord(b));
        SPECATTN_CUDA_CHECK(cudaEventSynchronize(b));
        float t = 0;
        SPECATTN_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    SPECATTN_CUDA_CHECK(cudaEventDestroy(a));
    SPECATTN_CUDA_CHECK(cudaEventDestroy(b));
    std::sort(ms.begin(), ms.end());
    const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
    double var = 0;
    for (double x : ms) {
        var += (x - mean) * (x - mean);
    }
    return {ms[ms.size() / 2], std::sqrt(var / static_cast<double>(ms.size()))};
}

struct config {
    const char * name;
    int64_t batch;
    int64_t ctx;    // tokens per sequence
    int64_t rows;   // query rows per sequence: 1 = decode, γ+1 = verify
    int64_t n_head; // query heads
    int64_t n_head_kv;
    int64_t head_dim;
};

struct result {
    timing t;
    double gbps = 0;
    double max_err = 0; // only for the checked configuration
};

// One layer of attention for cfg over a randomly paged pool; optionally checks a few rows against the CPU.
result run(const config & cfg, int reps, int n_sm, bool check) {
    const int64_t page = 16;
    const int64_t pages_per_seq = (cfg.ctx + page - 1) / page;
    const int64_t n_pages = cfg.batch * pages_per_seq;
    const int64_t D = cfg.head_dim;
    const int64_t pool_elems = n_pages * cfg.n_head_kv * page * D;
    bf16 * k_pool = device_alloc<bf16>(static_cast<size_t>(pool_elems));
    bf16 * v_pool = device_alloc<bf16>(static_cast<size_t>(pool_elems));
    const int64_t n_rows = cfg.batch * cfg.rows;
    const int64_t q_elems = n_rows * cfg.n_head * D;
    bf16 * q = device_alloc<bf16>(static_cast<size_t>(q_elems));
    bf16 * out = device_alloc<bf16>(static_cast<size_t>(q_elems));
    auto fill = [](bf16 * x, int64_t n, uint32_t seed) {
        fill_random<<<static_cast<unsigned>((n + 255) / 256), 256>>>(x, n, seed);
        SPECATTN_CUDA_CHECK(cudaGetLastError());
    };
    fill(k_pool, pool_elems, 1);
    fill(v_pool, pool_elems, 2);
    fill(q, q_elems, 3);

    // Random physical pages: sequence s owns a shuffled slice of the pool.
    std::vector<int32_t> perm(static_cast<size_t>(n_pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(7));
    std::vector<std::vector<int32_t>> pages(static_cast<size_t>(cfg.batch));
    std::vector<attention_plan_row> rows;
    for (int64_t s = 0; s < cfg.batch; ++s) {
        pages[static_cast<size_t>(s)].assign(perm.begin() + s * pages_per_seq, perm.begin() + (s + 1) * pages_per_seq);
        for (int64_t r = 0; r < cfg.rows; ++r) {
            rows.push_back({&pages[static_cast<size_t>(s)], static_cast<int32_t>(s), cfg.ctx - cfg.rows + r});
        }
    }
    attention_plan_config pc;
    pc.n_head = cfg.n_head;
    pc.n_head_kv = cfg.n_head_kv;
    pc.page_size = page;
    pc.n_sm = n_sm;
    pc.slot_capacity = 1 << 20;
    attention_plan plan;
    attention_plan_build(rows, pc, plan);

    attention_params p;
    p.q = q;
    p.q_row_stride = cfg.n_head * D;
    p.k_pool = k_pool;
    p.v_pool = v_pool;
    p.page_table = upload(plan.page_table);
    p.segs = upload(plan.segs);
    p.work = upload(plan.work);
    p.row_slot = upload(plan.row_slot);
    p.row_n_split = upload(plan.row_n_split);
    p.partial_o = device_alloc<float>(static_cast<size_t>(std::max<int64_t>(plan.n_slots, 1) * cfg.n_head * D));
    p.partial_lse = device_alloc<float>(static_cast<size_t>(std::max<int64_t>(plan.n_slots, 1) * cfg.n_head));
    p.out = out;
    p.n_work = static_cast<int64_t>(plan.work.size());
    p.n_slots = plan.n_slots;
    p.n_rows = n_rows;
    p.n_head = cfg.n_head;
    p.n_head_kv = cfg.n_head_kv;
    p.head_dim = D;
    p.page_size = page;
    p.scale = 1.0f / std::sqrt(static_cast<float>(D));

    result res;
    res.t = time_events([&] { launch_attention(p, nullptr); }, reps);
    SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
    const double bytes = static_cast<double>(cfg.batch * cfg.ctx * cfg.n_head_kv * D) * 2.0 * 2.0;
    res.gbps = bytes / (res.t.median_ms * 1e-3) / 1e9;

    if (check) {
        // Last row of sequence 0 and first row of the last sequence, every head, in double precision.
        std::vector<bf16> hk(static_cast<size_t>(pool_elems)), hv(hk.size()), hq(static_cast<size_t>(q_elems)),
            ho(hq.size());
        SPECATTN_CUDA_CHECK(cudaMemcpy(hk.data(), k_pool, hk.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
        SPECATTN_CUDA_CHECK(cudaMemcpy(hv.data(), v_pool, hv.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
        SPECATTN_CUDA_CHECK(cudaMemcpy(hq.data(), q, hq.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
        SPECATTN_CUDA_CHECK(cudaMemcpy(ho.data(), out, ho.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
        const int64_t group = cfg.n_head / cfg.n_head_kv;
        double num = 0, den = 0;
        for (int64_t r : {cfg.rows - 1, n_rows - cfg.rows}) {
            const int64_t s = r / cfg.rows;
            const int64_t pos = cfg.ctx - cfg.rows + r % cfg.rows;
            for (int64_t h = 0; h < cfg.n_head; ++h) {
                const int64_t kvh = h / group;
                auto at = [&](const std::vector<bf16> & pool, int64_t t, int64_t d) {
                    const int64_t pg = pages[static_cast<size_t>(s)][static_cast<size_t>(t / page)];
                    return static_cast<double>(__bfloat162float(pool[static_cast<size_t>(
                        ((pg * cfg.n_head_kv + kvh) * page + t % page) * D + d)]));
                };
                std::vector<double> sc(static_cast<size_t>(pos + 1));
                double mx = -1e300;
                for (int64_t t = 0; t <= pos; ++t) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d) {
                        dot += static_cast<double>(__bfloat162float(hq[static_cast<size_t>((r * cfg.n_head + h) * D + d)])) *
                               at(hk, t, d);
                    }
                    sc[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(D));
                    mx = std::max(mx, sc[static_cast<size_t>(t)]);
                }
                double z = 0;
                for (double & x : sc) {
                    x = std::exp(x - mx);
                    z += x;
                }
                for (int64_t d = 0; d < D; ++d) {
                    double o = 0;
                    for (int64_t t = 0; t <= pos; ++t) {
                        o += sc[static_cast<size_t>(t)] / z * at(hv, t, d);
                    }
                    const double got = __bfloat162float(ho[static_cast<size_t>((r * cfg.n_head + h) * D + d)]);
                    num += (got - o) * (got - o);
                    den += o * o;
                }
            }
        }
        res.max_err = std::sqrt(num / den);
    }
    for (void * ptr : {static_cast<void *>(k_pool), static_cast<void *>(v_pool), static_cast<void *>(q),
                       static_cast<void *>(out), const_cast<void *>(static_cast<const void *>(p.page_table)),
                       const_cast<void *>(static_cast<const void *>(p.segs)),
                       const_cast<void *>(static_cast<const void *>(p.work)),
                       const_cast<void *>(static_cast<const void *>(p.row_slot)),
                       const_cast<void *>(static_cast<const void *>(p.row_n_split)), static_cast<void *>(p.partial_o),
                       static_cast<void *>(p.partial_lse)}) {
        SPECATTN_CUDA_CHECK(cudaFree(ptr));
    }
    return res;
}

double copy_bandwidth(int reps) {
    const size_t bytes = size_t{2} << 30;
    void * a = nullptr;
    void * b = nullptr;
    SPECATTN_CUDA_CHECK(cudaMalloc(&a, bytes));
    SPECATTN_CUDA_CHECK(cudaMalloc(&b, bytes));
    SPECATTN_CUDA_CHECK(cudaMemset(a, 1, bytes));
    const timing t = time_events([&] { SPECATTN_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); },
                                 reps);
    SPECATTN_CUDA_CHECK(cudaFree(a));
    SPECATTN_CUDA_CHECK(cudaFree(b));
    return 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e-3) / 1e9; // read + write
}

} // namespace

int main(int argc, char ** argv) {
    int reps = 20;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0) {
            reps = std::max(3, std::atoi(argv[i + 1]));
        }
    }
    try {
        int n_dev = 0;
        if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
            std::fprintf(stderr, "kernel_bench: no CUDA device\n");
            return 1;
        }
        cudaDeviceProp prop{};
        SPECATTN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        const double copy_gbps = copy_bandwidth(reps);
        std::printf("device %s, %d SMs, L2 %d MB; device-to-device copy %.0f GB/s (read + write)\n\n", prop.name,
                    prop.multiProcessorCount, prop.l2CacheSize >> 20, copy_gbps);

        const std::vector<config> configs = {
            {"check: decode, B=2, S=4099", 2, 4099, 1, 32, 8, 128},
            {"decode 8B, B=1, S=32K", 1, 32768, 1, 32, 8, 128},
            {"decode 8B, B=8, S=32K", 8, 32768, 1, 32, 8, 128},
            {"verify g=6, B=8, S=32K", 8, 32768, 7, 32, 8, 128},
            {"decode 8B, B=1, S=128K", 1, 131072, 1, 32, 8, 128},
            {"verify g=6, B=1, S=128K", 1, 131072, 7, 32, 8, 128},
            {"decode 8B, B=3, S=128K", 3, 131072, 1, 32, 8, 128},
            {"verify g=6, B=3, S=128K", 3, 131072, 7, 32, 8, 128},
            {"decode 8B, B=32, S=8K", 32, 8192, 1, 32, 8, 128},
        };
        std::printf("| attention | KV MB | median ms | std ms | GB/s | %% of copy | check (rel. L2 err) |\n");
        std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
        for (size_t i = 0; i < configs.size(); ++i) {
            const config & c = configs[i];
            const result r = run(c, reps, prop.multiProcessorCount, i == 0);
            const double mb = static_cast<double>(c.batch * c.ctx * c.n_head_kv * c.head_dim) * 4.0 / 1e6;
            std::printf("| %s | %.0f | %.4f | %.4f | %.0f | %.1f%% | %s |\n", c.name, mb, r.t.median_ms, r.t.std_ms,
                        r.gbps, 100.0 * r.gbps / copy_gbps, i == 0 ? string_format("%.2e", r.max_err).c_str() : "-");
            std::fflush(stdout);
        }
        std::printf("\nrepro: build/bench/kernel_bench --reps %d\n", reps);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "kernel_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
