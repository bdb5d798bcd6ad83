// Page bookkeeping for the paged KV cache (layout: src/kernels/paged_kv.h): a free list of physical pages and, per
// sequence, its page list and length. It owns no K/V memory; backends own the pools and index them through it.
//
// Length is the number of positions whose K/V are written. Speculative decoding writes draft K/V past the
// committed length (append), then rolls back with truncate(); truncate returns whole pages beyond the new length
// to the free list, so a rejected draft never leaks pages.
#pragma once

#include "kernels/paged_kv.h"

#include <cstdint>
#include <vector>

namespace specattn {

class kv_block_manager {
  public:
    kv_block_manager(int64_t n_pages, int64_t page_size);

    int64_t page_size() const { return page_size_; }
    int64_t n_pages() const { return static_cast<int64_t>(page_refs_.size()); }
    int64_t n_free_pages() const { return static_cast<int64_t>(free_pages_.size()); }

    // A new empty sequence; returns its id (ids of removed sequences are reused).
    int32_t add_sequence();
    // Frees all pages of the sequence; the id becomes invalid.
    void remove_sequence(int32_t seq);

    // Whether n more positions fit, counting the pages the sequence already has.
    bool can_append(int32_t seq, int64_t n) const;
    // Extends the sequence by n positions, taking pages from the free list. Throws specattn::error (out of KV
    // memory) when they do not fit; nothing changes then.
    void append(int32_t seq, int64_t n);
    // Shrinks the sequence to len positions (len <= length) and frees the pages it no longer needs.
    void truncate(int32_t seq, int64_t len);

    int64_t length(int32_t seq) const;
    const std::vector<int32_t> & pages(int32_t seq) const;
    paged_kv_seq view(int32_t seq) const;
    bool is_live(int32_t seq) const;

  private:
    struct sequence {
        bool live = false;
        int64_t len = 0;
        std::vector<int32_t> pages;
    };
    const sequence & get(int32_t seq) const;
    sequence & get(int32_t seq);

    int64_t page_size_;
    std::vector<int32_t> page_refs_;  // [n_pages] 0 = free; 1 = owned (ref counts, for prefix sharing later)
    std::vector<int32_t> free_pages_; // stack of free page indices
    std::vector<sequence> seqs_;
};

// Pages needed for len positions.
inline int64_t kv_pages_for(int64_t len, int64_t page_size) { return (len + page_size - 1) / page_size; }

} // namespace specattn
