// Dense GEMMs through cuBLASLt: y = x · Wᵀ with bf16 inputs, fp32 compute and bf16 or fp32 output, weights
// row-major [out, in] as PyTorch stores them. One handle, one workspace, and a cache of descriptors and the
// heuristic's algorithm per shape, so a steady-state call only launches (no allocation, no synchronization).
//
// Batch invariance: with `invariant`, the algorithm depends on (n, k) only, never on m (the one the heuristic picks
// for m = invariant_ref_m), so each output row is computed by the same kernel configuration, with the same K split
// and the same deterministic reduction, whatever the number of rows: row i of a 1-row product equals row i of a
// 100-row product bit for bit. Decode, draft and verify passes use it (see forward_batch::prefill).
// With `skinny` (constructor, or SPECATTN_SKINNY_GEMM=1), invariant shapes the skinny GEMM supports (K a multiple
// of 8: every projection of our models) run on it instead (kernels/skinny_gemm.cuh; its K split is a function of
// (n, k) only, its partial sums reuse the cuBLASLt workspace). NOTE(gemm): off by default: on the H200 it is
// slower than the tuned cuBLASLt algorithm at 1-32 rows on every Llama-8B shape (57-88% of the copy bandwidth at
// one row against 61-105%) and faster only at 64 rows for gate/up and the LM head (docs: bench/gemm_bench.cu).
#pragma once

#include "kernels/kernel_params.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

namespace specattn {

enum class gemm_out : int32_t {
    gemm_out_bf16,
    gemm_out_f32,
};

class cublaslt_gemm {
  public:
    // What an invariant run of a shape launches: the GEMV, or this cuBLASLt algorithm (tuned, or the heuristic's at
    // invariant_ref_m for shapes never tuned).
    struct invariant_choice {
        bool gemv = false;
        cublasLtMatmulAlgo_t algo{};
    };
    // skinny = true sends supported invariant shapes to the skinny GEMM; SPECATTN_SKINNY_GEMM=1 / =0 overrides.
    explicit cublaslt_gemm(size_t workspace_bytes = size_t{32} << 20, bool skinny = false);
    ~cublaslt_gemm();
    cublaslt_gemm(const cublaslt_gemm &) = delete;
    cublaslt_gemm & operator=(const cublaslt_gemm &) = delete;

    // y = x · wᵀ.  x: [m, k] bf16  w: [n, k] bf16  y: [m, n] (bf16 or fp32 as `out` says). Row-major, dense.
    void run(const bf16 * x, const bf16 * w, void * y, gemm_out out, int64_t m, int64_t n, int64_t k,
             cudaStream_t stream, bool invariant = false);

    // The m whose heuristic choice serves every m of an invariant shape that tune_invariant has not seen.
    static constexpr int64_t invariant_ref_m() { return 16; }
    // Picks the invariant algorithm of (out, n, k) by timing the heuristic's candidates on the real weights w at the
    // rows the engine's passes will have: its time at decode_rows (a decode or draft step of the engine's batch)
    // plus half its time at 6 × decode_rows (a verification of γ ≈ 5), among the algorithms that also run at
    // 8 × max(decode_rows, 8) rows. One algorithm cannot be the fastest at 1 row and at 64 (cuBLASLt's choices
    // differ 2× there on the 8B shapes), so the engine's batch decides; every row is still computed the same way
    // whatever the pass's size. Call before any invariant run of the shape (not while a stream is being
    // captured); untuned shapes use invariant_ref_m. Shapes the skinny GEMM serves need no tuning. The GEMV
    // (kernels/gemv.cuh) is timed the same way and takes the shape when it scores better (SPECATTN_GEMV=0: never,
    // =2: always); SPECATTN_GEMM_LOG=1 prints each shape's scores. The choice is kept for the process: later
    // backends tuning the same (device, shape, decode_rows) take it without timing, so they compute the same bits.
    void tune_invariant(gemm_out out, int64_t n, int64_t k, const bf16 * w, cudaStream_t stream,
                        int64_t decode_rows = 1);
    // From now on this object's tuning never picks the GEMV, as SPECATTN_GEMV=0 would (benches timing cuBLASLt).
    void never_gemv() {
        gemv_ = false;
        gemv_forced_ = false;
    }

    // The K split the skinny GEMM uses for an invariant (n, k), 0 when the shape stays on cuBLASLt.
    int32_t skinny_splits(int64_t n, int64_t k) const;

  private:
    struct plan {
        cublasLtMatmulDesc_t op = nullptr;
        cublasLtMatrixLayout_t a = nullptr; // W
        cublasLtMatrixLayout_t b = nullptr; // x
        cublasLtMatrixLayout_t c = nullptr; // y
        cublasLtMatmulAlgo_t algo{};
    };
    const plan & get_plan(gemm_out out, int64_t m, int64_t n, int64_t k, bool invariant);
    // The heuristic's usable algorithms for a plan's shape, best first (at most count); its first, or an error.
    std::vector<cublasLtMatmulAlgo_t> heuristics(const plan & p, int count);
    cublasLtMatmulAlgo_t heuristic(const plan & p, int64_t m, int64_t n, int64_t k);
    static void release(plan & p);
    void run_gemv(const bf16 * x, const bf16 * w, void * y, gemm_out out, int64_t m, int64_t n, int64_t k,
                  cudaStream_t stream) const;
    void make_layouts(plan & p, gemm_out out, int64_t m, int64_t n, int64_t k);

    cublasLtHandle_t handle_ = nullptr;
    void * workspace_ = nullptr;
    size_t workspace_bytes_ = 0;
    bool skinny_ = true;
    int n_sm_ = 0;
    int32_t * counters_ = nullptr; // [n_counters_] the skinny GEMM's split-K counters, zero between launches
    int64_t n_counters_ = 0;
    std::map<std::tuple<int32_t, int64_t, int64_t, int64_t, bool>, plan> plans_;
    std::map<std::tuple<int32_t, int64_t, int64_t>, invariant_choice> invariant_; // (out, n, k)
    bool gemv_ = true;
    bool gemv_forced_ = false; // SPECATTN_GEMV=2
};

} // namespace specattn
