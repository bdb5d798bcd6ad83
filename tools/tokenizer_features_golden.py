#!/usr/bin/env python3
"""HF tokenizers reference data for the tokenizer tests, beyond the corpus goldens of tools/make_fixtures.py.

Run from the repository root on the GPU machine (it has tokenizers 0.23.2; carry data/tokenizers):

    python3 tools/tokenizer_features_golden.py --out $OUT

It writes, for tests/unit/tokenizer/ (the committed copies are the trimmed ones):
  features.golden.json  the small hand-written tokenizers of fuzz/corpus/tokenizer_json/ and variants of them
                        (JSON-pointer patches: other split behaviors, Metaspace schemes, added-token flags, decoders),
                        each with HF's ids and decodes of TEXTS and of id lists, or HF's load error. Trimmed: a variant
                        keeps the texts whose results differ from its seed's, and decodes only if it patches the
                        decoder or the added tokens;
  random.golden.json    random strings through the four real tokenizers of the corpus goldens and random id lists
                        through their decoders; trimmed to the first RANDOM_KEPT strings, the strings holding U+180E
                        (whitespace to PCRE2's \s, not to Oniguruma's) and the first DECODES_KEPT id lists;
  random_full.json      all 3000 random strings and 500 id lists per tokenizer, for a one-off check (several MB).

Everything is seeded; the tokenizers version is written into the output.
"""
import argparse
import copy
import json
import os
import random

import tokenizers
from tokenizers import Tokenizer

SEEDS = "fuzz/corpus/tokenizer_json"

# (seed file, {json pointer: new value}) -- the variants each run through TEXTS.
SPLIT = "/pre_tokenizer/pretokenizers/0"
VARIANTS = [
    ("byte_level.json", {}),
    ("byte_level.json", {"/pre_tokenizer/add_prefix_space": True}),
    ("byte_level.json", {"/pre_tokenizer/use_regex": False}),
    ("byte_level.json", {"/decoder": None}),
    ("byte_level.json", {"/post_processor": None}),
    ("metaspace_fallback.json", {}),
    ("metaspace_fallback.json", {"/model/fuse_unk": False}),
    ("metaspace_fallback.json", {"/model/byte_fallback": False}),
    ("metaspace_fallback.json", {"/decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                                              "split": True}}),
    ("metaspace_fallback.json", {"/decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never",
                                              "split": True}}),
    ("split_nfc_added.json", {}),
    ("split_nfc_added.json", {"/normalizer": None}),
    ("split_nfc_added.json", {"/added_tokens/1/lstrip": False}),
    ("split_nfc_added.json", {"/added_tokens/1/rstrip": False, "/added_tokens/2/single_word": False}),
    ("split_nfc_added.json", {"/added_tokens/3/normalized": False}),
    ("split_nfc_added.json", {"/model/ignore_merges": False}),
    ("split_nfc_added.json", {"/added_tokens/0/id": 30, "/added_tokens/1/id": 31, "/added_tokens/2/id": 32,
                              "/added_tokens/3/id": 33, "/added_tokens/4/id": 34}),
    ("prepend_replace.json", {}),
    ("prepend_replace.json", {"/normalizer/normalizers/1/pattern": {"Regex": " +"}}),
    ("prepend_replace.json", {"/decoder/decoders/3/start": 2, "/decoder/decoders/3/stop": 1}),
    ("prepend_replace.json", {"/decoder": None}),
]
for scheme in ("first", "always", "never"):
    for split in (False, True):
        VARIANTS.append(("metaspace_fallback.json", {"/pre_tokenizer/prepend_scheme": scheme,
                                                     "/pre_tokenizer/split": split}))
for behavior in ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"):
    for invert in (False, True):
        VARIANTS.append(("split_nfc_added.json", {SPLIT + "/behavior": behavior, SPLIT + "/invert": invert}))
        VARIANTS.append(("split_nfc_added.json", {SPLIT + "/behavior": behavior, SPLIT + "/invert": invert,
                                                  SPLIT + "/pattern": {"String": "a"}}))
        VARIANTS.append(("split_nfc_added.json", {SPLIT + "/behavior": behavior, SPLIT + "/invert": invert,
                                                  SPLIT + "/pattern": {"Regex": "b*"}}))

TEXTS = [
    "", "Hello world", " Hello", "Hello<|im_end|>world", "<|bos|>Hello", "héllo wörld", "e\u0301! e\u0301",
    "café! x",
    "ab abc ab", "a  b", "a\n\nb", "  ", "   x", "x<tool>y", "x  <tool>  y", "<tool>", " <tool> ", "a [W] b",
    "a[W]b", "[W]", "a [W]b", "x [W]", "<|end|>x", "<|end|>y", "<|end|>", "<|end|><|end|>", "I's 'S 'T it's",
    "1234567", "abc\r\n\r\nabc", "hi", "hi hi", " hi", "h i ", "hi  hi   ", "éé", "a\u00a0b", "\t\ta", "a\u3000b",
    "\U0001F389", "a\u00e9", "c", "ccc", "\u2581a", "<s>ab</s>", "<unk>", "ab\n", "<s>", "\n", "b ab a", "aaa",
    "bbb ab", "ba", "xé!y", "é!é!",
]


def safe_decode(tok, ids, skip):
    """HF's decode, or None where it fails (its Strip decoder panics on an empty piece when stop > 0)."""
    try:
        return tok.decode(ids, skip_special_tokens=skip)
    except BaseException:  # pyo3's PanicException derives from BaseException
        return None


def set_pointer(obj, pointer, value):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    for p in parts[:-1]:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    last = parts[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


def features():
    rng = random.Random(1234)
    out = []
    for seed, patch in VARIANTS:
        with open(os.path.join(SEEDS, seed), encoding="utf-8") as f:
            j = json.load(f)
        j = copy.deepcopy(j)
        for pointer, value in patch.items():
            set_pointer(j, pointer, value)
        entry = {"seed": seed, "patch": patch}
        try:
            tok = Tokenizer.from_str(json.dumps(j))
        except Exception as e:  # HF refuses it: the test only records that
            entry["error"] = str(e)
            out.append(entry)
            continue
        cases = []
        for t in TEXTS:
            plain = tok.encode(t, add_special_tokens=False).ids
            special = tok.encode(t, add_special_tokens=True).ids
            cases.append({"text": t, "ids": plain, "ids_with_special": special,
                          "decoded": safe_decode(tok, plain, False), "decoded_skip": safe_decode(tok, special, True)})
        n = tok.get_vocab_size(with_added_tokens=True)
        id_lists = [list(range(n)), list(range(n))[::-1]] + [[i] for i in range(n)]
        id_lists += [[rng.randrange(n) for _ in range(rng.randint(2, 6))] for _ in range(60)]
        decodes = [{"ids": ids, "decoded": safe_decode(tok, ids, False), "decoded_skip": safe_decode(tok, ids, True)}
                   for ids in id_lists]
        added = {a["content"]: tok.token_to_id(a["content"]) for a in j.get("added_tokens", [])}
        entry.update({"cases": cases, "decodes": decodes, "added_ids": added})
        out.append(entry)
    return out


# Fragments random strings are made of: scripts, whitespace of every kind, digits, special-token spellings.
FRAGMENTS = [
    "the", "The", "THE", " quick", "brown", "fox", "jump", "'s", "'S", "'ll", "'LL", "'re", "'ve", "'d", "'t", "'m",
    "don't", "DON'T", "\u017ftop", "\u212a", "\u0130", "stra\u00dfe", "0", "7", "42", "123", "1234", "12345678901",
    "3.14", "1,000", "-2e-10", "0x1F", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\u00a0", "\u2009",
    "\u3000", "\u180e", "\u200b", "\u2028", "\u0085", "\u000b", "\u000c", "!", "?", "...", ",", ";", ":", "(", ")",
    "{", "}", "[", "]", "<", ">", "/", "\\", "\"", "'", "`", "~", "@", "#", "$", "%", "^", "&", "*", "-", "_", "=",
    "+", "|", "\u00e9", "e\u0301", "\u0301", "n\u0303", "\u00f1", "\u00c5", "A\u030a", "\u03b1\u03b2\u03b3",
    "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1", "\u0440\u0443\u0441\u0441\u043a\u0438\u0439",
    "\u05e2\u05d1\u05e8\u05d9\u05ea",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e44\u0e17\u0e22",
    "\u4e2d\u6587", "\u5206\u8bcd", "\ud55c\uad6d\uc5b4", "\u65e5\u672c\u8a9e", "\u30ab\u30bf\u30ab\u30ca",
    "\u3072\u3089\u304c\u306a", "\U0001F44B", "\U0001F600\U0001F389", "\U0001F44D\U0001F3FD",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467", "\U0001F1EF\U0001F1F5", "\u2764\ufe0f", "\U0001D518", "\U00020000",
    "\ue000", "\ufffd", "\ufeff", "\x00", "\x01", "\x7f", "\u00ad", "<|im_end|>", "<|im_start|>", "<|endoftext|>",
    "<tool_call>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<s>", "</s>", "<unk>", "<|bos|>",
    "<|im_", "|>", "<|", "\u2581", "\u2581\u2581", "\u0120", "\u010a", "<0x0A>", "def", "return", "    ", "\t\t",
    " " * 40, "a" * 60, "9" * 25, "-" * 30, "=" * 17, "ab" * 20,
]


RANDOM_KEPT = 60
U180E_KEPT = 30
DECODES_KEPT = 40


def trim_features(variants):
    base = {v["seed"]: v for v in variants if not v["patch"]}
    out = copy.deepcopy(variants)
    for v in out:
        if "error" in v:
            continue
        b = base[v["seed"]]
        n = len(v["decodes"][0]["ids"])
        decodes = v["decodes"][:2] + v["decodes"][2 + n:2 + n + 30]  # both full ranges and 30 random lists
        if v["patch"]:
            v["cases"] = [c for c, bc in zip(v["cases"], b["cases"]) if c != bc or c["text"] in ("", "Hello world")]
            if not any(k.startswith("/decoder") or k.startswith("/added_tokens") for k in v["patch"]):
                decodes = []
        v["decodes"] = decodes
    return out


def trim_random(full):
    out = {}
    for name, data in full.items():
        keep = [i for i, c in enumerate(data["cases"]) if i < RANDOM_KEPT]
        keep += [i for i, c in enumerate(data["cases"]) if i >= RANDOM_KEPT and "\u180e" in c["text"]][:U180E_KEPT]
        out[name] = {"cases": [data["cases"][i] for i in keep], "decodes": data["decodes"][:DECODES_KEPT]}
    return out


def random_text(rng):
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 14)))


def random_golden():
    rng = random.Random(5678)
    texts = [random_text(rng) for _ in range(3000)]
    out = {}
    for name, path in (("qwen2_5", "data/tokenizers/qwen2_5/tokenizer.json"),
                       ("llama3_2", "data/tokenizers/llama3_2/tokenizer.json"),
                       ("llama2", "tests/fixtures/tokenizer/llama2/tokenizer.json"),
                       ("tiny", "tests/fixtures/models/llama_gqa_llama3rope_bf16/tokenizer.json")):
        tok = Tokenizer.from_file(path)
        cases = []
        for t in texts:
            plain = tok.encode(t, add_special_tokens=False).ids
            cases.append({"text": t, "ids": plain, "ids_with_special": tok.encode(t).ids,
                          "decoded": safe_decode(tok, plain, False)})
        n = tok.get_vocab_size(with_added_tokens=True)
        added = sorted(tok.get_added_tokens_decoder().keys())
        decodes = []
        for _ in range(500):
            ids = [rng.choice(added) if added and rng.random() < 0.1 else
                   (rng.randrange(3, 259) if rng.random() < 0.2 else rng.randrange(n))
                   for _ in range(rng.randint(1, 20))]
            decodes.append({"ids": ids, "decoded": safe_decode(tok, ids, False),
                            "decoded_skip": safe_decode(tok, ids, True)})
        out[name] = {"cases": cases, "decodes": decodes}
        print(f"{name}: {len(cases)} texts", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    command = "python3 tools/tokenizer_features_golden.py --out $OUT  (on the GPU machine)"
    version = tokenizers.__version__
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    with open(os.path.join(args.out, "features.golden.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers": version, "command": command, "variants": trim_features(features())}, f, **compact)
    full = random_golden()
    with open(os.path.join(args.out, "random_full.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers": version, "command": command, "by_tokenizer": full}, f, **compact)
    with open(os.path.join(args.out, "random.golden.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers": version, "command": command, "by_tokenizer": trim_random(full)}, f, **compact)


if __name__ == "__main__":
    main()
