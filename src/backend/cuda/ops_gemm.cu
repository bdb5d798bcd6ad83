// Launcher of the skinny GEMM (kernels/skinny_gemm.cuh) and its grid policy. The policy sees (N, K) and the
// device, never the number of rows: that is what keeps a row's result independent of the batch.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "core/check.h"
#include "kernels/skinny_gemm.cuh"

#include <algorithm>
#include <climits>

namespace specattn {

namespace {

// NOTE(gemm): 4 stages of 16 KB of W (48 KB in flight per CTA, ~100 KB per SM): more than Little's law asks of an
// SM at ~30 GB/s; 2 or 3 stages measured the same at m = 1 with 32-KB stages, 4 costs nothing here (the shared
// memory is padded to 80 KB anyway so exactly 2 CTAs share an SM).
constexpr int skinny_gemm_stages = 4;

template <bool OUT_F32> void launch_rows(const skinny_gemm_params & p, cudaStream_t stream) {
    // M_TILES: the 8-row mma tiles covering p.m, rounded up to a power of two (fewer instances; the padded rows
    // are zero-filled and cost only tensor-core time, which is idle at these shapes anyway).
    if (p.m <= 8) {
        skinny_gemm_launch<1, skinny_gemm_stages, OUT_F32>(p, stream);
    } else if (p.m <= 16) {
        skinny_gemm_launch<2, skinny_gemm_stages, OUT_F32>(p, stream);
    } else if (p.m <= 32) {
        skinny_gemm_launch<4, skinny_gemm_stages, OUT_F32>(p, stream);
    } else {
        skinny_gemm_launch<8, skinny_gemm_stages, OUT_F32>(p, stream);
    }
}

int64_t n_units(int64_t n, int64_t k) {
    return (n + skinny_gemm_block_n - 1) / skinny_gemm_block_n * ((k + skinny_gemm_stage_k - 1) / skinny_gemm_stage_k);
}

} // namespace

bool skinny_gemm_supported(int64_t n, int64_t k) {
    return n > 0 && k > 0 && k % 8 == 0 && n <= INT32_MAX / 2 && k <= INT32_MAX / 2 && n_units(n, k) <= INT32_MAX / 1024;
}

int32_t skinny_gemm_ctas(int64_t n, int64_t k, int n_sm, size_t max_partial_bytes) {
    // Exactly two CTAs per SM, each an equal share of the units: the SMs finish together (see skinny_gemm.cuh).
    int64_t g = std::min<int64_t>(n_units(n, k), 2 * static_cast<int64_t>(std::max(n_sm, 1)));
    while (g > 1 && skinny_gemm_partial_bytes(static_cast<int32_t>(g)) > max_partial_bytes) {
        --g;
    }
    return static_cast<int32_t>(g);
}

size_t skinny_gemm_partial_bytes(int32_t n_cta) {
    return static_cast<size_t>(2 * n_cta) * static_cast<size_t>(skinny_gemm_slot_floats) * sizeof(float);
}

int64_t skinny_gemm_counters(int64_t n) {
    return (n + skinny_gemm_block_n - 1) / skinny_gemm_block_n;
}

void launch_skinny_gemm(const skinny_gemm_params & p, cudaStream_t stream) {
    SPECATTN_CHECK(p.m > 0 && skinny_gemm_supported(p.n, p.k), "skinny GEMM: unsupported shape m %lld, n %lld, k %lld",
                   static_cast<long long>(p.m), static_cast<long long>(p.n), static_cast<long long>(p.k));
    SPECATTN_CHECK(p.n_cta >= 1 && p.n_cta <= n_units(p.n, p.k), "skinny GEMM: %d CTAs for %lld units", p.n_cta,
                   static_cast<long long>(n_units(p.n, p.k)));
    SPECATTN_CHECK(p.partial != nullptr && p.counters != nullptr,
                   "skinny GEMM: needs the partial-sum workspace and counters");
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
