// Checked JSON access for tokenizer files (see json_view.h).
#include "tokenizer/json_view.h"

#include "core/check.h"

#include <cstdarg>
#include <cstdio>

namespace specattn {

std::string tokenizer_printable(std::string_view s, size_t max_bytes) {
    std::string out;
    for (size_t i = 0; i < s.size() && i < max_bytes; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) {
            out += string_format("\\x%02X", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > max_bytes) {
        out += "...";
    }
    return out;
}

std::string tokenizer_json_error(const std::exception & e) {
    std::string_view what = e.what();
    if (what.starts_with("[json.exception.")) {
        const size_t end = what.find("] ");
        what.remove_prefix(end == std::string_view::npos ? 0 : end + 2);
    }
    return tokenizer_printable(what, 200);
}

nlohmann::json tokenizer_json_parse(std::string_view text, const std::string & source) {
    try {
        return nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception & e) {
        throw error(string_format("%s is not valid JSON: %s", source.c_str(), tokenizer_json_error(e).c_str()));
    }
}

void json_view::fail(const char * fmt, ...) const {
    va_list args;
    va_start(args, fmt);
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    throw error(string_format("%s: %s %s", source_.c_str(), path_.empty() ? "(top level)" : path_.c_str(), buf));
}

bool json_view::has(const char * key) const {
    if (!j_.is_object()) {
        return false;
    }
    const auto it = j_.find(key);
    return it != j_.end() && !it->is_null();
}

json_view json_view::at(const char * key) const {
    expect_object();
    const auto it = j_.find(key);
    const std::string sub = path_.empty() ? std::string(key) : path_ + "." + key;
    if (it == j_.end()) {
        throw error(string_format("%s: %s is missing", source_.c_str(), sub.c_str()));
    }
    return json_view(*it, source_, sub);
}

json_view json_view::at(size_t i) const {
    expect_array();
    if (i >= j_.size()) {
        fail("has no element %zu", i);
    }
    return json_view(j_[i], source_, path_ + "[" + std::to_string(i) + "]");
}

size_t json_view::size() const { return j_.is_array() || j_.is_object() ? j_.size() : 0; }

const std::string & json_view::str() const {
    if (!j_.is_string()) {
        fail("must be a string, got %s", j_.type_name());
    }
    return j_.get_ref<const std::string &>();
}

bool json_view::boolean() const {
    if (!j_.is_boolean()) {
        fail("must be true or false, got %s", j_.type_name());
    }
    return j_.get<bool>();
}

int64_t json_view::int64() const {
    if (j_.is_number_unsigned()) {
        const uint64_t v = j_.get<uint64_t>();
        if (v > static_cast<uint64_t>(INT64_MAX)) {
            fail("is out of range");
        }
        return static_cast<int64_t>(v);
    }
    if (!j_.is_number_integer()) {
        fail("must be an integer, got %s", j_.type_name());
    }
    return j_.get<int64_t>();
}

const json_view & json_view::expect_object() const {
    if (!j_.is_object()) {
        fail("must be an object, got %s", j_.type_name());
    }
    return *this;
}

const json_view & json_view::expect_array() const {
    if (!j_.is_array()) {
        fail("must be an array, got %s", j_.type_name());
    }
    return *this;
}

std::string json_view::str_or(const char * key, const std::string & fallback) const {
    return has(key) ? at(key).str() : fallback;
}

bool json_view::bool_or(const char * key, bool fallback) const { return has(key) ? at(key).boolean() : fallback; }

int64_t json_view::int64_or(const char * key, int64_t fallback) const {
    return has(key) ? at(key).int64() : fallback;
}

} // namespace specattn
