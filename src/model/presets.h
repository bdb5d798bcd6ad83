// Model-shape presets with random weights: the shapes of real models (Llama-3.1-8B, Qwen3-8B, ...) that cannot
// reach the GPU machine (no network, 64 MiB per transfer), for benchmarks of speed, never of quality. A preset is
// named like a model path, "preset:NAME"; its weights are generated on the GPU by the CUDA backend (an 8B model in
// fp32 on the host would take 32 GB and minutes), so presets run with --device cuda only and have no tokenizer.
#pragma once

#include "model/hparams.h"

#include <string>
#include <vector>

namespace specattn {

constexpr const char * preset_prefix = "preset:";

bool is_preset_path(const std::string & path);
// The hyperparameters of preset:NAME; throws specattn::error listing the presets for an unknown name.
model_hparams preset_hparams(const std::string & path);
std::vector<std::string> preset_names();

} // namespace specattn
