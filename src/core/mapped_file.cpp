#include "core/mapped_file.h"

#include "core/check.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace specattn {

mapped_file::mapped_file(const std::string & path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    SPECATTN_CHECK(fd >= 0, "cannot open %s: %s", path.c_str(), std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw error(string_format("%s is not a regular file", path.c_str()));
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void * p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw error(string_format("cannot map %s: %s", path.c_str(), std::strerror(err)));
        }
        data_ = static_cast<const uint8_t *>(p);
    }
    ::close(fd);
}

mapped_file::~mapped_file() {
    if (data_ != nullptr) {
        ::munmap(const_cast<uint8_t *>(data_), size_);
    }
}

std::string read_text_file(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    SPECATTN_CHECK(in.good(), "cannot open %s: %s", path.c_str(), std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool file_exists(const std::string & path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string & path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

} // namespace specattn
