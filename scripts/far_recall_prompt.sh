#!/usr/bin/env bash
# Writes a "far recall" prompt for the long-context model: held-out networkx code (scripts/long_prompt.sh) whose
# first file, networkx/__init__.py, is started again at the end, so the natural continuation is a copy of text
# BYTES bytes (~BYTES/3.4 tokens) back. A model that retrieves from far context continues with the file's next lines
# (`def __getattr__(name):` ...); one that does not repeats what it just read.
# Usage: scripts/far_recall_prompt.sh OUT_FILE [BYTES]   (default 30000 bytes ≈ 8.9K tokens of context)
set -eu
out=$1
bytes=${2:-30000}
base=$(mktemp)
trap 'rm -f "$base"' EXIT
bash "$(dirname "$0")/long_prompt.sh" "$base" "$bytes" networkx
{
    cat "$base"
    printf '\n'
    head -n 12 "$base" # the header line and the module docstring up to __version__, as at the start
} >"$out"
