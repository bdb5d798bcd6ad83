// Launcher of the paged attention kernel: the closed dispatch set over head dims and the combine pass. Whether the
// sparse lists and collect buffers are large enough is checked where the plan is made (attention_plan_build).
//
// NOTE(cuda): three head dims only (compile time on small machines): exactly 64 and exactly 128 are the fast
// paths of the models we target; every other even head dim up to 256 (the test models use 8, 16, 32, 48) runs
// zero-padded in the next instance up. Anything else fails loudly. Each has two warp shapes (p.mtiles_per_warp).
// The split-D instance of head dim 256 with 4 row tiles (invariant verify tiles of 33-64 query vectors) spills
// ~340 bytes per thread at the 128 registers one 512-thread CTA per SM allows: right, and slower; none of the
// models we target has both.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/pdl_launch.h"
#include "core/check.h"
#include "kernels/attention.cuh"
#include "kernels/attention_dsplit.cuh"
#include "kernels/attention_wg.cuh"
#include "kernels/attention_combine.cuh"

#include <climits>

namespace specattn {

namespace {

// One attention grid, a CTA per work item. Above 48 KB of dynamic shared memory a kernel needs an explicit opt-in;
// done once per instance (it is a property of the function).
template <auto Kernel>
void launch_work_grid(const attention_params & p, int threads, size_t smem, cudaStream_t stream) {
    [[maybe_unused]] static const bool configured = [smem] {
        SPECATTN_CUDA_CHECK(
            cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
        return true;
    }();
    launch_kernel(pdl_enabled(), Kernel, dim3(static_cast<unsigned int>(p.n_work)), dim3(threads), smem, stream, p);
}

// attention.cuh's kernel in warp shape MPW, with the summing code when the plan sums rows.
template <int HD, int MPW> void launch_attention_shape(const attention_params & p, cudaStream_t stream) {
    constexpr size_t smem = attention_smem_bytes(HD, MPW);
    if (p.n_sum_slots > 0) {
        launch_work_grid<attention_kernel<HD, MPW, true>>(p, attention_threads, smem, stream);
    } else {
        launch_work_grid<attention_kernel<HD, MPW, false>>(p, attention_threads, smem, stream);
    }
}

// attention_dsplit.cuh's kernel with NRT row tiles, the same way.
template <int HD, int NRT> void launch_attention_dsplit(const attention_params & p, cudaStream_t stream) {
    constexpr size_t smem = attention_dsplit_smem_bytes(HD, NRT);
    if (p.n_sum_slots > 0) {
        launch_work_grid<attention_dsplit_kernel<HD, NRT, true>>(p, NRT * attention_threads, smem, stream);
    } else {
        launch_work_grid<attention_dsplit_kernel<HD, NRT, false>>(p, NRT * attention_threads, smem, stream);
    }
}

// Whether attention_wg.cuh's warpgroup kernel can run here: its sm_90a machine code was built (SPECATTN_CUDA_SM90A:
// not in SPECATTN_NATIVE builds, whose sm_90 code has no wgmma) and the GPU is compute capability 9.0 (an sm_90a
// cubin runs nowhere else).
bool wgmma_attention_supported() {
#if defined(SPECATTN_CUDA_SM90A)
    static const bool supported = cuda_compute_capability() == 90;
    return supported;
#else
    return false;
#endif
}

template <int HD> void launch_attention_hd(const attention_params & p, cudaStream_t stream) {
    if constexpr (HD == attention_wg_head_dim) {
        if (p.wgmma && p.split_d_row_tiles >= 2 && p.head_dim == HD && p.n_sum_slots == 0 &&
            wgmma_attention_supported()) {
            launch_work_grid<attention_wg_kernel>(p, attention_wg_threads, attention_wg_smem_bytes(), stream);
            return;
        }
    }
    if (p.split_d_row_tiles == 1) {
        launch_attention_dsplit<HD, 1>(p, stream);
        return;
    }
    if (p.split_d_row_tiles == 2) {
        launch_attention_dsplit<HD, 2>(p, stream);
        return;
    }
    if (p.split_d_row_tiles == 4) {
        launch_attention_dsplit<HD, 4>(p, stream);
        return;
    }
    SPECATTN_CHECK(p.split_d_row_tiles == 0, "attention: unsupported split_d_row_tiles %lld (0, 1, 2 or 4)",
                   static_cast<long long>(p.split_d_row_tiles));
    switch (p.mtiles_per_warp) {
    case 1:
        launch_attention_shape<HD, 1>(p, stream);
        break;
    case 2:
        launch_attention_shape<HD, 2>(p, stream);
        break;
    default:
        SPECATTN_CHECK(false, "attention: unsupported mtiles_per_warp %lld (1 or 2)",
                       static_cast<long long>(p.mtiles_per_warp));
    }
}

} // namespace

void launch_attention(const attention_params & p, cudaStream_t stream) {
    SPECATTN_CHECK(p.n_head > 0 && p.n_head_kv > 0 && p.n_head % p.n_head_kv == 0,
                   "attention: %lld query heads are not a multiple of %lld KV heads", static_cast<long long>(p.n_head),
                   static_cast<long long>(p.n_head_kv));
    SPECATTN_CHECK(p.n_head / p.n_head_kv <= attention_tile_queries,
                   "attention: GQA group of %lld query heads exceeds the kernel's tile of %lld",
                   static_cast<long long>(p.n_head / p.n_head_kv), static_cast<long long>(attention_tile_queries));
    SPECATTN_CHECK(p.n_work <= INT32_MAX && p.n_rows <= INT32_MAX && p.n_head <= INT32_MAX &&
                       p.page_size <= INT32_MAX && p.sliding_window <= INT32_MAX,
                   "attention: sizes exceed int32");
    SPECATTN_CHECK(p.n_head <= 65535, "attention: %lld heads exceed the combine grid",
                   static_cast<long long>(p.n_head));
    SPECATTN_CHECK(p.layer >= 0 && p.layer < p.n_layer, "attention: layer %lld outside [0, %lld)",
                   static_cast<long long>(p.layer), static_cast<long long>(p.n_layer));
    SPECATTN_CHECK(p.q_row_stride % 2 == 0, "attention: q row stride %lld must be even",
                   static_cast<long long>(p.q_row_stride));
    SPECATTN_CHECK(p.n_sum_slots == 0 || (p.sum_partial != nullptr && p.sum_cap % 2 == 0 &&
                                          reinterpret_cast<uintptr_t>(p.sum_partial) % 8 == 0),
                   "attention: summed rows need an 8-byte aligned partial buffer with an even row length");
    if (p.n_work == 0) {
        return;
    }
    const int64_t hd = p.head_dim;
    switch (hd) {
    case 64:
        launch_attention_hd<64>(p, stream);
        break;
    case 128:
        launch_attention_hd<128>(p, stream);
        break;
    default:
        SPECATTN_CHECK(hd > 0 && hd % 2 == 0 && hd <= 256,
                       "attention: unsupported head_dim %lld (supported: even head dims up to 256; fast paths "
                       "64 and 128)",
                       static_cast<long long>(hd));
        if (hd < 64) {
            launch_attention_hd<64>(p, stream);
        } else if (hd < 128) {
            launch_attention_hd<128>(p, stream);
        } else {
            launch_attention_hd<256>(p, stream);
        }
        break;
    }
    if (p.n_slots == 0) {
        return;
    }
    // NOTE(cuda): the combine is a programmatic dependent launch on Hopper: its launch overlaps the attention
    // grid's tail (it waits before reading). Older GPUs get a plain launch.
    launch_kernel(true, attention_combine_kernel,
                  dim3(static_cast<unsigned int>(p.n_rows), static_cast<unsigned int>(p.n_head)),
                  dim3(attention_combine_threads), 0, stream, p);
}

} // namespace specattn
