#!/usr/bin/env python3
"""Per-step kernel time table from an Nsight Compute CSV (`ncu --metrics gpu__time_duration.sum --csv
--print-units base --log-file F ...`), as scripts/gpu_session.sh profile writes it.

A decode step ends with the kernel named by --steps-of (the token pick); the last complete step, the kernels
after the second-to-last match up to and including the last one, is summarized: per kernel (name and grid), the
launch count and total time in microseconds, largest first, and the sum. The sum is the step's time with no
launch gaps; the bench's graph-replayed step time minus this is what launching and dependencies cost."""
import argparse
import csv
import sys


def short(name, width=60):
    name = name.split("(")[0] if not name.startswith("void ") else name[5:].split("(")[0]
    return name if len(name) <= width else name[: width - 3] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("--steps-of", default="argmax", help="substring of the kernel that ends each step")
    args = ap.parse_args()
    rows = []
    with open(args.csv, newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]  # ncu prints its own notes before the table
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        rows.append((r["Kernel Name"], r.get("Grid Size", ""), float(r["Metric Value"].replace(",", "")) / 1000.0))
    if not rows:
        sys.exit(f"{args.csv}: no gpu__time_duration.sum rows")
    ends = [i for i, (name, _, _) in enumerate(rows) if args.steps_of in name]
    if len(ends) < 2:
        sys.exit(f"{args.csv}: fewer than two '{args.steps_of}' kernels; no complete step")
    step = rows[ends[-2] + 1 : ends[-1] + 1]
    groups = {}
    for name, grid, us in step:
        key = (short(name), grid)
        n, t = groups.get(key, (0, 0.0))
        groups[key] = (n + 1, t + us)
    total = sum(t for _, t in groups.values())
    print(f"{args.csv}: {len(rows)} kernels profiled, {len(ends)} steps; last step: {len(step)} kernels, "
          f"{total:.1f} us of kernel time")
    print(f"{'kernel':<62} {'grid':<16} {'n':>4} {'total us':>9} {'us each':>8} {'share':>6}")
    for (name, grid), (n, t) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:<62} {grid:<16} {n:>4} {t:>9.1f} {t / n:>8.2f} {100 * t / total:>5.1f}%")


if __name__ == "__main__":
    main()
