#!/usr/bin/env bash
# The acceptance-rate experiment of the long-context model's card (models/specattn-code-19m-16k/README.md): every
# selector through the speculative loop on held-out code, greedy, with τ, acceptance per draft position, the
# accepted-length histogram and the lossless check (speculative tokens == autoregressive tokens) per row.
#     scripts/acceptance.sh [OUT_DIR]                  # CPU, the card's settings: 30,000 bytes ≈ 8.9K tokens, γ 6
#     DEVICE=cuda scripts/acceptance.sh [OUT_DIR]      # the same on the GPU
# Environment: MODEL (default models/specattn-code-19m-16k), DEVICE (cpu), BYTES (30000), GAMMA (6), RATIOS
# ("0.07 0.25"), N (96 new tokens), THREADS (2). Writes OUT_DIR/prompt.txt, OUT_DIR/r<ratio>.json per ratio, and
# prints the tables (tools/bench_table.py).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/specattn_acceptance}
model=${MODEL:-models/specattn-code-19m-16k}
device=${DEVICE:-cpu}
mkdir -p "$out"
[ -x build/specattn ] || { echo "acceptance.sh: build/specattn not built (bash scripts/setup.sh)" >&2; exit 1; }
scripts/long_prompt.sh "$out/prompt.txt" "${BYTES:-30000}" networkx
for r in ${RATIOS:-0.07 0.25}; do
    ./build/specattn bench -m "$model" -f "$out/prompt.txt" -c 16384 -n "${N:-96}" -r 1 --draft-len "${GAMMA:-6}" \
        --spec-ratio "$r" --spec none,dense,streaming,quest,specextend,pillar,specattn --device "$device" \
        -t "${THREADS:-2}" --json >"$out/r$r.json"
done
python3 tools/bench_table.py "$out"
python3 - "$out" <<'EOF'
import json, pathlib, sys
print("\n| ratio | selector | τ | acceptance | P(accept) by draft position | accepted histogram | lossless |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for f in sorted(pathlib.Path(sys.argv[1]).glob("r*.json")):
    for r in json.loads(f.read_text()):
        if r["method"] != "none":
            pos = " ".join(f"{x:.2f}" for x in r["acceptance_by_position"])
            hist = " ".join(map(str, r["accepted_histogram"]))
            print(f"| {r['ratio']} | {r['method']} | {r['tau']:.2f} | {r['acceptance_rate']:.3f} | {pos} | {hist} | "
                  f"{r['lossless']} |")
EOF
