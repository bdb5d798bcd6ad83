#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer (CPU build, no CUDA) in build-asan/. The three
# heaviest tests (the full speculative grid, the sampling distribution test and the 1,843-token long-context model
# test) are left to the plain run of scripts/test.sh: under the sanitizers they take many minutes and exercise the
# same code as the tests that do run here.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECATTN_CUDA=OFF \
    -DSPECATTN_SANITIZE_ADDRESS=ON -DSPECATTN_SANITIZE_UNDEFINED=ON >/dev/null
cmake --build build-asan -j "$(nproc)"
OMP_NUM_THREADS=1 ctest --test-dir build-asan --output-on-failure -j "$(nproc)" \
    -E "speculative_samples_follow|greedy_equals_autoregressive_for_every|longctx"
