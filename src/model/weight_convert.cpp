// Parallel fp32 conversion of checkpoint tensors (see weight_convert.h).
// Work is cut into chunks of at most chunk_elems elements so one large tensor (the embeddings) spreads over the
// threads too, and chunks are grouped into at most n_reports batches: OpenMP converts a batch, then the calling
// thread reports progress, so the callback never runs on a worker thread.
#include "model/weight_convert.h"

#include "core/dtype.h"

#include <cstring>

namespace specattn {

namespace {

constexpr int64_t chunk_elems = int64_t{1} << 18;
constexpr size_t n_reports = 100;

struct chunk {
    const tensor_ref * src;
    float * dst;
    int64_t begin; // element range [begin, end)
    int64_t end;
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
        for (int64_t b = 0; b < j.src->n_elements; b += chunk_elems) {
            const int64_t e = b + chunk_elems < j.src->n_elements ? b + chunk_elems : j.src->n_elements;
            chunks.push_back(chunk{j.src, j.dst, b, e});
        }
        total += j.src->n_bytes();
    }
    const size_t batch_bytes = total / n_reports + 1;
    size_t done = 0;
    size_t first = 0;
    while (first < chunks.size()) {
        size_t last = first;
        size_t bytes = 0;
        while (last < chunks.size() && (last == first || bytes < batch_bytes)) {
            bytes += static_cast<size_t>(chunks[last].end - chunks[last].begin) * chunks[last].src->elem_size;
            ++last;
        }
        // Dtypes were checked by the caller, so convert_to_f32 cannot throw inside the parallel region.
        const int64_t n = static_cast<int64_t>(last - first);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t i = 0; i < n; ++i) {
            convert_chunk(chunks[first + static_cast<size_t>(i)]);
        }
        done += bytes;
        first = last;
        if (progress) {
            progress(done, total);
        }
    }
    if (progress && chunks.empty()) {
        progress(0, 0);
    }
}

} // namespace specattn
