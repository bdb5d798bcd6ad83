#include "backend/cuda/selection_state.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/select_ops.h"
#include "core/check.h"

#include <algorithm>
#include <cstdlib>

namespace specattn {

namespace {

int64_t round_up(int64_t v, int64_t m) {
    return (v + m - 1) / m * m;
}

} // namespace

cuda_selection::cuda_selection(const model_hparams & hp, const paged_kv_layout & layout) : hp_(hp), layout_(layout) {
    const char * e = std::getenv("SPECATTN_FUSED_COLLECT");
    fuse_logit_sinks_ = e == nullptr || e[0] != '0';
    l2_bytes_ = cuda_l2_cache_bytes();
}

// ---- the lists ---------------------------------------------------------------------------------------------------

void cuda_selection::ensure_lists(int64_t n_slots, int64_t cap) {
    const int64_t rows_per_slot = hp_.n_layer * hp_.n_head_kv;
    const int64_t have_slots =
        sel_cap_ > 0 ? static_cast<int64_t>(lists_.bytes() / sizeof(int32_t)) / (rows_per_slot * sel_cap_) : 0;
    if (n_slots <= have_slots && cap <= sel_cap_) {
        return;
    }
    const int64_t new_slots = n_slots <= have_slots ? have_slots : std::max({n_slots, 2 * have_slots, int64_t{4}});
    const int64_t new_cap = std::max(sel_cap_, round_up(std::max<int64_t>(cap, 1) * 5 / 4, 256));
    device_buffer grown(static_cast<size_t>(new_slots * rows_per_slot * new_cap) * sizeof(int32_t));
    if (have_slots > 0) {
        // Called between passes, with the stream idle: a plain copy keeps every slot's lists.
        SPECATTN_CUDA_CHECK(cudaMemcpy2D(grown.as<void>(), static_cast<size_t>(new_cap) * sizeof(int32_t),
                                         lists_.as<void>(), static_cast<size_t>(sel_cap_) * sizeof(int32_t),
                                         static_cast<size_t>(sel_cap_) * sizeof(int32_t),
                                         static_cast<size_t>(have_slots * rows_per_slot), cudaMemcpyDeviceToDevice));
    }
    retired_.push_back(std::move(lists_));
    lists_ = std::move(grown);
    sel_cap_ = new_cap;
}

int32_t cuda_selection::slot_of(int32_t seq) {
    const auto it = slots_.find(seq);
    if (it != slots_.end()) {
        return it->second;
    }
    int32_t slot = 0;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = checked_i32(n_slots_++, "selection slot");
        ensure_lists(n_slots_, sel_cap_);
    }
    slots_[seq] = slot;
    return slot;
}

void cuda_selection::set_selection(int32_t seq, const std::vector<int32_t> & positions) {
    SPECATTN_CHECK(std::is_sorted(positions.begin(), positions.end()), "a selection must be in ascending order");
    const int32_t slot = slot_of(seq);
    const auto n = static_cast<int64_t>(positions.size());
    ensure_lists(n_slots_, n);
    if (n == 0) {
        return;
    }
    const int64_t rows = hp_.n_layer * hp_.n_head_kv;
    std::vector<int32_t> all; // the list once per layer and KV head
    all.reserve(static_cast<size_t>(rows * n));
    for (int64_t r = 0; r < rows; ++r) {
        all.insert(all.end(), positions.begin(), positions.end());
    }
    SPECATTN_CUDA_CHECK(cudaMemcpy2D(lists_.as<int32_t>() + slot * rows * sel_cap_,
                                     static_cast<size_t>(sel_cap_) * sizeof(int32_t), all.data(),
                                     static_cast<size_t>(n) * sizeof(int32_t), static_cast<size_t>(n) * sizeof(int32_t),
                                     static_cast<size_t>(rows), cudaMemcpyHostToDevice));
}

const cuda_selection::sink_layout * cuda_selection::find_sink(int32_t seq, int32_t id) const {
    const auto it = sinks_.find(seq);
    if (it == sinks_.end()) {
        return nullptr;
    }
    const auto s =
        std::find_if(it->second.begin(), it->second.end(), [&](const sink_layout & x) { return x.id == id; });
    return s == it->second.end() ? nullptr : &*s;
}

int64_t cuda_selection::select_top_k(int32_t seq, int32_t sink, int64_t k) {
    const sink_layout * s = find_sink(seq, sink);
    SPECATTN_CHECK(s != nullptr, "sequence %d has no score sink %d to select from", seq, sink);
    k = std::clamp<int64_t>(k, 0, s->domain);
    queued_.push_back({seq, sink, k});
    return k;
}

void cuda_selection::release(int32_t seq) {
    const auto it = slots_.find(seq);
    if (it != slots_.end()) {
        free_slots_.push_back(it->second);
        slots_.erase(it);
    }
    sinks_.erase(seq);
    quest_seqs_.erase(seq);
    queued_.erase(std::remove_if(queued_.begin(), queued_.end(), [&](const queued_top_k & q) { return q.seq == seq; }),
                  queued_.end());
    pending_.erase(
        std::remove_if(pending_.begin(), pending_.end(), [&](const pending_top_k & q) { return q.seq == seq; }),
        pending_.end());
}

// ---- inspection ---------------------------------------------------------------------------------------------------

void cuda_selection::flush(cudaStream_t stream) {
    begin_forward(forward_batch{}); // the queue is pinned; no sinks change
    reserve_pending();
    meta_words m;
    put_top_k_jobs(m);
    if (top_k_jobs_.empty()) {
        return;
    }
    device_buffer words(m.words.size() * sizeof(int32_t));
    SPECATTN_CUDA_CHECK(cudaMemcpy(words.as<void>(), m.words.data(), words.bytes(), cudaMemcpyHostToDevice));
    bind(words.as<int32_t>());
    run_queued_top_k(stream);
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    bind(nullptr);
    end_pass();
}

std::vector<float> cuda_selection::sink_scores(int32_t seq, int32_t id) const {
    const sink_layout * s = find_sink(seq, id);
    if (s == nullptr) {
        return {};
    }
    std::vector<float> out(static_cast<size_t>(hp_.n_layer * s->n_groups * s->domain));
    for (int64_t l = 0; l < hp_.n_layer; ++l) { // layers are layer_stride_ apart, groups group_stride_
        SPECATTN_CUDA_CHECK(cudaMemcpy2D(
            out.data() + l * s->n_groups * s->domain, static_cast<size_t>(s->domain) * sizeof(float),
            arena_.as<float>() + s->offset + l * layer_stride_, static_cast<size_t>(group_stride_) * sizeof(float),
            static_cast<size_t>(s->domain) * sizeof(float), static_cast<size_t>(s->n_groups), cudaMemcpyDeviceToHost));
    }
    return out;
}

float * cuda_selection::sink_block(int32_t seq, int32_t id, int64_t & n) {
    const sink_layout * s = find_sink(seq, id);
    n = s == nullptr ? 0 : hp_.n_layer * layer_stride_;
    return s == nullptr ? nullptr : arena_.as<float>() + s->offset;
}

std::vector<int32_t> cuda_selection::held_list(int32_t seq, int64_t layer, int64_t kv_head, int64_t n) const {
    const auto it = slots_.find(seq);
    SPECATTN_CHECK(it != slots_.end() && n <= sel_cap_, "sequence %d holds no selection of %lld entries", seq,
                   static_cast<long long>(n));
    std::vector<int32_t> out(static_cast<size_t>(n));
    const int64_t at = ((it->second * hp_.n_layer + layer) * hp_.n_head_kv + kv_head) * sel_cap_;
    SPECATTN_CUDA_CHECK(cudaMemcpy(out.data(), lists_.as<int32_t>() + at, static_cast<size_t>(n) * sizeof(int32_t),
                                   cudaMemcpyDeviceToHost));
    return out;
}

// ---- a forward ---------------------------------------------------------------------------------------------------

void cuda_selection::begin_forward(const forward_batch & batch) {
    // Queued top-k requests are pinned to the sinks they name, before those are replaced.
    for (const queued_top_k & q : queued_) {
        // select_top_k checked that the sink exists
        pending_.push_back({q.seq, *find_sink(q.seq, q.sink), layer_stride_, group_stride_, q.k});
    }
    queued_.clear();
    pending_scores_ = arena_.as<float>();
    if (batch.sinks.empty()) {
        return; // a draft forward: the verification's sinks stay
    }

    // The batch's sinks, one arena block each of [L][groups][domain] with common strides.
    int64_t max_domain = 0;
    int64_t max_groups = 1;
    batch.check_sinks();
    for (const score_sink & s : batch.sinks) {
        max_domain = std::max(max_domain, s.domain);
        max_groups = std::max<int64_t>(max_groups, s.per_kv_head ? hp_.n_head_kv : 1);
    }
    // Rounded up so that the layout (and a captured graph's parameters) changes once per 1024 positions.
    group_stride_ = round_up(std::max<int64_t>(max_domain, 1), 1024);
    layer_stride_ = max_groups * group_stride_;
    const int64_t block = hp_.n_layer * layer_stride_;
    sinks_.clear(); // the arena is laid out anew: every earlier sink is gone
    int64_t offset = 0;
    for (const score_sink & s : batch.sinks) {
        sink_layout l;
        l.id = s.id;
        l.n_groups = s.per_kv_head ? checked_i32(hp_.n_head_kv, "KV heads") : 1;
        l.domain = s.domain;
        l.offset = offset;
        offset += block;
        sinks_[s.seq].push_back(l);
    }
    const auto bytes = static_cast<size_t>(offset) * sizeof(float);
    if (arena_.bytes() < bytes) {
        retired_.push_back(std::move(arena_)); // the queued top-k jobs still read it in this forward
        arena_ = device_buffer(bytes + bytes / 4);
    }
}

void cuda_selection::plan_rows(const forward_batch & batch, int64_t r_begin, int64_t r_end,
                               std::vector<attention_plan_row> & rows, attention_plan_config & cfg) {
    // Rows of sinks reduced after the attention are collected; the rows of a logit sink are summed in the kernel
    // instead (sum_target = the sink's index) when they lie in this pass, belong to no other sink and no other sink's
    // row lies between them (the plan numbers a target's partial rows consecutively), no sliding window masks
    // positions of the domain, and the rows from the first to the last one (a verification's) fit one tile with the
    // sum vector (attention_sum_vector_fits: G = 4 up to 7 rows).
    const auto in_pass = [&](int64_t r) { return r >= r_begin && r < r_end; };
    std::vector<int32_t> sinks_of_row(static_cast<size_t>(r_end - r_begin), 0);
    for (const score_sink & s : batch.sinks) {
        for (int32_t r : s.rows) {
            if (in_pass(r)) {
                ++sinks_of_row[static_cast<size_t>(r - r_begin)];
            }
        }
    }
    const auto summed = [&](const score_sink & s) {
        const auto [lo, hi] = std::minmax_element(s.rows.begin(), s.rows.end());
        if (!fuse_logit_sinks_ || s.mode != score_mode::score_mode_logit || cfg.sliding_window > 0 ||
            !attention_sum_vector_fits(hp_.n_head / hp_.n_head_kv, *hi - *lo + 1) || !in_pass(*lo) || !in_pass(*hi)) {
            return false;
        }
        for (int64_t r = *lo; r <= *hi; ++r) {
            const bool own = std::find(s.rows.begin(), s.rows.end(), static_cast<int32_t>(r)) != s.rows.end();
            if (sinks_of_row[static_cast<size_t>(r - r_begin)] != (own ? 1 : 0)) {
                return false;
            }
        }
        return true;
    };
    bool any_summed = false;
    for (size_t k = 0; k < batch.sinks.size(); ++k) {
        const score_sink & s = batch.sinks[k];
        const bool sum = summed(s);
        any_summed = any_summed || sum;
        for (int32_t r : s.rows) {
            if (in_pass(r)) {
                attention_plan_row & row = rows[static_cast<size_t>(r - r_begin)];
                row.sum_target = sum ? static_cast<int32_t>(k) : -1;
                row.collect = !sum;
            }
        }
    }
    sum_cap_ = 0;
    if (any_summed) {
        for (const attention_plan_row & row : rows) { // a partial row spans its tile, which may reach past the sink
            sum_cap_ = std::max(sum_cap_, round_up(row.pos + 1, 256)); // stable for 256 positions
        }
    }
    int64_t need_cap = 0;
    int64_t n_collect = 0;
    collect_cap_ = 0;
    for (int64_t i = 0; i < r_end - r_begin; ++i) {
        attention_plan_row & row = rows[static_cast<size_t>(i)];
        const draft_attention * d = batch.draft_of(r_begin + i);
        if (d != nullptr) {
            if (d->quest_block > 0) {
                SPECATTN_CHECK(d->quest_block == layout_.page_size,
                               "on the CUDA backend Quest's blocks are KV pages: --spec-block must be %lld, not %lld",
                               static_cast<long long>(layout_.page_size), static_cast<long long>(d->quest_block));
                if (kmin_.bytes() == 0) {
                    const auto meta =
                        static_cast<size_t>(hp_.n_layer * layout_.n_pages * hp_.n_head_kv * hp_.head_dim) *
                        sizeof(bf16);
                    kmin_ = device_buffer(meta);
                    kmax_ = device_buffer(meta);
                }
            }
            row.sel = slot_of(row.seq);
            row.sel_n = d->n_list;
            row.sel_recent = d->recent_from;
            need_cap = std::max(need_cap, d->n_list);
        }
        if (row.collect) {
            ++n_collect;
            collect_cap_ = std::max(collect_cap_, round_up(row.pos + 1, 256)); // stable for 256 positions
        }
    }
    ensure_lists(n_slots_, need_cap);
    reserve_pending();
    const auto logit_bytes = static_cast<size_t>(n_collect * hp_.n_head * collect_cap_) * sizeof(bf16);
    if (collect_logits_.bytes() < logit_bytes) {
        collect_logits_ = device_buffer(logit_bytes + logit_bytes / 4);
    }
    const auto lse_bytes = static_cast<size_t>(n_collect * hp_.n_head) * sizeof(float);
    if (collect_lse_.bytes() < lse_bytes) {
        collect_lse_ = device_buffer(lse_bytes * 2);
    }
    cfg.sel_cap = sel_cap_;
    cfg.collect_cap = collect_cap_;
    cfg.sum_cap = sum_cap_;
}

void cuda_selection::put_jobs(const forward_batch & batch, const kv_block_manager & kv, int64_t r_begin, int64_t r_end,
                              const std::vector<attention_plan_row> & rows, const attention_plan & plan,
                              meta_words & meta) {
    const int64_t n = r_end - r_begin;

    // Score reduce: each sink's rows are consecutive collect indices of this pass (the plan numbers the rows
    // plan_rows marked collected in row order).
    std::vector<int32_t> collect_index(static_cast<size_t>(n), -1);
    int32_t n_collected = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (rows[static_cast<size_t>(i)].collect) {
            collect_index[static_cast<size_t>(i)] = n_collected++;
        }
    }
    std::vector<score_reduce_job> reduce;
    reduce_max_domain_ = 0;
    reduce_max_groups_ = 1;
    const auto sum_bytes = static_cast<size_t>(plan.n_sum_slots * hp_.n_head_kv * sum_cap_) * sizeof(float);
    if (sum_partial_.bytes() < sum_bytes) {
        sum_partial_ = device_buffer(sum_bytes + sum_bytes / 4);
    }
    for (size_t k = 0; k < batch.sinks.size(); ++k) {
        const score_sink & s = batch.sinks[k];
        if (s.rows.front() < r_begin || s.rows.front() >= r_end) {
            continue; // another pass's sink
        }
        const sink_layout & l = *find_sink(s.seq, s.id); // begin_forward laid it out
        score_reduce_job j;
        j.domain = checked_i32(s.domain, "score domain");
        j.n_groups = l.n_groups;
        j.out_offset = l.offset;
        if (rows[static_cast<size_t>(s.rows.front() - r_begin)].sum_target >= 0) { // summed by the kernel (plan_rows)
            SPECATTN_CHECK(k < plan.sum_slots.size() && plan.sum_slots[k].second > 0,
                           "score sink %d of sequence %d: its summed rows have no partial rows", s.id, s.seq);
            j.collect0 = plan.sum_slots[k].first;
            j.n_rows = plan.sum_slots[k].second;
            j.mode = score_reduce_mode::score_reduce_mode_partials;
        } else {
            j.collect0 = collect_index[static_cast<size_t>(s.rows.front() - r_begin)];
            j.n_rows = static_cast<int32_t>(s.rows.size()); // at most the rows of a pass
            for (size_t r = 0; r < s.rows.size(); ++r) {
                SPECATTN_CHECK(s.rows[r] >= r_begin && s.rows[r] < r_end &&
                                   collect_index[static_cast<size_t>(s.rows[r] - r_begin)] ==
                                       j.collect0 + static_cast<int32_t>(r),
                               "score sink %d of sequence %d: its rows must be in one pass, in order, with no other "
                               "collected row between them",
                               s.id, s.seq);
            }
            j.mode = s.mode == score_mode::score_mode_logit ? score_reduce_mode::score_reduce_mode_logit
                                                            : score_reduce_mode::score_reduce_mode_weight;
        }
        reduce.push_back(j);
        reduce_max_domain_ = std::max(reduce_max_domain_, round_up(s.domain, 1024)); // sizes the grid only
        reduce_max_groups_ = std::max<int64_t>(reduce_max_groups_, l.n_groups);
    }
    n_reduce_ = static_cast<int64_t>(reduce.size());
    // The side rows stay in L2 for the reduce, which drops them once read, where they fit and no row is read by two
    // sinks (a shared and a per-KV-head sink of the same rows): score_reduce_params::discard.
    std::vector<int32_t> readers(static_cast<size_t>(n_collected + plan.n_sum_slots), 0);
    bool shared_rows = false;
    for (const score_reduce_job & j : reduce) {
        const int32_t base = j.mode == score_reduce_mode::score_reduce_mode_partials ? n_collected : 0;
        for (int32_t r = j.collect0; r < j.collect0 + j.n_rows; ++r) {
            shared_rows = shared_rows || ++readers[static_cast<size_t>(base + r)] > 1;
        }
    }
    side_rows_in_l2_ =
        !shared_rows &&
        attention_side_rows_in_l2(attention_side_row_bytes(plan, hp_.n_head, hp_.n_head_kv, collect_cap_, sum_cap_),
                                  l2_bytes_);
    w_reduce_ = meta.put(reduce);

    // Quest: the metadata of the pages this pass writes (every page up to the rows, for a sequence's first Quest
    // draft), and one selection job per Quest draft row.
    std::vector<int32_t> meta_pages;
    std::vector<int32_t> meta_valid;
    std::vector<quest_job> quest;
    quest_max_pages_ = 0;
    const int64_t page = layout_.page_size;
    for (int64_t i = 0; i < n;) {
        const int32_t seq = batch.seq_ids[static_cast<size_t>(r_begin + i)];
        int64_t end = i;
        bool has_quest = false;
        while (end < n && batch.seq_ids[static_cast<size_t>(r_begin + end)] == seq) {
            const draft_attention * d = batch.draft_of(r_begin + end);
            has_quest = has_quest || (d != nullptr && d->quest_block > 0);
            ++end;
        }
        const bool first_use = has_quest && quest_seqs_.insert(seq).second;
        if (quest_seqs_.count(seq) != 0) {
            const int64_t first_pos = batch.positions[static_cast<size_t>(r_begin + i)];
            const int64_t last_pos = batch.positions[static_cast<size_t>(r_begin + end - 1)];
            const std::vector<int32_t> & pages = kv.pages(seq);
            for (int64_t p = first_use ? 0 : first_pos / page; p <= last_pos / page; ++p) {
                meta_pages.push_back(pages[static_cast<size_t>(p)]);
                meta_valid.push_back(static_cast<int32_t>(p < last_pos / page ? page : last_pos % page + 1));
            }
        }
        i = end;
    }
    for (int64_t i = 0; i < n; ++i) {
        const draft_attention * d = batch.draft_of(r_begin + i);
        if (d == nullptr || d->quest_block == 0 || d->quest_blocks == 0) {
            continue;
        }
        const auto seg = std::find_if(plan.segs.begin(), plan.segs.end(), [&](const attention_segment & s) {
            return i >= s.row0 && i < s.row0 + s.n_rows;
        });
        quest_job j;
        j.row = static_cast<int32_t>(i); // a row of this pass
        j.page_table_offset = seg->page0;
        j.n_pages_before = checked_i32(d->recent_from / page, "page");
        j.k_pages = checked_i32(d->quest_blocks, "quest blocks");
        j.slot = slots_.at(batch.seq_ids[static_cast<size_t>(r_begin + i)]);
        quest.push_back(j);
        quest_max_pages_ = std::max<int64_t>(quest_max_pages_, round_up(j.n_pages_before, 64)); // grid only
    }
    n_quest_meta_ = static_cast<int64_t>(meta_pages.size());
    w_quest_meta_pages_ = meta.put(meta_pages);
    w_quest_meta_valid_ = meta.put(meta_valid);
    n_quest_ = static_cast<int64_t>(quest.size());
    w_quest_ = meta.put(quest);
}

void cuda_selection::reserve_pending() {
    int64_t need_cap = 0;
    for (const pending_top_k & q : pending_) {
        slot_of(q.seq);
        need_cap = std::max(need_cap, q.k);
    }
    ensure_lists(n_slots_, need_cap);
}

void cuda_selection::put_top_k_jobs(meta_words & meta) {
    // Made here, after every growth of the lists this pass may cause, so the offsets are the final ones.
    top_k_jobs_.clear();
    top_k_max_n_ = 0;
    for (const pending_top_k & q : pending_) {
        const int64_t slot = slots_.at(q.seq);
        const sink_layout & s = q.sink;
        for (int64_t l = 0; l < hp_.n_layer; ++l) {
            for (int64_t g = 0; g < s.n_groups; ++g) {
                top_k_job j;
                j.score_offset = s.offset + l * q.layer_stride + g * q.group_stride;
                j.n = checked_i32(s.domain, "score domain");
                j.k = checked_i32(q.k, "top-k budget");
                j.list_offset = ((slot * hp_.n_layer + l) * hp_.n_head_kv + g) * sel_cap_;
                j.n_copies = s.n_groups == 1 ? checked_i32(hp_.n_head_kv, "KV heads") : 1; // shared: every KV head
                j.copy_stride = sel_cap_;
                top_k_jobs_.push_back(j);
            }
        }
        top_k_max_n_ = std::max(top_k_max_n_, s.domain);
    }
    pending_.clear();
    if (!top_k_jobs_.empty()) {
        w_top_k_ = meta.put(top_k_jobs_);
    }
}

std::vector<int64_t> cuda_selection::launch_signature() const {
    const auto ptr = [](const device_buffer & b) {
        return static_cast<int64_t>(reinterpret_cast<intptr_t>(b.as<void>()));
    };
    return {sel_cap_,
            collect_cap_,
            n_reduce_,
            reduce_max_domain_,
            reduce_max_groups_,
            layer_stride_,
            group_stride_,
            n_quest_,
            quest_max_pages_,
            n_quest_meta_,
            static_cast<int64_t>(w_reduce_),
            static_cast<int64_t>(w_quest_meta_pages_),
            static_cast<int64_t>(w_quest_meta_valid_),
            static_cast<int64_t>(w_quest_),
            ptr(lists_),
            ptr(arena_),
            ptr(collect_logits_),
            ptr(collect_lse_),
            ptr(kmin_),
            ptr(kmax_),
            sum_cap_,
            ptr(sum_partial_),
            side_rows_in_l2_ ? 1 : 0}; // a kernel parameter of the attention and the reduce
}

// ---- launches ----------------------------------------------------------------------------------------------------

void cuda_selection::run_queued_top_k(cudaStream_t stream) {
    if (top_k_jobs_.empty()) {
        return;
    }
    top_k_params p;
    p.scores = pending_scores_;
    p.jobs = dev<top_k_job>(w_top_k_);
    p.lists = lists_.as<int32_t>();
    p.n_jobs = static_cast<int64_t>(top_k_jobs_.size());
    p.max_n = top_k_max_n_;
    launch_top_k(p, stream);
    top_k_jobs_.clear();
}

void cuda_selection::after_kv_append(int64_t layer, const bf16 * k_layer, cudaStream_t stream) {
    if (n_quest_meta_ == 0) {
        return;
    }
    const int64_t layer_meta = layout_.n_pages * hp_.n_head_kv * hp_.head_dim;
    quest_meta_params p;
    p.k_pool = k_layer;
    p.kmin = kmin_.as<bf16>() + layer * layer_meta;
    p.kmax = kmax_.as<bf16>() + layer * layer_meta;
    p.pages = dev<int32_t>(w_quest_meta_pages_);
    p.n_valid = dev<int32_t>(w_quest_meta_valid_);
    p.n_entries = n_quest_meta_;
    p.n_layer = 1;
    p.n_pages = layout_.n_pages;
    p.n_head_kv = hp_.n_head_kv;
    p.page_size = layout_.page_size;
    p.head_dim = hp_.head_dim;
    launch_quest_meta(p, stream);
}

void cuda_selection::before_attention(int64_t layer, const bf16 * q, int64_t q_row_stride, const int32_t * page_table,
                                      cudaStream_t stream) {
    if (n_quest_ == 0) {
        return;
    }
    const int64_t layer_meta = layout_.n_pages * hp_.n_head_kv * hp_.head_dim;
    quest_select_params p;
    p.q = q;
    p.q_row_stride = q_row_stride;
    p.kmin = kmin_.as<bf16>() + layer * layer_meta;
    p.kmax = kmax_.as<bf16>() + layer * layer_meta;
    p.page_table = page_table;
    p.jobs = dev<quest_job>(w_quest_);
    p.sel_pos = lists_.as<int32_t>();
    p.n_jobs = n_quest_;
    p.layer = layer;
    p.n_layer = hp_.n_layer;
    p.sel_cap = sel_cap_;
    p.n_head = hp_.n_head;
    p.n_head_kv = hp_.n_head_kv;
    p.head_dim = hp_.head_dim;
    p.page_size = layout_.page_size;
    p.max_pages_before = quest_max_pages_;
    launch_quest_select(p, stream);
}

void cuda_selection::attention_fields(int64_t layer, attention_params & ap) const {
    ap.sel_pos = lists_.as<int32_t>();
    ap.sel_cap = sel_cap_;
    ap.layer = layer;
    ap.n_layer = hp_.n_layer;
    ap.stream_kv = side_rows_in_l2_;
    if (sum_cap_ > 0) {
        ap.sum_partial = sum_partial_.as<float>();
        ap.sum_cap = sum_cap_;
    }
    if (collect_cap_ > 0) {
        ap.collect_logits = collect_logits_.as<bf16>();
        ap.collect_lse = collect_lse_.as<float>();
        ap.collect_cap = collect_cap_;
    }
}

void cuda_selection::after_attention(int64_t layer, cudaStream_t stream) {
    if (n_reduce_ == 0) {
        return;
    }
    score_reduce_params p;
    p.logits = collect_logits_.as<bf16>();
    p.lse = collect_lse_.as<float>();
    p.collect_row_stride = hp_.n_head * collect_cap_;
    p.collect_head_stride = collect_cap_;
    p.partials = sum_partial_.as<float>();
    p.partial_kv_stride = sum_cap_;
    p.jobs = dev<score_reduce_job>(w_reduce_);
    p.scores = arena_.as<float>();
    p.n_jobs = n_reduce_;
    p.n_head = hp_.n_head;
    p.n_head_kv = hp_.n_head_kv;
    p.layer = layer;
    p.layer_stride = layer_stride_;
    p.group_stride = group_stride_;
    p.max_domain = reduce_max_domain_;
    p.max_groups = reduce_max_groups_;
    p.discard = side_rows_in_l2_;
    launch_score_reduce(p, stream);
}

} // namespace specattn
