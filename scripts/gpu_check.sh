#!/usr/bin/env bash
# The CUDA backend's check on the GPU machine. Run from the repo root there:
#     bash scripts/gpu_check.sh
# Configures build-gpu (SPECATTN_CUDA=ON, SPECATTN_NATIVE=ON, Ninja), builds, runs test_cuda_ops (every CUDA op
# against the CPU reference, the backend end to end), the CPU tests that guard the shared code, and
# `specattn generate --device cuda` on stories15M, then compute-sanitizer (memcheck, racecheck) on the op tests
# while time is left.
# Logs go to $OUT (default /tmp/gpu_check); a short table is printed last.
#
# What travels to the GPU machine (64 MiB with the tree): the fp32 stories15M.bin (61 MB) does not fit, so the
# caller runs `python3 tools/stories15M_to_bf16.py` here first and carries data/stories15M_bf16 (30 MB) when
# the tree leaves room; otherwise the greedy checks use the Qwen3 test model in models/ (it travels with the tree). That
# machine has no network; when its image lacks the C++ dependencies (nlohmann-json, CLI11, GoogleTest, PCRE2,
# utf8proc, pkg-config), the Debian packages in data/gpudeps/ (fetched with `apt-get download`, carried too) are
# unpacked into /tmp/specattn_deps and used instead: never into /.
#
# Budget: the device call allows 6 minutes; every step has its own timeout and the optional ones are skipped when
# the remaining time is short.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
BUDGET=${GPU_CHECK_BUDGET:-340}
T0=$(date +%s)
JOBS=$(nproc)
# stories15M: the carried bf16 copy, else the fp32 original if it travelled; else the Qwen3 test model in models/.
if [ -n "${SPECATTN_STORIES_MODEL:-}" ]; then
    MODEL=$SPECATTN_STORIES_MODEL
elif [ -d data/stories15M_bf16 ]; then
    MODEL=data/stories15M_bf16
elif [ -f data/stories15M/stories15M.bin ]; then
    MODEL=data/stories15M/stories15M.bin
else
    MODEL=models/specattn-code-19m-16k
fi
[ "$MODEL" != models/specattn-code-19m-16k ] && export SPECATTN_STORIES_MODEL=$MODEL
echo "generate model: $MODEL"

B=${GPU_CHECK_BUILD_DIR:-build-gpu} # another build dir only to try this script without a GPU
rows=()
elapsed() { echo $(($(date +%s) - T0)); }
left() { echo $((BUDGET - $(elapsed))); }
# step NAME LOG TIMEOUT CMD...: runs the program CMD (not a shell function) with a timeout, appending its output
# to $OUT/LOG, and records a table row. At most 8 files come back from the machine, so steps share logs.
step() {
    local name=$1 log=$2 limit=$3
    shift 3
    local t=$(date +%s)
    local path=$OUT/$log
    [[ $log == /* ]] && path=$log # outside $OUT: kept on the machine only
    [[ $log == *.json ]] || echo "== $name: $*" >>"$path"
    timeout "$limit" "$@" >>"$path" 2>&1
    local rc=$?
    local status=ok
    [ $rc -ne 0 ] && status="FAIL rc=$rc"
    [ $rc -eq 124 ] && status="TIMEOUT ${limit}s"
    rows+=("$(printf '%-26s %-14s %5ss  %s' "$name" "$status" $(($(date +%s) - t)) "$log")")
    echo "== $name: $status ($(($(date +%s) - t)) s)"
    return $rc
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    nvcc --version | tail -1
    cmake --version | head -1
    g++ --version | head -1
} 2>&1

CONFIGURE=(cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPECATTN_CUDA=ON -DSPECATTN_NATIVE=ON
           -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
if [ -z "${GPU_CHECK_SKIP_CONFIGURE:-}" ]; then
    rm -rf "$B"
    if ! step configure build.log 120 "${CONFIGURE[@]}"; then
        grep -E "Could NOT|not found|Error" "$OUT/build.log" | head -5
        if [ -d data/gpudeps ]; then
            echo "configure failed with the system's packages; using the carried Debian packages"
            root=/tmp/specattn_deps
            mkdir -p "$root"
            for f in data/gpudeps/*.deb; do dpkg -x "$f" "$root"; done
            lib=$root/usr/lib/x86_64-linux-gnu
            export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
            export PKG_CONFIG_PATH=$lib/pkgconfig
            export PKG_CONFIG_SYSROOT_DIR=$root
            rm -rf "$B"
            step configure_carried_deps build.log 120 "${CONFIGURE[@]}" -DCMAKE_PREFIX_PATH="$root/usr" \
                -DPKG_CONFIG_EXECUTABLE="$root/usr/bin/pkgconf"
        fi
    fi
fi

step build build.log 200 cmake --build "$B" -j "$JOBS" --target specattn_cli test_cuda_ops test_cpu test_model
grep -E "error|warning" "$OUT/build.log" | grep -v "^== " | head -20

step test_cuda_ops test_cuda_ops.log 120 "$B/tests/test_cuda_ops" --gtest_color=no
step test_cpu test_cpu.log 60 "$B/tests/test_cpu" --gtest_brief=1
step test_model test_cpu.log 60 "$B/tests/test_model" --gtest_brief=1

# `specattn generate --device cuda -p "Once upon a time" -n 60 --temp 0` on $MODEL, and the CPU for contrast.
GEN=("$B/specattn" generate -m "$MODEL" -p "Once upon a time" -n 60 --temp 0)
step generate_cuda generate.txt 60 "${GEN[@]}" --device cuda
step generate_cpu generate.txt 60 "${GEN[@]}" --device cpu
step generate_cuda_json gen_cuda.json 60 "${GEN[@]}" --device cuda --json
step generate_cpu_json gen_cpu.json 60 "${GEN[@]}" --device cpu --json
# Decode speed over a longer run: tokens/s of the decode steps, from the JSON stats.
step generate_cuda_200 gen_cuda_200.json 60 "$B/specattn" generate -m "$MODEL" -p "Once upon a time" \
    -n 200 --temp 0 --ignore-eos --device cuda --json

# Decode at a longer context on the Qwen3 test model (trained to 16k): a ~5k-token prompt, 100 new tokens.
if [ -d models/specattn-code-19m-16k ]; then
    python3 -c 'print("def add_one(x):\n    return x + 1\n" * 400)' >/tmp/long_prompt.txt
    rm -f /tmp/gen_cuda_long.json
    step generate_cuda_long /tmp/gen_cuda_long.json 60 "$B/specattn" generate -m models/specattn-code-19m-16k \
        -f /tmp/long_prompt.txt -n 100 --temp 0 --ignore-eos --device cuda -c 8192 --json
fi

# compute-sanitizer (works on the Firecracker machines): memcheck over every op and end-to-end test, then
# racecheck over the kernels that share memory between threads, as long as time is left.
if command -v compute-sanitizer >/dev/null && [ "$(left)" -gt 60 ]; then
    step memcheck sanitizer.log $(($(left) - 40)) compute-sanitizer --tool memcheck --leak-check full \
        --error-exitcode 7 "$B/tests/test_cuda_ops" --gtest_color=no
else
    rows+=("$(printf '%-26s %-14s' memcheck "skipped (time)")")
fi
if command -v compute-sanitizer >/dev/null && [ "$(left)" -gt 45 ]; then
    step racecheck sanitizer.log $(($(left) - 15)) compute-sanitizer --tool racecheck --error-exitcode 7 \
        "$B/tests/test_cuda_ops" --gtest_color=no --gtest_filter='grid/*:cuda_ops.rmsnorm*:cuda_ops.argmax*'
else
    rows+=("$(printf '%-26s %-14s' racecheck "skipped (time)")")
fi

echo
echo "---- op and end-to-end numbers (test_cuda_ops) ----"
grep -E '^\[ (op|e2e) \]|FAILED|Failure|error' "$OUT/test_cuda_ops.log" | head -60
tail -3 "$OUT/test_cuda_ops.log"
echo "---- generate ----"
cat "$OUT/generate.txt"
python3 - "$OUT" <<'EOF' || true
import json, sys
out = sys.argv[1]
def load(name):
    try:
        return json.load(open(f"{out}/{name}"))
    except Exception as e:
        return None
cu, cp, lg = load("gen_cuda.json"), load("gen_cpu.json"), load("gen_cuda_200.json")
if cu and cp:
    a, b = cu["token_ids"], cp["token_ids"]
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    print(f"greedy, 60 tokens: CUDA and CPU agree on the first {n} of {min(len(a), len(b))}")
    tps = [x["stats"]["generation_tokens_per_s"] for x in (cu, cp)]
    print(f"decode tokens/s: cuda {tps[0]:.1f}, cpu {tps[1]:.1f}")
try:
    lo = json.load(open("/tmp/gen_cuda_long.json"))
    s = lo["stats"]
    print(f"cuda long context ({s['prompt_tokens']} prompt tokens): decode {s['generation_tokens_per_s']:.1f} "
          f"tokens/s, prefill {s['prompt_tokens_per_s']:.1f} tokens/s")
except Exception as e:
    print("no long-context run:", e)
if lg:
    s = lg["stats"]
    print(f"cuda 200-token run: decode {s['generation_tokens_per_s']:.1f} tokens/s, "
          f"prefill {s['prompt_tokens_per_s']:.1f} tokens/s")
EOF
if [ -f "$OUT/sanitizer.log" ]; then
    echo "---- compute-sanitizer ----"
    grep -E "^== |ERROR SUMMARY|LEAK SUMMARY|RACECHECK SUMMARY|Invalid|hazard|PASSED|FAILED" "$OUT/sanitizer.log" |
        head -20
fi
echo
echo "---- summary ($(elapsed) s) ----"
printf '%s\n' "${rows[@]}"
