// Conversion of checked checkpoint tensors to the fp32 model weights, in parallel, with progress reports.
// Used by load.cpp once the weight table has matched and validated every tensor.
#pragma once

#include "loader/tensor_ref.h"
#include "model/model.h"

#include <vector>

namespace specattn {

// One tensor to convert: src (F32, F16 or BF16, shape already checked) into dst [src->n_elements].
struct weight_job {
    const tensor_ref * src;
    float * dst;
};

// Converts every job. progress, when set, is called on the calling thread with (bytes done, bytes total) of
// source data, at most about 100 times, the last time with done == total.
void convert_weights(const std::vector<weight_job> & jobs, const load_progress_fn & progress);

} // namespace specattn
