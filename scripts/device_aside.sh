#!/usr/bin/env bash
# Sets the long-context model aside for one device call, so that the working tree (which the device tool copies,
# 64 MiB with what is carried) leaves room for the bf16 stories15M (30 MB, tools/stories15M_to_bf16.py):
#     bash scripts/device_aside.sh aside    # models/specattn-code-19m-16k -> .aside/ (ignored: not copied)
#     ... device call: carry [".dev-main", "data/gpudeps", "data/stories15M_bf16"],
#         command `bash scripts/device_prebuilt.sh run bash scripts/gpu_session.sh stories`
#     bash scripts/device_aside.sh back     # and back; `git status` is clean again
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/specattn-code-19m-16k
case "${1:-}" in
aside)
    [ -d "$model" ] || { echo "device_aside.sh: $model is not there (already aside?)" >&2; exit 1; }
    [ -d data/stories15M_bf16 ] || python3 tools/stories15M_to_bf16.py
    mkdir -p .aside
    mv "$model" .aside/
    echo "set aside: $model -> .aside/ (run '$0 back' after the device call)"
    ;;
back)
    [ -d ".aside/$(basename "$model")" ] || { echo "device_aside.sh: nothing set aside" >&2; exit 1; }
    mv ".aside/$(basename "$model")" "$model"
    rmdir .aside 2>/dev/null || true
    git status --short -- "$model"
    echo "restored: $model"
    ;;
*)
    echo "usage: $0 aside | back" >&2
    exit 2
    ;;
esac
