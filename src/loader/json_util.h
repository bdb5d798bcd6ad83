// JSON and message helpers shared by the loaders. Inputs are untrusted (user files, fuzzed bytes): parsing
// rejects duplicate keys, which nlohmann would silently overwrite, and every error is one line naming the source.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace specattn {

using json = nlohmann::json;

// Parses text as JSON. Throws specattn::error "SOURCE is not valid JSON: ..." or "SOURCE: duplicate key 'K'".
json json_parse_strict(std::string_view text, const std::string & source);

// An integer number that fits int64_t; false for floats, strings, null, or unsigned values above INT64_MAX.
bool json_get_int64(const json & j, int64_t & out);

// Untrusted text made safe for a one-line message: control bytes become \xNN and long text is cut at 200 bytes.
std::string printable(std::string_view s);

// The JSON type of j in words ("string", "null", ...), for "must be an integer, got string".
const char * json_type_name(const json & j);

} // namespace specattn
