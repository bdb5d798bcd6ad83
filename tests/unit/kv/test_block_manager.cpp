// The paged KV block manager: append, truncate (speculative rollback), many sequences, page reuse, exhaustion.
#include "core/check.h"
#include "kv/block_manager.h"

#include <gtest/gtest.h>

#include <set>

using namespace specattn;

TEST(block_manager, append_allocates_pages_on_demand) {
    kv_block_manager kv(/*n_pages=*/8, /*page_size=*/4);
    const int32_t s = kv.add_sequence();
    EXPECT_EQ(kv.length(s), 0);
    EXPECT_TRUE(kv.pages(s).empty());
    kv.append(s, 1);
    EXPECT_EQ(kv.pages(s).size(), 1u);
    kv.append(s, 3); // fills page 0 exactly
    EXPECT_EQ(kv.pages(s).size(), 1u);
    kv.append(s, 1); // spills into a second page
    EXPECT_EQ(kv.pages(s).size(), 2u);
    EXPECT_EQ(kv.length(s), 5);
    EXPECT_EQ(kv.n_free_pages(), 6);
}

TEST(block_manager, truncate_frees_whole_pages_only) {
    kv_block_manager kv(8, 4);
    const int32_t s = kv.add_sequence();
    kv.append(s, 10); // 3 pages
    EXPECT_EQ(kv.n_free_pages(), 5);
    kv.truncate(s, 9); // still 3 pages
    EXPECT_EQ(kv.n_free_pages(), 5);
    kv.truncate(s, 8); // exactly 2 pages
    EXPECT_EQ(kv.n_free_pages(), 6);
    EXPECT_EQ(kv.length(s), 8);
    kv.truncate(s, 0);
    EXPECT_EQ(kv.n_free_pages(), 8);
    EXPECT_THROW(kv.truncate(s, 1), error); // cannot grow by truncating
}

TEST(block_manager, speculative_append_then_rollback_keeps_prefix_pages) {
    kv_block_manager kv(16, 4);
    const int32_t s = kv.add_sequence();
    kv.append(s, 6);
    const std::vector<int32_t> before = kv.pages(s);
    kv.append(s, 7); // drafts
    kv.truncate(s, 7); // accept one
    ASSERT_GE(kv.pages(s).size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) {
        EXPECT_EQ(kv.pages(s)[i], before[i]) << "committed pages must not move";
    }
    EXPECT_EQ(kv.pages(s).size(), 2u);
}

TEST(block_manager, many_sequences_never_share_pages) {
    kv_block_manager kv(64, 3);
    std::vector<int32_t> ids;
    for (int i = 0; i < 7; ++i) {
        ids.push_back(kv.add_sequence());
        kv.append(ids.back(), 1 + 4 * i);
    }
    kv.truncate(ids[3], 2);
    kv.remove_sequence(ids[5]);
    ids.erase(ids.begin() + 5);
    const int32_t again = kv.add_sequence(); // reuses the removed id
    kv.append(again, 11);
    ids.push_back(again);
    std::set<int32_t> seen;
    int64_t used = 0;
    for (int32_t s : ids) {
        EXPECT_EQ(static_cast<int64_t>(kv.pages(s).size()), kv_pages_for(kv.length(s), 3));
        for (int32_t p : kv.pages(s)) {
            EXPECT_TRUE(seen.insert(p).second) << "page " << p << " owned twice";
            EXPECT_GE(p, 0);
            EXPECT_LT(p, 64);
        }
        used += static_cast<int64_t>(kv.pages(s).size());
    }
    EXPECT_EQ(used + kv.n_free_pages(), 64);
}

TEST(block_manager, exhaustion_is_an_error_and_changes_nothing) {
    kv_block_manager kv(4, 4);
    const int32_t a = kv.add_sequence();
    const int32_t b = kv.add_sequence();
    kv.append(a, 12);
    EXPECT_FALSE(kv.can_append(b, 5));
    EXPECT_TRUE(kv.can_append(b, 4));
    EXPECT_THROW(kv.append(b, 5), error);
    EXPECT_EQ(kv.length(b), 0);
    EXPECT_EQ(kv.n_free_pages(), 1);
}

TEST(block_manager, view_maps_positions_through_the_layout) {
    kv_block_manager kv(8, 4);
    const int32_t a = kv.add_sequence();
    const int32_t b = kv.add_sequence();
    kv.append(a, 4);
    kv.append(b, 4);
    kv.append(a, 2); // a: pages {0, 2}, b: {1}
    paged_kv_layout layout{/*n_layer=*/2, /*n_pages=*/8, /*n_head_kv=*/3, /*page_size=*/4, /*head_dim=*/5};
    const paged_kv_seq va = kv.view(a);
    EXPECT_EQ(va.len, 6);
    EXPECT_EQ(paged_kv_offset(layout, va, 1, 2, 5), layout.offset(1, va.pages[1], 2, 1));
    EXPECT_EQ(layout.offset(1, 2, 2, 1), ((1 * 8 + 2) * 3 * 4 + 2 * 4 + 1) * 5);
}
