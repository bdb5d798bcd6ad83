#!/usr/bin/env python3
"""Fails when a CUDA source's kernels contain cp.async copies in the encoding that ptxas's cache-policy bug produces.

ptxas (13.0 here; fixed in 13.4.59 per triton-lang/triton#11848) can lower `cp.async ... L2::cache_hint` with a
fractional policy to an LDGSTS that reads its L2 cache descriptor from a uniform register nothing wrote
(IST-DASLab/marlin#44). The GPU then stops the kernel with "an illegal instruction was encountered". Our split-D
attention copies KV that way (attention_params::stream_kv). Its copies are plain LDGSTS today (class 0xfae). The
faulting form is class 0xdae, which session 21's warpgroup kernel got in its loop and faulted on at its first copy
(docs/perf_attention.md). The CPU machines cannot run a kernel, so this reads the machine code instead, through
tools/sass_ops.py:

    python3 tools/check_cache_hint_copies.py --build build --source ops_attention.cu

Exit 0: no such copy; 1: the kernels that have one; 77: the build cannot be read here (no ninja or readelf).
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sass_ops  # noqa: E402

FAULTING_LDGSTS = 0xDAE  # opcode class (low 12 bits) of the copies that faulted


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="a CMake build tree made with Ninja")
    ap.add_argument("--source", action="append", required=True, help="CUDA source file name (repeatable)")
    args = ap.parse_args()
    if shutil.which("ninja") is None or shutil.which("readelf") is None:
        print("check_cache_hint_copies: needs ninja and readelf; skipped")
        return 77
    bad = []
    for source in args.source:
        with tempfile.TemporaryDirectory() as tmp:
            cubin = os.path.join(tmp, "k.cubin")
            sass_ops.compile_cubin(os.path.abspath(args.build), source, cubin)
            data = open(cubin, "rb").read()
            sections = list(sass_ops.text_sections(cubin, ""))
        for name, off, size in sections:
            count = sum(1 for _, _, cls in sass_ops.opcode_classes(data, off, size) if cls == FAULTING_LDGSTS)
            if count:
                bad.append(f"{source}: {name}: {count} copies")
        print(f"check_cache_hint_copies: {source}: {len(sections)} kernels read")
    if bad:
        print("check_cache_hint_copies: copies in the encoding ptxas's cache-policy bug produces (they fault on the "
              "GPU with 'illegal instruction'; drop their L2::cache_hint):")
        print("\n".join("  " + b for b in bad))
        return 1
    print("check_cache_hint_copies: none of the faulting form")
    return 0


if __name__ == "__main__":
    sys.exit(main())
