// One-pass tokenizer.json reader (see json_read.h). The DOM part mirrors nlohmann's own SAX DOM builder (a stack
// of open containers, the last key wins); nothing recurses, so deeply nested input cannot exhaust the stack.
#include "tokenizer/json_read.h"

#include "core/check.h"
#include "tokenizer/json_view.h"

namespace specattn {

namespace {

using json = nlohmann::json;

class doc_builder final : public nlohmann::json_sax<json> {
  public:
    doc_builder(tokenizer_json_doc & doc, const std::string & source) : doc_(doc), source_(source) {}

    bool null() override { return value(json(nullptr)); }
    bool boolean(bool v) override { return value(json(v)); }
    bool number_integer(number_integer_t v) override { return number(v >= 0, static_cast<uint64_t>(v), json(v)); }
    bool number_unsigned(number_unsigned_t v) override { return number(true, v, json(v)); }
    bool number_float(number_float_t v, const string_t &) override { return number(false, 0, json(v)); }
    bool binary(binary_t & v) override { return value(json::binary(v)); }

    bool string(string_t & v) override {
        switch (mode_) {
        case mode::mode_dom:
            return value(json(std::move(v)));
        case mode::mode_vocab:
            fail_vocab();
        case mode::mode_merges:
            add_string_merge(v);
            return true;
        case mode::mode_merge_pair:
            pair_.push_back(std::move(v));
            return true;
        }
        return false;
    }

    bool key(string_t & k) override {
        key_ = std::move(k);
        return true;
    }

    bool start_object(std::size_t) override {
        if (mode_ == mode::mode_dom && at_model_member("vocab")) {
            SPECATTN_CHECK(!doc_.has_vocab, "%s: model.vocab appears twice", source_.c_str());
            doc_.has_vocab = true;
            mode_ = mode::mode_vocab;
            return true;
        }
        check_dom();
        open(json::object());
        return true;
    }

    bool end_object() override {
        if (mode_ == mode::mode_vocab) {
            mode_ = mode::mode_dom;
        } else {
            close();
        }
        return true;
    }

    bool start_array(std::size_t) override {
        if (mode_ == mode::mode_dom && at_model_member("merges")) {
            SPECATTN_CHECK(!doc_.has_merges, "%s: model.merges appears twice", source_.c_str());
            doc_.has_merges = true;
            mode_ = mode::mode_merges;
            return true;
        }
        if (mode_ == mode::mode_merges) {
            pair_.clear();
            mode_ = mode::mode_merge_pair;
            return true;
        }
        check_dom();
        open(json::array());
        return true;
    }

    bool end_array() override {
        switch (mode_) {
        case mode::mode_merges:
            mode_ = mode::mode_dom;
            return true;
        case mode::mode_merge_pair:
            if (pair_.size() != 2) {
                fail_merge();
            }
            doc_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
            mode_ = mode::mode_merges;
            return true;
        case mode::mode_dom:
        case mode::mode_vocab:
            close();
            return true;
        }
        return false;
    }

    bool parse_error(std::size_t, const std::string &, const nlohmann::detail::exception & e) override {
        throw error(string_format("%s is not valid JSON: %s", source_.c_str(), tokenizer_json_error(e).c_str()));
    }

  private:
    enum class mode {
        mode_dom,        // building the DOM
        mode_vocab,      // inside model.vocab: "piece": id pairs
        mode_merges,     // inside model.merges: "a b" strings or ["a", "b"] arrays
        mode_merge_pair, // inside one ["a", "b"]
    };

    // Whether an object or array opening now is root.model.KEY.
    bool at_model_member(const char * k) const {
        return stack_.size() == 2 && stack_[0]->is_object() && stack_[1]->is_object() && keys_[1] == "model" &&
               key_ == k;
    }

    [[noreturn]] void fail_vocab() const {
        throw error(string_format("%s: model.vocab entry '%s' must map to a token id in [0, 2^31-1)",
                                  source_.c_str(), tokenizer_printable(key_).c_str()));
    }

    [[noreturn]] void fail_merge() const {
        throw error(string_format("%s: model.merges[%zu] must be a string \"a b\" or an array of two strings",
                                  source_.c_str(), doc_.merges.size()));
    }

    // A container may open only while building the DOM.
    void check_dom() const {
        if (mode_ == mode::mode_vocab) {
            fail_vocab();
        }
        if (mode_ != mode::mode_dom) {
            fail_merge();
        }
    }

    bool number(bool non_negative, uint64_t v, json j) {
        if (mode_ == mode::mode_vocab) {
            if (!non_negative || v >= INT32_MAX) {
                fail_vocab();
            }
            doc_.vocab.emplace_back(std::move(key_), static_cast<int32_t>(v));
            return true;
        }
        return value(std::move(j));
    }

    bool value(json v) {
        if (mode_ == mode::mode_vocab) {
            fail_vocab();
        }
        if (mode_ != mode::mode_dom) {
            fail_merge();
        }
        insert(std::move(v));
        return true;
    }

    // "a b" as HF's legacy merges format reads it: exactly one space; a "#version" header line is skipped.
    void add_string_merge(const std::string & s) {
        if (s.starts_with("#version")) {
            return;
        }
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
            fail_merge();
        }
        doc_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    }

    json * insert(json && v) {
        if (stack_.empty()) {
            doc_.root = std::move(v);
            return &doc_.root;
        }
        json & top = *stack_.back();
        if (top.is_array()) {
            top.push_back(std::move(v));
            return &top.back();
        }
        json & slot = top[key_];
        slot = std::move(v);
        return &slot;
    }

    void open(json && container) {
        const bool in_object = !stack_.empty() && stack_.back()->is_object();
        json * p = insert(std::move(container));
        keys_.push_back(in_object ? key_ : std::string());
        stack_.push_back(p);
    }

    void close() {
        if (!stack_.empty()) {
            stack_.pop_back();
            keys_.pop_back();
        }
    }

    tokenizer_json_doc & doc_;
    const std::string & source_;
    mode mode_ = mode::mode_dom;
    std::vector<json *> stack_;      // open containers, outermost first
    std::vector<std::string> keys_;  // the key each open container sits under ("" in arrays and at the root)
    std::string key_;                // the last key read
    std::vector<std::string> pair_;  // strings of the merge array being read
};

} // namespace

tokenizer_json_doc tokenizer_json_read(std::string_view text, const std::string & source) {
    tokenizer_json_doc doc;
    doc_builder builder(doc, source);
    json::sax_parse(text.begin(), text.end(), &builder);
    return doc;
}

} // namespace specattn
