// cuBLASLt GEMM (see gemm.h).
//
// Row-major y[m, n] = x[m, k] · W[n, k]ᵀ is, in cuBLAS's column-major terms, the "TN" product
//     Y (n × m, ld n) = op(A)(n × k) · B (k × m),  A = W seen as k × n (ld k) transposed,  B = x seen as k × m (ld k),
// the layout cuBLASLt's tensor-core kernels like best. No bias or activation epilogue: the fused kernels around
// the GEMMs (qkv_prep, swiglu, rmsnorm's residual add) do that work.
#include "backend/cuda/gemm.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/gemm_choice_cache.h"
#include "core/check.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace specattn {

namespace {

// What tuning chose for (device, out, n, k, decode rows, GEMV allowed), for the whole process. Timings are noisy
// and close candidates swap places from one tuning to the next, so two backends of one process (an engine and its
// reference in a test, the TP ranks' replicas, bench's engines) would otherwise compute the same rows with other
// kernels and give other bits; the first tuning of a shape decides for all of them.
using tuned_choice = cublaslt_gemm::invariant_choice;
using tuned_key = std::tuple<int, int32_t, int64_t, int64_t, int64_t, bool>;

std::mutex & tuned_mutex() {
    static std::mutex m;
    return m;
}

// The choice file's key of a tuning (gemm_choice_cache.h): the GPU's name and cuBLASLt's version (an algorithm's
// bytes mean nothing elsewhere), and the rest of tuned_key.
std::string cache_key(int device, gemm_out out, int64_t n, int64_t k, int64_t decode_rows, bool gemv) {
    cudaDeviceProp prop{};
    SPECATTN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    char buf[384];
    std::snprintf(buf, sizeof buf, "%s|cublasLt %zu|out %d|n %lld|k %lld|rows %lld|gemv %d", prop.name,
                  cublasLtGetVersion(), static_cast<int>(out), static_cast<long long>(n), static_cast<long long>(k),
                  static_cast<long long>(decode_rows), gemv ? 1 : 0);
    return buf;
}

// Each problem with the choice file is printed once per process.
void warn_cache_once(const std::string & problem) {
    static std::mutex m;
    static std::string last;
    std::lock_guard<std::mutex> lock(m);
    if (!problem.empty() && problem != last) {
        std::fprintf(stderr, "warning: %s\n", problem.c_str());
        last = problem;
    }
}

std::map<tuned_key, tuned_choice> & tuned_choices() {
    static std::map<tuned_key, tuned_choice> choices;
    return choices;
}

} // namespace

cublaslt_gemm::cublaslt_gemm(size_t workspace_bytes, bool skinny) : workspace_bytes_(workspace_bytes), skinny_(skinny) {
    // SPECATTN_SKINNY_GEMM=1 / =0: the engine's GEMMs with or without the skinny kernel, same binary (A/B runs).
    const char * env = std::getenv("SPECATTN_SKINNY_GEMM");
    if (env != nullptr && (std::strcmp(env, "0") == 0 || std::strcmp(env, "1") == 0)) {
        skinny_ = env[0] == '1';
    }
    // SPECATTN_GEMV=0: tuning never picks the GEMV (A/B runs against cuBLASLt alone); =2: always, where it can run
    // (A/B runs of the GEMV in the engine whatever the timings say).
    const char * gemv_env = std::getenv("SPECATTN_GEMV");
    gemv_ = gemv_env == nullptr || std::strcmp(gemv_env, "0") != 0;
    gemv_forced_ = gemv_env != nullptr && std::strcmp(gemv_env, "2") == 0;
    SPECATTN_CUDA_CHECK(cublasLtCreate(&handle_));
    SPECATTN_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
    n_sm_ = cuda_sm_count();
    n_counters_ = 16384; // split row blocks of n up to 2M features
    void * counters = nullptr;
    SPECATTN_CUDA_CHECK(cudaMalloc(&counters, static_cast<size_t>(n_counters_) * sizeof(int32_t)));
    counters_ = static_cast<int32_t *>(counters);
    SPECATTN_CUDA_CHECK(cudaMemset(counters_, 0, static_cast<size_t>(n_counters_) * sizeof(int32_t)));
}

int32_t cublaslt_gemm::skinny_splits(int64_t n, int64_t k) const {
    if (!skinny_ || !skinny_gemm_supported(n, k)) {
        return 0;
    }
    const int32_t s = skinny_gemm_splits(n, k, n_sm_, workspace_bytes_);
    return s == 1 || skinny_gemm_counters(n) <= n_counters_ ? s : 0;
}

cublaslt_gemm::~cublaslt_gemm() {
    // Destructors do not throw: errors here are ignored (the context may already be gone at exit).
    for (auto & [key, p] : plans_) {
        release(p);
    }
    cudaFree(counters_);
    cudaFree(workspace_);
    cublasLtDestroy(handle_);
}

void cublaslt_gemm::release(plan & p) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
}

void cublaslt_gemm::make_layouts(plan & p, gemm_out out, int64_t m, int64_t n, int64_t k) {
    cudaDataType_t y_type = CUDA_R_32F;
    switch (out) {
    case gemm_out::gemm_out_bf16:
        y_type = CUDA_R_16BF;
        break;
    case gemm_out::gemm_out_f32:
        y_type = CUDA_R_32F;
        break;
    }
    SPECATTN_CUDA_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans = CUBLAS_OP_T;
    SPECATTN_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans));
    SPECATTN_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k));
    SPECATTN_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, static_cast<uint64_t>(k), static_cast<uint64_t>(m), k));
    SPECATTN_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&p.c, y_type, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n));
}

std::vector<cublasLtMatmulAlgo_t> cublaslt_gemm::heuristics(const plan & p, int count) {
    cublasLtMatmulPreference_t pref = nullptr;
    SPECATTN_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    SPECATTN_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &workspace_bytes_, sizeof workspace_bytes_));
    std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
    int n_result = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref, count, results.data(), &n_result);
    cublasLtMatmulPreferenceDestroy(pref);
    SPECATTN_CUDA_CHECK(st);
    std::vector<cublasLtMatmulAlgo_t> algos;
    for (int i = 0; i < n_result; ++i) {
        if (results[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS) {
            algos.push_back(results[static_cast<size_t>(i)].algo);
        }
    }
    return algos;
}

cublasLtMatmulAlgo_t cublaslt_gemm::heuristic(const plan & p, int64_t m, int64_t n, int64_t k) {
    const std::vector<cublasLtMatmulAlgo_t> algos = heuristics(p, 1);
    SPECATTN_CHECK(!algos.empty(), "cuBLASLt has no algorithm for a bf16 GEMM of m %lld, n %lld, k %lld",
                   static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k));
    return algos.front();
}

const cublaslt_gemm::plan & cublaslt_gemm::get_plan(gemm_out out, int64_t m, int64_t n, int64_t k, bool invariant) {
    const auto key = std::make_tuple(static_cast<int32_t>(out), m, n, k, invariant);
    auto it = plans_.find(key);
    if (it != plans_.end()) {
        return it->second;
    }
    plan p;
    make_layouts(p, out, m, n, k);
    if (!invariant) {
        p.algo = heuristic(p, m, n, k);
        return plans_.emplace(key, p).first->second;
    }
    // The shape's one algorithm: the heuristic's choice at the reference m, checked to run at this m.
    const auto akey = std::make_tuple(static_cast<int32_t>(out), n, k);
    auto ait = invariant_.find(akey);
    if (ait == invariant_.end()) {
        plan ref;
        make_layouts(ref, out, invariant_ref_m(), n, k);
        ait = invariant_.emplace(akey, invariant_choice{false, heuristic(ref, invariant_ref_m(), n, k)}).first;
        release(ref);
    }
    p.algo = ait->second.algo;
    cublasLtMatmulHeuristicResult_t check{};
    const cublasStatus_t st = cublasLtMatmulAlgoCheck(handle_, p.op, p.a, p.b, p.c, p.c, &p.algo, &check);
    SPECATTN_CHECK(st == CUBLAS_STATUS_SUCCESS && check.workspaceSize <= workspace_bytes_,
                   "cuBLASLt's batch-invariant algorithm for n %lld, k %lld does not run with m %lld",
                   static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(m));
    return plans_.emplace(key, p).first->second;
}

void cublaslt_gemm::tune_invariant(gemm_out out, int64_t n, int64_t k, const bf16 * w, cudaStream_t stream,
                                   int64_t decode_rows) {
    if (skinny_splits(n, k) > 0) {
        return;
    }
    SPECATTN_CHECK(decode_rows > 0, "GEMM tuning for %lld decode rows", static_cast<long long>(decode_rows));
    const auto key = std::make_tuple(static_cast<int32_t>(out), n, k);
    int device = 0;
    SPECATTN_CUDA_CHECK(cudaGetDevice(&device));
    const tuned_key tkey{device, static_cast<int32_t>(out), n, k, decode_rows, gemv_};
    std::lock_guard<std::mutex> lock(tuned_mutex()); // TP ranks tune on their own threads
    if (const auto it = tuned_choices().find(tkey); it != tuned_choices().end()) {
        invariant_[key] = it->second;
        return;
    }
    const int64_t m_decode = decode_rows;
    const int64_t m_verify = 6 * decode_rows;
    const int64_t m_max = 8 * std::max<int64_t>(decode_rows, 8);
    // Whether an algorithm runs at every m the engine's passes will have, within the workspace.
    const auto runs_everywhere = [&](const cublasLtMatmulAlgo_t & algo) {
        bool ok = true;
        for (int64_t m : {m_decode, m_verify, m_max}) {
            plan p;
            make_layouts(p, out, m, n, k);
            cublasLtMatmulHeuristicResult_t check{};
            ok = ok &&
                 cublasLtMatmulAlgoCheck(handle_, p.op, p.a, p.b, p.c, p.c, &algo, &check) == CUBLAS_STATUS_SUCCESS &&
                 check.workspaceSize <= workspace_bytes_;
            release(p);
        }
        return ok;
    };
    // A choice an earlier process made for this device, cuBLASLt and shape (SPECATTN_GEMV=2 runs always time).
    static_assert(sizeof(cublasLtMatmulAlgo_t) == sizeof(gemm_cached_choice::algo), "the file stores its bytes");
    const std::string cache_path = gemv_forced_ ? std::string() : gemm_choice_cache_path_from_env();
    const std::string ckey = cache_path.empty() ? std::string() : cache_key(device, out, n, k, decode_rows, gemv_);
    if (!cache_path.empty()) {
        std::string problem;
        const std::optional<gemm_cached_choice> cached = gemm_choice_cache_load(cache_path, ckey, &problem);
        warn_cache_once(problem);
        if (cached) {
            tuned_choice choice;
            choice.gemv = cached->gemv;
            std::memcpy(&choice.algo, cached->algo.data(), sizeof choice.algo);
            if (choice.gemv ? gemv_ && gemv_supported(n, k) : runs_everywhere(choice.algo)) {
                tuned_choices()[tkey] = choice;
                invariant_[key] = choice;
                if (std::getenv("SPECATTN_GEMM_LOG") != nullptr) {
                    std::fprintf(stderr, "gemm: n %lld k %lld, %lld rows: %s from %s\n", static_cast<long long>(n),
                                 static_cast<long long>(k), static_cast<long long>(m_decode),
                                 choice.gemv ? "GEMV" : "cuBLASLt", cache_path.c_str());
                }
                return;
            }
        }
    }
    std::vector<cublasLtMatmulAlgo_t> cands;
    for (int64_t m_ref : {int64_t{1}, invariant_ref_m(), m_decode, m_verify}) {
        plan ref;
        make_layouts(ref, out, m_ref, n, k);
        for (const cublasLtMatmulAlgo_t & algo : heuristics(ref, 16)) {
            const bool seen = std::any_of(cands.begin(), cands.end(), [&](const cublasLtMatmulAlgo_t & c) {
                return std::memcmp(&c, &algo, sizeof c) == 0;
            });
            if (!seen) {
                cands.push_back(algo);
            }
        }
        release(ref);
    }
    // Scratch inputs and outputs; the weights are the real ones (their bytes are what decoding streams). Before each
    // timed product the L2 is overwritten: in a decode step a projection's weights are never in the L2 (the rest of
    // the model passes through it in between), and timing products back to back on weights that fit it (the O
    // projection's 33 MB of an 8B model) chose algorithms that are fast from the L2 and slow from HBM (26.7 us
    // for that projection at one row under Nsight Compute, 31% of the copy bandwidth).
    void * x = nullptr;
    void * y = nullptr;
    void * flush = nullptr;
    const size_t flush_bytes = 2 * static_cast<size_t>(std::max<int64_t>(cuda_l2_cache_bytes(), 1 << 20));
    SPECATTN_CUDA_CHECK(cudaMalloc(&x, static_cast<size_t>(m_max * k) * sizeof(bf16)));
    SPECATTN_CUDA_CHECK(cudaMalloc(&y, static_cast<size_t>(m_max * n) * sizeof(float)));
    SPECATTN_CUDA_CHECK(cudaMalloc(&flush, flush_bytes));
    SPECATTN_CUDA_CHECK(cudaMemsetAsync(x, 0, static_cast<size_t>(m_max * k) * sizeof(bf16), stream));
    cudaEvent_t t0 = nullptr;
    cudaEvent_t t1 = nullptr;
    SPECATTN_CUDA_CHECK(cudaEventCreate(&t0));
    SPECATTN_CUDA_CHECK(cudaEventCreate(&t1));
    // Mean time of one product (launch() enqueues it; false: it cannot run) over 5 runs after a warm-up, each
    // after an L2 flush; a negative value when it cannot run.
    const auto time_ms = [&](const auto & launch) {
        constexpr int reps = 5;
        double total_ms = 0.0;
        for (int r = 0; r < reps + 1; ++r) {
            SPECATTN_CUDA_CHECK(cudaMemsetAsync(flush, r, flush_bytes, stream));
            SPECATTN_CUDA_CHECK(cudaEventRecord(t0, stream));
            if (!launch()) {
                return -1.0;
            }
            SPECATTN_CUDA_CHECK(cudaEventRecord(t1, stream));
            SPECATTN_CUDA_CHECK(cudaEventSynchronize(t1));
            float ms = 0.0f;
            SPECATTN_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
            total_ms += r > 0 ? ms : 0.0;
        }
        return total_ms / reps;
    };
    const float alpha = 1.0f;
    const float beta = 0.0f;
    double best = 1e30;
    const cublasLtMatmulAlgo_t * chosen = nullptr;
    for (const cublasLtMatmulAlgo_t & algo : cands) {
        double score = 0.0;
        bool ok = runs_everywhere(algo); // m_max is only checked: verification batches must run too
        for (int64_t m : {m_decode, m_verify}) {
            if (!ok) {
                break;
            }
            plan p;
            make_layouts(p, out, m, n, k);
            const double ms = time_ms([&] {
                return cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &algo, workspace_,
                                      workspace_bytes_, stream) == CUBLAS_STATUS_SUCCESS;
            });
            ok = ms >= 0.0;
            score += (m == m_decode ? 1.0 : 0.5) * ms;
            release(p);
        }
        if (ok && score < best) {
            best = score;
            chosen = &algo;
        }
    }
    // The GEMV (kernels/gemv.cuh), scored the same way: it serves a shape when it beats cuBLASLt's best.
    double gemv_score = -1.0;
    if (gemv_ && gemv_supported(n, k)) {
        gemv_score = 0.0;
        for (int64_t m : {m_decode, m_verify}) {
            gemv_score += (m == m_decode ? 1.0 : 0.5) * time_ms([&] {
                              run_gemv(static_cast<const bf16 *>(x), w, y, out, m, n, k, stream);
                              return true;
                          });
        }
    }
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaFree(x);
    cudaFree(y);
    cudaFree(flush);
    SPECATTN_CHECK(chosen != nullptr || gemv_score >= 0.0,
                   "cuBLASLt has no batch-invariant algorithm for n %lld, k %lld", static_cast<long long>(n),
                   static_cast<long long>(k));
    tuned_choice choice;
    choice.gemv = gemv_score >= 0.0 && (chosen == nullptr || gemv_score < best || gemv_forced_);
    if (!choice.gemv) {
        choice.algo = *chosen;
    }
    tuned_choices()[tkey] = choice;
    invariant_[key] = choice;
    if (!cache_path.empty()) {
        gemm_cached_choice stored;
        stored.gemv = choice.gemv;
        std::memcpy(stored.algo.data(), &choice.algo, sizeof choice.algo);
        std::string problem;
        gemm_choice_cache_store(cache_path, ckey, stored, &problem);
        warn_cache_once(problem);
    }
    if (std::getenv("SPECATTN_GEMM_LOG") != nullptr) {
        // Which cuBLASLt algorithm: its id, tile, stages and split-K (a different choice, different bits).
        int32_t cfg[4] = {-1, -1, -1, -1};
        const cublasLtMatmulAlgoConfigAttributes_t attrs[4] = {CUBLASLT_ALGO_CONFIG_ID, CUBLASLT_ALGO_CONFIG_TILE_ID,
                                                               CUBLASLT_ALGO_CONFIG_STAGES_ID,
                                                               CUBLASLT_ALGO_CONFIG_SPLITK_NUM};
        for (int i = 0; i < 4 && chosen != nullptr; ++i) {
            size_t written = 0;
            cublasLtMatmulAlgoConfigGetAttribute(chosen, attrs[i], &cfg[i], sizeof(cfg[i]), &written);
        }
        std::fprintf(stderr,
                     "gemm: n %lld k %lld, %lld + %lld rows: cuBLASLt best %.1f us (of %zu; algo %d tile %d stages %d "
                     "split-K %d), GEMV %.1f us -> %s%s\n",
                     static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(m_decode),
                     static_cast<long long>(m_verify), 1e3 * best, cands.size(), cfg[0], cfg[1], cfg[2], cfg[3],
                     1e3 * gemv_score, choice.gemv ? "GEMV" : "cuBLASLt", gemv_forced_ ? " (SPECATTN_GEMV=2)" : "");
    }
}

void cublaslt_gemm::run_gemv(const bf16 * x, const bf16 * w, void * y, gemm_out out, int64_t m, int64_t n, int64_t k,
                             cudaStream_t stream) const {
    gemv_params gp;
    gp.x = x;
    gp.w = w;
    gp.y = y;
    gp.m = m;
    gp.n = n;
    gp.k = k;
    gp.out_f32 = out == gemm_out::gemm_out_f32;
    launch_gemv(gp, n_sm_, stream);
}

void cublaslt_gemm::run(const bf16 * x, const bf16 * w, void * y, gemm_out out, int64_t m, int64_t n, int64_t k,
                        cudaStream_t stream, bool invariant) {
    SPECATTN_CHECK(m > 0 && n > 0 && k > 0, "GEMM with an empty dimension (m %lld, n %lld, k %lld)",
                   static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k));
    if (invariant) {
        const auto it = invariant_.find(std::make_tuple(static_cast<int32_t>(out), n, k));
        if (it != invariant_.end() && it->second.gemv) {
            run_gemv(x, w, y, out, m, n, k, stream);
            return;
        }
        const int32_t splits = skinny_splits(n, k);
        if (splits > 0) {
            skinny_gemm_params sp;
            sp.x = x;
            sp.w = w;
            sp.y = y;
            sp.partial = static_cast<float *>(workspace_);
            sp.counters = counters_;
            sp.m = m;
            sp.n = n;
            sp.k = k;
            sp.splits = splits;
            sp.out_f32 = out == gemm_out::gemm_out_f32;
            launch_skinny_gemm(sp, stream);
            return;
        }
    }
    const plan & p = get_plan(out, m, n, k, invariant);
    const float alpha = 1.0f;
    const float beta = 0.0f;
    SPECATTN_CUDA_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo,
                                       workspace_, workspace_bytes_, stream));
}

} // namespace specattn
