// THE paged KV-cache layout. One definition, used by the block manager (src/kv), the CPU reference backend and the
// CUDA kernels; kernels include this header and nothing else of the engine.
//
// Storage: one K pool and one V pool, each
//     [n_layer][n_pages][n_head_kv][page_size][head_dim]     (f32 on the CPU backend; bf16 on CUDA)
// A sequence's token at position pos lives in physical page  pages[pos / page_size]  at slot  pos % page_size
// (paged_kv_place_of).
// A sequence's page list is shared by all layers: page p means the same index in every layer's pool.
//
// Why heads outside slots inside a page (HND): a GQA-packed decode/verify kernel owns one KV head and streams its
// pages; page_size × head_dim elements of one head are then contiguous, one coalesced read per page.
// Sparse attention (drafts) is a list of positions mapped through the same page list: no second layout.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define SPECATTN_KV_HD __host__ __device__
#else
#define SPECATTN_KV_HD
#endif

namespace specattn {

// Element offset of (page, head, slot, dim 0) within one layer's K or V pool: the formula every backend and kernel
// uses (kernels that get the layer's base pointer call this one).
SPECATTN_KV_HD inline int64_t paged_kv_page_offset(int64_t page, int64_t head, int64_t slot, int64_t n_head_kv,
                                                   int64_t page_size, int64_t head_dim) {
    return ((page * n_head_kv + head) * page_size + slot) * head_dim;
}

// Where position pos of a sequence lives: physical page pages[index], row `slot` of that page.
template <typename I> struct paged_kv_place {
    I index;
    I slot;
};

// pos / page_size and pos % page_size. page_shift = log2(page_size) where the caller knows it (>= 0; the attention
// plan computes it once) turns them into a shift and a mask: kernels that place a position per thread and block pay
// ~25 instructions for a division by a run-time page size (docs/perf_attention.md, session 18); -1 divides.
template <typename I>
SPECATTN_KV_HD inline paged_kv_place<I> paged_kv_place_of(I pos, I page_size, int page_shift = -1) {
    if (page_shift >= 0) {
        return {static_cast<I>(pos >> page_shift), static_cast<I>(pos & (page_size - 1))};
    }
    return {static_cast<I>(pos / page_size), static_cast<I>(pos % page_size)};
}

struct paged_kv_layout {
    int64_t n_layer = 0;
    int64_t n_pages = 0;
    int64_t n_head_kv = 0;
    int64_t page_size = 0;
    int64_t head_dim = 0;

    int64_t page_elems() const { return n_head_kv * page_size * head_dim; }
    int64_t layer_elems() const { return n_pages * page_elems(); }
    int64_t total_elems() const { return n_layer * layer_elems(); }

    // Element offset of (layer, page, head, slot, dim 0) in a K or V pool.
    int64_t offset(int64_t layer, int64_t page, int64_t head, int64_t slot) const {
        return layer * layer_elems() + paged_kv_page_offset(page, head, slot, n_head_kv, page_size, head_dim);
    }
};

// The pages of one sequence as kernels see them: `pages` holds ceil(len / page_size) physical page indices.
struct paged_kv_seq {
    const int32_t * pages = nullptr; // [ceil(len / page_size)]
    int64_t len = 0;                 // positions [0, len) hold valid K/V
};

// Element offset of position pos of a sequence (any layer's base added by the caller via layout.offset).
inline int64_t paged_kv_offset(const paged_kv_layout & layout, const paged_kv_seq & seq, int64_t layer, int64_t head,
                               int64_t pos) {
    const paged_kv_place<int64_t> at = paged_kv_place_of(pos, layout.page_size);
    return layout.offset(layer, seq.pages[at.index], head, at.slot);
}

} // namespace specattn
