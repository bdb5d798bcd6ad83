// device_sampler (see device_sampler.h). Every upload is staged in pinned memory that the host rewrites only once
// the stream has finished the previous pass (each pass ends with a synchronization).
#include "backend/cuda/device_sampler.h"

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/select_ops.h"
#include "core/check.h"

#include <algorithm>
#include <cstring>

namespace specattn {

namespace {

size_t align8(size_t n) {
    return (n + 7) / 8 * 8;
}

sample_config config_of(const sampling_params & p) {
    sample_config c;
    c.temperature = p.temperature;
    c.top_k = p.top_k;
    c.top_p = p.top_p;
    c.min_p = p.min_p;
    return c;
}

} // namespace

void * device_sampler::staging(size_t bytes) {
    if (host_.bytes() < bytes) {
        host_ = pinned_buffer(bytes + bytes / 2);
        dev_ = device_buffer(bytes + bytes / 2);
    }
    return host_.as<void>();
}

void device_sampler::probs(const float * logits, const std::vector<sampling_params> & params,
                           const std::vector<double> * uniforms, float * dst, cudaStream_t stream) {
    const auto n = static_cast<int64_t>(params.size());
    const size_t cfg_bytes = align8(params.size() * sizeof(sample_config));
    const size_t bytes = cfg_bytes + (uniforms != nullptr ? uniforms->size() * sizeof(double) : 0);
    char * h = static_cast<char *>(staging(bytes));
    for (size_t k = 0; k < params.size(); ++k) {
        reinterpret_cast<sample_config *>(h)[k] = config_of(params[k]);
    }
    if (uniforms != nullptr) {
        std::memcpy(h + cfg_bytes, uniforms->data(), uniforms->size() * sizeof(double));
    }
    SPECATTN_CUDA_CHECK(cudaMemcpyAsync(dev_.as<void>(), h, bytes, cudaMemcpyHostToDevice, stream));
    if (rows_ < n) { // only earlier passes read the old scratch, and they have ended
        work_ = device_buffer(static_cast<size_t>(n * n_vocab_) * sizeof(double));
        probs_ = device_buffer(static_cast<size_t>(n * n_vocab_) * sizeof(float));
        rows_ = n;
    }
    sample_probs_params sp;
    sp.logits = logits;
    sp.logits_row_stride = n_vocab_;
    sp.configs = dev_.as<sample_config>();
    sp.probs = dst != nullptr ? dst : probs_.as<float>();
    sp.probs_row_stride = n_vocab_;
    sp.work = work_.as<double>();
    sp.n_rows = n;
    sp.n_vocab = n_vocab_;
    launch_sample_probs(sp, stream);
}

void device_sampler::reserve_held(int64_t n, cudaStream_t stream) {
    if (n <= held_cap_) {
        return;
    }
    const int64_t cap = std::max(n, held_cap_ + held_cap_ / 2);
    device_buffer grown(static_cast<size_t>(cap * n_vocab_) * sizeof(float));
    if (held_cap_ > 0) { // the drafts of the iteration in progress are held below the old capacity
        SPECATTN_CUDA_CHECK(
            cudaMemcpyAsync(grown.as<void>(), held_.as<void>(), held_.bytes(), cudaMemcpyDeviceToDevice, stream));
        SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    held_ = std::move(grown);
    held_cap_ = cap;
}

void device_sampler::sample(const float * logits, const std::vector<sampling_params> & params,
                            const std::vector<double> & uniforms, const std::vector<int32_t> * holds, int32_t * ids,
                            cudaStream_t stream) {
    const auto n = static_cast<int64_t>(params.size());
    SPECATTN_CHECK(uniforms.size() == params.size() && (holds == nullptr || holds->size() == params.size()),
                   "device sampling: %zu uniforms and %zu held slots for %zu rows", uniforms.size(),
                   holds != nullptr ? holds->size() : params.size(), params.size());
    if (holds != nullptr) {
        for (int32_t h : *holds) {
            SPECATTN_CHECK(h >= 0, "held slot %d is negative", h);
        }
        reserve_held(*std::max_element(holds->begin(), holds->end()) + 1, stream);
    }
    probs(logits, params, &uniforms, nullptr, stream);
    sample_from_params fp;
    fp.probs = probs_.as<float>();
    fp.row_stride = n_vocab_;
    fp.uniforms = reinterpret_cast<const double *>(dev_.as<char>() + align8(params.size() * sizeof(sample_config)));
    fp.out = ids;
    fp.n_rows = n;
    fp.n_vocab = n_vocab_;
    launch_sample_from(fp, stream);
    if (holds != nullptr) {
        const size_t row_bytes = static_cast<size_t>(n_vocab_) * sizeof(float);
        for (size_t k = 0; k < holds->size(); ++k) {
            SPECATTN_CUDA_CHECK(cudaMemcpyAsync(held_.as<char>() + static_cast<size_t>((*holds)[k]) * row_bytes,
                                                probs_.as<char>() + k * row_bytes, row_bytes, cudaMemcpyDeviceToDevice,
                                                stream));
        }
    }
}

void device_sampler::target_probs(const float * logits, const std::vector<sampling_params> & params, int64_t first,
                                  int64_t n_total, cudaStream_t stream) {
    if (first == 0 && target_cap_ < n_total) {
        target_ = device_buffer(static_cast<size_t>(n_total * n_vocab_) * sizeof(float));
        target_cap_ = n_total;
    }
    target_rows_ = n_total;
    SPECATTN_CHECK(first + static_cast<int64_t>(params.size()) <= target_cap_,
                   "verification rows %lld.. beyond the %lld target rows", static_cast<long long>(first),
                   static_cast<long long>(target_cap_));
    probs(logits, params, nullptr, target_.as<float>() + first * n_vocab_, stream);
}

void device_sampler::accept(const std::vector<held_verification> & v, std::vector<accept_outcome> & out,
                            cudaStream_t stream) {
    out.assign(v.size(), accept_outcome{});
    if (v.empty()) {
        return;
    }
    // Staging: [N] accept_seq, [held_cap] drafts by slot, [target rows] uniforms by target row.
    const size_t seq_bytes = align8(v.size() * sizeof(accept_seq));
    const size_t draft_bytes = align8(static_cast<size_t>(held_cap_) * sizeof(int32_t));
    const size_t bytes = seq_bytes + draft_bytes + static_cast<size_t>(target_rows_) * sizeof(double);
    char * h = static_cast<char *>(staging(bytes));
    std::memset(h, 0, bytes);
    auto * seqs = reinterpret_cast<accept_seq *>(h);
    auto * drafts = reinterpret_cast<int32_t *>(h + seq_bytes);
    auto * u = reinterpret_cast<double *>(h + seq_bytes + draft_bytes);
    for (size_t i = 0; i < v.size(); ++i) {
        const held_verification & s = v[i];
        const auto n_drafts = static_cast<int64_t>(s.drafts.size());
        // Slots are read only for drafts: a verification without drafts (its sequence's last token) names none.
        SPECATTN_CHECK(
            (n_drafts == 0 || (s.first_hold >= 0 && s.first_hold + n_drafts <= held_cap_)) && s.first_out >= 0 &&
                s.first_out + n_drafts + 1 <= target_rows_ && static_cast<int64_t>(s.uniforms.size()) == n_drafts + 1,
            "verification %zu: %lld drafts at held slot %d, target row %lld, %zu uniforms do not fit", i,
            static_cast<long long>(n_drafts), s.first_hold, static_cast<long long>(s.first_out), s.uniforms.size());
        seqs[i].p_row0 = checked_i32(s.first_out, "target row");
        seqs[i].q_row0 = n_drafts > 0 ? s.first_hold : 0;
        seqs[i].n_drafts = static_cast<int32_t>(n_drafts);
        if (n_drafts > 0) {
            std::copy(s.drafts.begin(), s.drafts.end(), drafts + s.first_hold);
        }
        std::copy(s.uniforms.begin(), s.uniforms.end(), u + s.first_out);
    }
    SPECATTN_CUDA_CHECK(cudaMemcpyAsync(dev_.as<void>(), h, bytes, cudaMemcpyHostToDevice, stream));
    const size_t out_bytes = 2 * v.size() * sizeof(int32_t);
    if (accept_out_.bytes() < out_bytes) {
        accept_out_ = device_buffer(out_bytes);
        accept_host_ = pinned_buffer(out_bytes);
    }
    accept_sampled_params ap;
    ap.p = target_.as<float>();
    ap.q = held_.as<float>();
    ap.row_stride = n_vocab_;
    ap.drafts = reinterpret_cast<const int32_t *>(dev_.as<char>() + seq_bytes);
    ap.uniforms = reinterpret_cast<const double *>(dev_.as<char>() + seq_bytes + draft_bytes);
    ap.seqs = dev_.as<accept_seq>();
    ap.n_accepted = accept_out_.as<int32_t>();
    ap.next = accept_out_.as<int32_t>() + v.size();
    ap.n_seqs = static_cast<int64_t>(v.size());
    ap.n_vocab = n_vocab_;
    launch_accept_sampled(ap, stream);
    SPECATTN_CUDA_CHECK(
        cudaMemcpyAsync(accept_host_.as<void>(), accept_out_.as<void>(), out_bytes, cudaMemcpyDeviceToHost, stream));
    SPECATTN_CUDA_CHECK(cudaStreamSynchronize(stream));
    const int32_t * r = accept_host_.as<int32_t>();
    for (size_t i = 0; i < v.size(); ++i) {
        out[i].n_accepted = r[i];
        out[i].next = r[v.size() + i];
        SPECATTN_CHECK(out[i].next >= 0, "verification %zu has no finite target logit to sample from", i);
    }
}

} // namespace specattn
