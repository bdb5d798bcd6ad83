#include "kv/block_manager.h"

#include "core/check.h"

namespace specattn {

kv_block_manager::kv_block_manager(int64_t n_pages, int64_t page_size) : page_size_(page_size) {
    SPECATTN_CHECK(page_size > 0, "KV page size must be positive, got %lld", static_cast<long long>(page_size));
    SPECATTN_CHECK(n_pages > 0 && n_pages <= INT32_MAX, "KV page count out of range: %lld",
                   static_cast<long long>(n_pages));
    page_refs_.assign(static_cast<size_t>(n_pages), 0);
    free_pages_.reserve(static_cast<size_t>(n_pages));
    // Stack order: page 0 is handed out first, so small tests see pages 0, 1, 2, ...
    for (int64_t p = n_pages - 1; p >= 0; --p) {
        free_pages_.push_back(static_cast<int32_t>(p));
    }
}

int32_t kv_block_manager::add_sequence() {
    for (size_t i = 0; i < seqs_.size(); ++i) {
        if (!seqs_[i].live) {
            seqs_[i] = sequence{};
            seqs_[i].live = true;
            return static_cast<int32_t>(i);
        }
    }
    seqs_.push_back(sequence{});
    seqs_.back().live = true;
    return static_cast<int32_t>(seqs_.size() - 1);
}

void kv_block_manager::remove_sequence(int32_t seq) {
    truncate(seq, 0);
    get(seq).live = false;
}

const kv_block_manager::sequence & kv_block_manager::get(int32_t seq) const {
    if (seq < 0 || static_cast<size_t>(seq) >= seqs_.size() || !seqs_[static_cast<size_t>(seq)].live) {
        SPECATTN_ABORT("KV sequence %d is not live", seq);
    }
    return seqs_[static_cast<size_t>(seq)];
}

kv_block_manager::sequence & kv_block_manager::get(int32_t seq) {
    return const_cast<sequence &>(static_cast<const kv_block_manager *>(this)->get(seq));
}

bool kv_block_manager::is_live(int32_t seq) const {
    return seq >= 0 && static_cast<size_t>(seq) < seqs_.size() && seqs_[static_cast<size_t>(seq)].live;
}

bool kv_block_manager::can_append(int32_t seq, int64_t n) const {
    const sequence & s = get(seq);
    const int64_t need = kv_pages_for(s.len + n, page_size_) - static_cast<int64_t>(s.pages.size());
    return need <= n_free_pages();
}

void kv_block_manager::append(int32_t seq, int64_t n) {
    SPECATTN_CHECK(n >= 0, "cannot append %lld positions", static_cast<long long>(n));
    sequence & s = get(seq);
    const int64_t need = kv_pages_for(s.len + n, page_size_) - static_cast<int64_t>(s.pages.size());
    SPECATTN_CHECK(need <= n_free_pages(),
                   "out of KV cache memory: sequence needs %lld more pages of %lld tokens, %lld are free",
                   static_cast<long long>(need), static_cast<long long>(page_size_),
                   static_cast<long long>(n_free_pages()));
    for (int64_t i = 0; i < need; ++i) {
        const int32_t p = free_pages_.back();
        free_pages_.pop_back();
        page_refs_[static_cast<size_t>(p)] = 1;
        s.pages.push_back(p);
    }
    s.len += n;
}

void kv_block_manager::truncate(int32_t seq, int64_t len) {
    sequence & s = get(seq);
    SPECATTN_CHECK(len >= 0 && len <= s.len, "cannot truncate a sequence of %lld positions to %lld",
                   static_cast<long long>(s.len), static_cast<long long>(len));
    const int64_t keep = kv_pages_for(len, page_size_);
    while (static_cast<int64_t>(s.pages.size()) > keep) {
        const int32_t p = s.pages.back();
        s.pages.pop_back();
        page_refs_[static_cast<size_t>(p)] = 0;
        free_pages_.push_back(p);
    }
    s.len = len;
}

int64_t kv_block_manager::length(int32_t seq) const { return get(seq).len; }

const std::vector<int32_t> & kv_block_manager::pages(int32_t seq) const { return get(seq).pages; }

paged_kv_seq kv_block_manager::view(int32_t seq) const {
    const sequence & s = get(seq);
    return paged_kv_seq{s.pages.data(), s.len};
}

} // namespace specattn
