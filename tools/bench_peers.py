#!/usr/bin/env python3
"""Hugging Face transformers' own decoding speed on the GPU machine, as a peer for `specattn bench --device cuda`.

Run from the repository root on the GPU machine:

    python3 tools/bench_peers.py --model models/specattn-code-19m-16k --prompt-tokens 6,5200 --new-tokens 200

For each prompt length it times model.generate (greedy, bf16, SDPA) with the dynamic cache and, where it works, the
static cache, after a warm-up, and prints decode tokens/s (new tokens over the time after the first token).
The prompt is random token ids (speed does not depend on them).
"""
import argparse
import json
import time

import torch
import transformers


def median_time(fn, reps=3):
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def timed_generate(model, ids, new_tokens, **kw):
    """Decode tokens/s: (new_tokens - 1) over the median time of generate(new_tokens) minus that of generate(1)
    (prefill and the first token), each the median of 3 runs after a full-length warm-up."""
    gen = lambda n: model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, **kw)
    gen(new_tokens)  # warm-up at full length (static-cache allocation, kernel selection)
    t_first = median_time(lambda: gen(1))
    t_all = median_time(lambda: gen(new_tokens))
    return (new_tokens - 1) / max(t_all - t_first, 1e-9), t_first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-tokens", default="6,5200")
    ap.add_argument("--new-tokens", type=int, default=200)
    args = ap.parse_args()
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16,
                                                              attn_implementation="sdpa").cuda().eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    results = []
    for n in [int(x) for x in args.prompt_tokens.split(",")]:
        ids = torch.randint(2, vocab, (1, n), generator=g).cuda()
        for cache in ("dynamic", "static"):
            kw = {} if cache == "dynamic" else {"cache_implementation": "static"}
            try:
                tps, prefill_s = timed_generate(model, ids, args.new_tokens, **kw)
                results.append({"prompt_tokens": n, "cache": cache, "decode_tokens_per_s": round(tps, 1),
                                "first_token_s": round(prefill_s, 4)})
            except Exception as e:  # report and go on: the other configuration is still a data point
                results.append({"prompt_tokens": n, "cache": cache, "error": repr(e)[:200]})
            print(json.dumps(results[-1]), flush=True)
    print("versions:", torch.__version__, transformers.__version__, torch.cuda.get_device_name())


if __name__ == "__main__":
    main()
