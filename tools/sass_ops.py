#!/usr/bin/env python3
"""Instruction classes of a CUDA kernel's machine code (sm_90a), without a GPU or a disassembler.

The CPU machines have nvcc and ptxas but no cuobjdump / nvdisasm. This compiles one CUDA source of a build tree to a
cubin (the build's own nvcc command, sm_90a only) and reads each matching kernel's .text: an instruction is 16 bytes
and its low 12 bits name its opcode class, mapped through tools/sm90_opcodes.json (made from `cuobjdump -sass`
listings of our kernels on the GPU machine; classes not in it print as ?xyz). Loops are found from backward branches
(BRA's target field: bits 16-23 and 34-63 of the first word, in 4-byte units, relative to the next instruction).

    python3 tools/sass_ops.py --build build --source ops_attention.cu --kernel dsplit_kernelILi128ELi2ELb0
    python3 tools/sass_ops.py --cubin x.cubin --kernel ... --dump 0xcf20 0x12800   # the class sequence of a range
    python3 tools/sass_ops.py --make-map a.sass b.sass   # rewrite the map from `cuobjdump -sass` listings

Static counts: a loop's body includes its rarely taken paths, so compare versions, do not read them as issued
instructions per iteration (Nsight Compute on the GPU machine gives those).
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_cubin(build, source, out):
    cmds = subprocess.run(["ninja", "-C", build, "-t", "commands"], capture_output=True, text=True, check=True).stdout
    cmd = next((c for c in cmds.splitlines() if "nvcc" in c and source in c and " -c " in c), None)
    if cmd is None:
        sys.exit(f"sass_ops: no nvcc command for {source} in {build}")
    cmd = cmd.replace(" -c ", " -cubin ")
    cmd = re.sub(r" -gencode=arch=compute_\d+a?,code=compute_\d+a?", "", cmd)  # PTX targets: cubin takes one arch
    cmd = re.sub(r" -o \S+", f" -o {out}", cmd)
    subprocess.run(cmd, shell=True, check=True, cwd=build, stderr=subprocess.DEVNULL)


def text_sections(cubin, kernel):
    out = subprocess.run(["readelf", "-S", "-W", cubin], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "] .text." in line and kernel in line:
            f = line.split("]", 1)[1].split()
            size = int(f[4], 16)
            if size:
                yield f[0][len(".text."):], int(f[3], 16), size


def make_map(listings):
    """Low 12 bits of each listed instruction's first word -> its most frequent mnemonic (without modifiers)."""
    seen = collections.defaultdict(collections.Counter)
    pattern = re.compile(r"\s*/\*[0-9a-f]{4,}\*/\s+(.*?);\s*/\* 0x([0-9a-f]{16}) \*/")
    for path in listings:
        for line in open(path):
            m = pattern.match(line)
            if m:
                text = re.sub(r"^@!?U?P\w+\s+", "", m.group(1).strip())  # drop the predicate
                seen[int(m.group(2), 16) & 0xfff][text.split()[0].split(".")[0]] += 1
    return {f"{k:03x}": v.most_common(1)[0][0] for k, v in sorted(seen.items())}


def opcode_classes(data, off, size):
    """(offset, first word, opcode class = its low 12 bits) of each instruction of a .text section."""
    for a in range(0, size, 16):
        lo = int.from_bytes(data[off + a:off + a + 8], "little")
        yield a, lo, lo & 0xfff


def decode(data, off, size, opcodes):
    ins = []
    for a, lo, cls in opcode_classes(data, off, size):
        op = opcodes.get(f"{cls:03x}", f"?{cls:03x}")
        target = None
        if op == "BRA":
            v = ((lo >> 16) & 0xff) | ((lo >> 34) << 8)
            if lo >> 63:
                v -= 1 << 38
            target = a + 16 + 4 * v
        ins.append((a, op, target))
    return ins


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cubin")
    ap.add_argument("--build", help="build tree whose nvcc command compiles --source")
    ap.add_argument("--source", default="ops_attention.cu")
    ap.add_argument("--kernel", help="substring of the mangled kernel name")
    ap.add_argument("--min-loop", type=int, default=300, help="report loops of at least this many instructions")
    ap.add_argument("--dump", nargs=2, metavar=("LO", "HI"), help="print the classes of [LO, HI] (hex offsets)")
    ap.add_argument("--make-map", nargs="+", metavar="LISTING", help="write sm90_opcodes.json from cuobjdump listings")
    args = ap.parse_args()
    map_path = os.path.join(HERE, "sm90_opcodes.json")
    if args.make_map:
        with open(map_path, "w") as f:
            json.dump(make_map(args.make_map), f, indent=0)
        return
    if args.kernel is None:
        sys.exit("sass_ops: give --kernel")
    opcodes = json.load(open(map_path))
    if args.cubin is None and args.build is None:
        sys.exit("sass_ops: give --cubin or --build")
    with tempfile.TemporaryDirectory() as tmp:  # a compiled cubin is read here and removed with it
        cubin = args.cubin
        if cubin is None:
            cubin = os.path.join(tmp, "k.cubin")
            compile_cubin(os.path.abspath(args.build), args.source, cubin)
        data = open(cubin, "rb").read()
        sections = list(text_sections(cubin, args.kernel))
    for name, off, size in sections:
        ins = decode(data, off, size, opcodes)
        if args.dump:
            lo, hi = int(args.dump[0], 16), int(args.dump[1], 16)
            print(" ".join(op for a, op, _ in ins if lo <= a <= hi))
            continue
        print(f"{name}: {len(ins)} instructions")
        for start, end in sorted({(t, a) for a, op, t in ins if t is not None and t < a}):
            body = [op for a, op, _ in ins if start <= a <= end]
            if len(body) >= args.min_loop:
                top = collections.Counter(body).most_common(12)
                print(f"  loop {start:#x}-{end:#x}: {len(body)}  " + " ".join(f"{o} {n}" for o, n in top))


if __name__ == "__main__":
    main()
