// HF BPE model (see bpe.h). The merge loop is tokenizers' Word::merge_all: a min-heap of (rank, position)
// candidates, stale entries skipped when popped, so a word of n characters costs O(n log n).
#include "tokenizer/bpe.h"

#include "core/check.h"
#include "tokenizer/utf8.h"

#include <queue>

namespace specattn {

namespace {

constexpr size_t cache_max_word = 256;     // longer words are rare and not worth keeping
constexpr size_t cache_max_entries = 1 << 17;

uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// HF writes these affixes as null or "" for byte-level and SentencePiece BPE; other values are WordPiece-like
// BPEs (e.g. "##", "</w>") that no model we serve uses.
void check_empty_affix(const json_view & j, const char * key) {
    if (j.has(key) && !j.at(key).str().empty()) {
        j.at(key).fail("is unsupported (only BPE without subword prefixes/suffixes is)");
    }
}

} // namespace

bpe_model::bpe_model(const json_view & j, tokenizer_json_doc & doc) {
    j.expect_object();
    if (j.has("type")) {
        const std::string & type = j.at("type").str();
        if (type != "BPE") {
            j.at("type").fail("is an unsupported model type '%s' (only BPE is)", tokenizer_printable(type).c_str());
        }
    }
    check_empty_affix(j, "continuing_subword_prefix");
    check_empty_affix(j, "end_of_word_suffix");
    if (j.has("dropout")) {
        const nlohmann::json & d = j.at("dropout").raw();
        if (!d.is_number() || d.get<double>() != 0.0) {
            j.at("dropout").fail("is unsupported (BPE dropout makes encoding random)");
        }
    }
    unk_token_ = j.str_or("unk_token", "");
    byte_fallback_ = j.bool_or("byte_fallback", false);
    fuse_unk_ = j.bool_or("fuse_unk", false);
    ignore_merges_ = j.bool_or("ignore_merges", false);

    // tokenizer_json_read captured vocab and merges when they had the right type; otherwise report what is there.
    if (!doc.has_vocab) {
        j.at("vocab").expect_object();
    }
    if (!doc.has_merges) {
        j.at("merges").expect_array();
    }
    vocab_.reserve(doc.vocab.size());
    for (auto & [piece, id] : doc.vocab) {
        vocab_.insert_or_assign(std::move(piece), id);
    }
    doc.vocab.clear();
    for (int b = 0; b < 256; ++b) {
        byte_ids_[b] = find(string_format("<0x%02X>", b));
    }
    merges_.reserve(doc.merges.size());
    std::string ab;
    for (size_t i = 0; i < doc.merges.size(); ++i) {
        const std::string & a = doc.merges[i].first;
        const std::string & b = doc.merges[i].second;
        ab.assign(a);
        ab += b;
        const int32_t id_a = find(a);
        const int32_t id_b = find(b);
        const int32_t id_ab = find(ab);
        if (id_a < 0 || id_b < 0 || id_ab < 0) {
            const std::string & missing = id_a < 0 ? a : id_b < 0 ? b : ab;
            throw error(string_format("%s: model.merges[%zu] refers to token '%s', which is not in the vocabulary",
                                      j.source().c_str(), i, tokenizer_printable(missing).c_str()));
        }
        // As in HF, a repeated pair keeps its last rank.
        merges_[pair_key(id_a, id_b)] = merge_info{static_cast<int32_t>(i), id_ab};
    }
    doc.merges.clear();
}

int32_t bpe_model::find(std::string_view piece) const {
    const auto it = vocab_.find(piece);
    return it == vocab_.end() ? -1 : it->second;
}

void bpe_model::tokenize(std::string_view word, std::vector<int32_t> & out) const {
    if (word.empty()) {
        return;
    }
    if (ignore_merges_) {
        const int32_t id = find(word);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    const bool cacheable = word.size() <= cache_max_word;
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        const auto it = cache_.find(word);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const size_t first = out.size();
    merge_word(word, out);
    if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        if (cache_.size() < cache_max_entries) {
            const auto begin = out.begin() + static_cast<ptrdiff_t>(first);
            cache_.emplace(std::string(word), std::vector<int32_t>(begin, out.end()));
        }
    }
}

void bpe_model::merge_word(std::string_view word, std::vector<int32_t> & out) const {
    struct symbol {
        int32_t id;
        int32_t prev;
        int32_t next;
        bool removed;
    };
    std::vector<symbol> symbols;
    symbols.reserve(word.size());
    const auto add = [&](int32_t id) {
        const int32_t n = static_cast<int32_t>(symbols.size());
        symbols.push_back({id, n - 1, n + 1, false});
    };

    // Characters to ids: HF's merge_word, including the order in which a pending unk is flushed.
    int32_t unk_id = -1;
    bool have_unk = false;
    for (size_t i = 0; i < word.size();) {
        const size_t n = std::min(utf8_len(static_cast<unsigned char>(word[i])), word.size() - i);
        const std::string_view ch = word.substr(i, n);
        i += n;
        const int32_t id = find(ch);
        if (id >= 0) {
            if (have_unk) {
                add(unk_id);
                have_unk = false;
            }
            add(id);
            continue;
        }
        if (byte_fallback_) {
            bool all = true;
            for (const char c : ch) {
                all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
            }
            if (all) {
                for (const char c : ch) {
                    add(byte_ids_[static_cast<unsigned char>(c)]);
                }
                continue;
            }
        }
        if (unk_token_.empty()) {
            continue; // HF drops a character it cannot represent when there is no unk token
        }
        if (have_unk && !fuse_unk_) {
            add(unk_id);
        }
        unk_id = find(unk_token_);
        SPECATTN_CHECK(unk_id >= 0, "tokenizer.json: model.unk_token '%s' is not in the vocabulary",
                       tokenizer_printable(unk_token_).c_str());
        have_unk = true;
    }
    if (have_unk) {
        add(unk_id);
    }
    if (symbols.empty()) {
        return;
    }
    symbols.back().next = -1;

    struct candidate {
        int32_t rank;
        int32_t pos;
        int32_t new_id;
    };
    const auto later = [](const candidate & x, const candidate & y) {
        return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
    };
    std::priority_queue<candidate, std::vector<candidate>, decltype(later)> queue(later);
    const auto push_pair = [&](int32_t pos) {
        const int32_t next = symbols[pos].next;
        if (next < 0) {
            return;
        }
        const auto it = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
        if (it != merges_.end()) {
            queue.push({it->second.rank, pos, it->second.new_id});
        }
    };
    for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) {
        push_pair(pos);
    }
    while (!queue.empty()) {
        const candidate top = queue.top();
        queue.pop();
        symbol & left = symbols[top.pos];
        if (left.removed || left.next < 0) {
            continue;
        }
        // Stale if either side changed since the candidate was queued.
        const auto it = merges_.find(pair_key(left.id, symbols[left.next].id));
        if (it == merges_.end() || it->second.new_id != top.new_id) {
            continue;
        }
        symbol & right = symbols[left.next];
        left.id = top.new_id;
        right.removed = true;
        left.next = right.next;
        if (right.next >= 0) {
            symbols[right.next].prev = top.pos;
        }
        if (left.prev >= 0) {
            push_pair(left.prev);
        }
        push_pair(top.pos);
    }
    for (const symbol & s : symbols) {
        if (!s.removed) {
            out.push_back(s.id);
        }
    }
}

} // namespace specattn
