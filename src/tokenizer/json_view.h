// Checked access to untrusted tokenizer JSON. tokenizer.json is fuzzed, so nothing here may assert, abort or
// convert silently: every accessor checks the type and throws specattn::error with a one-line message naming the
// file and the field path ("tokenizer.json: model.merges[12] must be a string or an array of two strings").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace specattn {

// Untrusted text made safe for a one-line message: control bytes become \xNN, long text is cut at max_bytes.
std::string tokenizer_printable(std::string_view s, size_t max_bytes = 80);

// nlohmann's exception message without its "[json.exception.parse_error.101] " prefix, made one line.
std::string tokenizer_json_error(const std::exception & e);

// Parses text; throws "SOURCE is not valid JSON: ..." (nlohmann's message, made one line).
nlohmann::json tokenizer_json_parse(std::string_view text, const std::string & source);

// A JSON value together with where it is, for error messages. Holds a reference: the document must outlive it.
class json_view {
  public:
    json_view(const nlohmann::json & j, std::string source, std::string path)
        : j_(j), source_(std::move(source)), path_(std::move(path)) {}

    const nlohmann::json & raw() const { return j_; }
    const std::string & path() const { return path_; }
    const std::string & source() const { return source_; }
    bool is_null() const { return j_.is_null(); }
    bool is_string() const { return j_.is_string(); }
    bool is_object() const { return j_.is_object(); }
    bool is_array() const { return j_.is_array(); }

    // Whether this is an object holding key with a non-null value.
    bool has(const char * key) const;
    // The member key; throws if this is not an object or key is missing (null is returned as null).
    json_view at(const char * key) const;
    // Element i of an array (caller checks the size through size()).
    json_view at(size_t i) const;
    size_t size() const; // elements of an array or members of an object, 0 otherwise

    // Typed values; each throws "SOURCE: PATH must be a ..." on a type mismatch.
    const std::string & str() const;
    bool boolean() const;
    int64_t int64() const; // an integer that fits int64_t
    const json_view & expect_object() const;
    const json_view & expect_array() const;

    // Optional members with defaults, for fields HF allows to be absent or null.
    std::string str_or(const char * key, const std::string & fallback) const;
    bool bool_or(const char * key, bool fallback) const;
    int64_t int64_or(const char * key, int64_t fallback) const;

    // Throws "SOURCE: PATH <what>" (what is a printf-style message).
    [[noreturn]] void fail(const char * fmt, ...) const __attribute__((format(printf, 2, 3)));

  private:
    const nlohmann::json & j_;
    std::string source_;
    std::string path_;
};

} // namespace specattn
