#!/usr/bin/env python3
"""Prints the `specattn bench --json` files of a folder as one markdown table (scripts/gpu_bench.sh, gpu_session.sh).

Usage: python3 tools/bench_table.py DIR   (every DIR/*.json; the run column is the file's name)
"""
import glob
import json
import os
import sys


def main(folder):
    print("| run | prompt | batch | strategy | tokens/s | x none | GB/s | % copy | tau | lossless |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for f in sorted(glob.glob(os.path.join(folder, "*.json"))):
        name = os.path.basename(f)[:-5]
        try:
            with open(f) as fh:
                rows = json.load(fh)
        except (OSError, ValueError) as e:
            print(f"| {name} | unreadable: {e} |")
            continue
        for r in rows:
            gbs = r.get("hbm_gb_per_s", 0.0)
            cp = r.get("copy_gb_per_s", 0.0)
            print(f"| {name} | {r['prompt_tokens']} | {r['batch']} | {r['method']} | "
                  f"{r['tokens_per_s']:.1f} | {r['speedup_vs_none']:.2f} | {gbs:.0f} | "
                  f"{100 * gbs / cp if cp else 0:.0f}% | {r.get('tau', 0):.2f} | {r['lossless']} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: bench_table.py DIR")
    main(sys.argv[1])
