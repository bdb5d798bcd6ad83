// A loaded model: hyperparameters plus weights, from a Hugging Face directory or a llama2.c checkpoint.
#pragma once

#include "model/hparams.h"
#include "model/weights.h"

#include <cstdint>

#include <functional>
#include <string>

namespace specattn {

struct model {
    std::string path; // what the user gave: a directory, a config.json's directory or a .bin file
    model_hparams hp;
    model_weights w;      // empty for a preset
    bool random_weights = false; // a preset (model/presets.h): the backend generates the weights from `seed`
    uint64_t seed = 0;
};

// Called while loading with (bytes done, bytes total) so the CLI can draw a progress bar.
using load_progress_fn = std::function<void(size_t done, size_t total)>;

// Loads a model. `path` is "preset:NAME" (model/presets.h: shape only, random weights),  a Hugging Face directory (config.json, model.safetensors or model.safetensors.index.json)
// or a llama2.c .bin checkpoint. Every tensor the architecture needs must be present with the right shape and
// every tensor in the files must be used, else specattn::error names the tensor.
model load_model(const std::string & path, const load_progress_fn & progress = nullptr);

// Whether `path` looks like a llama2.c checkpoint (a regular file, not a directory): decides the loader and
// which tokenizer sits beside it.
bool is_llama2c_path(const std::string & path);

} // namespace specattn
