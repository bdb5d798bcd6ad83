// A read-only memory map of a whole file. Checkpoints are mapped, not read, so loading a large model costs
// page faults for the bytes actually converted, and a truncated file is caught by size checks, not by SIGBUS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace specattn {

class mapped_file {
  public:
    // Throws specattn::error naming the path when the file cannot be opened or mapped.
    explicit mapped_file(const std::string & path);
    ~mapped_file();
    mapped_file(const mapped_file &) = delete;
    mapped_file & operator=(const mapped_file &) = delete;

    const uint8_t * data() const { return data_; }
    size_t size() const { return size_; }
    const std::string & path() const { return path_; }

  private:
    std::string path_;
    const uint8_t * data_ = nullptr;
    size_t size_ = 0;
};

// Reads a whole (small) file into a string; throws specattn::error naming the path on failure.
std::string read_text_file(const std::string & path);
bool file_exists(const std::string & path);
bool is_directory(const std::string & path);

} // namespace specattn
