#!/usr/bin/env bash
# Writes a long held-out code prompt for the long-context model (models/specattn-code-19m-16k): the Python sources
# of a package the model never saw in training (networkx, held out there), from Debian's package, concatenated in
# sorted path order with the same file-header lines the training corpus used, cut at the last line end within BYTES bytes.
# Usage: scripts/long_prompt.sh OUT_FILE [BYTES] [PACKAGE]   (defaults: 30000 bytes ≈ 9K tokens, networkx)
set -eu  # no pipefail: head closing the pipe early is the point
out=$1
bytes=${2:-30000}
pkg=${3:-networkx}
dir=/usr/lib/python3/dist-packages/$pkg
if [ ! -d "$dir" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "python3-$pkg" >/dev/null
fi
(cd /usr/lib/python3/dist-packages && find "$pkg" -name '*.py' -not -path '*/tests/*' | LC_ALL=C sort | while read -r f; do
    printf '# ===== file: %s =====\n' "$f"
    cat "$f"
    printf '\n'
done) | head -c "$bytes" | sed '$d' > "$out"  # cut at a line end, never inside a character
