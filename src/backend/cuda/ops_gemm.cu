// Launchers of the GEMV (kernels/gemv.cuh) and of the skinny GEMM (kernels/skinny_gemm.cuh) with its split-K
// policy. Neither policy looks at the number of rows: that is what keeps a row's result independent of the batch.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/pdl_launch.h"
#include "core/check.h"
#include "kernels/gemv.cuh"
#include "kernels/skinny_gemm.cuh"

#include <algorithm>
#include <climits>

namespace specattn {

namespace {

// NOTE(gemm): stages of 32 KB of W; 3 of them at <= 16 rows, 2 above (x's stages grow with the rows), so two
// CTAs fit an SM at every row count (102-108 KB and 80-96 KB of shared memory): 32-64 KB of W in flight per CTA,
// what Little's law asks of an SM at HBM speed (~32 GB/s x ~1 us).
template <bool OUT_F32> void launch_rows(const skinny_gemm_params & p, cudaStream_t stream) {
    // M_TILES: the 8-row mma tiles covering p.m, rounded up to a power of two (fewer instances; the padded rows
    // are zero-filled and cost only tensor-core time, which is idle at these shapes anyway).
    if (p.m <= 8) {
        skinny_gemm_launch<1, 3, OUT_F32>(p, stream);
    } else if (p.m <= 16) {
        skinny_gemm_launch<2, 3, OUT_F32>(p, stream);
    } else if (p.m <= 32) {
        skinny_gemm_launch<4, 2, OUT_F32>(p, stream);
    } else {
        skinny_gemm_launch<8, 2, OUT_F32>(p, stream);
    }
}

// NOTE(gemv): the GEMV's tiles of 16 rows are dealt evenly over at most two CTAs per SM (16 warps), never more
// than fit at once (a second wave would start its stream late). On the H200 one CTA per SM was 13-28% slower on
// every Llama-8B shape; 2, 3 and 4 requested (two fit) measured the same. A function of (N, SMs) only.
constexpr int gemv_ctas_per_sm = 2;

template <bool OUT_F32> void launch_gemv_rows(const gemv_params & q, int n_sm, bool programmatic, cudaStream_t stream) {
    const auto kernel = gemv_kernel<OUT_F32>;
    static const int fit = [&] {
        int b = 0;
        SPECATTN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, kernel, gemv_threads, 0));
        return std::max(b, 1);
    }();
    const int64_t tiles = (q.n + gemv_mma_tile - 1) / gemv_mma_tile;
    const int64_t cap = int64_t{std::min(fit, gemv_ctas_per_sm)} * std::max(n_sm, 1);
    const int64_t per_cta = (tiles + cap - 1) / cap;
    const int64_t ctas = (tiles + per_cta - 1) / per_cta;
    launch_kernel(programmatic, kernel, dim3(static_cast<unsigned>(ctas)), dim3(gemv_threads), 0, stream, q);
}

} // namespace

bool gemv_supported(int64_t n, int64_t k) {
    return n > 0 && k > 0 && k % 8 == 0 && n < INT32_MAX / 2 && k < INT32_MAX / 2; // the kernel counts in int32
}

void launch_gemv(const gemv_params & p, int n_sm, cudaStream_t stream, bool programmatic) {
    SPECATTN_CHECK(p.m > 0 && gemv_supported(p.n, p.k), "GEMV: unsupported shape m %lld, n %lld, k %lld",
                   static_cast<long long>(p.m), static_cast<long long>(p.n), static_cast<long long>(p.k));
    const auto aligned = [](const void * q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
    SPECATTN_CHECK(aligned(p.x) && aligned(p.w), "GEMV: x and w must be 16-byte aligned");
    const size_t y_elem = p.out_f32 ? sizeof(float) : sizeof(bf16);
    for (int64_t r0 = 0; r0 < p.m; r0 += gemv_max_rows) { // groups of rows, each computed as if alone
        gemv_params q = p;
        q.x = p.x + r0 * p.k;
        q.y = static_cast<char *>(p.y) + static_cast<size_t>(r0 * p.n) * y_elem;
        q.m = std::min<int64_t>(gemv_max_rows, p.m - r0);
        if (p.out_f32) {
            launch_gemv_rows<true>(q, n_sm, programmatic && pdl_enabled(), stream);
        } else {
            launch_gemv_rows<false>(q, n_sm, programmatic && pdl_enabled(), stream);
        }
    }
}

bool skinny_gemm_supported(int64_t n, int64_t k) {
    return n > 0 && k > 0 && k % 8 == 0 && n <= INT32_MAX / 2 && k <= INT32_MAX / 2;
}

int32_t skinny_gemm_splits(int64_t n, int64_t k, int n_sm, size_t max_partial_bytes) {
    // One wave of about two CTAs per SM: with fewer the streams in flight cannot cover HBM latency, with more the
    // CTAs get shorter and the partial sums cost more. Each split keeps >= 2 stages so its pipeline fills; shapes
    // with many row blocks (gate/up, LM head) need no split at all.
    const int64_t n_block = (n + skinny_gemm_block_n - 1) / skinny_gemm_block_n;
    const int64_t n_stage = (k + skinny_gemm_stage_k - 1) / skinny_gemm_stage_k;
    int64_t s = std::max<int64_t>(1, 2 * static_cast<int64_t>(n_sm) / n_block);
    s = std::min({s, std::max<int64_t>(1, n_stage / 2), int64_t{skinny_gemm_max_splits}});
    while (s > 1 && skinny_gemm_partial_bytes(n, static_cast<int32_t>(s)) > max_partial_bytes) {
        --s;
    }
    return static_cast<int32_t>(s);
}

size_t skinny_gemm_partial_bytes(int64_t n, int32_t splits) {
    return splits > 1 ? static_cast<size_t>(splits) * skinny_gemm_max_rows *
                            static_cast<size_t>(skinny_gemm_partial_ld(n)) * sizeof(float)
                      : 0;
}

int64_t skinny_gemm_counters(int64_t n) {
    return (n + skinny_gemm_block_n - 1) / skinny_gemm_block_n;
}

void launch_skinny_gemm(const skinny_gemm_params & p, cudaStream_t stream) {
    SPECATTN_CHECK(p.m > 0 && skinny_gemm_supported(p.n, p.k), "skinny GEMM: unsupported shape m %lld, n %lld, k %lld",
                   static_cast<long long>(p.m), static_cast<long long>(p.n), static_cast<long long>(p.k));
    SPECATTN_CHECK(p.splits >= 1 && p.splits <= (p.k + skinny_gemm_stage_k - 1) / skinny_gemm_stage_k &&
                       p.splits <= skinny_gemm_max_splits,
                   "skinny GEMM: %d splits of k %lld", p.splits, static_cast<long long>(p.k));
    SPECATTN_CHECK(p.splits == 1 || (p.partial != nullptr && p.counters != nullptr),
                   "skinny GEMM: split K needs the partial-sum workspace and counters");
    const auto aligned = [](const void * q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
    SPECATTN_CHECK(aligned(p.x) && aligned(p.w) && aligned(p.partial),
                   "skinny GEMM: x, w and the workspace must be 16-byte aligned");
    const size_t y_elem = p.out_f32 ? sizeof(float) : sizeof(bf16);
    // Chunks of 64 rows, one launch each, in stream order (they share the workspace and counters); every chunk
    // computes its rows exactly as a launch of those rows alone would.
    for (int64_t r0 = 0; r0 < p.m; r0 += skinny_gemm_max_rows) {
        skinny_gemm_params q = p;
        q.x = p.x + r0 * p.k;
        q.y = static_cast<char *>(p.y) + static_cast<size_t>(r0 * p.n) * y_elem;
        q.m = std::min<int64_t>(skinny_gemm_max_rows, p.m - r0);
        if (p.out_f32) {
            launch_rows<true>(q, stream);
        } else {
            launch_rows<false>(q, stream);
        }
        SPECATTN_CUDA_CHECK(cudaGetLastError());
    }
}

} // namespace specattn
