// The CPU backend's side of speculative decoding (backend/selection.h): the held draft selections, the positions a
// draft row attends to (held lists, or quest's per-layer choice from the row's queries), and the score sinks a
// verification fills. The reference the CUDA backend's kernels are tested against.
#include "backend/cpu/cpu_backend.h"

#include "core/check.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace specattn {

void cpu_backend::set_selection(int32_t seq, const std::vector<int32_t> & positions) {
    SPECATTN_CHECK(std::is_sorted(positions.begin(), positions.end()), "a selection must be in ascending order");
    held_selection & h = held_[seq];
    h.lists.assign(static_cast<size_t>(layout_.n_layer * layout_.n_head_kv), positions);
}

const cpu_backend::held_sink * cpu_backend::find_sink(int32_t seq, int32_t id) const {
    const auto it = held_.find(seq);
    if (it == held_.end()) {
        return nullptr;
    }
    const std::vector<held_sink> & sinks = it->second.sinks;
    const auto s = std::find_if(sinks.begin(), sinks.end(), [&](const held_sink & x) { return x.id == id; });
    return s == sinks.end() ? nullptr : &*s;
}

cpu_backend::held_sink * cpu_backend::find_sink(int32_t seq, int32_t id) {
    return const_cast<held_sink *>(std::as_const(*this).find_sink(seq, id));
}

int64_t cpu_backend::select_top_k(int32_t seq, int32_t sink, int64_t k) {
    const held_sink * s = find_sink(seq, sink);
    SPECATTN_CHECK(s != nullptr, "sequence %d has no score sink %d to select from", seq, sink);
    held_selection & h = held_[seq];
    const int64_t n_kv = layout_.n_head_kv;
    const int64_t groups = s->per_kv_head ? n_kv : 1;
    h.lists.resize(static_cast<size_t>(layout_.n_layer * n_kv));
    for (int64_t l = 0; l < layout_.n_layer; ++l) {
        for (int64_t g = 0; g < groups; ++g) {
            const float * score = s->score.data() + (l * groups + g) * s->domain;
            const std::vector<int64_t> top = top_k_positions(score, s->domain, k);
            std::vector<int32_t> list(top.begin(), top.end());
            // A shared selection is the same list for every KV head of the layer.
            for (int64_t kvh = s->per_kv_head ? g : 0; kvh < (s->per_kv_head ? g + 1 : n_kv); ++kvh) {
                h.lists[static_cast<size_t>(l * n_kv + kvh)] = list;
            }
        }
    }
    return std::min(k, s->domain);
}

void cpu_backend::release_selection(int32_t seq) { held_.erase(seq); }

const std::vector<float> * cpu_backend::sink_scores(int32_t seq, int32_t id) const {
    const held_sink * s = find_sink(seq, id);
    return s == nullptr ? nullptr : &s->score;
}

const std::vector<int32_t> & cpu_backend::held_list(int32_t seq, int64_t layer, int64_t kv_head) const {
    const auto it = held_.find(seq);
    SPECATTN_CHECK(it != held_.end() && !it->second.lists.empty(), "sequence %d holds no selection", seq);
    return it->second.lists[static_cast<size_t>(layer * layout_.n_head_kv + kv_head)];
}

void cpu_backend::draft_positions(const draft_attention & d, int32_t seq, int64_t layer, int64_t kv_head,
                                  int64_t pos, const float * q_group, const paged_kv_seq & view,
                                  std::vector<int64_t> & out) const {
    SPECATTN_CHECK(d.recent_from >= 0 && d.recent_from <= pos + 1, "draft recent window starts at %lld past %lld",
                   static_cast<long long>(d.recent_from), static_cast<long long>(pos));
    out.clear();
    if (d.quest_block > 0) {
        // Channel-wise key bounds of every whole block before the row's own block, scored by the row's queries.
        const model_hparams & hp = model_.hp;
        const int64_t hd = hp.head_dim;
        const int64_t block = d.quest_block;
        const int64_t n_before = d.recent_from / block;
        SPECATTN_CHECK(d.recent_from % block == 0 && d.quest_blocks <= n_before,
                       "quest draft view of %lld blocks before position %lld is inconsistent",
                       static_cast<long long>(d.quest_blocks), static_cast<long long>(d.recent_from));
        std::vector<float> bound(static_cast<size_t>(n_before));
        std::vector<float> kmin(static_cast<size_t>(hd));
        std::vector<float> kmax(static_cast<size_t>(hd));
        for (int64_t b = 0; b < n_before; ++b) {
            std::fill(kmin.begin(), kmin.end(), INFINITY);
            std::fill(kmax.begin(), kmax.end(), -INFINITY);
            for (int64_t t = b * block; t < (b + 1) * block; ++t) {
                const float * k = k_pool_.data() + paged_kv_offset(layout_, view, layer, kv_head, t);
                for (int64_t c = 0; c < hd; ++c) {
                    kmin[static_cast<size_t>(c)] = std::min(kmin[static_cast<size_t>(c)], k[c]);
                    kmax[static_cast<size_t>(c)] = std::max(kmax[static_cast<size_t>(c)], k[c]);
                }
            }
            bound[static_cast<size_t>(b)] =
                quest_block_bound(q_group, hp.n_head / hp.n_head_kv, hd, kmin.data(), kmax.data());
        }
        for (int64_t b : top_k_positions(bound.data(), n_before, d.quest_blocks)) {
            for (int64_t t = b * block; t < (b + 1) * block; ++t) {
                out.push_back(t);
            }
        }
    } else if (d.n_list > 0) {
        const auto it = held_.find(seq);
        SPECATTN_CHECK(it != held_.end() && !it->second.lists.empty(), "draft row of sequence %d has no selection",
                       seq);
        const std::vector<int32_t> & list = it->second.lists[static_cast<size_t>(layer * layout_.n_head_kv + kv_head)];
        SPECATTN_CHECK(d.n_list <= static_cast<int64_t>(list.size()), "draft row reads %lld of %zu selected positions",
                       static_cast<long long>(d.n_list), list.size());
        out.assign(list.begin(), list.begin() + d.n_list);
    }
    SPECATTN_CHECK(out.empty() || out.back() < d.recent_from, "selected position %lld is not before the recent "
                   "window at %lld", static_cast<long long>(out.empty() ? 0 : out.back()),
                   static_cast<long long>(d.recent_from));
    for (int64_t t = d.recent_from; t <= pos; ++t) {
        out.push_back(t);
    }
}

void cpu_backend::begin_sinks(const forward_batch & batch, row_scores & scores) {
    const model_hparams & hp = model_.hp;
    scores.logits.assign(static_cast<size_t>(batch.n_rows()), {});
    scores.lse.assign(static_cast<size_t>(batch.n_rows()), {});
    if (!batch.sinks.empty()) {
        for (auto & [seq, h] : held_) {
            h.sinks.clear(); // backend.h: a forward with sinks replaces every held sink
        }
    }
    batch.check_sinks();
    for (const score_sink & s : batch.sinks) {
        for (int32_t r : s.rows) {
            const auto n_pos = batch.positions[static_cast<size_t>(r)] + 1;
            scores.logits[static_cast<size_t>(r)].resize(static_cast<size_t>(hp.n_head * n_pos));
            scores.lse[static_cast<size_t>(r)].resize(static_cast<size_t>(hp.n_head));
        }
        held_sink h;
        h.id = s.id;
        h.per_kv_head = s.per_kv_head;
        h.domain = s.domain;
        h.score.assign(static_cast<size_t>(hp.n_layer * (s.per_kv_head ? hp.n_head_kv : 1) * s.domain), 0.0f);
        held_[s.seq].sinks.push_back(std::move(h));
    }
}

void cpu_backend::reduce_sinks(const forward_batch & batch, int64_t layer, const row_scores & scores) {
    const model_hparams & hp = model_.hp;
    for (const score_sink & s : batch.sinks) {
        held_sink & h = *find_sink(s.seq, s.id); // begin_sinks made it
        const int64_t groups = s.per_kv_head ? hp.n_head_kv : 1;
        const int64_t heads_per_group = hp.n_head / groups;
        for (int32_t r : s.rows) {
            const int64_t n_pos = batch.positions[static_cast<size_t>(r)] + 1;
            for (int64_t head = 0; head < hp.n_head; ++head) {
                const float * row = scores.logits[static_cast<size_t>(r)].data() + head * n_pos;
                const float lse = scores.lse[static_cast<size_t>(r)][static_cast<size_t>(head)];
                float * acc = h.score.data() + (layer * groups + head / heads_per_group) * s.domain;
                for (int64_t p = 0; p < s.domain; ++p) {
                    acc[p] += s.mode == score_mode::score_mode_logit ? row[p] : std::exp(row[p] - lse);
                }
            }
        }
    }
}

void cpu_backend::finish_sinks(const forward_batch & batch) {
    for (const score_sink & s : batch.sinks) { // the same order on every rank, as collectives need
        if (!s.per_kv_head) {
            std::vector<float> & score = find_sink(s.seq, s.id)->score;
            comm_->all_reduce_sum(score.data(), static_cast<int64_t>(score.size()));
        }
    }
}

} // namespace specattn
