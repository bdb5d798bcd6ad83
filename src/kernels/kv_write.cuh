// Paged KV append: copies each row's K and V heads into one layer of the pools at the row's (page, slot).
// Offsets are paged_kv_page_offset's (src/kernels/paged_kv.h) within the layer; tests/ops checks the result against
// paged_kv_offset.
#pragma once

#include "kernels/common.cuh"
#include "kernels/paged_kv.h"

namespace specattn {

// grid: [R]  block: any multiple of 32.  Requires D even.
__global__ void kv_append_kernel(const kv_append_params p) {
    const int64_t r = blockIdx.x;
    const int64_t page = p.page[r];
    const int64_t slot = p.slot[r];
    const int64_t half = p.head_dim / 2;
    for (int64_t i = threadIdx.x; i < p.n_head_kv * half; i += blockDim.x) {
        const int64_t h = i / half;
        const int64_t d = 2 * (i - h * half);
        const int64_t dst = paged_kv_page_offset(page, h, slot, p.n_head_kv, p.page_size, p.head_dim) + d;
        const int64_t src = r * p.row_stride + h * p.head_dim + d;
        *reinterpret_cast<__nv_bfloat162 *>(p.k_pool + dst) = *reinterpret_cast<const __nv_bfloat162 *>(p.k + src);
        *reinterpret_cast<__nv_bfloat162 *>(p.v_pool + dst) = *reinterpret_cast<const __nv_bfloat162 *>(p.v + src);
    }
}

} // namespace specattn
