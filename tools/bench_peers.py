#!/usr/bin/env python3
"""Hugging Face transformers' own decoding speed on the GPU machine, as a peer for `specattn bench --device cuda`.

Run from the repository root on the GPU machine:

    python3 tools/bench_peers.py --model models/specattn-code-19m-16k --prompt-tokens 6,5200 --new-tokens 200
    python3 tools/bench_peers.py --preset llama-3.1-8b --prompt-tokens 4096,32768 --batch 1,8 --new-tokens 64

--preset builds the same shape as `specattn bench --preset` (src/model/presets.cpp) with random weights, directly on
the GPU, so both engines decode the same shape, context and batch on the same card.

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


def timed_generate(model, ids, new_tokens, reps=3, **kw):
    """Decode tokens/s: (new_tokens - 1) over the median time of generate(new_tokens) minus that of generate(1)
    (prefill and the first token), each the median of `reps` runs after a full-length warm-up. Every run prefills
    again: at 8 x 32K that is ~10 s each, so long prompts want --reps 1 (3 generates in all instead of 7)."""
    gen = lambda n: model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, **kw)
    gen(new_tokens)  # warm-up at full length (static-cache allocation, kernel selection)
    t_first = median_time(lambda: gen(1), reps)
    t_all = median_time(lambda: gen(new_tokens), reps)
    return (new_tokens - 1) / max(t_all - t_first, 1e-9), t_first


def preset_config(name):
    """The shapes of src/model/presets.cpp."""
    if name == "llama-3.1-8b":
        return transformers.LlamaConfig(
            vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
            num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
            rms_norm_eps=1e-5, tie_word_embeddings=False)  # rope scaling left out: it does not change the speed
    if name == "qwen3-8b":
        return transformers.Qwen3Config(
            vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
            num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
            rms_norm_eps=1e-6, tie_word_embeddings=False)
    raise SystemExit(f"unknown preset {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--preset")
    ap.add_argument("--prompt-tokens", default="6,5200")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--new-tokens", type=int, default=200)
    ap.add_argument("--caches", default="dynamic,static")
    ap.add_argument("--reps", type=int, default=3, help="timed runs of each generate length (median)")
    args = ap.parse_args()
    if args.preset:
        cfg = preset_config(args.preset)
        cfg._attn_implementation = "sdpa"
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16,
                                                                  attn_implementation="sdpa").cuda().eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    results = []
    for n in [int(x) for x in args.prompt_tokens.split(",")]:
        for b in [int(x) for x in args.batch.split(",")]:
            ids = torch.randint(2, vocab, (b, n), generator=g).cuda()
            for cache in args.caches.split(","):
                kw = {} if cache == "dynamic" else {"cache_implementation": "static"}
                try:
                    with torch.inference_mode():
                        tps, prefill_s = timed_generate(model, ids, args.new_tokens, args.reps, **kw)
                    results.append({"prompt_tokens": n, "batch": b, "cache": cache,
                                    "decode_tokens_per_s": round(tps * b, 1), "first_token_s": round(prefill_s, 4)})
                except Exception as e:  # report and go on: the other configuration is still a data point
                    results.append({"prompt_tokens": n, "batch": b, "cache": cache, "error": repr(e)[:200]})
                print(json.dumps(results[-1]), flush=True)
                torch.cuda.empty_cache()
    print("versions:", torch.__version__, transformers.__version__, torch.cuda.get_device_name())


if __name__ == "__main__":
    main()
