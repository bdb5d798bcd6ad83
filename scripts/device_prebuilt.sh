#!/usr/bin/env bash
# Runs binaries built here (no GPU) on the GPU machine, which lacks some of our runtime libraries:
#     bash scripts/device_prebuilt.sh stage            # here: stripped binaries of build/ -> .dev-main/
#     bash scripts/device_prebuilt.sh run CMD ARGS...  # there (device call with carry [".dev-main", "data/gpudeps"])
# `run` unpacks PCRE2 and utf8proc from the carried Debian packages (data/gpudeps, see scripts/gpu_check.sh) into
# /tmp/specattn_deps, points the loader at them and at the CUDA libraries, links the source directory the tests were
# compiled with (SPECATTN_SOURCE_DIR) to this checkout, and runs CMD with .dev-main on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
stage)
    mkdir -p .dev-main
    for b in build/specattn build/tests/test_cuda_ops build/bench/kernel_bench build/bench/select_bench; do
        [ -f "$b" ] && strip -o ".dev-main/$(basename "$b")" "$b"
    done
    echo "$PWD" >.dev-main/source_dir
    ls -la .dev-main
    ;;
run)
    shift
    root=/tmp/specattn_deps
    mkdir -p "$root"
    for f in data/gpudeps/libpcre2-8-0_*.deb data/gpudeps/libutf8proc2_*.deb; do dpkg -x "$f" "$root"; done
    export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    src=$(cat .dev-main/source_dir)
    if [ "$src" != "$PWD" ]; then
        mkdir -p "$(dirname "$src")"
        ln -sfn "$PWD" "$src"
    fi
    export PATH="$PWD/.dev-main:$PATH"
    "$@"
    ;;
*)
    echo "usage: $0 stage | run CMD..." >&2
    exit 2
    ;;
esac
