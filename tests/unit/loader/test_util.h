// Helpers for the loader tests: temporary directories, file I/O and a tiny safetensors writer that is independent
// of the parser under test (it builds the header with nlohmann directly), so tests can write good files and lies.
#pragma once

#include "core/check.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace specattn::test {

// A fresh directory under /tmp, removed with everything in it when the object dies.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir &) = delete;
    temp_dir & operator=(const temp_dir &) = delete;

    const std::string & path() const { return path_; }
    std::string file(const std::string & name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

struct st_tensor {
    std::string name;
    std::string dtype; // safetensors dtype string, written verbatim
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

// Writes a well-formed file: the tensors' bytes back to back in the given order, offsets to match. The header is
// padded to a multiple of 8 like the reference writer, or, with misalign, to an odd length (legal, but it puts
// 16- and 32-bit data at odd addresses).
void write_safetensors(const std::string & path, const std::vector<st_tensor> & tensors, bool misalign = false);
// Writes the 8-byte length, the header text and the data verbatim; header_len UINT64_MAX means header.size().
void write_raw_safetensors(const std::string & path, const std::string & header, const std::vector<uint8_t> & data,
                           uint64_t header_len = UINT64_MAX);

std::vector<uint8_t> f32_bytes(const std::vector<float> & v);
std::vector<uint8_t> read_bytes(const std::string & path);
void write_bytes(const std::string & path, const std::vector<uint8_t> & bytes);
void write_text(const std::string & path, const std::string & text);
// Copies the regular files of src into dst (flat, like a model directory).
void copy_dir_files(const std::string & src, const std::string & dst);

// tests/fixtures/models/NAME in the source tree.
std::string fixture_dir(const std::string & name);
std::string stories15m_path();

// The message of the specattn::error that fn throws; fails the test and returns "" when it throws nothing.
template <typename F> std::string error_of(F && fn) {
    try {
        fn();
    } catch (const specattn::error & e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << "error messages are one line: " << msg;
        return msg;
    }
    ADD_FAILURE() << "expected a specattn::error";
    return "";
}

// Whether text contains part, printing both when it does not (gmock's HasSubstr without linking gmock).
inline ::testing::AssertionResult contains(const std::string & text, const std::string & part) {
    if (text.find(part) != std::string::npos) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

} // namespace specattn::test
