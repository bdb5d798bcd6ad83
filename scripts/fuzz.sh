#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs each for SECONDS (default 60) on a
# scratch copy of its seed corpus in fuzz/corpus/NAME/. A crash fails the script and leaves the input in
# build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECATTN_FUZZ=ON \
    -DSPECATTN_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target $(cd fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//')
mkdir -p build-fuzz/crashes
status=0
for src in fuzz/fuzz_*.cpp; do
    name=$(basename "$src" .cpp)
    corpus=build-fuzz/corpus/${name#fuzz_}
    rm -rf "$corpus" && mkdir -p "$corpus"
    cp -r "fuzz/corpus/${name#fuzz_}/." "$corpus/" 2>/dev/null || true
    echo "fuzz: $name for ${seconds}s"
    if ! "build-fuzz/fuzz/$name" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 \
        -artifact_prefix=build-fuzz/crashes/ -print_final_stats=1 "$corpus" 2>build-fuzz/$name.log; then
        echo "fuzz: $name FAILED; see build-fuzz/$name.log and build-fuzz/crashes/" >&2
        tail -30 "build-fuzz/$name.log" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::new_units_added" "build-fuzz/$name.log" | tr '\n' ' '
        echo
    fi
done
[ $status -eq 0 ] && echo "fuzz: all targets clean" || true
exit $status
