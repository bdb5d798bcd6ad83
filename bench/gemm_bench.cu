// Benchmark of the decode-time weight GEMMs at Llama-3.1-8B shapes: the skinny GEMM (kernels/skinny_gemm.cuh)
// against cuBLASLt's heuristic choice per m and cuBLASLt's batch-invariant algorithm (one per (n, k), timed at load:
// what decoding used before the skinny GEMM), m = 1..64 rows; then the GEMV (kernels/gemv.cuh) at m = 1..8 against
// cuBLASLt's tuned invariant algorithm; all against the card's measured copy bandwidth.
//
//     gemm_bench [--reps N] [--no-sweep] [--gemv-only]        (on the GPU machine)
//
// Bytes: W + x + y (each once). GB/s = bytes / median time; "% copy" is that over a device-to-device cudaMemcpy
// (read + write; device_info.h). Timing: a CUDA graph of launches over rotating copies of W (>= 512 MB together,
// 10x the L2, so each launch streams W from HBM), replayed reps times after warm-up; per-launch time = median
// replay / launches. Data pseudo-random, never zeros. Each shape is first checked against cuBLASLt (rel. L2).
// Sweeps after the table: the K split (the policy's choice marked *) and the pipeline depth.
//
// GEMV section (m = 1, 2, 4, 6, 8): its rows are first checked bit for bit against an 8-row launch, and against
// cuBLASLt. Timings: "read floor", a kernel that only streams W; cuBLASLt's algorithm as the engine tunes it with
// SPECATTN_GEMV=0 (at decode rows 1, and 8 for m = 8) and the GEMV, each back to back launched plainly (each pays
// its launch, ramp and tail); "chain", as in the engine's decode step: the small kernel that precedes the
// projection there (RMSNorm, or SwiGLU before the down projection), then the projection, the small kernel and the
// GEMV as programmatic dependents when SPECATTN_PDL allows (cuBLASLt launches plainly). A chain's "eff. % copy"
// divides the projection's bytes by (pair time - the small kernel's own time in a chain of its own).
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
#include <cstdlib>
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

// ---- GEMV section ----

// The read floor: W streamed with 16-byte evict-first loads, 8 in flight per thread, 8 CTAs of 256 per SM, and
// nothing else (an XOR kept alive by a store that never happens). What any kernel reading W once can reach.
__global__ void __launch_bounds__(256) read_floor(const uint4 * w, int64_t n16, uint32_t * sink) {
    constexpr int unroll = 8;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    uint32_t acc = 0;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n16; i += unroll * stride) {
        uint4 v[unroll];
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            v[u] = i + u * stride < n16 ? __ldcs(w + i + u * stride) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
        }
    }
    if (acc == 0x9e3779b9u) {
        sink[0] = acc;
    }
}

// One Llama-8B projection, set up for the GEMV timings: rotating W copies, x (the GEMV's input, written by the
// small kernel), y, and the small kernel's inputs.
struct gemv_case {
    shape sh;
    size_t w_elems = 0;
    int64_t n_copies = 1;
    bf16 * w = nullptr;        // [n_copies][n, k]
    bf16 * x = nullptr;        // [8, k]
    void * y = nullptr;        // [8, n] (fp32 room)
    float * h = nullptr;       // [8, k] RMSNorm input
    float * norm_w = nullptr;  // [k]
    bf16 * gate_up = nullptr;  // [8, 2k] SwiGLU input (down projection)
    bool after_swiglu = false; // the engine runs SwiGLU before it, RMSNorm before the others
    const bf16 * wi(int64_t i) const { return w + static_cast<size_t>(i % n_copies) * w_elems; }
    gemm_out out() const { return sh.f32 ? gemm_out::gemm_out_f32 : gemm_out::gemm_out_bf16; }
};

struct gemv_bench {
    int n_sm = 0;
    int reps = 20;
    double copy_gbs = 0;
    cudaStream_t stream = nullptr;
    uint32_t * sink = nullptr;

    gemv_params params(const gemv_case & c, int64_t i, int64_t m) const {
        gemv_params p;
        p.x = c.x;
        p.w = c.wi(i);
        p.y = c.y;
        p.m = m;
        p.n = c.sh.n;
        p.k = c.sh.k;
        p.out_f32 = c.sh.f32;
        return p;
    }
    // The kernel the engine runs before the projection: SwiGLU before down, RMSNorm before the others.
    void small(const gemv_case & c, int64_t m, cudaStream_t s) const {
        if (c.after_swiglu) {
            swiglu_params q;
            q.gate_up = c.gate_up;
            q.out = c.x;
            q.n_rows = m;
            q.n_ff = c.sh.k;
            launch_swiglu(q, s);
        } else {
            rmsnorm_params q;
            q.x = c.h;
            q.weight = c.norm_w;
            q.out = c.x;
            q.n_rows = m;
            q.n = c.sh.k;
            launch_rmsnorm(q, s);
        }
    }
    double w_pct(const gemv_case & c, int64_t m, double t_ms) const { // % of copy of W + x + y over t_ms
        const double bytes = static_cast<double>(c.w_elems * 2) + static_cast<double>(m * c.sh.k * 2) +
                             static_cast<double>(m * c.sh.n * (c.sh.f32 ? 4 : 2));
        return 100.0 * bytes / (t_ms * 1e-3) / 1e9 / copy_gbs;
    }
    double floor(const gemv_case & c) const {
        return time_graph(
            [&](int64_t i, cudaStream_t s) {
                read_floor<<<8 * n_sm, 256, 0, s>>>(reinterpret_cast<const uint4 *>(c.wi(i)),
                                                    static_cast<int64_t>(c.w_elems / 8), sink);
            },
            c.n_copies, reps, stream);
    }
    double iso(const gemv_case & c, int64_t m) const {
        return time_graph([&](int64_t i, cudaStream_t s) { launch_gemv(params(c, i, m), n_sm, s, false); }, c.n_copies,
                          reps, stream);
    }
    double chain(const gemv_case & c, int64_t m) const {
        return time_graph(
            [&](int64_t i, cudaStream_t s) {
                small(c, m, s);
                launch_gemv(params(c, i, m), n_sm, s);
            },
            c.n_copies, reps, stream);
    }
    double small_alone(const gemv_case & c, int64_t m) const {
        return time_graph([&](int64_t, cudaStream_t s) { small(c, m, s); }, c.n_copies, reps, stream);
    }
    double iso_cublas(const gemv_case & c, cublaslt_gemm & g, int64_t m) const {
        return time_graph(
            [&](int64_t i, cudaStream_t s) { g.run(c.x, c.wi(i), c.y, c.out(), m, c.sh.n, c.sh.k, s, true); },
            c.n_copies, reps, stream);
    }
    double chain_cublas(const gemv_case & c, cublaslt_gemm & g, int64_t m) const {
        return time_graph(
            [&](int64_t i, cudaStream_t s) {
                small(c, m, s);
                g.run(c.x, c.wi(i), c.y, c.out(), m, c.sh.n, c.sh.k, s, true);
            },
            c.n_copies, reps, stream);
    }
};

// Rows of 1-, 6- and 8-row launches equal the 8-row launch's bit for bit, and the GEMV is within bf16 rounding of
// cuBLASLt. Returns false on a mismatch (printed).
bool check_gemv(const gemv_bench & b, const gemv_case & c, cublaslt_gemm & cub) {
    const size_t row_bytes = static_cast<size_t>(c.sh.n) * (c.sh.f32 ? 4 : 2);
    fill_random<<<64, 256>>>(c.x, 8 * c.sh.k, 11, 1.0f);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
    cub.run(c.x, c.w, c.y, c.out(), 8, c.sh.n, c.sh.k, b.stream, false);
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(b.stream));
    const std::vector<float> r = to_host(c.y, 8 * c.sh.n, c.sh.f32);
    std::vector<uint8_t> ref;
    bool same = true;
    for (int64_t m : {8, 6, 1}) {
        SPECATTN_CUDA_CHECK(cudaMemset(c.y, 0xff, 8 * row_bytes));
        launch_gemv(b.params(c, 0, m), b.n_sm, b.stream, false);
        SPECATTN_CUDA_CHECK(cudaStreamSynchronize(b.stream));
        std::vector<uint8_t> got(static_cast<size_t>(m) * row_bytes);
        SPECATTN_CUDA_CHECK(cudaMemcpy(got.data(), c.y, got.size(), cudaMemcpyDeviceToHost));
        if (ref.empty()) {
            ref = got;
        }
        same = same && std::memcmp(got.data(), ref.data(), got.size()) == 0;
    }
    SPECATTN_CUDA_CHECK(cudaMemcpy(c.y, ref.data(), ref.size(), cudaMemcpyHostToDevice));
    const std::vector<float> a = to_host(c.y, 8 * c.sh.n, c.sh.f32);
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (static_cast<double>(a[i]) - r[i]) * (static_cast<double>(a[i]) - r[i]);
        den += static_cast<double>(r[i]) * r[i];
    }
    const double rel = std::sqrt(num / den);
    const bool close = std::isfinite(rel) && rel < 1e-2;
    std::printf("# %s: GEMV rows of 1, 6, 8-row launches %s; vs cuBLASLt at m 8: rel. L2 %.2e%s\n", c.sh.name,
                same ? "bit-identical" : "DIFFER  <-- MISMATCH", rel, close ? "" : "  <-- MISMATCH");
    return same && close;
}

int gemv_section(const std::vector<shape> & shapes, int n_sm, int reps, double copy_gbs, cudaStream_t stream) {
    gemv_bench b;
    b.n_sm = n_sm;
    b.reps = reps;
    b.copy_gbs = copy_gbs;
    b.stream = stream;
    SPECATTN_CUDA_CHECK(cudaMalloc(&b.sink, 16));
    // cuBLASLt alone as the engine tunes it with SPECATTN_GEMV=0, at decode_rows 1 (batch 1) and 8 (batch 8).
    cublaslt_gemm cub1(size_t{32} << 20, false);
    cublaslt_gemm cub8(size_t{32} << 20, false);
    cub1.never_gemv();
    cub8.never_gemv();
    bool ok = true;
    std::printf(
        "\n| shape | m | read floor us | %% | cuBLASLt tuned us | %% copy | GEMV us | %% copy | chain: small kernel "
        "us | + cuBLASLt us | + GEMV us | eff. %% copy cuBLASLt / GEMV |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const shape & sh : shapes) {
        gemv_case c;
        c.sh = sh;
        c.after_swiglu = sh.k > 8192;
        c.w_elems = static_cast<size_t>(sh.n * sh.k);
        c.n_copies = std::max<int64_t>(1, (int64_t{512} << 20) / static_cast<int64_t>(c.w_elems * 2) + 1);
        SPECATTN_CUDA_CHECK(cudaMalloc(&c.w, c.w_elems * 2 * static_cast<size_t>(c.n_copies)));
        SPECATTN_CUDA_CHECK(cudaMalloc(&c.x, static_cast<size_t>(8 * sh.k) * 2));
        SPECATTN_CUDA_CHECK(cudaMalloc(&c.y, static_cast<size_t>(8 * sh.n) * 4));
        SPECATTN_CUDA_CHECK(cudaMalloc(&c.h, static_cast<size_t>(8 * sh.k) * 4));
        SPECATTN_CUDA_CHECK(cudaMalloc(&c.norm_w, static_cast<size_t>(sh.k) * 4));
        SPECATTN_CUDA_CHECK(cudaMalloc(&c.gate_up, static_cast<size_t>(16 * sh.k) * 2));
        fill_random<<<4096, 256>>>(c.w, static_cast<int64_t>(c.w_elems) * c.n_copies, 7, 0.05f);
        fill_random<<<256, 256>>>(c.gate_up, 16 * sh.k, 13, 2.0f);
        SPECATTN_CUDA_CHECK(cudaGetLastError());
        launch_fill_f32(c.h, 8 * sh.k, 0.5f, stream);
        launch_fill_f32(c.norm_w, sh.k, 1.0f, stream);
        SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
        cub1.tune_invariant(c.out(), sh.n, sh.k, c.w, stream, 1);
        cub8.tune_invariant(c.out(), sh.n, sh.k, c.w, stream, 8);
        ok = check_gemv(b, c, cub1) && ok;
        const double t_floor = b.floor(c);
        for (int64_t m : {1, 2, 4, 6, 8}) {
            cublaslt_gemm & cub = m == 8 ? cub8 : cub1;
            const double t_cub = b.iso_cublas(c, cub, m);
            const double t_gemv = b.iso(c, m);
            const double t_small = b.small_alone(c, m);
            const double c_cub = b.chain_cublas(c, cub, m);
            const double c_gemv = b.chain(c, m);
            std::printf(
                "| %s | %lld | %.1f | %.0f%% | %.1f | %.0f%% | %.1f | %.0f%% | %.1f | %.1f | %.1f | %.0f / %.0f%% |\n",
                sh.name, static_cast<long long>(m), t_floor * 1e3, b.w_pct(c, m, t_floor), t_cub * 1e3,
                b.w_pct(c, m, t_cub), t_gemv * 1e3, b.w_pct(c, m, t_gemv), t_small * 1e3, c_cub * 1e3, c_gemv * 1e3,
                b.w_pct(c, m, c_cub - t_small), b.w_pct(c, m, c_gemv - t_small));
            std::fflush(stdout);
        }
        cudaFree(c.w);
        cudaFree(c.x);
        cudaFree(c.y);
        cudaFree(c.h);
        cudaFree(c.norm_w);
        cudaFree(c.gate_up);
    }
    cudaFree(b.sink);
    return ok ? 0 : 1;
}

} // namespace

int main(int argc, char ** argv) {
    int reps = 20;
    bool sweep = true;
    bool gemv_only = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(3, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--no-sweep") == 0) {
            sweep = false;
        } else if (std::strcmp(argv[i], "--gemv-only") == 0) {
            gemv_only = true;
        } else {
            std::fprintf(stderr, "usage: gemm_bench [--reps N] [--no-sweep] [--gemv-only]\n");
            return 2;
        }
    }
    int rc = 0;
    try {
        const double copy_gbs = cuda_copy_bandwidth_gbs();
        const int n_sm = cuda_sm_count();
        std::printf("# %s, %d SMs, copy %.0f GB/s; repro: gemm_bench --reps %d\n", cuda_device_summary().c_str(), n_sm,
                    copy_gbs, reps);
        cudaStream_t stream;
        SPECATTN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        cublaslt_gemm skinny(size_t{32} << 20, true); // invariant calls -> skinny GEMM
        cublaslt_gemm old(size_t{32} << 20, false);   // invariant calls -> cuBLASLt's tuned invariant algorithm
        skinny.never_gemv();
        old.never_gemv();
        const std::vector<shape> shapes = {{"qkv", 6144, 4096, false},
                                           {"o", 4096, 4096, false},
                                           {"gate_up", 28672, 4096, false},
                                           {"down", 4096, 14336, false},
                                           {"lm_head", 128256, 4096, true}};
        const std::vector<int64_t> ms = {1, 4, 8, 16, 32, 64};
        constexpr int64_t max_m = 64;
        std::string sweep_lines;
        if (!gemv_only) {
            std::printf("| shape | n x k | m | splits | skinny us | GB/s | %% copy | cublasLt heur. us | %% copy | "
                        "cublasLt inv. us | %% copy | x inv. |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        }
        for (const shape & sh : shapes) {
            if (gemv_only) {
                break;
            }
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
                const double t_new =
                    time_graph([&](int64_t i, cudaStream_t s) { skinny.run(x, wi(i), y, out, m, sh.n, sh.k, s, true); },
                               n_copies, reps, stream);
                const double t_heur =
                    time_graph([&](int64_t i, cudaStream_t s) { old.run(x, wi(i), y, out, m, sh.n, sh.k, s, false); },
                               n_copies, reps, stream);
                const double t_inv =
                    time_graph([&](int64_t i, cudaStream_t s) { old.run(x, wi(i), y, out, m, sh.n, sh.k, s, true); },
                               n_copies, reps, stream);
                std::printf(
                    "| %s | %lldx%lld | %lld | %d | %.1f | %.0f | %.0f%% | %.1f | %.0f%% | %.1f | %.0f%% | %.2f |\n",
                    sh.name, static_cast<long long>(sh.n), static_cast<long long>(sh.k), static_cast<long long>(m),
                    splits, t_new * 1e3, gbs(t_new), 100 * gbs(t_new) / copy_gbs, t_heur * 1e3,
                    100 * gbs(t_heur) / copy_gbs, t_inv * 1e3, 100 * gbs(t_inv) / copy_gbs, t_inv / t_new);
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
                    const double t = time_graph(
                        [&](int64_t i, cudaStream_t st) {
                            skinny_gemm_params q = p;
                            q.w = wi(i);
                            launch_skinny_gemm(q, st);
                        },
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
        rc = gemv_section(shapes, n_sm, reps, copy_gbs, stream);
        SPECATTN_CUDA_CHECK(cudaStreamDestroy(stream));
    } catch (const std::exception & e) {
        std::fprintf(stderr, "gemm_bench: %s\n", e.what());
        return 1;
    }
    return rc;
}
