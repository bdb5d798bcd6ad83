#!/usr/bin/env bash
# The decoding benchmarks of docs/performance.md on the GPU machine, with prebuilt binaries (scripts/device_prebuilt.sh):
#     bash scripts/device_prebuilt.sh run bash scripts/gpu_bench.sh          # device call, carry .dev-main data/gpudeps
# 1. specattn bench on model-shape presets with random weights: autoregressive decoding (GB/s against the measured
#    copy bandwidth) and SpecAttn / StreamingLLM drafting side by side, contexts 4K-128K, batch 1-64 (synthetic
#    prefill: random K/V, so only decoding is timed);
# 2. Hugging Face transformers' own generate on the same shapes, contexts and batches (tools/bench_peers.py).
# Logs go to $OUT (default /tmp/gpu_bench); each step has a timeout so the whole run ends inside one device call.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_bench}
mkdir -p "$OUT"
N=${BENCH_N:-64}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
bench() { # name timeout args...
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" specattn bench --device cuda -n "$N" -r 2 --json "$@" >"$OUT/$name.json" 2>"$OUT/$name.err"
    echo "rc=$? $(tail -1 "$OUT/$name.err")"
}
bench llama8b_4k 150 --preset llama-3.1-8b --ctx-len 4096 -b 1,8,32,64 --spec none,specattn,streaming --draft-len 4
bench llama8b_32k 150 --preset llama-3.1-8b --ctx-len 32768 -b 1,8,24 --spec none,specattn,streaming --draft-len 4
bench llama8b_128k 120 --preset llama-3.1-8b --ctx-len 131000 -b 1,4 --spec none,specattn --draft-len 4
bench qwen8b_32k 100 --preset qwen3-8b --ctx-len 32768 -b 1,8 --spec none,specattn --draft-len 4
echo "== hf peer"
PYTHONUNBUFFERED=1 timeout 200 python3 tools/bench_peers.py --preset llama-3.1-8b --prompt-tokens 4096,32768 \
    --batch 1,8 --new-tokens 32 --caches static >"$OUT/hf_llama8b.jsonl" 2>"$OUT/hf_llama8b.err"
echo "rc=$?"
cat "$OUT/hf_llama8b.jsonl"
python3 tools/bench_table.py "$OUT"
