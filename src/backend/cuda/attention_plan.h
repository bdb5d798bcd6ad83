// The host-side plan of the paged attention kernel (kernels/attention.cuh) for one forward batch: segments of
// consecutive rows of a sequence, their page lists, and the work list of CTAs (row tiles × KV heads × KV chunks)
// with the partial-output slots of split tiles. It depends on the batch only, so one plan serves every layer.
// Plain C++ on vectors: the backend packs it into its per-forward metadata upload; tests build it the same way.
#pragma once

#include "kernels/kernel_params.h"

#include <cstdint>
#include <vector>

namespace specattn {

// One row as the plan sees it: its sequence's page list and its position.
struct attention_plan_row {
    const std::vector<int32_t> * pages = nullptr; // the sequence's physical pages (kv_block_manager::pages)
    int32_t seq = 0;
    int64_t pos = 0;
};

struct attention_plan_config {
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t page_size = 0;
    int64_t sliding_window = 0;
    int64_t n_sm = 132;        // CTAs to fill: split KV until about 2 per multiprocessor
    int64_t min_chunk = 256;   // positions: never split KV finer than this
    int64_t slot_capacity = 0; // partial slots the caller's workspace holds
};

struct attention_plan {
    std::vector<attention_segment> segs;
    std::vector<int32_t> page_table;
    std::vector<attention_work> work;
    std::vector<int32_t> row_slot;    // [n_rows]
    std::vector<int32_t> row_n_split; // [n_rows]
    int64_t n_slots = 0;
};

// Builds the plan. Rows of one sequence must be consecutive with consecutive positions inside each segment
// (a new segment starts where the sequence or the position run changes). Throws specattn::error when a size
// does not fit the kernel's int32 fields.
void attention_plan_build(const std::vector<attention_plan_row> & rows, const attention_plan_config & cfg,
                          attention_plan & plan);

} // namespace specattn
