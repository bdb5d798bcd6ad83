// libFuzzer target for the safetensors parser (loader/safetensors.h), built with ASan and UBSan.
// Any input must either parse or throw specattn::error; when it parses, every tensor's bytes are read so that an
// offset check the parser missed shows up as an out-of-bounds read (libFuzzer copies the input into a buffer of
// exactly `size` bytes), and float tensors go through the loader's conversion, which must cope with data at
// odd addresses without UBSan alignment errors.
// Seeds in fuzz/corpus/safetensors/ were written with Python's struct + json: a two-tensor F32/BF16 file with
// metadata, an I64 + zero-size + scalar file, and a one-tensor F16 file with an unpadded header.
#include "core/check.h"
#include "loader/safetensors.h"
#include "model/weight_convert.h"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    try {
        const specattn::safetensors_header h = specattn::safetensors_parse(data, size, "fuzz");
        uint64_t sum = 0;
        std::vector<std::vector<float>> converted;
        std::vector<specattn::weight_job> jobs;
        for (const specattn::tensor_ref & t : h.tensors) {
            for (size_t i = 0; i < t.n_bytes(); ++i) {
                sum += t.data[i];
            }
            if (t.has_dtype && t.type != specattn::dtype::dtype_i32) {
                converted.emplace_back(static_cast<size_t>(t.n_elements));
                jobs.push_back(specattn::weight_job{&t, converted.back().data()});
            }
        }
        specattn::convert_weights(jobs, nullptr);
        // Keeps the reads from being optimized away.
        volatile uint64_t sink = sum;
        (void)sink;
    } catch (const specattn::error &) {
        // Rejected input: the expected outcome for almost all of it.
    }
    return 0;
}
