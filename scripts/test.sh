#!/usr/bin/env bash
# Runs the whole test suite: everything ctest knows (unit, model-vs-transformers, engine, CLI black-box tests),
# then each libFuzzer target for a bounded time. Expects scripts/setup.sh to have run (the README's test command
# runs both). FUZZ_SECONDS=0 skips the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake --build build -j "$jobs"
# Tests run side by side, so each gets one OpenMP thread: spinning OpenMP threads on an oversubscribed machine
# slow everything down by orders of magnitude.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --test-dir build --output-on-failure -j "$jobs"
fuzz_seconds=${FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
    bash scripts/fuzz.sh "$fuzz_seconds"
fi
