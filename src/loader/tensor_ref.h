// A named tensor inside a checkpoint that stays mapped while it is used. Both readers (safetensors.cpp and
// llama2c.cpp) describe their tensors this way, under Hugging Face names, so model/load.cpp checks and converts
// every format through one weight table.
#pragma once

#include "core/dtype.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace specattn {

struct tensor_ref {
    std::string name;
    std::string file;      // the file holding it, for error messages
    std::string dtype_str; // as stored: "BF16", "F32", "I64", ...
    // Whether dtype_str is one of ours (F32, F16, BF16, I32). Other safetensors dtypes (I64, U8, F64, ...) parse,
    // so that the weight table can name the tensor when it is used, but cannot be converted.
    bool has_dtype = false;
    dtype type = dtype::dtype_f32; // valid when has_dtype
    size_t elem_size = 0;          // bytes per element of dtype_str
    std::vector<int64_t> shape;
    int64_t n_elements = 0; // product of shape (1 for a scalar)
    size_t begin = 0;       // byte range in the file's data section
    size_t end = 0;
    const uint8_t * data = nullptr; // [end - begin] bytes, not necessarily aligned to elem_size

    size_t n_bytes() const { return end - begin; }
};

} // namespace specattn
