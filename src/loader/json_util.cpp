// Strict JSON parsing and message helpers for the loaders (see json_util.h).
#include "loader/json_util.h"

#include "core/check.h"

#include <set>
#include <vector>

namespace specattn {

namespace {

constexpr size_t max_printable = 200;

// nlohmann's what() starts with "[json.exception.parse_error.101] "; the user needs only the rest.
std::string strip_json_prefix(const std::string & what) {
    const size_t p = what.find("] ");
    return p == std::string::npos ? what : what.substr(p + 2);
}

} // namespace

json json_parse_strict(std::string_view text, const std::string & source) {
    // One key set per open object; a key seen twice in the same object is an error.
    std::vector<std::set<std::string>> open_objects;
    const json::parser_callback_t on_event = [&](int /*depth*/, json::parse_event_t event, json & parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
            open_objects.emplace_back();
            break;
        case json::parse_event_t::object_end:
            open_objects.pop_back();
            break;
        case json::parse_event_t::key: {
            const std::string & key = parsed.get_ref<const std::string &>();
            const bool fresh = open_objects.back().insert(key).second;
            SPECATTN_CHECK(fresh, "%s: duplicate key '%s'", source.c_str(), printable(key).c_str());
            break;
        }
        case json::parse_event_t::array_start:
        case json::parse_event_t::array_end:
        case json::parse_event_t::value:
            break;
        }
        return true;
    };
    try {
        return json::parse(text.begin(), text.end(), on_event);
    } catch (const json::exception & e) {
        throw error(
            string_format("%s is not valid JSON: %s", source.c_str(), printable(strip_json_prefix(e.what())).c_str()));
    }
}

bool json_get_int64(const json & j, int64_t & out) {
    if (j.is_number_unsigned()) {
        const uint64_t u = j.get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) {
            return false;
        }
        out = static_cast<int64_t>(u);
        return true;
    }
    if (j.is_number_integer()) {
        out = j.get<int64_t>();
        return true;
    }
    return false;
}

std::string printable(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (out.size() >= max_printable) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) {
            out += string_format("\\x%02x", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

const char * json_type_name(const json & j) {
    if (j.is_number_integer()) {
        return "integer";
    }
    return j.type_name(); // "null", "object", "array", "string", "boolean", "number", "binary", "discarded"
}

} // namespace specattn
