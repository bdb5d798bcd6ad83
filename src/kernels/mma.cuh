// Thin wrappers over the PTX the tensor-core kernels use: cp.async (global -> shared, zero-filling), ldmatrix and
// mma.sync m16n8k16 (bf16 in, fp32 accumulate). All of it is sm_80 PTX, so the compute_80 fallback build keeps
// working; the Hopper-only wgmma of attention_wg.cuh has its own wrappers (wgmma.cuh).
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with g = lane / 4 and c = lane % 4:
//   A 16x16 (row-major): a0 = (g, 2c..2c+1)   a1 = (g+8, 2c..)   a2 = (g, 2c+8..)   a3 = (g+8, 2c+8..)
//   B 16x8  (col-major): b0 = (2c..2c+1, g)   b1 = (2c+8.., g)
//   C 16x8  (fp32):      c0, c1 = (g, 2c), (g, 2c+1)             c2, c3 = (g+8, 2c), (g+8, 2c+1)
// Each 32-bit register holds two bf16, the lower column in the low half.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace specattn {

__device__ __forceinline__ uint32_t smem_addr(const void * p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Copies src_bytes (0..16) from global memory and zero-fills the rest of the 16 bytes at dst. Both 16-B aligned.
// L2 only (.cg): KV is streamed once, it would only evict useful lines from L1.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void * src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

// 16 bytes without the zero-fill operand: for sources known to be whole rows (one instruction less to set up).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void * src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}

// The same with an L2 eviction policy (l2_policy_*): KV rows streamed once go in as evict-first, so the lines that
// are read again soon (Collect-2-Query's logit rows, read by the score reduce after the kernel) are not the victims.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void * src, uint64_t policy) {
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "l"(policy)
                 : "memory");
}

// L2 eviction policies for the cache_hint forms above (createpolicy: one instruction, no memory access).
__device__ __forceinline__ uint64_t l2_policy_evict_first() {
    uint64_t policy;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
    return policy;
}
__device__ __forceinline__ uint64_t l2_policy_evict_normal() {
    uint64_t policy;
    asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(policy));
    return policy;
}

// The same policies as constants, for loops where ptxas 13.0 encodes a createpolicy result's copies in the form that
// faults (tools/check_cache_hint_copies.py; attention_wg.cuh). evict_first is the value createpolicy gives above
// (read back on the H100, 2026-12-07); evict_normal is the cache-hint spelling of TMA loads (createpolicy's is
// 0x16F0000000000000): both measured in attention_wg_kernel, correct and as fast as plain copies where normal.
constexpr uint64_t l2_policy_evict_first_bits = 0x12F0000000000000ull;
constexpr uint64_t l2_policy_evict_normal_bits = 0x1000000000000000ull;

// Drops the 128-byte line at p (128-byte aligned) from L2 without writing it back: its contents become undefined.
// For data read for the last time (the score reduce's logit rows), so the dirty lines never reach HBM.
__device__ __forceinline__ void l2_discard_line(const void * p) {
    asm volatile("discard.global.L2 [%0], 128;\n" ::"l"(p) : "memory");
}

// The same for 4 bytes (both 4-B aligned): the path for head dims that are not a multiple of 8.
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void * src, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most N committed groups of this thread are still in flight.
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, register i receives matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// The same, each matrix transposed on the way (a row-major K x N tile becomes B fragments).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// c += a * b for one m16n8k16 tile.
__device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

} // namespace specattn
