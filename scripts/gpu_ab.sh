#!/usr/bin/env bash
# Side-by-side kernel timings of two or more variants in one device call, interleaved so that clock and thermal
# drift hit every variant alike (METHOD.md: compare strategies in one run):
#     STAGES=".dev-a .dev-b" bash scripts/gpu_ab.sh verify7:8:131072:heur decode:8:131072:heur ...
#     STAGES=".dev-a:SPECATTN_ATTN_SPLIT_D=0 .dev-a" bash scripts/gpu_ab.sh ...   # one build, two settings
# A variant is a directory made by `STAGE_DIR=... scripts/device_prebuilt.sh stage`, optionally followed by
# :NAME=VALUE environment settings (comma-separated); run this through `device_prebuilt.sh run` (for the loader
# paths). ROUNDS (default 2) repeats the whole interleaved sweep (odd rounds in reverse variant order); the table last gives each case's median
# microseconds and % of copy per variant and the time ratio to the first.
set -uo pipefail
stages=(${STAGES:?set STAGES to the staged build directories})
rounds=${ROUNDS:-2}
log=${OUT:-/tmp/gpu_ab}/ab.log
mkdir -p "$(dirname "$log")"
: >"$log"
for ((r = 0; r < rounds; r++)); do
    order=("${stages[@]}")
    if ((r % 2 == 1)); then # odd rounds run the variants in reverse: no variant always goes first
        order=()
        for ((i = ${#stages[@]} - 1; i >= 0; i--)); do order+=("${stages[i]}"); done
    fi
    for c in "$@"; do
        for s in "${order[@]}"; do
            dir=${s%%:*}
            envs=()
            [ "$dir" != "$s" ] && IFS=, read -ra envs <<<"${s#*:}"
            # kernel_bench prints each row twice (as it runs, then in its table): both count
            env "${envs[@]}" timeout 40 "$dir/kernel_bench" --reps 10 --only "$c" 2>&1 |
                grep -E "^\| (verify|decode|sparse|prefill)" | sed "s|^|$s ${c// /_} |" >>"$log"
        done
    done
done
python3 - "$log" "${stages[@]}" <<'EOF'
import sys, statistics, collections
log, stages = sys.argv[1], sys.argv[2:]
times = collections.defaultdict(list)  # (case, stage) -> [(microseconds, % of copy)]
for line in open(log):
    stage, _, rest = line.split(' ', 2)
    cells = [c.strip() for c in rest.strip().strip('|').split('|')]
    if len(cells) < 9:
        continue
    times[(':'.join(cells[:4]), stage)].append((float(cells[4]), float(cells[8].rstrip('%'))))
cases = list(dict.fromkeys(c for c, _ in times))
print('| case | ' + ' | '.join(f'{s} us (% copy)' for s in stages) + ' | time ratio to first |')
print('|---|' + '---|' * (len(stages) + 1))
for c in cases:
    med = [(statistics.median(t for t, _ in times[(c, s)]), statistics.median(p for _, p in times[(c, s)]))
           if times[(c, s)] else (float('nan'), float('nan')) for s in stages]
    ratios = ', '.join(f'{m[0] / med[0][0]:.3f}' for m in med[1:])
    print(f'| {c} | ' + ' | '.join(f'{t:.1f} ({p:.1f}%)' for t, p in med) + f' | {ratios} |')
EOF
