// Reader for the safetensors format, single files and sharded checkpoints (model.safetensors.index.json).
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"NAME": {"dtype": "BF16", "shape": [d0, d1], "data_offsets": [begin, end]}, ..., "__metadata__": {...}},
// then the data section; offsets are relative to the start of the data section.
//
// Users hand us broken files and the parser is fuzzed (fuzz/fuzz_safetensors.cpp), so everything is validated
// before any tensor byte is touched: the header fits the file and a 100 MB cap, the JSON is strict, every entry
// has a known dtype, a shape of non-negative integers, offsets inside the data section whose length equals
// product(shape) * element size (overflow-checked), and no two tensors overlap. Errors name the file and tensor.
#pragma once

#include "core/mapped_file.h"
#include "loader/tensor_ref.h"

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace specattn {

// The reference implementation's limit: a bigger header is a broken or hostile file, not a model.
constexpr size_t safetensors_max_header = 100u * 1000u * 1000u;

struct safetensors_header {
    std::vector<tensor_ref> tensors;             // sorted by data offset
    std::map<std::string, std::string> metadata; // the string values of "__metadata__"
    size_t data_offset = 0;                      // 8 + N: where the data section starts in the file
    size_t data_size = 0;                        // bytes from data_offset to the end of the file
};

// Parses and validates a whole safetensors file held in memory; the tensors point into `data`, which must
// outlive them. `file` names the file in errors. Throws specattn::error.
safetensors_header safetensors_parse(const uint8_t * data, size_t size, const std::string & file);

// One mapped safetensors file.
class safetensors_file {
  public:
    explicit safetensors_file(const std::string & path);

    const std::string & path() const { return map_.path(); }
    const safetensors_header & header() const { return header_; }
    const std::vector<tensor_ref> & tensors() const { return header_.tensors; }
    // nullptr when the file has no tensor of that name.
    const tensor_ref * find(const std::string & name) const;

  private:
    mapped_file map_;
    safetensors_header header_;
};

// The weights of a Hugging Face checkpoint: one .safetensors file, or every shard listed by an index
// ({"weight_map": {tensor: shard file}}). For an index, every shard must exist and parse, every mapped tensor
// must be in its shard, and every tensor of a shard must be mapped to that shard (so none appears twice).
class safetensors_checkpoint {
  public:
    // `path` is a .safetensors file or an index .json file (shards are looked up beside it).
    explicit safetensors_checkpoint(const std::string & path);

    const std::string & path() const { return path_; }
    int64_t n_files() const { return static_cast<int64_t>(files_.size()); }
    // Every tensor of every file, file by file.
    const std::vector<tensor_ref> & tensors() const { return tensors_; }
    const tensor_ref * find(const std::string & name) const;

  private:
    void open_index();

    std::string path_;
    std::vector<std::unique_ptr<safetensors_file>> files_;
    std::vector<tensor_ref> tensors_;
    std::unordered_map<std::string, size_t> by_name_; // name -> index in tensors_
};

} // namespace specattn
