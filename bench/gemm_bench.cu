// Benchmark of the decode-time weight GEMMs at Llama-3.1-8B shapes: the skinny GEMM (kernels/skinny_gemm.cuh)
// against cuBLASLt's heuristic choice per m and cuBLASLt's batch-invariant algorithm (one per (n, k), timed at load:
// what decoding used before the skinny GEMM), m = 1..64 rows, against the card's measured copy bandwidth.
//
//     gemm_bench [--reps N] [--no-sweep]        (on the GPU machine)
//
// Bytes: W + x + y (each once). GB/s = bytes / median time; "% copy" is that over a device-to-device cudaMemcpy
// (read + write; device_info.h). Timing: a CUDA graph of launches over rotating copies of W (>= 512 MB together,
// 10x the L2, so each launch streams W from HBM), replayed reps times after warm-up; per-launch time = median
// replay / launches. Data pseudo-random, never zeros. Each shape is first checked against cuBLASLt (rel. L2).
// Sweeps after the table: the K split (the policy's choice marked *) and the pipeline depth.
#include "bench_stats.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/gemm.h"
#include "core/check.h"
#include "kernels/skinny_gemm.cuh"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace specattn;

namespace {

__global__ void fill_random(bf16 * x, int64_t n, uint32_t seed, float scale) {
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed ^ static_cast<uint32_t>(i >> 32) * 40503u;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        x[i] = __float2bfloat16(scale * (static_cast<float>(h & 0xffffu) / 32768.0f - 1.0f));
    }
}

struct shape {
    const char * name;
    int64_t n, k;
    bool f32;
};

// Median per-launch ms of a graph of n_launch calls of launch(i), replayed reps times.
double time_graph(const std::function<void(int64_t, cudaStream_t)> & launch, int64_t n_launch, int reps,
                  cudaStream_t stream) {
    for (int64_t i = 0; i < n_launch; ++i) { // one-time set-up (attributes, cuBLASLt plans) outside the capture
        launch(i, stream);
    }
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    SPECATTN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int64_t i = 0; i < n_launch; ++i) {
        launch(i, stream);
    }
    SPECATTN_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    SPECATTN_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    cudaEvent_t a, b;
    SPECATTN_CUDA_CHECK(cudaEventCreate(&a));
    SPECATTN_CUDA_CHECK(cudaEventCreate(&b));
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 3 || std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50); ++i) {
        SPECATTN_CUDA_CHECK(cudaGraphLaunch(exec, stream));
        SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
        SPECATTN_CUDA_CHECK(cudaEventRecord(a, stream));
        SPECATTN_CUDA_CHECK(cudaGraphLaunch(exec, stream));
        SPECATTN_CUDA_CHECK(cudaEventRecord(b, stream));
        SPECATTN_CUDA_CHECK(cudaEventSynchronize(b));
        float t = 0;
        SPECATTN_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    return median_and_std(ms).first / static_cast<double>(n_launch);
}

// A skinny GEMM variant of pipeline depth STAGES (the library uses 3 up to 16 rows, 2 above), any rows <= 64.
template <int STAGES, bool F32> void launch_stages(const skinny_gemm_params & p, cudaStream_t s) {
    if (p.m <= 8) {
        skinny_gemm_launch<1, STAGES, F32>(p, s);
    } else if (p.m <= 16) {
        skinny_gemm_launch<2, STAGES, F32>(p, s);
    } else if (p.m <= 32) {
        skinny_gemm_launch<4, STAGES, F32>(p, s);
    } else {
        skinny_gemm_launch<8, STAGES, F32>(p, s);
    }
}
template <int STAGES> void launch_variant(const skinny_gemm_params & p, cudaStream_t s) {
    if (p.out_f32) {
        launch_stages<STAGES, true>(p, s);
    } else {
        launch_stages<STAGES, false>(p, s);
    }
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

std::vector<float> to_host(const void * y, int64_t count, bool f32) {
    std::vector<float> h(static_cast<size_t>(count));
    if (f32) {
        SPECATTN_CUDA_CHECK(cudaMemcpy(h.data(), y, h.size() * 4, cudaMemcpyDeviceToHost));
    } else {
        std::vector<bf16> b(h.size());
        SPECATTN_CUDA_CHECK(cudaMemcpy(b.data(), y, b.size() * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < h.size(); ++i) {
            h[i] = __bfloat162float(b[i]);
        }
    }
    return h;
}

} // namespace

int main(int argc, char ** argv) {
    int reps = 20;
    bool sweep = true;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(3, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--no-sweep") == 0) {
            sweep = false;
        } else {
            std::fprintf(stderr, "usage: gemm_bench [--reps N] [--no-sweep]\n");
            return 2;
        }
    }
    try {
        const double copy_gbs = cuda_copy_bandwidth_gbs();
        int dev = 0;
        int n_sm = 0;
        SPECATTN_CUDA_CHECK(cudaGetDevice(&dev));
        SPECATTN_CUDA_CHECK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
        std::printf("# %s, %d SMs, copy %.0f GB/s; repro: gemm_bench --reps %d\n", cuda_device_summary().c_str(), n_sm,
                    copy_gbs, reps);
        cudaStream_t stream;
        SPECATTN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        cublaslt_gemm skinny(size_t{32} << 20, true); // invariant calls -> skinny GEMM
        cublaslt_gemm old(size_t{32} << 20, false); // invariant calls -> cuBLASLt's tuned invariant algorithm
        const std::vector<shape> shapes = {{"qkv", 6144, 4096, false},
                                           {"o", 4096, 4096, false},
                                           {"gate_up", 28672, 4096, false},
                                           {"down", 4096, 14336, false},
                                           {"lm_head", 128256, 4096, true}};
        const std::vector<int64_t> ms = {1, 4, 8, 16, 32, 64};
        constexpr int64_t max_m = 64;
        std::string sweep_lines;
        std::printf("| shape | n x k | m | splits | skinny us | GB/s | %% copy | cublasLt heur. us | %% copy | "
                    "cublasLt inv. us | %% copy | x inv. |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (const shape & sh : shapes) {
            const size_t w_elems = static_cast<size_t>(sh.n * sh.k);
            const int64_t n_copies = std::max<int64_t>(1, (int64_t{512} << 20) / static_cast<int64_t>(w_elems * 2) + 1);
            bf16 * w = nullptr;
            bf16 * x = nullptr;
            void * y = nullptr;
            void * y_ref = nullptr;
            SPECATTN_CUDA_CHECK(cudaMalloc(&w, w_elems * 2 * static_cast<size_t>(n_copies)));
            SPECATTN_CUDA_CHECK(cudaMalloc(&x, static_cast<size_t>(max_m * sh.k) * 2));
            SPECATTN_CUDA_CHECK(cudaMalloc(&y, static_cast<size_t>(max_m * sh.n) * 4));
            SPECATTN_CUDA_CHECK(cudaMalloc(&y_ref, static_cast<size_t>(max_m * sh.n) * 4));
            fill_random<<<4096, 256>>>(w, static_cast<int64_t>(w_elems) * n_copies, 7, 0.05f);
            fill_random<<<256, 256>>>(x, max_m * sh.k, 9, 1.0f);
            SPECATTN_CUDA_CHECK(cudaGetLastError());
            const gemm_out out = sh.f32 ? gemm_out::gemm_out_f32 : gemm_out::gemm_out_bf16;
            old.tune_invariant(out, sh.n, sh.k, w, stream);
            const int32_t splits = skinny.skinny_splits(sh.n, sh.k);
            // Check: m = 37 (a padded tile) against cuBLASLt's heuristic.
            skinny.run(x, w, y, out, 37, sh.n, sh.k, stream, true);
            old.run(x, w, y_ref, out, 37, sh.n, sh.k, stream, false);
            SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
            const std::vector<float> a = to_host(y, 37 * sh.n, sh.f32);
            const std::vector<float> b = to_host(y_ref, 37 * sh.n, sh.f32);
            double num = 0, den = 0;
            for (size_t i = 0; i < a.size(); ++i) {
                num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
                den += static_cast<double>(b[i]) * b[i];
            }
            std::printf("# %s: skinny vs cuBLASLt at m 37: rel. L2 %.2e%s\n", sh.name, std::sqrt(num / den),
                        std::isfinite(num) && std::sqrt(num / den) < 1e-2 ? "" : "  <-- MISMATCH");
            const size_t y_elem = sh.f32 ? 4 : 2;
            for (int64_t m : ms) {
                const double bytes = static_cast<double>(w_elems * 2) + static_cast<double>(m * sh.k * 2) +
                                     static_cast<double>(static_cast<size_t>(m * sh.n) * y_elem);
                const auto gbs = [&](double t_ms) { return bytes / (t_ms * 1e-3) / 1e9; };
                const auto wi = [&](int64_t i) { return w + static_cast<size_t>(i % n_copies) * w_elems; };
                const double t_new = time_graph([&](int64_t i, cudaStream_t s) { skinny.run(x, wi(i), y, out, m, sh.n, sh.k, s, true); },
                                                n_copies, reps, stream);
                const double t_heur = time_graph([&](int64_t i, cudaStream_t s) { old.run(x, wi(i), y, out, m, sh.n, sh.k, s, false); },
                                                 n_copies, reps, stream);
                const double t_inv = time_graph([&](int64_t i, cudaStream_t s) { old.run(x, wi(i), y, out, m, sh.n, sh.k, s, true); },
                                                n_copies, reps, stream);
                std::printf("| %s | %lldx%lld | %lld | %d | %.1f | %.0f | %.0f%% | %.1f | %.0f%% | %.1f | %.0f%% | %.2f |\n",
                            sh.name, static_cast<long long>(sh.n), static_cast<long long>(sh.k),
                            static_cast<long long>(m), splits, t_new * 1e3, gbs(t_new), 100 * gbs(t_new) / copy_gbs,
                            t_heur * 1e3, 100 * gbs(t_heur) / copy_gbs, t_inv * 1e3, 100 * gbs(t_inv) / copy_gbs,
                            t_inv / t_new);
                std::fflush(stdout);
                if (!sweep || (m != 1 && m != 16 && m != 64)) {
                    continue;
                }
                // Sweeps through the kernel directly, own workspace.
                char line[512];
                skinny_gemm_params p;
                p.x = x;
                p.y = y;
                p.m = m;
                p.n = sh.n;
                p.k = sh.k;
                p.out_f32 = sh.f32;
                const int32_t max_split = static_cast<int32_t>(std::min<int64_t>(sh.n > 20000 ? 2 : 16, sh.k / 128));
                device_buffer partial(skinny_gemm_partial_bytes(sh.n, max_split) + 16);
                device_buffer counters(static_cast<size_t>(skinny_gemm_counters(sh.n)) * 4);
                SPECATTN_CUDA_CHECK(cudaMemset(counters.as<void>(), 0, counters.bytes()));
                p.partial = partial.as<float>();
                p.counters = counters.as<int32_t>();
                std::string l = std::string("# sweep ") + sh.name + " m " + std::to_string(m) + " splits:";
                for (int32_t s : {1, 2, 3, 4, 6, 8, 12, 16}) {
                    if (s > max_split) {
                        continue;
                    }
                    p.splits = s;
                    const double t = time_graph([&](int64_t i, cudaStream_t st) { skinny_gemm_params q = p; q.w = wi(i); launch_skinny_gemm(q, st); },
                                                n_copies, reps, stream);
                    std::snprintf(line, sizeof line, " %d%s=%.1fus(%.0f%%)", s, s == splits ? "*" : "", t * 1e3,
                                  100 * gbs(t) / copy_gbs);
                    l += line;
                }
                p.splits = splits;
                l += "  stages:";
                for (int st : {2, 3, 4}) {
                    const auto fn = [&](int64_t i, cudaStream_t s) {
                        skinny_gemm_params q = p;
                        q.w = wi(i);
                        if (st == 2) {
                            launch_variant<2>(q, s);
                        } else if (st == 3) {
                            launch_variant<3>(q, s);
                        } else {
                            launch_variant<4>(q, s);
                        }
                    };
                    const double t = time_graph(fn, n_copies, reps, stream);
                    std::snprintf(line, sizeof line, " %d=%.1fus(%.0f%%)", st, t * 1e3, 100 * gbs(t) / copy_gbs);
                    l += line;
                }
                sweep_lines += l + "\n";
            }
            cudaFree(w);
            cudaFree(x);
            cudaFree(y);
            cudaFree(y_ref);
        }
        std::printf("%s", sweep_lines.c_str());
        SPECATTN_CUDA_CHECK(cudaStreamDestroy(stream));
    } catch (const std::exception & e) {
        std::fprintf(stderr, "gemm_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
