#!/usr/bin/env python3
"""Reference data no one here wrote, made with Hugging Face `tokenizers` and `transformers` on the GPU machine.

Run from the repository root on the device machine (it has torch, transformers and tokenizers; no network):

    python3 tools/make_fixtures.py --out $OUT/fixtures && tar -C $OUT -czf $OUT/fixtures.tgz fixtures

It needs data/ from scripts/setup.sh (carry data/tokenizers and data/stories15M/tokenizer.bin) and writes:

  tokenizer/<name>.golden.json   HF tokenizers ids for every string of tests/fixtures/tokenizer/corpus.json, with and
                                 without special tokens, and HF's decode of the ids;
                                 names: qwen2_5, llama3_2 (the real files), llama2 (a Llama-2 style tokenizer.json
                                 built here from llama2.c's tokenizer.bin: Metaspace, byte fallback), tiny (trained here)
  tokenizer/llama2/tokenizer.json, tokenizer/llama2/tokenizer_config.json   the Llama-2 style tokenizer itself
  models/<name>/                 tiny random-weight checkpoints saved with save_pretrained, one per architecture
                                 variant, each with tokenizer.json (the tiny tokenizer) and reference.json:
                                 transformers' fp32 logits for a fixed prompt and its greedy continuation.

Everything is seeded; the versions used are written into every output.
"""
import argparse
import json
import os
import shutil
import struct
import traceback

import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

VERSIONS = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__, "torch": torch.__version__}
COMMAND = "python3 tools/make_fixtures.py --out $OUT/fixtures  (on the GPU machine, see the file's docstring)"


def golden(tok, corpus):
    cases = []
    for text in corpus:
        plain = tok.encode(text, add_special_tokens=False).ids
        special = tok.encode(text, add_special_tokens=True).ids
        cases.append({
            "text": text,
            "ids": plain,
            "ids_with_special": special,
            "decoded": tok.decode(plain, skip_special_tokens=False),
        })
    return {"versions": VERSIONS, "command": COMMAND, "cases": cases}


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)


def llama2_tokenizer_from_bin(path):
    """A Llama-2 style HF tokenizer.json from llama2.c's tokenizer.bin (the Llama-2 SentencePiece vocabulary).

    Same construction as transformers' LlamaConverter: BPE with merges ranked by the score of the merged piece,
    byte fallback, Metaspace pre-tokenizer (prepend '▁' to the first word, no split), '<s>' added by the template."""
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off = 4
    pieces, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n].decode("utf-8"))
        off += n
        scores.append(score)
    # llama2.c stores '▁' as ' ' and the specials as "\n<s>\n" / "\n</s>\n".
    pieces = [p.replace(" ", "\u2581") for p in pieces]
    pieces[0], pieces[1], pieces[2] = "<unk>", "<s>", "</s>"
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i, piece in enumerate(pieces):
        if i < 3 or (piece.startswith("<0x") and len(piece) == 6) or len(piece) < 2:
            continue
        local = []
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                local.append((vocab[a], vocab[b], a, b))
        local.sort()
        merges.extend((scores[i], i, a, b) for _, _, a, b in local)
    merges.sort(key=lambda m: (-m[0], m[1]))
    bpe = models.BPE(vocab=vocab, merges=[(a, b) for _, _, a, b in merges], unk_token="<unk>",
                     fuse_unk=True, byte_fallback=True)
    tok = Tokenizer(bpe)
    tok.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    return tok, max_len


def train_tiny_tokenizer(corpus):
    """A 512-token byte-level BPE with the GPT-2 regex (ByteLevel pre-tokenizer, use_regex=True), trained here."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    text = list(corpus)
    for mod in (json, argparse, shutil, os):
        with open(mod.__file__, encoding="utf-8") as f:
            text.append(f.read())
    tok.train_from_iterator(text, trainer=trainer)
    return tok


# Tiny checkpoints: one per architecture variant the loader must handle.
def tiny_configs(vocab):
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                  max_position_embeddings=4096, initializer_range=0.08, bos_token_id=0, eos_token_id=1,
                  pad_token_id=2, rms_norm_eps=1e-6)
    return [
        # name, config class, kwargs, save dtype, post-edit of config.json
        ("llama_gqa_llama3rope_bf16", transformers.LlamaConfig,
         dict(common, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
              rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
         torch.bfloat16, None),
        ("llama_mha_tied_f32_oldconfig", transformers.LlamaConfig,
         dict(common, num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         torch.float32, "old_style"),
        ("mistral_gqa4_f32", transformers.MistralConfig,
         dict(common, num_attention_heads=8, num_key_value_heads=2, head_dim=8, tie_word_embeddings=False,
              sliding_window=None, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
         torch.float32, None),
        ("qwen2_bias_tied_f16", transformers.Qwen2Config,
         dict(common, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
              use_sliding_window=False, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
         torch.float16, "old_style"),
        ("qwen3_qknorm_bf16_sharded", transformers.Qwen3Config,
         dict(common, num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True,
              use_sliding_window=False, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
         torch.bfloat16, None),
        ("qwen3_untied_f32", transformers.Qwen3Config,
         dict(common, num_attention_heads=2, num_key_value_heads=1, head_dim=48, tie_word_embeddings=False,
              use_sliding_window=False, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         torch.float32, None),
    ]


def rewrite_old_style(config_path):
    """Rewrite transformers 5.x `rope_parameters` as the older top-level `rope_theta` / `rope_scaling` keys."""
    with open(config_path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = rp
    else:
        cfg["rope_scaling"] = None
    with open(config_path, "w") as f:
        json.dump(cfg, f, indent=2)


PROMPT = ("Once upon a time, in a small town, there lived a curious engineer who wanted to make language models "
          "decode faster. She wrote a tiny model, a careful tokenizer and a paged cache, then tested every layer "
          "against a reference that nobody on her team had written.")


def make_models(out, tiny_tok):
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tiny_tok, bos_token="<|bos|>",
                                                  eos_token="<|eos|>", pad_token="<|pad|>")
    prompt_ids = [0] + tiny_tok.encode(PROMPT).ids
    for name, cls, kwargs, dtype, post in tiny_configs(tiny_tok.get_vocab_size()):
        try:
            make_model(out, name, cls, kwargs, dtype, post, tiny_tok, hf_tok, prompt_ids)
        except Exception:  # report and go on with the other variants
            traceback.print_exc()


def make_model(out, name, cls, kwargs, dtype, post, tiny_tok, hf_tok, prompt_ids):
        torch.manual_seed(1234)
        cfg = cls(**kwargs)
        model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        # Non-trivial norm weights so a missing norm cannot pass unnoticed.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                elif pname.endswith(".bias"):
                    p.copy_(0.1 * torch.randn_like(p))
        model = model.to(dtype)
        d = os.path.join(out, "models", name)
        shard = "60KB" if "sharded" in name else "100MB"
        model.save_pretrained(d, max_shard_size=shard)
        hf_tok.save_pretrained(d)
        if post == "old_style":
            rewrite_old_style(os.path.join(d, "config.json"))
        # Reference: reload exactly as a user would, upcast to fp32, eager attention for a plain fp32 computation.
        ref = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32,
                                                                attn_implementation="eager").eval()
        ids = torch.tensor([prompt_ids])
        with torch.no_grad():
            logits = ref(ids).logits[0].float()
            # Plain greedy loop over the whole sequence (no cache, no EOS handling): the simplest reference.
            greedy = []
            seq = list(prompt_ids)
            for _ in range(48):
                nxt = int(ref(torch.tensor([seq])).logits[0, -1].argmax())
                greedy.append(nxt)
                seq.append(nxt)
        write_json(os.path.join(d, "reference.json"), {
            "versions": VERSIONS, "command": COMMAND, "config_class": cls.__name__, "saved_dtype": str(dtype),
            "prompt": PROMPT, "prompt_ids": prompt_ids,
            "logits": [[round(float(x), 7) for x in row] for row in logits],
            "greedy_ids": greedy, "greedy_text": tiny_tok.decode(greedy),
        })
        print(f"model {name}: {sum(p.numel() for p in model.parameters())} params, greedy {greedy[:8]}...",
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open("tests/fixtures/tokenizer/corpus.json", encoding="utf-8") as f:
        corpus = json.load(f)

    for name in ("qwen2_5", "llama3_2"):
        tok = Tokenizer.from_file(f"data/tokenizers/{name}/tokenizer.json")
        write_json(os.path.join(args.out, "tokenizer", f"{name}.golden.json"), golden(tok, corpus))
        print(f"tokenizer {name}: Hello -> {tok.encode('Hello', add_special_tokens=False).ids}", flush=True)
    try:
        make_llama2(args.out, corpus)
    except Exception:  # keep going: the other fixtures are still worth bringing back
        traceback.print_exc()
    tiny = train_tiny_tokenizer(corpus)
    write_json(os.path.join(args.out, "tokenizer", "tiny.golden.json"), golden(tiny, corpus))
    make_models(args.out, tiny)


def make_llama2(out, corpus):
    llama2, _ = llama2_tokenizer_from_bin("data/stories15M/tokenizer.bin")
    d = os.path.join(out, "tokenizer", "llama2")
    os.makedirs(d, exist_ok=True)
    llama2.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
        "tokenizer_class": "LlamaTokenizerFast"})
    write_json(os.path.join(out, "tokenizer", "llama2.golden.json"), golden(llama2, corpus))
    print(f"tokenizer llama2: Hello -> {llama2.encode('Hello', add_special_tokens=False).ids}", flush=True)


if __name__ == "__main__":
    main()
