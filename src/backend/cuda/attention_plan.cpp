// attention_plan_build: segments, tiles, KV split and partial slots (see attention_plan.h).
#include "backend/cuda/attention_plan.h"

#include "core/check.h"
#include "kernels/paged_kv.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

namespace specattn {

namespace {

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// A row tile before the split is chosen: KV range [kv_lo, kv_hi) in positions (dense) or list indices (sparse).
struct tile {
    int32_t seg;
    int32_t row0; // relative to the segment
    int32_t n_rows;
    int64_t kv_lo;
    int64_t kv_hi; // exclusive
};

void check_row(const attention_plan_row & row, const attention_plan_config & cfg) {
    if (row.sel >= 0) {
        SPECATTN_CHECK(!row.collect, "attention plan: sparse row at position %lld cannot be collected",
                       static_cast<long long>(row.pos));
        SPECATTN_CHECK(row.sel_n >= 0 && row.sel_n <= cfg.sel_cap,
                       "attention plan: %lld selected positions exceed the list capacity %lld",
                       static_cast<long long>(row.sel_n), static_cast<long long>(cfg.sel_cap));
        SPECATTN_CHECK(row.sel_recent >= row.sel_n && row.sel_recent <= row.pos,
                       "attention plan: recent range from %lld does not fit %lld list entries before position %lld",
                       static_cast<long long>(row.sel_recent), static_cast<long long>(row.sel_n),
                       static_cast<long long>(row.pos));
    }
    if (row.collect) {
        SPECATTN_CHECK(row.pos < cfg.collect_cap, "attention plan: collected position %lld exceeds collect_cap %lld",
                       static_cast<long long>(row.pos), static_cast<long long>(cfg.collect_cap));
    }
    if (row.sum_target >= 0) {
        SPECATTN_CHECK(row.sel < 0 && !row.collect && cfg.sliding_window <= 0,
                       "attention plan: a summed row (position %lld) must be dense, not also collected, and not under "
                       "a sliding window",
                       static_cast<long long>(row.pos));
    }
}

bool sums(const attention_plan_row & row) {
    return row.sum_target >= 0;
}

// Whether rows [r0, r0 + n) of segment s include a summed row (sum_mask, relative to collect_row0).
bool sums_in(const attention_segment & s, int64_t r0, int64_t n) {
    const int64_t lo = std::max<int64_t>(r0, s.collect_row0);
    const int64_t hi = std::min<int64_t>(r0 + n, s.collect_row0 + attention_collect_rows);
    for (int64_t r = lo; r < hi; ++r) {
        if (((s.sum_mask >> (r - s.collect_row0)) & 1u) != 0) {
            return true;
        }
    }
    return false;
}

// attention_work::early_copy: a dense work item whose first two KV blocks lie on pages no row of the batch appends
// to (the K/V rows of earlier passes) may copy them before waiting for the grid ahead. By physical page, so pages
// shared between sequences are covered too.
void mark_early_copies(const std::vector<attention_plan_row> & rows, int64_t page_size, attention_plan & plan) {
    int32_t max_page = -1;
    for (const int32_t page : plan.page_table) {
        max_page = std::max(max_page, page);
    }
    std::vector<char> appended(static_cast<size_t>(max_page + 1), 0); // [physical page]: a row appends to it
    for (const attention_plan_row & r : rows) {
        const size_t at = static_cast<size_t>(paged_kv_place_of(r.pos, page_size).index);
        if (at < r.pages->size() && (*r.pages)[at] >= 0) {
            appended[static_cast<size_t>((*r.pages)[at])] = 1;
        }
    }
    for (attention_work & w : plan.work) {
        const attention_segment & s = plan.segs[static_cast<size_t>(w.seg)];
        if (s.sel >= 0) {
            continue; // sparse: the row offsets come from selection lists the grids ahead may still be writing
        }
        const int64_t end = std::min<int64_t>(w.kv_end, int64_t{w.kv_begin} + 2 * attention_kv_block);
        bool settled = true;
        const int64_t last = paged_kv_place_of(end - 1, page_size).index;
        for (int64_t i = paged_kv_place_of(int64_t{w.kv_begin}, page_size).index; settled && i <= last; ++i) {
            const int32_t page = plan.page_table[static_cast<size_t>(s.page0 + i)];
            settled = page >= 0 && appended[static_cast<size_t>(page)] == 0;
        }
        w.early_copy = settled ? 1 : 0;
    }
}

} // namespace

void attention_plan_build(const std::vector<attention_plan_row> & rows, const attention_plan_config & cfg,
                          attention_plan & plan) {
    plan.segs.clear();
    plan.page_table.clear();
    plan.work.clear();
    plan.row_slot.assign(rows.size(), -1);
    plan.row_n_split.assign(rows.size(), 1);
    plan.n_slots = 0;
    plan.n_collect = 0;
    plan.n_sum_slots = 0;
    plan.sum_slots.clear();
    plan.mtiles_per_warp = 1;
    plan.split_d_row_tiles = 0;
    const int64_t group = cfg.n_head / cfg.n_head_kv;
    SPECATTN_CHECK(!cfg.invariant || group <= attention_invariant_tile_queries,
                   "attention plan: a GQA group of %lld query heads exceeds the invariant tile of %lld",
                   static_cast<long long>(group), static_cast<long long>(attention_invariant_tile_queries));
    // See attention_plan_config::invariant: its tiles are as large as the one kernel of every pass takes.
    const int64_t tile_queries =
        cfg.invariant && !cfg.split_d ? attention_invariant_tile_queries : attention_tile_queries;
    const int64_t rows_per_tile = std::max<int64_t>(1, tile_queries / group);
    // A tile with summed rows also holds their sum vector (attention.cuh), one query vector more.
    const int64_t rows_per_sum_tile = (tile_queries - 1) / group;

    // Segments; each distinct sequence's page list goes into the table once. A collected row more than 31 rows after
    // the segment's first collected one starts a new segment (past the 32 bits of collect_mask).
    std::map<int32_t, int32_t> page0_of;
    std::vector<int32_t> seg_target; // the sum target of each segment's summed rows (-1: none yet)
    for (size_t r = 0; r < rows.size(); ++r) {
        const attention_plan_row & row = rows[r];
        check_row(row, cfg);
        bool extends = false;
        if (!plan.segs.empty()) {
            const attention_plan_row & prev = rows[r - 1];
            const attention_segment & s = plan.segs.back();
            const bool marked = row.collect || sums(row);
            const bool has_marks = (s.collect_mask | s.sum_mask) != 0;
            extends = prev.seq == row.seq && prev.pos + 1 == row.pos && prev.sel == row.sel &&
                      (row.sel < 0 || (prev.sel_n == row.sel_n && prev.sel_recent == row.sel_recent)) &&
                      !(marked && has_marks && s.n_rows - s.collect_row0 >= attention_collect_rows) &&
                      !(sums(row) && seg_target.back() >= 0 && seg_target.back() != row.sum_target);
        }
        if (!extends) {
            auto it = page0_of.find(row.seq);
            if (it == page0_of.end()) {
                const int32_t at = checked_i32(static_cast<int64_t>(plan.page_table.size()), "page table");
                it = page0_of.emplace(row.seq, at).first;
                plan.page_table.insert(plan.page_table.end(), row.pages->begin(), row.pages->end());
            }
            attention_segment s;
            s.row0 = checked_i32(static_cast<int64_t>(r), "row");
            s.n_rows = 0;
            s.pos0 = checked_i32(row.pos, "position");
            s.page0 = it->second;
            if (row.sel >= 0) {
                s.sel = row.sel;
                s.sel_n = checked_i32(row.sel_n, "selection size");
                s.sel_recent = checked_i32(row.sel_recent, "recent position");
            }
            plan.segs.push_back(s);
            seg_target.push_back(-1);
        }
        attention_segment & s = plan.segs.back();
        if ((row.collect || sums(row)) && (s.collect_mask | s.sum_mask) == 0) {
            s.collect_row0 = s.n_rows;
        }
        if (row.collect) {
            if (s.collect_mask == 0) {
                s.collect0 = checked_i32(plan.n_collect, "collect index");
            }
            s.collect_mask |= 1u << (s.n_rows - s.collect_row0);
            ++plan.n_collect;
        }
        if (sums(row)) {
            s.sum_mask |= 1u << (s.n_rows - s.collect_row0);
            seg_target.back() = row.sum_target;
        }
        ++s.n_rows;
    }

    // Row tiles and their KV ranges: dense [lo(first row), pos(last row) + 1); sparse the list and the recent
    // range of the last row, in list indices [0, sel_n + pos(last) - sel_recent + 1).
    const bool per_position = cfg.invariant && cfg.invariant_splits > 0;
    std::vector<tile> tiles;
    for (size_t si = 0; si < plan.segs.size(); ++si) {
        const attention_segment & s = plan.segs[si];
        for (int64_t r0 = 0; r0 < s.n_rows;) {
            int64_t n = std::min(rows_per_tile, s.n_rows - r0);
            if (n * group >= tile_queries && sums_in(s, r0, n)) { // a full tile: no row left for the sum vector
                SPECATTN_CHECK(rows_per_sum_tile > 0,
                               "attention plan: a GQA group of %lld query heads leaves no room for a sum vector",
                               static_cast<long long>(group));
                n = rows_per_sum_tile;
            }
            const int64_t first = s.pos0 + r0;
            if (per_position && s.sel < 0) { // rows of one tile share their chunk
                const int64_t c = attention_invariant_chunk_at(first, cfg.invariant_splits);
                int64_t same = 1;
                while (same < n && attention_invariant_chunk_at(first + same, cfg.invariant_splits) == c) {
                    ++same;
                }
                n = same;
            }
            int64_t lo = cfg.sliding_window > 0 ? std::max<int64_t>(0, first - cfg.sliding_window + 1) : 0;
            int64_t hi = first + n;
            if (s.sel >= 0) {
                lo = 0;
                hi = s.sel_n + (first + n - 1) - s.sel_recent + 1;
            }
            tiles.push_back(tile{static_cast<int32_t>(si), static_cast<int32_t>(r0), static_cast<int32_t>(n), lo,
                                 checked_i32(hi, "kv index")});
            r0 += n;
        }
    }

    // Split KV only while the grid is short of one wave of resident CTAs, as attention_splits_for chooses for the
    // longest tile (a grid of a few CTAs gets one full wave; one that leaves many slots of its wave idle may take
    // several), never into chunks shorter than min_chunk, and only as far as the partial workspace allows (halving
    // the split until it fits; a split of 1 needs no slots). Grids of a wave or more (prefill) are not split: their
    // tiles' ranges differ too much for one length to model them.
    const int64_t wave = cfg.n_sm * cfg.ctas_per_sm;
    const int64_t base = static_cast<int64_t>(tiles.size()) * cfg.n_head_kv;
    int64_t longest = 0;
    for (const tile & t : tiles) {
        longest = std::max<int64_t>(longest, t.kv_hi - t.kv_lo);
    }
    int64_t want = base >= wave ? 1
                                : attention_splits_for(base, ceil_div(longest, attention_kv_block), wave,
                                                       std::max<int64_t>(1, longest / cfg.min_chunk));
    std::vector<int64_t> n_split(tiles.size(), 1);
    std::vector<int64_t> chunk(tiles.size(), 0);
    static_assert(attention_invariant_chunk % attention_kv_block == 0, "invariant chunks are whole KV blocks");
    // (a per-position plan takes each row's chunk from invariant_splits, whole blocks by construction)
    SPECATTN_CHECK(!cfg.invariant || per_position ||
                       (cfg.invariant_chunk > 0 && cfg.invariant_chunk % attention_kv_block == 0),
                   "attention plan: an invariant chunk of %lld positions is not a whole number of KV blocks",
                   static_cast<long long>(cfg.invariant_chunk));
    // Invariant: one work item per chunk [c C, (c + 1) C) from position 0 that the tile's range touches.
    // NOTE(attn): work items spanning several chunks (merged and written chunk by chunk, one wave of long CTAs)
    // measured within ±2% of this on the H200 (2026-11-29), so the plan keeps the simpler one-chunk CTAs.
    // Draft rows (sparse tiles) are split as a heuristic plan splits them even in an invariant plan: a draft only
    // proposes tokens (its K/V are rewritten by the verification), so nothing needs its bits to match another
    // pass, and the backend's chunk, sized for dense rows of full context, would cut a 7% list into a few CTAs.
    const auto fixed = [&](size_t i) { return cfg.invariant && plan.segs[static_cast<size_t>(tiles[i].seg)].sel < 0; };
    bool any_free = false;
    for (size_t i = 0; i < tiles.size(); ++i) {
        if (fixed(i)) {
            const attention_segment & s = plan.segs[static_cast<size_t>(tiles[i].seg)];
            chunk[i] = per_position ? attention_invariant_chunk_at(s.pos0 + tiles[i].row0, cfg.invariant_splits)
                                    : cfg.invariant_chunk;
            n_split[i] = ceil_div(tiles[i].kv_hi, chunk[i]) - tiles[i].kv_lo / chunk[i];
        } else {
            any_free = true;
        }
    }
    for (; any_free;) {
        int64_t slots = 0;
        for (size_t i = 0; i < tiles.size(); ++i) {
            if (fixed(i)) {
                continue;
            }
            const int64_t len = tiles[i].kv_hi - tiles[i].kv_lo;
            const int64_t ns = std::max<int64_t>(1, std::min(want, len / cfg.min_chunk));
            // Chunks are whole KV blocks of the kernel; recount so none is empty.
            chunk[i] = ceil_div(ceil_div(len, ns), attention_kv_block) * attention_kv_block;
            n_split[i] = ceil_div(len, chunk[i]);
            if (n_split[i] > 1) {
                slots += n_split[i] * tiles[i].n_rows;
            }
        }
        if (slots <= cfg.slot_capacity || want == 1) {
            break;
        }
        want = std::max<int64_t>(1, want / 2);
    }

    for (size_t i = 0; i < tiles.size(); ++i) {
        const tile & t = tiles[i];
        const attention_segment & s = plan.segs[static_cast<size_t>(t.seg)];
        if (n_split[i] > 1) {
            for (int32_t j = 0; j < t.n_rows; ++j) {
                plan.row_n_split[static_cast<size_t>(s.row0 + t.row0 + j)] = static_cast<int32_t>(n_split[i]);
            }
        }
    }
    // Slots in row order: row r of a split tile owns [row_slot[r], row_slot[r] + n_split).
    int64_t next = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
        if (plan.row_n_split[r] > 1) {
            plan.row_slot[r] = checked_i32(next, "slot");
            next += plan.row_n_split[r];
        } else {
            plan.row_slot[r] = -1;
        }
    }
    plan.n_slots = next;

    // Tiles with summed rows hold one more query vector, their sum vector.
    std::vector<bool> tile_sums(tiles.size(), false);
    for (size_t i = 0; i < tiles.size(); ++i) {
        tile_sums[i] = sums_in(plan.segs[static_cast<size_t>(tiles[i].seg)], tiles[i].row0, tiles[i].n_rows);
    }
    // Two row tiles per warp where the largest tile holds 17-32 query vectors (a G = 4 verify): each warp then
    // computes one 16-position chunk of a KV block for both, from one load of its K/V fragments, instead of two
    // chunks for one. Decode-only heuristic plans keep one (Q in registers), and so do plans with a 64-vector tile
    // (prefill), whose queries would not fit beside the stages in shared memory; decode-only invariant plans keep
    // one with single_tile_mpw1.
    int64_t max_vectors = 0;
    for (size_t i = 0; i < tiles.size(); ++i) {
        max_vectors = std::max<int64_t>(max_vectors, tiles[i].n_rows * group + (tile_sums[i] ? 1 : 0));
    }
    if (cfg.invariant) {
        plan.mtiles_per_warp = cfg.single_tile_mpw1 && max_vectors <= 16 ? 1 : 2;
    } else {
        plan.mtiles_per_warp = max_vectors > 16 && max_vectors <= 32 ? 2 : 1;
    }
    // Split-D row tiles: 1 or 2 for tiles of up to 32 vectors, and 4 for larger invariant ones (a G = 8 verify of 5-8
    // rows, G = 4 of 9-16; the backend puts no sum vector into them, cuda_selection::plan_rows); heuristic plans
    // leave tiles of 33-64 vectors (prefill) to attention.cuh.
    if (cfg.split_d) {
        plan.split_d_row_tiles = max_vectors <= 16 ? 1 : (max_vectors <= 32 ? 2 : (cfg.invariant ? 4 : 0));
    }

    // Partial rows of summed rows: one per tile holding some (its sum vector's), numbered in tile order, so a
    // target's slots are consecutive (its rows are; other rows between them sum nothing else).
    std::vector<int32_t> tile_sum_slot(tiles.size(), -1);
    for (size_t i = 0; i < tiles.size(); ++i) {
        if (!tile_sums[i]) {
            continue;
        }
        const tile & t = tiles[i];
        const int32_t target = seg_target[static_cast<size_t>(t.seg)];
        SPECATTN_CHECK(t.kv_hi <= cfg.sum_cap && cfg.sum_cap % 2 == 0,
                       "attention plan: summed rows reach position %lld past sum_cap %lld",
                       static_cast<long long>(t.kv_hi - 1), static_cast<long long>(cfg.sum_cap));
        if (plan.sum_slots.size() <= static_cast<size_t>(target)) {
            plan.sum_slots.resize(static_cast<size_t>(target) + 1, {0, 0});
        }
        std::pair<int32_t, int32_t> & ts = plan.sum_slots[static_cast<size_t>(target)];
        SPECATTN_CHECK(ts.second == 0 || ts.first + ts.second == plan.n_sum_slots,
                       "attention plan: the summed rows of target %d are not consecutive", target);
        if (ts.second == 0) {
            ts.first = checked_i32(plan.n_sum_slots, "sum slot");
        }
        ++ts.second;
        tile_sum_slot[i] = checked_i32(plan.n_sum_slots, "sum slot");
        ++plan.n_sum_slots;
    }

    for (size_t i = 0; i < tiles.size(); ++i) {
        const tile & t = tiles[i];
        for (int64_t kvh = 0; kvh < cfg.n_head_kv; ++kvh) {
            for (int64_t sp = 0; sp < n_split[i]; ++sp) {
                attention_work w;
                w.seg = t.seg;
                w.kv_head = static_cast<int32_t>(kvh);
                w.row0 = t.row0;
                w.n_rows = t.n_rows;
                // Invariant chunks start at multiples of the chunk from position 0, the first one too (positions
                // before a row's window are masked), so every position meets the same warp and chunk whatever
                // the tile; the others start at the tile's first position.
                const bool at_multiples = fixed(i);
                const int64_t start = at_multiples ? t.kv_lo / chunk[i] * chunk[i] : t.kv_lo;
                w.kv_begin = checked_i32(
                    at_multiples ? start + sp * chunk[i] : std::max(t.kv_lo, start + sp * chunk[i]), "kv position");
                w.kv_end = checked_i32(std::min(t.kv_hi, start + (sp + 1) * chunk[i]), "kv position");
                w.split = static_cast<int32_t>(sp);
                w.n_split = static_cast<int32_t>(n_split[i]);
                w.sum_slot = tile_sum_slot[i];
                plan.work.push_back(w);
            }
        }
    }
    mark_early_copies(rows, cfg.page_size, plan);
    // Longest work first: CTAs are dispatched in index order, so the long ones do not trail in a last wave.
    std::stable_sort(plan.work.begin(), plan.work.end(), [](const attention_work & a, const attention_work & b) {
        return a.kv_end - a.kv_begin > b.kv_end - b.kv_begin;
    });
    SPECATTN_CHECK(static_cast<int64_t>(plan.work.size()) <= INT32_MAX, "attention plan: too many CTAs");
}

bool attention_decode_mpw1_from_env() {
    const char * e = std::getenv("SPECATTN_ATTN_DECODE_MPW1");
    return e == nullptr || e[0] != '0';
}

bool attention_split_d_from_env() {
    const char * e = std::getenv("SPECATTN_ATTN_SPLIT_D");
    return e == nullptr || e[0] != '0';
}

int64_t attention_wgmma_from_env() {
    const char * e = std::getenv("SPECATTN_ATTN_WGMMA");
    if (e != nullptr && (std::strcmp(e, "0") == 0 || std::strcmp(e, "2") == 0)) {
        return e[0] - '0';
    }
    return 4;
}

int64_t attention_side_row_bytes(const attention_plan & plan, int64_t n_head, int64_t n_head_kv, int64_t collect_cap,
                                 int64_t sum_cap) {
    return plan.n_collect * n_head * collect_cap * static_cast<int64_t>(sizeof(bf16)) +
           plan.n_sum_slots * n_head_kv * sum_cap * static_cast<int64_t>(sizeof(float));
}

bool attention_side_rows_in_l2(int64_t row_bytes, int64_t l2_bytes) {
    static const bool allowed = [] {
        const char * e = std::getenv("SPECATTN_COLLECT_IN_L2");
        return e == nullptr || e[0] != '0';
    }();
    return allowed && row_bytes > 0 && 2 * row_bytes <= l2_bytes;
}

int64_t attention_splits_for(int64_t units, int64_t blocks, int64_t wave, int64_t max_splits) {
    units = std::max<int64_t>(1, units);
    wave = std::max<int64_t>(1, wave);
    int64_t best = 1;
    int64_t best_cost = INT64_MAX;
    const int64_t limit = std::min(std::max<int64_t>(1, max_splits), 8 * wave); // past 8 waves nothing improves
    for (int64_t s = 1; s <= limit; ++s) {
        const int64_t cost = ceil_div(units * s, wave) * (ceil_div(blocks, s) + attention_cta_fixed_blocks);
        if (cost < best_cost) { // strictly: the fewest splits among equals
            best = s;
            best_cost = cost;
        }
    }
    return best;
}

int64_t attention_invariant_splits_for(int64_t decode_rows, int64_t n_head_kv, int64_t ctx, int64_t n_sm,
                                       int64_t ctas_per_sm) {
    const int64_t blocks = ceil_div(std::max<int64_t>(1, ctx), attention_kv_block);
    // Chunks of at least two blocks (attention_invariant_chunk_at).
    return attention_splits_for(decode_rows * n_head_kv, blocks, n_sm * ctas_per_sm, std::max<int64_t>(1, blocks / 2));
}

int64_t attention_invariant_chunk_at(int64_t pos, int64_t splits) {
    constexpr int64_t min_chunk = 2 * attention_kv_block;
    return std::max(min_chunk,
                    ceil_div(ceil_div(pos + 1, std::max<int64_t>(1, splits)), attention_kv_block) * attention_kv_block);
}

int64_t attention_invariant_chunk_for(int64_t decode_rows, int64_t n_head_kv, int64_t ctx, int64_t n_sm,
                                      int64_t ctas_per_sm) {
    return attention_invariant_chunk_at(ctx - 1,
                                        attention_invariant_splits_for(decode_rows, n_head_kv, ctx, n_sm, ctas_per_sm));
}

attention_params attention_params_from_plan(const attention_plan & plan, const attention_plan_config & cfg,
                                            const attention_plan_device & dev) {
    attention_params p;
    p.page_table = dev.page_table;
    p.segs = dev.segs;
    p.work = dev.work;
    p.row_slot = dev.row_slot;
    p.row_n_split = dev.row_n_split;
    p.n_work = static_cast<int64_t>(plan.work.size());
    p.mtiles_per_warp = plan.mtiles_per_warp;
    p.split_d_row_tiles = plan.split_d_row_tiles;
    p.wgmma = cfg.wgmma_row_tiles > 0 && plan.split_d_row_tiles >= cfg.wgmma_row_tiles;
    p.n_seg = static_cast<int64_t>(plan.segs.size());
    p.n_slots = plan.n_slots;
    p.n_rows = static_cast<int64_t>(plan.row_slot.size());
    p.n_head = cfg.n_head;
    p.n_head_kv = cfg.n_head_kv;
    p.page_size = cfg.page_size;
    const auto page_size = static_cast<uint64_t>(cfg.page_size);
    p.page_shift = std::has_single_bit(page_size) ? std::countr_zero(page_size) : -1;
    p.sliding_window = cfg.sliding_window;
    p.sel_cap = cfg.sel_cap;
    p.collect_cap = cfg.collect_cap;
    p.n_sum_slots = plan.n_sum_slots;
    p.sum_cap = cfg.sum_cap;
    return p;
}

} // namespace specattn
