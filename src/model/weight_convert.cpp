// Parallel fp32 conversion of checkpoint tensors (see weight_convert.h).
// Tensors are cut into fixed-size chunks so one large tensor (the embeddings) spreads over the threads too.
// NOTE(loader): one parallel region covers all chunks, and the calling thread (OpenMP's thread 0) reports progress
// between its own chunks. A region per progress step would end each step in a barrier that waits out any thread
// the OS has descheduled: on a busy 2-core machine that took stories15M from 25 ms to 750 ms.
#include "model/weight_convert.h"

#include "core/dtype.h"

#include <omp.h>

#include <atomic>
#include <cstring>
#include <exception>

namespace specattn {

namespace {

constexpr size_t chunk_bytes = size_t{256} << 10; // of source data
constexpr size_t n_reports = 100;

struct chunk {
    const tensor_ref * src;
    float * dst;   // [src->n_elements]
    int64_t begin; // element range [begin, end)
    int64_t end;

    size_t n_bytes() const { return static_cast<size_t>(end - begin) * src->elem_size; }
};

void convert_chunk(const chunk & c) {
    const size_t esize = c.src->elem_size;
    const uint8_t * src = c.src->data + static_cast<size_t>(c.begin) * esize;
    const int64_t n = c.end - c.begin;
    // A safetensors header of odd length leaves 16-bit data at odd addresses; convert_to_f32 reads uint16_t.
    if (reinterpret_cast<uintptr_t>(src) % esize != 0) {
        std::vector<uint8_t> aligned(static_cast<size_t>(n) * esize + esize);
        uint8_t * p = aligned.data() + (esize - reinterpret_cast<uintptr_t>(aligned.data()) % esize) % esize;
        std::memcpy(p, src, static_cast<size_t>(n) * esize);
        convert_to_f32(c.src->type, p, c.dst + c.begin, n);
        return;
    }
    convert_to_f32(c.src->type, src, c.dst + c.begin, n);
}

} // namespace

void convert_weights(const std::vector<weight_job> & jobs, const load_progress_fn & progress) {
    std::vector<chunk> chunks;
    size_t total = 0;
    for (const weight_job & j : jobs) {
        const auto chunk_elems = static_cast<int64_t>(chunk_bytes / j.src->elem_size);
        for (int64_t b = 0; b < j.src->n_elements; b += chunk_elems) {
            const int64_t e = b + chunk_elems < j.src->n_elements ? b + chunk_elems : j.src->n_elements;
            chunks.push_back(chunk{j.src, j.dst, b, e});
        }
        total += j.src->n_bytes();
    }

    const size_t step = total / n_reports + 1;
    std::atomic<size_t> done{0};
    std::atomic<bool> stop{false};
    std::exception_ptr progress_error; // an exception must not leave the parallel region; rethrown below
    size_t reported = 0;               // touched by thread 0 only
    const auto n = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
        if (stop.load(std::memory_order_relaxed)) {
            continue;
        }
        // Dtypes were checked by the caller, so convert_to_f32 cannot throw here.
        const chunk & c = chunks[static_cast<size_t>(i)];
        convert_chunk(c);
        const size_t d = done.fetch_add(c.n_bytes()) + c.n_bytes();
        if (progress && omp_get_thread_num() == 0 && d >= reported + step) {
            try {
                progress(d, total);
                reported = d;
            } catch (...) {
                progress_error = std::current_exception();
                stop = true;
            }
        }
    }
    if (progress_error) {
        std::rethrow_exception(progress_error);
    }
    if (progress && (reported != total || total == 0)) {
        progress(total, total);
    }
}

} // namespace specattn
