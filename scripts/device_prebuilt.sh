#!/usr/bin/env bash
# Runs binaries built here (no GPU) on the GPU machine, which lacks some of our runtime libraries:
#     bash scripts/device_prebuilt.sh stage            # here: stripped binaries of build/ -> .dev-main/
#     bash scripts/device_prebuilt.sh run CMD ARGS...  # there (device call with carry [".dev-main", "data/gpudeps"])
# BUILD_DIR (default build) and STAGE_DIR (default .dev-main, must match /.dev-*/ in .gitignore) let several build
# trees be staged side by side: `STAGE_DIR=.dev-gemm BUILD_DIR=build-gemm ... stage`, then carry .dev-gemm and run
# with the same STAGE_DIR.
# `run` unpacks PCRE2 and utf8proc from the carried Debian packages (data/gpudeps, see scripts/gpu_check.sh) into
# /tmp/specattn_deps, points the loader at them and at the CUDA libraries, links the source directory the tests were
# compiled with (SPECATTN_SOURCE_DIR) to this checkout, and runs CMD with .dev-main on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
stage_dir=${STAGE_DIR:-.dev-main}
build_dir=${BUILD_DIR:-build}
case "${1:-}" in
stage)
    mkdir -p "$stage_dir"
    for b in specattn tests/test_cuda_ops bench/kernel_bench bench/select_bench bench/gemm_bench; do
        if [ -f "$build_dir/$b" ]; then strip -o "$stage_dir/$(basename "$b")" "$build_dir/$b"; fi
    done
    echo "$PWD" >"$stage_dir/source_dir"
    ls -la "$stage_dir"
    ;;
run)
    shift
    root=/tmp/specattn_deps
    mkdir -p "$root"
    for f in data/gpudeps/libpcre2-8-0_*.deb data/gpudeps/libutf8proc2_*.deb; do dpkg -x "$f" "$root"; done
    export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    src=$(cat "$stage_dir/source_dir")
    if [ "$src" != "$PWD" ]; then
        mkdir -p "$(dirname "$src")"
        ln -sfn "$PWD" "$src"
    fi
    export PATH="$PWD/$stage_dir:$PATH"
    "$@"
    ;;
*)
    echo "usage: $0 stage | run CMD..." >&2
    exit 2
    ;;
esac
