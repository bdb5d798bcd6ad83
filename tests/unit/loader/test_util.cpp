// Loader test helpers (see test_util.h).
#include "test_util.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace specattn::test {

temp_dir::temp_dir() {
    char tmpl[] = "/tmp/specattn_loader_XXXXXX";
    const char * p = ::mkdtemp(tmpl);
    if (p == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    path_ = p;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_safetensors(const std::string & path, const std::vector<st_tensor> & tensors, bool misalign) {
    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}};
    std::vector<uint8_t> data;
    for (const st_tensor & t : tensors) {
        header[t.name] = {
            {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
        data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    }
    std::string text = header.dump();
    while (text.size() % 8 != (misalign ? 1 : 0)) {
        text += ' ';
    }
    write_raw_safetensors(path, text, data);
}

void write_raw_safetensors(const std::string & path, const std::string & header, const std::vector<uint8_t> & data,
                           uint64_t header_len) {
    const uint64_t n = header_len == UINT64_MAX ? header.size() : header_len;
    std::vector<uint8_t> bytes(8);
    for (int i = 0; i < 8; ++i) {
        bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
    }
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), data.begin(), data.end());
    write_bytes(path, bytes);
}

std::vector<uint8_t> f32_bytes(const std::vector<float> & v) {
    std::vector<uint8_t> out(v.size() * sizeof(float));
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}

std::vector<uint8_t> read_bytes(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read " + path);
    }
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string & path, const std::vector<uint8_t> & bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

void write_text(const std::string & path, const std::string & text) {
    write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

void copy_dir_files(const std::string & src, const std::string & dst) {
    for (const auto & e : std::filesystem::directory_iterator(src)) {
        if (e.is_regular_file()) {
            std::filesystem::copy_file(e.path(), std::filesystem::path(dst) / e.path().filename(),
                                       std::filesystem::copy_options::overwrite_existing);
        }
    }
}

std::string fixture_dir(const std::string & name) {
    return std::string(SPECATTN_SOURCE_DIR) + "/tests/fixtures/models/" + name;
}

std::string stories15m_path() {
    return std::string(SPECATTN_SOURCE_DIR) + "/data/stories15M/stories15M.bin";
}

} // namespace specattn::test
