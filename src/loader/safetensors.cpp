// safetensors parsing and validation (see safetensors.h for the format and the checks).
#include "loader/safetensors.h"

#include "core/check.h"
#include "loader/json_util.h"

#include <algorithm>
#include <bit>
#include <string_view>

namespace specattn {

// NOTE(loader): tensor bytes are little-endian in the file and are used in place, so the host must be too.
static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

struct st_dtype {
    const char * name;
    size_t size;
};

// Every fixed-size dtype of the safetensors spec. Only F32/F16/BF16/I32 map to specattn::dtype; the rest parse
// so a checkpoint carrying, say, an I64 buffer fails later with the tensor's name rather than here.
constexpr st_dtype st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
    {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
};

uint64_t read_u64_le(const uint8_t * p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

// A non-negative integer that fits in size_t.
bool json_get_size(const json & j, size_t & out) {
    int64_t v = 0;
    if (!json_get_int64(j, v) || v < 0) {
        return false;
    }
    out = static_cast<size_t>(v);
    return true;
}

void parse_dtype(tensor_ref & t, const json & entry, const std::string & file) {
    const auto it = entry.find("dtype");
    SPECATTN_CHECK(it != entry.end() && it->is_string(), "%s: tensor %s has no \"dtype\" string", file.c_str(),
                   printable(t.name).c_str());
    t.dtype_str = it->get<std::string>();
    for (const st_dtype & d : st_dtypes) {
        if (t.dtype_str == d.name) {
            t.elem_size = d.size;
        }
    }
    SPECATTN_CHECK(t.elem_size != 0, "%s: tensor %s has unknown dtype '%s'", file.c_str(), printable(t.name).c_str(),
                   printable(t.dtype_str).c_str());
    t.has_dtype = dtype_from_safetensors(t.dtype_str, t.type);
}

void parse_shape(tensor_ref & t, const json & entry, const std::string & file) {
    const auto it = entry.find("shape");
    SPECATTN_CHECK(it != entry.end() && it->is_array(), "%s: tensor %s has no \"shape\" array", file.c_str(),
                   printable(t.name).c_str());
    t.n_elements = 1;
    for (const json & d : *it) {
        int64_t n = 0;
        SPECATTN_CHECK(json_get_int64(d, n) && n >= 0,
                       "%s: tensor %s has a shape entry %s that is not a non-negative integer", file.c_str(),
                       printable(t.name).c_str(), printable(d.dump()).c_str());
        SPECATTN_CHECK(!__builtin_mul_overflow(t.n_elements, n, &t.n_elements),
                       "%s: tensor %s: the element count of its shape overflows", file.c_str(),
                       printable(t.name).c_str());
        t.shape.push_back(n);
    }
}

void parse_offsets(tensor_ref & t, const json & entry, const safetensors_header & h, const std::string & file) {
    const auto it = entry.find("data_offsets");
    SPECATTN_CHECK(it != entry.end() && it->is_array() && it->size() == 2, "%s: tensor %s has no \"data_offsets\" pair",
                   file.c_str(), printable(t.name).c_str());
    SPECATTN_CHECK(json_get_size((*it)[0], t.begin) && json_get_size((*it)[1], t.end),
                   "%s: tensor %s has data_offsets %s that are not non-negative integers", file.c_str(),
                   printable(t.name).c_str(), printable(it->dump()).c_str());
    SPECATTN_CHECK(t.begin <= t.end, "%s: tensor %s has data_offsets [%zu, %zu] with end before begin", file.c_str(),
                   printable(t.name).c_str(), t.begin, t.end);
    SPECATTN_CHECK(t.end <= h.data_size,
                   "%s: tensor %s has data_offsets [%zu, %zu] past the end of the data section "
                   "(%zu bytes; truncated file?)",
                   file.c_str(), printable(t.name).c_str(), t.begin, t.end, h.data_size);
    size_t expected = 0;
    const bool overflow = __builtin_mul_overflow(static_cast<size_t>(t.n_elements), t.elem_size, &expected);
    SPECATTN_CHECK(!overflow && expected == t.end - t.begin,
                   "%s: tensor %s holds %zu bytes but its shape and dtype %s need %s", file.c_str(),
                   printable(t.name).c_str(), t.end - t.begin, printable(t.dtype_str).c_str(),
                   overflow ? "more than fit in memory" : string_format("%zu", expected).c_str());
}

void parse_metadata(safetensors_header & h, const json & meta, const std::string & file) {
    SPECATTN_CHECK(meta.is_object(), "%s: __metadata__ is not an object", file.c_str());
    for (const auto & [key, value] : meta.items()) {
        if (value.is_string()) {
            h.metadata[key] = value.get<std::string>();
        }
    }
}

// Zero-length tensors occupy no bytes and may share an offset with anything.
void check_overlaps(const safetensors_header & h, const std::string & file) {
    const tensor_ref * prev = nullptr; // the non-empty tensor ending last so far
    for (const tensor_ref & t : h.tensors) {
        if (t.begin == t.end) {
            continue;
        }
        SPECATTN_CHECK(prev == nullptr || t.begin >= prev->end, "%s: tensors %s [%zu, %zu] and %s [%zu, %zu] overlap",
                       file.c_str(), printable(prev->name).c_str(), prev->begin, prev->end, printable(t.name).c_str(),
                       t.begin, t.end);
        prev = &t;
    }
}

} // namespace

safetensors_header safetensors_parse(const uint8_t * data, size_t size, const std::string & file) {
    SPECATTN_CHECK(size >= 8, "%s: %zu bytes is too short for a safetensors file", file.c_str(), size);
    const uint64_t n_header = read_u64_le(data);
    SPECATTN_CHECK(n_header > 0, "%s: safetensors header length is 0", file.c_str());
    SPECATTN_CHECK(n_header <= safetensors_max_header,
                   "%s: safetensors header length %llu exceeds the %zu-byte limit (not a safetensors file?)",
                   file.c_str(), static_cast<unsigned long long>(n_header), safetensors_max_header);
    SPECATTN_CHECK(n_header <= size - 8, "%s: safetensors header length %llu runs past the end of the file (%zu bytes)",
                   file.c_str(), static_cast<unsigned long long>(n_header), size);

    safetensors_header h;
    h.data_offset = 8 + static_cast<size_t>(n_header);
    h.data_size = size - h.data_offset;
    const std::string_view text(reinterpret_cast<const char *>(data + 8), static_cast<size_t>(n_header));
    const json root = json_parse_strict(text, file + " header");
    SPECATTN_CHECK(root.is_object(), "%s: safetensors header is a JSON %s, not an object", file.c_str(),
                   json_type_name(root));

    for (const auto & [name, entry] : root.items()) {
        if (name == "__metadata__") {
            parse_metadata(h, entry, file);
            continue;
        }
        SPECATTN_CHECK(!name.empty(), "%s: a tensor has an empty name", file.c_str());
        SPECATTN_CHECK(entry.is_object(), "%s: tensor %s is a JSON %s, not an object", file.c_str(),
                       printable(name).c_str(), json_type_name(entry));
        tensor_ref t;
        t.name = name;
        t.file = file;
        parse_dtype(t, entry, file);
        parse_shape(t, entry, file);
        parse_offsets(t, entry, h, file);
        t.data = data + h.data_offset + t.begin;
        h.tensors.push_back(std::move(t));
    }
    std::sort(h.tensors.begin(), h.tensors.end(), [](const tensor_ref & a, const tensor_ref & b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    check_overlaps(h, file);
    return h;
}

safetensors_file::safetensors_file(const std::string & path) : map_(path) {
    header_ = safetensors_parse(map_.data(), map_.size(), path);
}

const tensor_ref * safetensors_file::find(const std::string & name) const {
    for (const tensor_ref & t : header_.tensors) {
        if (t.name == name) {
            return &t;
        }
    }
    return nullptr;
}

} // namespace specattn
