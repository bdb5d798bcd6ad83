#!/usr/bin/env python3
"""transformers' fp32 reference for a model directory and a text prompt: token ids (HF tokenizers), the logits of
a few prompt positions, and a greedy continuation. Used for models too large to dump whole (the long-context model).

Run from the repository root on the GPU machine (torch, transformers, tokenizers; no network):

    python3 tools/dump_reference.py --model models/specattn-code-19m-16k --prompt-file PROMPT.txt \
        --positions 0,511,1023,LAST --n-greedy 32 --out $OUT/reference.json

The prompt text itself is not committed (third-party source); its sha256 and the command that makes it are.
"""
import argparse
import hashlib
import json

import tokenizers
import torch
import transformers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-file", required=True)
    ap.add_argument("--prompt-command", default="", help="how the prompt file was made, recorded in the output")
    ap.add_argument("--positions", default="0,LAST", help="comma-separated prompt positions; LAST = the last")
    ap.add_argument("--n-greedy", type=int, default=32)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    raw = open(args.prompt_file, "rb").read()
    text = raw.decode("utf-8")
    tok = tokenizers.Tokenizer.from_file(f"{args.model}/tokenizer.json")
    ids = tok.encode(text, add_special_tokens=False).ids
    positions = [len(ids) - 1 if p == "LAST" else int(p) for p in args.positions.split(",")]

    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32,
                                                              attn_implementation="eager").cuda().eval()
    # TF32 off: a plain fp32 reference.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        logits = model(torch.tensor([ids]).cuda()).logits[0].float().cpu()
        seq = list(ids)
        greedy = []
        past = None
        inp = torch.tensor([seq]).cuda()
        for _ in range(args.n_greedy):
            out = model(inp, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = int(out.logits[0, -1].argmax())
            greedy.append(nxt)
            inp = torch.tensor([[nxt]]).cuda()
    ref = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "command": "python3 tools/dump_reference.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out",)),
        "prompt_command": args.prompt_command,
        "prompt_sha256": hashlib.sha256(raw).hexdigest(),
        "prompt_ids": ids,
        "positions": positions,
        "logits": [[round(float(x), 6) for x in logits[p]] for p in positions],
        "greedy_ids": greedy,
        "greedy_text": tok.decode(greedy),
    }
    with open(args.out, "w") as f:
        json.dump(ref, f)
    print(f"{len(ids)} prompt tokens, positions {positions}, greedy {greedy[:12]}... -> {args.out}")


if __name__ == "__main__":
    main()
