// Kernel benchmark of the paged attention kernel (decode, verify, verify + Collect-2-Query, sparse draft, prefill
// chunk) against the card's measured copy bandwidth, under the heuristic plan (prefill passes; split by the grid)
// and, for decode, verify and draft, also under the batch-invariant plan the engine's decode steps use (column
// "plan": heur / inv at 512-position chunks / inv<C> at the chunk C an engine decoding that batch and context keeps,
// attention_invariant_chunk_for, where it is not 512).
//
//     kernel_bench [--reps N] [--quick] [--only mode:B:ctx[:plan]] [--verify-rows N]   (on the GPU machine; no
//     arguments needed; --verify-rows sets the query rows per verify sequence, 2..33, default 7; an --only case
//     verify<N>... sets N)
//
// Bytes: what the kernel must move, counted from the plan: every KV index a CTA reads (K and V rows of D bf16;
// for decode and verify that is each cached position once per KV head, for prefill once per row tile), the
// selection-list entries of sparse rows, q read, out written, collected logits and LSEs written. Partial outputs of
// split KV are overhead and not counted. GB/s = bytes / median time; the ceiling is a device-to-device cudaMemcpy of
// 2 GB timed the same way, counted as bytes read + written.
// Timing: a CUDA graph of n launches (one per copy of the KV pool; copies rotate so the data is >= 4x the L2 and
// each launch reads HBM) replayed reps times after warm-up; per-launch time = median replay / n. Page tables are
// random permutations of the pool; data is pseudo-random, never zeros. One configuration is checked against a
// double-precision CPU computation first. Shape: Llama-3.1-8B / Qwen3-8B attention (H 32, HK 8, D 128, page 16).
#include "bench_stats.h"
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/select_ops.h"
#include "core/check.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace specattn;

namespace {

// Deterministic pseudo-random bf16 in [-1, 1): never zeros (METHOD.md: zeros hide wrong indexing).
__global__ void fill_random(bf16 * x, int64_t n, uint32_t seed) {
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed ^ static_cast<uint32_t>(i >> 32) * 40503u;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        x[i] = __float2bfloat16(static_cast<float>(h & 0xffffu) / 32768.0f - 1.0f);
    }
}

void fill(bf16 * x, int64_t n, uint32_t seed) {
    fill_random<<<4096, 256>>>(x, n, seed);
    SPECATTN_CUDA_CHECK(cudaGetLastError());
}

// Device allocations of one configuration, freed together.
struct allocs {
    std::vector<void *> ptrs;
    template <typename T> T * get(size_t n) {
        void * p = nullptr;
        SPECATTN_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
        ptrs.push_back(p);
        return static_cast<T *>(p);
    }
    template <typename T> T * upload(const std::vector<T> & v) {
        T * d = get<T>(v.size());
        SPECATTN_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
        return d;
    }
    ~allocs() {
        for (void * p : ptrs) {
            cudaFree(p);
        }
    }
};

struct timing {
    double median_ms = 0;
    double std_ms = 0;
};

// Median and std over reps of fn(), timed with device events; fn may launch several kernels.
template <typename F> timing time_events(F && fn, int reps) {
    cudaEvent_t a, b;
    SPECATTN_CUDA_CHECK(cudaEventCreate(&a));
    SPECATTN_CUDA_CHECK(cudaEventCreate(&b));
    // Warm-up: at least 3 runs and 200 ms of work, so clocks have ramped up before the first timed run.
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 3 || std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(200); ++i) {
        fn();
        SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
    }
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        SPECATTN_CUDA_CHECK(cudaEventRecord(a));
        fn();
        SPECATTN_CUDA_CHECK(cudaEventRecord(b));
        SPECATTN_CUDA_CHECK(cudaEventSynchronize(b));
        float t = 0;
        SPECATTN_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    SPECATTN_CUDA_CHECK(cudaEventDestroy(a));
    SPECATTN_CUDA_CHECK(cudaEventDestroy(b));
    const auto [median, sd] = median_and_std(ms);
    return {median, sd};
}

// verify<N> runs N query rows per sequence (--verify-rows, default 7); verify<N>+collect writes the first and last
// rows' logits per head (weight mode's buffer); verify<N>+sum sums them over heads and rows in the kernel into one
// fp32 partial row per sequence and KV head (logit mode, attention_segment::sum_mask).
enum class mode { mode_decode, mode_verify, mode_verify_collect, mode_verify_sum, mode_sparse, mode_prefill };

struct config {
    mode m;
    int64_t batch;
    int64_t ctx;                               // tokens per sequence, the rows included
    bool invariant = false;                    // attention_plan_config::invariant
    int64_t chunk = attention_invariant_chunk; // its KV chunk (an engine decoding `batch` keeps a longer one)
    int64_t verify_rows = 7;                   // query rows per sequence of the verify modes (--verify-rows)
    // Collect / sum modes: each launch is followed by the score reduce of its rows (weight mode, or the partial
    // rows), as the engine runs it after every layer's verify attention ("+reduce"; the bytes column stays the
    // attention's: the time is what compares).
    bool reduce = false;
};

std::string mode_name(const config & c) {
    const long long vr = static_cast<long long>(c.verify_rows);
    switch (c.m) {
    case mode::mode_decode:
        return "decode";
    case mode::mode_verify:
        return string_format("verify%lld", vr);
    case mode::mode_verify_collect:
        return string_format("verify%lld+collect%s", vr, c.reduce ? "+reduce" : "");
    case mode::mode_verify_sum:
        return string_format("verify%lld+sum%s", vr, c.reduce ? "+reduce" : "");
    case mode::mode_sparse:
        return "sparse draft";
    case mode::mode_prefill:
        return "prefill512";
    }
    return "?";
}

// heur (heuristic plan), inv (invariant, 512-position chunks) or inv<chunk> (an engine's longer or shorter chunk).
std::string plan_name(const config & c) {
    if (!c.invariant) {
        return "heur";
    }
    return c.chunk == attention_invariant_chunk ? "inv" : string_format("inv%lld", static_cast<long long>(c.chunk));
}

constexpr int64_t n_head = 32;
constexpr int64_t n_head_kv = 8;
constexpr int64_t head_dim = 128;
constexpr int64_t page_size = 16;
constexpr double sparse_ratio = 0.07;
constexpr int64_t sparse_recent = 8;

struct result {
    timing t; // per launch
    double bytes = 0;
    double gbps = 0;
    double tflops = 0;
    int64_t ctas = 0;
    int64_t splits = 1;
    double check_err = -1; // rel. L2 error of the checked configuration
};

int64_t rows_of(const config & c) {
    switch (c.m) {
    case mode::mode_decode:
    case mode::mode_sparse:
        return 1;
    case mode::mode_verify:
    case mode::mode_verify_collect:
    case mode::mode_verify_sum:
        return c.verify_rows;
    case mode::mode_prefill:
        return 512;
    }
    return 1;
}

// Rel. L2 error of rows {first of sequence 0, last row} of a dense run, every head, in double precision.
double check_dense(const config & cfg, const std::vector<std::vector<int32_t>> & pages, const bf16 * k_pool,
                   const bf16 * v_pool, int64_t pool_elems, const bf16 * q, const bf16 * out, int64_t n_rows) {
    const int64_t rows = rows_of(cfg);
    std::vector<bf16> hk(static_cast<size_t>(pool_elems)), hv(hk.size());
    std::vector<bf16> hq(static_cast<size_t>(n_rows * n_head * head_dim)), ho(hq.size());
    SPECATTN_CUDA_CHECK(cudaMemcpy(hk.data(), k_pool, hk.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
    SPECATTN_CUDA_CHECK(cudaMemcpy(hv.data(), v_pool, hv.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
    SPECATTN_CUDA_CHECK(cudaMemcpy(hq.data(), q, hq.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
    SPECATTN_CUDA_CHECK(cudaMemcpy(ho.data(), out, ho.size() * sizeof(bf16), cudaMemcpyDeviceToHost));
    const int64_t group = n_head / n_head_kv;
    double num = 0, den = 0;
    for (int64_t r : {int64_t{0}, n_rows - 1}) {
        const int64_t s = r / rows;
        const int64_t pos = cfg.ctx - rows + r % rows;
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t kvh = h / group;
            const auto at = [&](const std::vector<bf16> & pool, int64_t t, int64_t d) {
                const int64_t pg = pages[static_cast<size_t>(s)][static_cast<size_t>(t / page_size)];
                return static_cast<double>(__bfloat162float(
                    pool[static_cast<size_t>(((pg * n_head_kv + kvh) * page_size + t % page_size) * head_dim + d)]));
            };
            std::vector<double> sc(static_cast<size_t>(pos + 1));
            double mx = -1e300;
            for (int64_t t = 0; t <= pos; ++t) {
                double dot = 0;
                for (int64_t d = 0; d < head_dim; ++d) {
                    dot += static_cast<double>(
                               __bfloat162float(hq[static_cast<size_t>((r * n_head + h) * head_dim + d)])) *
                           at(hk, t, d);
                }
                sc[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(head_dim));
                mx = std::max(mx, sc[static_cast<size_t>(t)]);
            }
            double z = 0;
            for (double & x : sc) {
                x = std::exp(x - mx);
                z += x;
            }
            for (int64_t d = 0; d < head_dim; ++d) {
                double o = 0;
                for (int64_t t = 0; t <= pos; ++t) {
                    o += sc[static_cast<size_t>(t)] / z * at(hv, t, d);
                }
                const double got = __bfloat162float(ho[static_cast<size_t>((r * n_head + h) * head_dim + d)]);
                num += (got - o) * (got - o);
                den += o * o;
            }
        }
    }
    return std::sqrt(num / den);
}

// One layer of attention for cfg over randomly paged pools (copies of them rotating to defeat the L2).
result run(const config & cfg, int reps, const cudaDeviceProp & prop, bool check) {
    allocs mem;
    const int64_t rows = rows_of(cfg);
    const int64_t pages_per_seq = (cfg.ctx + page_size - 1) / page_size;
    const int64_t n_pages = cfg.batch * pages_per_seq;
    const int64_t pool_elems = n_pages * n_head_kv * page_size * head_dim;
    const double copy_bytes = 4.0 * static_cast<double>(pool_elems); // K and V, bf16
    const int64_t n_copies =
        std::clamp<int64_t>(static_cast<int64_t>(std::ceil(4.0 * prop.l2CacheSize / copy_bytes)), 1, 32);
    const int64_t n_launch = check ? 1 : std::max<int64_t>(n_copies, 4);
    bf16 * k_pool = mem.get<bf16>(static_cast<size_t>(pool_elems * n_copies));
    bf16 * v_pool = mem.get<bf16>(static_cast<size_t>(pool_elems * n_copies));
    const int64_t n_rows = cfg.batch * rows;
    const int64_t q_elems = n_rows * n_head * head_dim;
    bf16 * q = mem.get<bf16>(static_cast<size_t>(q_elems));
    bf16 * out = mem.get<bf16>(static_cast<size_t>(q_elems));
    fill(k_pool, pool_elems * n_copies, 1);
    fill(v_pool, pool_elems * n_copies, 2);
    fill(q, q_elems, 3);

    // Random physical pages: sequence s owns a shuffled slice of the pool.
    std::vector<int32_t> perm(static_cast<size_t>(n_pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::mt19937 rng(7);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<std::vector<int32_t>> pages(static_cast<size_t>(cfg.batch));
    // Sparse: each sequence's selection of sel_n positions below sel_recent, per copy (layer) and KV head:
    // strided with random jitter, so sorted and distinct.
    const int64_t sel_recent = cfg.ctx - 1 - sparse_recent;
    const int64_t sel_n = std::min<int64_t>(sel_recent, static_cast<int64_t>(std::ceil(sparse_ratio * cfg.ctx)));
    const bool sparse = cfg.m == mode::mode_sparse;
    const int64_t sel_cap = sparse ? sel_n : 0;
    std::vector<int32_t> sel_pos(static_cast<size_t>(sparse ? cfg.batch * n_copies * n_head_kv * sel_cap : 0));
    if (sparse) {
        const double stride = static_cast<double>(sel_recent) / static_cast<double>(sel_n);
        std::uniform_real_distribution<double> u(0.0, 1.0);
        for (size_t i = 0; i < sel_pos.size(); ++i) {
            const auto k = static_cast<int64_t>(i) % sel_cap;
            sel_pos[i] = static_cast<int32_t>((static_cast<double>(k) + u(rng)) * stride);
        }
    }
    std::vector<attention_plan_row> plan_rows;
    for (int64_t s = 0; s < cfg.batch; ++s) {
        pages[static_cast<size_t>(s)].assign(perm.begin() + s * pages_per_seq, perm.begin() + (s + 1) * pages_per_seq);
        for (int64_t r = 0; r < rows; ++r) {
            attention_plan_row row{&pages[static_cast<size_t>(s)], static_cast<int32_t>(s), cfg.ctx - rows + r};
            if (sparse) {
                row.sel = static_cast<int32_t>(s);
                row.sel_n = sel_n;
                row.sel_recent = sel_recent;
            }
            row.collect = cfg.m == mode::mode_verify_collect && (r == 0 || r == rows - 1);
            if (cfg.m == mode::mode_verify_sum && (r == 0 || r == rows - 1)) {
                row.sum_target = static_cast<int32_t>(s);
            }
            plan_rows.push_back(row);
        }
    }
    attention_plan_config pc;
    pc.n_head = n_head;
    pc.n_head_kv = n_head_kv;
    pc.page_size = page_size;
    pc.n_sm = prop.multiProcessorCount;
    pc.slot_capacity = 1 << 20;
    pc.sel_cap = sel_cap;
    pc.collect_cap = cfg.m == mode::mode_verify_collect ? cfg.ctx : 0;
    pc.sum_cap = cfg.m == mode::mode_verify_sum ? (cfg.ctx + 1) / 2 * 2 : 0;
    pc.invariant = cfg.invariant;
    pc.invariant_chunk = cfg.chunk;
    pc.single_tile_mpw1 = attention_decode_mpw1_from_env();
    pc.split_d = attention_split_d_from_env();
    pc.wgmma_row_tiles = attention_wgmma_from_env();
    attention_plan plan;
    attention_plan_build(plan_rows, pc, plan);

    attention_plan_device dev;
    dev.page_table = mem.upload(plan.page_table);
    dev.segs = mem.upload(plan.segs);
    dev.work = mem.upload(plan.work);
    dev.row_slot = mem.upload(plan.row_slot);
    dev.row_n_split = mem.upload(plan.row_n_split);
    attention_params p = attention_params_from_plan(plan, pc, dev);
    p.q = q;
    p.q_row_stride = n_head * head_dim;
    p.out = out;
    p.head_dim = head_dim;
    p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    p.partial_o = mem.get<float>(static_cast<size_t>(std::max<int64_t>(plan.n_slots, 1) * n_head * head_dim));
    p.partial_lse = mem.get<float>(static_cast<size_t>(std::max<int64_t>(plan.n_slots, 1) * n_head));
    p.n_layer = n_copies;
    if (sparse) {
        p.sel_pos = mem.upload(sel_pos);
    }
    if (plan.n_collect > 0) {
        p.collect_logits = mem.get<bf16>(static_cast<size_t>(plan.n_collect * n_head * pc.collect_cap));
        p.collect_lse = mem.get<float>(static_cast<size_t>(plan.n_collect * n_head));
    }
    if (plan.n_sum_slots > 0) {
        p.sum_partial = mem.get<float>(static_cast<size_t>(plan.n_sum_slots * n_head_kv * pc.sum_cap));
        p.sum_cap = pc.sum_cap;
    }

    // The score reduce after each launch (cfg.reduce): one job per sequence over its two rows, as cuda_selection.
    score_reduce_params rp;
    if (cfg.reduce) {
        std::vector<score_reduce_job> jobs;
        for (int64_t s = 0; s < cfg.batch; ++s) {
            score_reduce_job j;
            j.domain = static_cast<int32_t>(cfg.ctx - rows + 1); // seqlen_k + 1 - seqlen_q
            j.out_offset = s * cfg.ctx;
            if (cfg.m == mode::mode_verify_sum) {
                j.collect0 = plan.sum_slots[static_cast<size_t>(s)].first;
                j.n_rows = plan.sum_slots[static_cast<size_t>(s)].second;
                j.mode = score_reduce_mode::score_reduce_mode_partials;
            } else {
                j.collect0 = static_cast<int32_t>(2 * s);
                j.n_rows = 2;
                j.mode = score_reduce_mode::score_reduce_mode_weight;
            }
            jobs.push_back(j);
        }
        rp.logits = p.collect_logits;
        rp.lse = p.collect_lse;
        rp.collect_row_stride = n_head * pc.collect_cap;
        rp.collect_head_stride = pc.collect_cap;
        rp.partials = p.sum_partial;
        rp.partial_kv_stride = pc.sum_cap;
        rp.jobs = mem.upload(jobs);
        rp.scores = mem.get<float>(static_cast<size_t>(cfg.batch * cfg.ctx));
        rp.n_jobs = cfg.batch;
        rp.n_head = n_head;
        rp.n_head_kv = n_head_kv;
        rp.max_domain = cfg.ctx;
    }
    // The engine's rule for the side rows (cuda_selection): in L2 where they fit.
    p.stream_kv = attention_side_rows_in_l2(
        attention_side_row_bytes(plan, n_head, n_head_kv, pc.collect_cap, pc.sum_cap), prop.l2CacheSize);
    rp.discard = p.stream_kv;
    // Diagnostic (SPECATTN_BENCH_ALIAS_COLLECT=1): every collected row of a launch writes (and the reduce reads) the
    // same row of collect_cap entries, 256 KB at 128K, which stays in L2: against the normal rows it shows what the
    // rows' traffic to memory costs, apart from the kernel's work of collecting (the values are garbage). That row
    // has every job as its reader, so the reduce must not drop it (score_reduce_params::discard: one reader per row):
    // dropped lines would be read back from HBM.
    if (const char * e = std::getenv("SPECATTN_BENCH_ALIAS_COLLECT"); e != nullptr && e[0] == '1') {
        p.collect_cap = 0;
        rp.collect_row_stride = 0;
        rp.collect_head_stride = 0;
        rp.discard = false;
    }

    // Bytes the kernel must move, from the plan.
    result res;
    double kv_idx = 0;
    double list_idx = 0;
    for (const attention_work & w : plan.work) {
        kv_idx += w.kv_end - w.kv_begin;
        if (sparse) {
            list_idx += std::max(0, std::min<int>(w.kv_end, static_cast<int>(sel_n)) - w.kv_begin);
        }
        res.splits = std::max<int64_t>(res.splits, w.n_split);
    }
    res.ctas = static_cast<int64_t>(plan.work.size());
    double collect_bytes = 0;
    for (const attention_plan_row & r : plan_rows) {
        collect_bytes += r.collect ? static_cast<double>(n_head) * (2.0 * static_cast<double>(r.pos + 1) + 4.0) : 0.0;
    }
    collect_bytes += 4.0 * static_cast<double>(plan.n_sum_slots * n_head_kv * cfg.ctx); // partial rows (fp32)
    res.bytes = kv_idx * head_dim * 4.0 + list_idx * 4.0 + 2.0 * static_cast<double>(q_elems) * 2.0 + collect_bytes;
    double flop = 0;
    for (const attention_plan_row & r : plan_rows) {
        const double attended =
            sparse ? static_cast<double>(sel_n + r.pos - sel_recent + 1) : static_cast<double>(r.pos + 1);
        flop += 4.0 * n_head * head_dim * attended;
    }

    // One graph of n_launch launches over rotating copies.
    cudaStream_t stream;
    SPECATTN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const auto launch_all = [&] {
        for (int64_t i = 0; i < n_launch; ++i) {
            attention_params pi = p;
            const int64_t cpy = i % n_copies;
            pi.k_pool = k_pool + cpy * pool_elems;
            pi.v_pool = v_pool + cpy * pool_elems;
            pi.layer = cpy;
            launch_attention(pi, stream);
            if (cfg.reduce) {
                launch_score_reduce(rp, stream);
            }
        }
    };
    launch_all(); // one-time set-up (shared-memory attributes) outside the capture
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (check) {
        res.check_err = check_dense(cfg, pages, k_pool, v_pool, pool_elems, q, out, n_rows);
    }
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    SPECATTN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    launch_all();
    SPECATTN_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    SPECATTN_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    const timing t = time_events([&] { SPECATTN_CUDA_CHECK(cudaGraphLaunch(exec, nullptr)); }, reps);
    SPECATTN_CUDA_CHECK(cudaDeviceSynchronize());
    SPECATTN_CUDA_CHECK(cudaGraphExecDestroy(exec));
    SPECATTN_CUDA_CHECK(cudaGraphDestroy(graph));
    SPECATTN_CUDA_CHECK(cudaStreamDestroy(stream));
    res.t = {t.median_ms / static_cast<double>(n_launch), t.std_ms / static_cast<double>(n_launch)};
    res.gbps = res.bytes / (res.t.median_ms * 1e-3) / 1e9;
    res.tflops = flop / (res.t.median_ms * 1e-3) / 1e12;
    return res;
}

double copy_bandwidth(int reps) {
    const size_t bytes = size_t{2} << 30;
    void * a = nullptr;
    void * b = nullptr;
    SPECATTN_CUDA_CHECK(cudaMalloc(&a, bytes));
    SPECATTN_CUDA_CHECK(cudaMalloc(&b, bytes));
    SPECATTN_CUDA_CHECK(cudaMemset(a, 1, bytes));
    const timing t =
        time_events([&] { SPECATTN_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); }, reps);
    SPECATTN_CUDA_CHECK(cudaFree(a));
    SPECATTN_CUDA_CHECK(cudaFree(b));
    return 2.0 * static_cast<double>(bytes) / (t.median_ms * 1e-3) / 1e9; // read + write
}

} // namespace

int main(int argc, char ** argv) {
    int reps = 20;
    bool quick = false;
    std::string only;
    int64_t verify_rows = 7;
    bool rows_given = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(3, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i]; // "mode:batch:ctx[:plan]", e.g. "verify7:64:4096" or "decode:1:131072:heur"
        } else if (std::strcmp(argv[i], "--verify-rows") == 0) { // checked here, before any CUDA call
            if (i + 1 >= argc) {
                std::fprintf(stderr, "kernel_bench: --verify-rows needs a value in [2, 33]\n");
                return 2;
            }
            const char * arg = argv[++i];
            char * end = nullptr;
            const long long v = std::strtoll(arg, &end, 10);
            if (end == arg || *end != '\0' || v < 2 || v > 33) {
                std::fprintf(stderr, "kernel_bench: --verify-rows must be in [2, 33], got %s\n", arg);
                return 2;
            }
            verify_rows = v;
            rows_given = true;
        }
    }
    // --only verify<N>...: the case names its rows (scripts/gpu_ab.sh passes nothing else).
    long long only_rows = 0;
    if (std::sscanf(only.c_str(), "verify%lld", &only_rows) == 1) {
        if (only_rows < 2 || only_rows > 33) {
            std::fprintf(stderr, "kernel_bench: --only %s: verify rows must be in [2, 33]\n", only.c_str());
            return 2;
        }
        if (rows_given && only_rows != verify_rows) {
            std::fprintf(stderr, "kernel_bench: --only %s names %lld rows, --verify-rows says %lld\n", only.c_str(),
                         only_rows, static_cast<long long>(verify_rows));
            return 2;
        }
        verify_rows = only_rows;
    }
    try {
        int n_dev = 0;
        if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev == 0) {
            std::fprintf(stderr, "kernel_bench: no CUDA device\n");
            return 1;
        }
        cudaDeviceProp prop{};
        SPECATTN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        const double copy_gbps = copy_bandwidth(reps);
        std::printf("device %s, %d SMs, L2 %d MB; device-to-device copy %.0f GB/s (read + write)\n", prop.name,
                    prop.multiProcessorCount, prop.l2CacheSize >> 20, copy_gbps);
        std::printf("shape: H %lld, HK %lld, D %lld, page %lld (Llama-3.1-8B, Qwen3-8B); sparse %.2f + %lld recent\n",
                    static_cast<long long>(n_head), static_cast<long long>(n_head_kv), static_cast<long long>(head_dim),
                    static_cast<long long>(page_size), sparse_ratio, static_cast<long long>(sparse_recent));

        for (const bool inv : {false, true}) {
            const config chk_cfg{mode::mode_verify, 2, 4099, inv}; // 7 rows, whatever --verify-rows says
            const result chk = only.empty() ? run(chk_cfg, 3, prop, true) : result{};
            std::printf("check: %s B=%lld S=%lld %s plan vs double-precision CPU: rel. L2 err %.2e %s\n",
                        mode_name(chk_cfg).c_str(), static_cast<long long>(chk_cfg.batch),
                        static_cast<long long>(chk_cfg.ctx), inv ? "invariant" : "heuristic", chk.check_err,
                        chk.check_err < 1e-2 ? "(ok)" : "(FAILED)");
        }
        std::printf("\n");

        std::vector<config> configs;
        std::vector<int64_t> ctxs = quick ? std::vector<int64_t>{32768} : std::vector<int64_t>{4096, 32768, 131072};
        std::vector<int64_t> batches = quick ? std::vector<int64_t>{1, 8} : std::vector<int64_t>{1, 8, 64};
        if (!only.empty()) { // --only mode:B:ctx[:plan] runs that batch and context, in the lists or not
            long long ob = 0;
            long long octx = 0;
            const size_t colon = only.find(':');
            if (colon != std::string::npos && std::sscanf(only.c_str() + colon + 1, "%lld:%lld", &ob, &octx) == 2 &&
                ob > 0 && octx > 0) {
                batches = {ob};
                ctxs = {octx};
            }
        }
        for (int64_t ctx : ctxs) {
            for (int64_t b : batches) {
                // The chunk an engine decoding b sequences of ctx tokens keeps (attention_invariant_chunk_for).
                const int64_t eng = attention_invariant_chunk_for(b, n_head_kv, ctx, prop.multiProcessorCount, 2);
                for (mode m : {mode::mode_decode, mode::mode_verify, mode::mode_verify_collect, mode::mode_verify_sum,
                               mode::mode_sparse}) {
                    configs.push_back({m, b, ctx, false, attention_invariant_chunk, verify_rows});
                    configs.push_back({m, b, ctx, true, attention_invariant_chunk, verify_rows});
                    if (eng != attention_invariant_chunk) {
                        configs.push_back({m, b, ctx, true, eng, verify_rows});
                    }
                    if (m == mode::mode_verify_collect || m == mode::mode_verify_sum) { // the engine's plan
                        configs.push_back({m, b, ctx, true, eng, verify_rows, true});
                    }
                }
            }
        }
        configs.push_back({mode::mode_prefill, 1, 4096});
        configs.push_back({mode::mode_prefill, 1, 32768});

        std::vector<std::string> table;
        for (const config & c : configs) {
            const std::string name =
                string_format("%s:%lld:%lld:%s", mode_name(c).c_str(), static_cast<long long>(c.batch),
                              static_cast<long long>(c.ctx), plan_name(c).c_str());
            if (!only.empty() && only != name && name.rfind(only + ":", 0) != 0) { // one plan, or all of a case
                continue;
            }
            const double kv_gb = static_cast<double>(c.batch * c.ctx) * n_head_kv * head_dim * 4.0 / 1e9;
            if (kv_gb * 1e9 * 1.25 > static_cast<double>(prop.totalGlobalMem)) {
                std::printf("skip %s B=%lld ctx=%lld: %.0f GB of KV does not fit\n", mode_name(c).c_str(),
                            static_cast<long long>(c.batch), static_cast<long long>(c.ctx), kv_gb);
                continue;
            }
            const result r = run(c, reps, prop, false);
            char line[256];
            std::snprintf(line, sizeof(line),
                          "| %-15s | %-8s | %3lld | %4lldK | %9.1f | %6.1f | %7.0f | %6.0f | %5.1f%% | %5lld/%-3lld |",
                          mode_name(c).c_str(), plan_name(c).c_str(), static_cast<long long>(c.batch),
                          static_cast<long long>(c.ctx / 1024), r.t.median_ms * 1e3, r.t.std_ms * 1e3, r.bytes / 1e6,
                          r.gbps, 100.0 * r.gbps / copy_gbps, static_cast<long long>(r.ctas),
                          static_cast<long long>(r.splits));
            if (c.m == mode::mode_prefill) {
                std::snprintf(line + std::strlen(line), sizeof(line) - std::strlen(line), " %.0f TFLOP/s", r.tflops);
            }
            std::printf("%s\n", line);
            std::fflush(stdout);
            table.push_back(line);
        }
        std::printf("\nattention, copy %.0f GB/s; per launch: median µs (std), bytes moved, GB/s, %% of copy\n",
                    copy_gbps);
        std::printf("| case            | plan |   B |  ctx  |    µs     |  std   |   MB    |  GB/s  | %%copy  | "
                    "CTAs/split |\n");
        std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (const std::string & l : table) {
            std::printf("%s\n", l.c_str());
        }
        const std::string vr_arg =
            verify_rows != 7 ? string_format(" --verify-rows %lld", static_cast<long long>(verify_rows)) : "";
        std::printf("\nrepro: kernel_bench --reps %d%s%s\n", reps, quick ? " --quick" : "", vr_arg.c_str());
    } catch (const std::exception & e) {
        std::fprintf(stderr, "kernel_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
