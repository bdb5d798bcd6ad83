// RMSNorm with an optional fused residual add (see rmsnorm_params). One CTA per output row; fp32 statistics.
//
// At batch 1 a norm is one CTA on one SM, so its time is load latency, not bandwidth: a 4096-wide row strided over
// 256 threads was 16 dependent rounds of loads (15 us under Nsight Compute, 65 of them per Llama-8B step = 1 ms of
// a 6.5 ms step). Rows whose width is a multiple of 8 and at most rmsnorm_max_vecs vectors per thread are therefore
// read in one round of 16- and 32-byte loads per thread and kept in registers between the two passes.
#pragma once

#include "kernels/common.cuh"

namespace specattn {

// grid: [R]  block: rmsnorm_threads
constexpr int rmsnorm_threads = 512;
constexpr int rmsnorm_vec = 8;      // elements per vector access (8 bf16 = 16 bytes, 8 floats = 32 bytes)
constexpr int rmsnorm_max_vecs = 4; // vectors a thread holds: rows up to 512 * 8 * 4 = 16384 wide

struct rmsnorm_row {
    float * x;
    const bf16 * res;
    bf16 * y;
};

__device__ __forceinline__ rmsnorm_row rmsnorm_row_of(const rmsnorm_params & p) {
    const int64_t src = p.rows != nullptr ? p.rows[blockIdx.x] : static_cast<int64_t>(blockIdx.x);
    return {p.x + src * p.n, p.residual != nullptr ? p.residual + src * p.n : nullptr,
            p.out + static_cast<int64_t>(blockIdx.x) * p.n};
}

__device__ __forceinline__ void load8(const float * s, float (&v)[rmsnorm_vec]) {
    const float4 a = reinterpret_cast<const float4 *>(s)[0];
    const float4 b = reinterpret_cast<const float4 *>(s)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

__device__ __forceinline__ void store8(float * d, const float (&v)[rmsnorm_vec]) {
    reinterpret_cast<float4 *>(d)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4 *>(d)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

// Rows that fit the registers (rmsnorm_fits): each thread's vectors are (c * blockDim.x + tid) * 8, c < max_vecs.
__device__ __forceinline__ void rmsnorm_vectorized(const rmsnorm_params & p, const rmsnorm_row & r, float * scratch) {
    float v[rmsnorm_max_vecs][rmsnorm_vec];
    float ss = 0.0f;
#pragma unroll
    for (int c = 0; c < rmsnorm_max_vecs; ++c) {
        const int64_t i = (static_cast<int64_t>(c) * blockDim.x + threadIdx.x) * rmsnorm_vec;
        if (i < p.n) {
            load8(r.x + i, v[c]);
            if (r.res != nullptr) {
                const uint4 raw = *reinterpret_cast<const uint4 *>(r.res + i);
                const bf16 * rb = reinterpret_cast<const bf16 *>(&raw);
#pragma unroll
                for (int e = 0; e < rmsnorm_vec; ++e) {
                    v[c][e] += __bfloat162float(rb[e]);
                }
                store8(r.x + i, v[c]); // each element is read and written by the same thread: no race
            }
#pragma unroll
            for (int e = 0; e < rmsnorm_vec; ++e) {
                ss += v[c][e] * v[c][e];
            }
        }
    }
    ss = block_sum(ss, scratch);
    const float scale = rsqrtf(ss / static_cast<float>(p.n) + p.eps);
#pragma unroll
    for (int c = 0; c < rmsnorm_max_vecs; ++c) {
        const int64_t i = (static_cast<int64_t>(c) * blockDim.x + threadIdx.x) * rmsnorm_vec;
        if (i < p.n) {
            float w[rmsnorm_vec];
            load8(p.weight + i, w);
            uint4 raw;
            bf16 * out = reinterpret_cast<bf16 *>(&raw);
#pragma unroll
            for (int e = 0; e < rmsnorm_vec; ++e) {
                out[e] = __float2bfloat16(w[e] * (v[c][e] * scale));
            }
            *reinterpret_cast<uint4 *>(r.y + i) = raw;
        }
    }
}

// Any width: strided, two passes over x.
__device__ __forceinline__ void rmsnorm_strided(const rmsnorm_params & p, const rmsnorm_row & r, float * scratch) {
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) {
        float v = r.x[i];
        if (r.res != nullptr) {
            v += __bfloat162float(r.res[i]);
            r.x[i] = v;
        }
        ss += v * v;
    }
    ss = block_sum(ss, scratch);
    const float scale = rsqrtf(ss / static_cast<float>(p.n) + p.eps);
    for (int64_t i = threadIdx.x; i < p.n; i += blockDim.x) {
        r.y[i] = __float2bfloat16(p.weight[i] * (r.x[i] * scale));
    }
}

// Whether rows of width n take the vectorized path (rows n elements apart keep 16-byte alignment when n % 8 == 0).
__host__ __device__ constexpr bool rmsnorm_fits(int64_t n) {
    return n % rmsnorm_vec == 0 && n <= int64_t{rmsnorm_threads} * rmsnorm_vec * rmsnorm_max_vecs;
}

// ... and whether every buffer starts 16-byte aligned (weights may sit at any offset of a caller's arena).
__device__ __forceinline__ bool rmsnorm_aligned(const rmsnorm_params & p) {
    const auto a = [](const void * q) { return (reinterpret_cast<uintptr_t>(q) & 15u) == 0; };
    return a(p.x) && a(p.residual) && a(p.weight) && a(p.out);
}

__global__ void __launch_bounds__(rmsnorm_threads) rmsnorm_kernel(const rmsnorm_params p) {
    __shared__ float scratch[warp_size];
    pdl_wait(); // launched as a programmatic dependent: the residual delta comes from the grid before
    pdl_launch_dependents();
    const rmsnorm_row r = rmsnorm_row_of(p);
    if (rmsnorm_fits(p.n) && rmsnorm_aligned(p)) {
        rmsnorm_vectorized(p, r, scratch);
    } else {
        rmsnorm_strided(p, r, scratch);
    }
}

} // namespace specattn
