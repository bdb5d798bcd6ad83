#!/usr/bin/env python3
"""Train specattn's small long-context model in one time-boxed command, export it, and evaluate it.

Run from the repository root on the GPU machine (torch 2.11, transformers 5.x, tokenizers; no network):

    PYTHONUNBUFFERED=1 python3 tools/train/train_longctx.py --out $OUT            # the real run, about 8.5 min
    PYTHONUNBUFFERED=1 python3 tools/train/train_longctx.py --out $OUT --smoke    # everything tiny, about 2 min

Phases (each time-boxed by the wall clock, measured from the start of the script):
  1. corpus     Python / C sources already on the machine (site-packages, the standard library, /usr/include),
                each top-level package's files concatenated in sorted path order; whole packages held out.
  2. tokenizer  byte-level BPE (GPT-2 regex, 8192 ids, <|endoftext|> = 0, <|pad|> = 1) trained on a sample of the
                training packages; then the corpus is encoded (batch encode, all cores) until its budget is spent.
  3. train      transformers' Qwen3ForCausalLM (~18.9M parameters, GQA 6q/2kv, q/k norm, tied embeddings,
                rope theta 1e6) on random 16K-token windows, bf16 autocast, SDPA (flash), AdamW, warmup + cosine
                decay over the wall-clock budget; stops when the budget is spent.
  4. export     save_pretrained (bf16 safetensors, sharded at 15 MB) + tokenizer files, packed as
                $OUT/model.tar.part0, part1, ... (each < 16 MiB):  cat model.tar.part* | tar x
  5. eval       held-out loss per position bucket and a long-range retrieval probe; everything goes to
                $OUT/eval.json (including the model card text under "model_card"); the log is $OUT/train.log.

See tools/train/README.md.
"""
import time

T0 = time.time()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import site  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402
import tarfile  # noqa: E402
import traceback  # noqa: E402

# No network on the GPU machine: never let transformers / huggingface_hub try to reach the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

EOT = "<|endoftext|>"
PAD = "<|pad|>"
# Whole top-level packages held out from tokenizer and model training (the first N that exist, in this order).
HELDOUT_PREFS = ["sympy", "networkx", "jinja2", "mpmath", "fsspec", "markupsafe", "filelock", "requests",
                 "yaml", "idna", "packaging", "tqdm", "urllib3", "certifi"]
SITE_EXTS = (".py", ".pyi", ".h", ".hpp", ".cuh", ".c", ".cc", ".cpp", ".md", ".rst")
STDLIB_EXTS = (".py",)
INCLUDE_EXTS = (".h", ".hpp", ".hh", ".hxx", ".tcc")
C_LIKE = (".h", ".hpp", ".hh", ".hxx", ".tcc", ".cuh", ".c", ".cc", ".cpp")
MAX_FILE_BYTES = 1_000_000
MB = 1_000_000
MIB = 1 << 20
COMMAND = "PYTHONUNBUFFERED=1 python3 tools/train/train_longctx.py --out $OUT"


def elapsed():
    return time.time() - T0


def log(msg):
    print(f"[{elapsed():7.1f}s] {msg}", flush=True)


class Tee:
    """Copies everything written to stdout / stderr into $OUT/train.log."""

    def __init__(self, primary, fh):
        self.primary = primary
        self.fh = fh

    def write(self, s):
        self.primary.write(s)
        try:
            self.fh.write(s)
        except Exception:
            pass
        return len(s)

    def flush(self):
        self.primary.flush()
        try:
            self.fh.flush()
        except Exception:
            pass

    def __getattr__(self, name):
        return getattr(self.primary, name)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (the device's $OUT)")
    ap.add_argument("--smoke", action="store_true", help="tiny everything (2K context, 20 s of training)")
    ap.add_argument("--work-dir", default="/tmp/specattn_train", help="scratch folder for the model folder and tar")
    ap.add_argument("--model-name", default="specattn-code-19m-16k", help="folder name inside the tar")
    ap.add_argument("--seed", type=int, default=0)
    # time budgets (seconds, wall clock)
    ap.add_argument("--corpus-seconds", type=float, default=None, help="corpus + tokenizer + encode (default 60)")
    ap.add_argument("--train-seconds", type=float, default=None, help="training budget (default 330)")
    ap.add_argument("--total-seconds", type=float, default=None,
                    help="training must end by this time since start, minus --reserve-seconds (default 510)")
    ap.add_argument("--reserve-seconds", type=float, default=90.0, help="kept for export + eval after training")
    ap.add_argument("--hard-seconds", type=float, default=None,
                    help="eval stops early past this time since start (default 560)")
    # corpus
    ap.add_argument("--max-train-mb", type=float, default=None, help="training corpus cap, MB of text (320)")
    ap.add_argument("--max-pkg-mb", type=float, default=None, help="cap per package, MB of text (32)")
    ap.add_argument("--min-train-mb", type=float, default=None,
                    help="encode at least this much training text even past the corpus budget (64)")
    ap.add_argument("--heldout-pkg-mb", type=float, default=None, help="cap per held-out package (4)")
    ap.add_argument("--n-heldout", type=int, default=5)
    ap.add_argument("--tok-sample-mb", type=float, default=None, help="tokenizer training sample (64)")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--no-stdlib", action="store_true", help="leave the Python standard library out")
    ap.add_argument("--no-usr-include", action="store_true", help="leave /usr/include out")
    # model
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--rope-theta", type=float, default=1_000_000.0)
    ap.add_argument("--max-pos", type=int, default=32768)
    # training
    ap.add_argument("--ctx", type=int, default=None, help="training context (default 16384)")
    ap.add_argument("--batch", type=int, default=2, help="sequences per step (halved on OOM)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=150, help="warmup steps")
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=0, help="optional step cap (0: only the time budget)")
    ap.add_argument("--log-seconds", type=float, default=10.0)
    ap.add_argument("--compile", action="store_true", help="torch.compile each decoder layer (off by default)")
    ap.add_argument("--init-from", default=None,
                    help="continue from this Hugging Face model folder: its weights and its tokenizer.json (no "
                         "tokenizer training; the model flags are taken from its config)")
    ap.add_argument("--copy-aug", type=float, default=0.0,
                    help="long-range copy augmentation: probability of each of --copy-spans copies per window")
    ap.add_argument("--copy-spans", type=int, default=8, help="copy attempts per training window")
    ap.add_argument("--copy-len", default="8,64", help="copied span length range MIN,MAX (tokens)")
    ap.add_argument("--copy-min-dist", type=int, default=256, help="least distance from a span to its copy")
    # eval
    ap.add_argument("--eval-windows", type=int, default=None, help="held-out windows for bucket losses (32)")
    ap.add_argument("--probe-per-distance", type=int, default=None, help="retrieval prompts per distance (96)")
    args = ap.parse_args()

    full = dict(corpus_seconds=60.0, train_seconds=330.0, total_seconds=510.0, hard_seconds=560.0,
                max_train_mb=320.0, max_pkg_mb=32.0, min_train_mb=64.0, heldout_pkg_mb=4.0, tok_sample_mb=64.0, ctx=16384,
                eval_windows=32, probe_per_distance=96)
    smoke = dict(corpus_seconds=40.0, train_seconds=20.0, total_seconds=180.0, hard_seconds=260.0,
                 max_train_mb=24.0, max_pkg_mb=4.0, min_train_mb=8.0, heldout_pkg_mb=1.0, tok_sample_mb=8.0, ctx=2048,
                 eval_windows=8, probe_per_distance=16)
    for k, v in (smoke if args.smoke else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.max_pos < args.ctx:
        args.max_pos = args.ctx
    return args


# ----------------------------------------------------------------------------------------------------------------
# 1. corpus


def skip_dir(name):
    return (name.startswith(".") or name == "__pycache__" or name.endswith(".dist-info")
            or name.endswith(".egg-info") or name == "node_modules")


def walk_files(top, exts):
    """Files under top with one of exts, depth-first in sorted order (files of a folder before its subfolders)."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not skip_dir(d))
        for f in sorted(filenames):
            if not f.endswith(exts):
                continue
            full = os.path.join(dirpath, f)
            if os.path.islink(full):
                continue
            try:
                size = os.path.getsize(full)
            except OSError:
                continue
            if 0 < size <= MAX_FILE_BYTES:
                yield full, size


def corpus_roots(args):
    roots = []
    cands = []
    try:
        cands += list(site.getsitepackages())
    except Exception:
        pass
    try:
        paths = sysconfig.get_paths()
        cands += [paths.get("purelib"), paths.get("platlib")]
    except Exception:
        pass
    cands.append("/opt/torch/.venv/lib/python3.12/site-packages")
    seen = set()
    n_site = 0
    for c in cands:
        if not c or not os.path.isdir(c):
            continue
        real = os.path.realpath(c)
        if real in seen:
            continue
        seen.add(real)
        label = "site-packages" if n_site == 0 else f"site-packages{n_site + 1}"
        n_site += 1
        roots.append((label, real, SITE_EXTS, "site"))
    if not args.no_stdlib:
        try:
            std = sysconfig.get_paths().get("stdlib")
        except Exception:
            std = None
        if std and os.path.isdir(std) and os.path.realpath(std) not in seen:
            seen.add(os.path.realpath(std))
            roots.append(("stdlib", os.path.realpath(std), STDLIB_EXTS, "stdlib"))
    if not args.no_usr_include and os.path.isdir("/usr/include"):
        roots.append(("include", "/usr/include", INCLUDE_EXTS, "include"))
    return roots


def scan_packages(roots):
    """One 'package' per top-level entry of each root; a root's top-level files form one more package."""
    pkgs = []
    for label, root, exts, kind in roots:
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            continue
        top_files = []
        for entry in entries:
            p = os.path.join(root, entry)
            if os.path.islink(p):
                continue
            if os.path.isdir(p):
                if skip_dir(entry):
                    continue
                if kind == "stdlib" and entry in ("site-packages", "dist-packages", "test"):
                    continue
                files = list(walk_files(p, exts))
                if files:
                    pkgs.append({"name": f"{label}/{entry}", "top": entry, "kind": kind, "root": root,
                                 "files": files})
            elif os.path.isfile(p) and entry.endswith(exts):
                try:
                    size = os.path.getsize(p)
                except OSError:
                    continue
                if 0 < size <= MAX_FILE_BYTES:
                    top_files.append((p, size))
        if top_files:
            pkgs.append({"name": f"{label}/(top-level files)", "top": None, "kind": kind, "root": root,
                         "files": top_files})
    for p in pkgs:
        p["bytes_on_disk"] = sum(s for _, s in p["files"])
    return pkgs


def cap_files(files, cap_bytes):
    out, total = [], 0
    for f, s in files:
        if out and total + s > cap_bytes:
            break
        out.append((f, s))
        total += s
    return out, total


def read_docs(pkg):
    """Reads a package's selected files: one document per file, a header line naming its path first."""
    docs, nbytes, skipped = [], 0, 0
    base = os.path.dirname(pkg["root"])
    for path, _ in pkg["sel_files"]:
        try:
            with open(path, "rb") as f:
                raw = f.read()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            skipped += 1
            continue
        if "\x00" in text:
            skipped += 1
            continue
        # Literal special-token strings (tokenizer code mentions them) must stay plain text.
        text = text.replace(EOT, "<| endoftext |>").replace(PAD, "<| pad |>")
        rel = os.path.relpath(path, base)
        mark = "//" if path.endswith(C_LIKE) else "#"
        doc = f"{mark} ===== file: {rel} =====\n{text}"
        if not doc.endswith("\n"):
            doc += "\n"
        docs.append(doc + "\n")
        nbytes += len(raw)
    return docs, nbytes, skipped


def build_corpus(args, rng):
    t = time.time()
    roots = corpus_roots(args)
    for label, root, exts, _ in roots:
        log(f"corpus root {label}: {root}  extensions {' '.join(exts)}")
    pkgs = scan_packages(roots)
    log(f"scanned {len(pkgs)} packages, {sum(len(p['files']) for p in pkgs)} files, "
        f"{sum(p['bytes_on_disk'] for p in pkgs) / MB:.1f} MB on disk ({time.time() - t:.1f}s)")

    # Held-out: the first n_heldout of HELDOUT_PREFS present under site-packages with >= 100 KB of files.
    site_by_top = {}
    for p in pkgs:
        if p["kind"] == "site" and p["top"] and p["top"] not in site_by_top:
            site_by_top[p["top"]] = p
    heldout_names = []
    for name in HELDOUT_PREFS:
        p = site_by_top.get(name)
        if p is not None and p["bytes_on_disk"] >= 100_000:
            heldout_names.append(name)
        if len(heldout_names) == args.n_heldout:
            break
    heldout = [site_by_top[n] for n in heldout_names]
    held_set = set(heldout_names)
    for p in pkgs:
        p["heldout"] = any(p is h for h in heldout)
    log(f"held-out packages (from {HELDOUT_PREFS}): {heldout_names}")
    for p in heldout:
        p["sel_files"], p["sel_bytes"] = cap_files(p["files"], args.heldout_pkg_mb * MB)
        p["capped"] = len(p["sel_files"]) < len(p["files"])

    # Training packages: everything else (any root), in a fixed seeded order, each capped, up to the total cap.
    train_all = [p for p in pkgs if p["top"] not in held_set]
    order = list(range(len(train_all)))
    rng.shuffle(order)
    train, total = [], 0
    cap_total = args.max_train_mb * MB
    for i in order:
        p = train_all[i]
        if total >= cap_total:
            break
        cap = min(args.max_pkg_mb * MB, cap_total - total)
        p["sel_files"], p["sel_bytes"] = cap_files(p["files"], cap)
        p["capped"] = len(p["sel_files"]) < len(p["files"])
        train.append(p)
        total += p["sel_bytes"]
    n_dropped = len(train_all) - len(train)
    log(f"training packages: {len(train)} selected ({total / MB:.1f} MB), {n_dropped} left out by the "
        f"{args.max_train_mb:.0f} MB cap; per-package cap {args.max_pkg_mb:.0f} MB")

    t = time.time()
    for p in heldout + train:
        p["docs"], p["text_bytes"], p["skipped"] = read_docs(p)
    log(f"read {sum(len(p['docs']) for p in heldout + train)} files "
        f"({sum(p['skipped'] for p in heldout + train)} skipped: not UTF-8 / NUL) in {time.time() - t:.1f}s")
    return heldout, train, roots, n_dropped


# ----------------------------------------------------------------------------------------------------------------
# 2. tokenizer


def train_tokenizer(args, train_pkgs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    docs = [d for p in train_pkgs for d in p["docs"]]
    total = sum(len(d) for d in docs)
    stride = max(1, int(math.ceil(total / (args.tok_sample_mb * MB))))
    sample = docs[::stride]
    sample_bytes = sum(len(d) for d in sample)
    log(f"tokenizer: training byte-level BPE (vocab {args.vocab}) on every {stride}th training file: "
        f"{len(sample)} files, {sample_bytes / MB:.1f} MB")
    t = time.time()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=args.vocab, min_frequency=2, special_tokens=[EOT, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(sample, trainer=trainer, length=len(sample))
    eot_id, pad_id = tok.token_to_id(EOT), tok.token_to_id(PAD)
    log(f"tokenizer trained in {time.time() - t:.1f}s: vocab {tok.get_vocab_size()}, {EOT}={eot_id}, "
        f"{PAD}={pad_id}")
    if eot_id != 0:
        raise RuntimeError(f"{EOT} must be id 0, got {eot_id}")
    info = {"type": "byte-level BPE (HF tokenizers), GPT-2 regex pre-tokenizer, add_prefix_space=False",
            "vocab_size": tok.get_vocab_size(), "eot_id": eot_id, "pad_id": pad_id,
            "sample_files": len(sample), "sample_bytes": sample_bytes, "sample_stride": stride,
            "seconds": round(time.time() - t, 1)}
    return tok, info


def load_tokenizer(args):
    """The tokenizer of --init-from, unchanged (its ids are the model's)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(args.init_from, "tokenizer.json"))
    eot_id, pad_id = tok.token_to_id(EOT), tok.token_to_id(PAD)
    if eot_id != 0:
        raise RuntimeError(f"{EOT} must be id 0 in {args.init_from}, got {eot_id}")
    log(f"tokenizer: {args.init_from}/tokenizer.json (vocab {tok.get_vocab_size()}, {EOT}={eot_id}, {PAD}={pad_id})")
    return tok, {"type": f"loaded from {args.init_from}", "vocab_size": tok.get_vocab_size(), "eot_id": eot_id,
                 "pad_id": pad_id}


def encode_packages(args, tok, heldout, train, deadline):
    import numpy as np

    fast = getattr(tok, "encode_batch_fast", None) or tok.encode_batch

    def encode_docs(docs):
        out = []
        batch, bsize = [], 0
        for d in docs + [None]:
            if d is not None:
                batch.append(d)
                bsize += len(d)
            if batch and (d is None or bsize >= 16 * MB):
                encs = fast(batch, add_special_tokens=False)
                out.extend(np.asarray(e.ids, dtype=np.uint16) for e in encs)
                batch, bsize = [], 0
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint16)

    t = time.time()
    for p in heldout:
        p["tokens"] = encode_docs(p["docs"])
    log(f"encoded held-out: {sum(len(p['tokens']) for p in heldout)} tokens in {time.time() - t:.1f}s")
    t = time.time()
    stopped_at = None
    done = []
    done_bytes = 0
    for i, p in enumerate(train):
        if time.time() > deadline and done_bytes >= args.min_train_mb * MB:
            stopped_at = i
            break
        p["tokens"] = encode_docs(p["docs"])
        done.append(p)
        done_bytes += p["text_bytes"]
    nbytes = sum(p["text_bytes"] for p in done)
    ntok = sum(len(p["tokens"]) for p in done)
    dt = time.time() - t
    log(f"encoded training: {len(done)}/{len(train)} packages, {nbytes / MB:.1f} MB -> {ntok} tokens "
        f"({nbytes / max(ntok, 1):.2f} bytes/token) in {dt:.1f}s ({nbytes / MB / max(dt, 1e-6):.1f} MB/s)")
    if stopped_at is not None:
        log(f"WARNING: encode budget spent; {len(train) - stopped_at} packages left out (see eval.json)")
    for p in train[len(done):]:
        p["tokens"] = None
    eot = np.zeros(1, dtype=np.uint16)
    parts = []
    for p in done:
        parts += [p["tokens"], eot]
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
    return done, stream, stopped_at


# ----------------------------------------------------------------------------------------------------------------
# 3. model and training


def sdpa_preflight(torch, F, device):
    """Flash SDPA with GQA (what transformers calls with enable_gqa=True and no mask) must work: otherwise the
    math backend would materialize 16K x 16K scores. If it does not, make transformers repeat K/V itself."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(1, 6, 512, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, 2, 512, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, 2, 512, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
    result = {}
    try:
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).sum().backward()
        result["flash_gqa"] = True
    except Exception as e:  # noqa: BLE001
        result["flash_gqa"] = False
        result["flash_gqa_error"] = repr(e)[:300]
    if not result["flash_gqa"]:
        try:
            import transformers.integrations.sdpa_attention as sa
            sa.use_gqa_in_sdpa = lambda *a, **k: False
            result["patched_repeat_kv"] = True
        except Exception as e:  # noqa: BLE001
            result["patch_error"] = repr(e)[:300]
    log(f"SDPA preflight: {result}")
    return result


def build_model(args, torch, eot_id, pad_id, vocab):
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    if args.init_from:
        model = AutoModelForCausalLM.from_pretrained(args.init_from, dtype=torch.float32, attn_implementation="sdpa")
        c = model.config
        args.hidden, args.ffn, args.layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
        args.heads, args.kv_heads, args.head_dim = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        args.max_pos = c.max_position_embeddings
        rope = getattr(c, "rope_parameters", None) or {}
        args.rope_theta = rope.get("rope_theta", getattr(c, "rope_theta", args.rope_theta))
        if c.vocab_size != vocab:
            raise RuntimeError(f"{args.init_from}: vocab {c.vocab_size} != tokenizer {vocab}")
        log(f"model: continuing from {args.init_from}")
        return model

    cfg = Qwen3Config(
        vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.ffn, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, head_dim=args.head_dim,
        hidden_act="silu", max_position_embeddings=args.max_pos, initializer_range=0.02, rms_norm_eps=1e-6,
        use_cache=True, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": float(args.rope_theta)},
        attention_bias=False, use_sliding_window=False, attention_dropout=0.0,
        bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=pad_id)
    try:
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="sdpa")
    except Exception as e:  # noqa: BLE001
        log(f"from_config with attn_implementation failed ({e!r}); using the default attention")
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    emb = model.model.embed_tokens.weight
    if model.lm_head.weight is not emb:
        log("lm_head was not tied to embed_tokens: tying it")
        model.lm_head.weight = emb
    model.generation_config = GenerationConfig(bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=pad_id)
    return model


def copy_spans(args, torch, chunk, gen):
    """Long-range copy augmentation, in place: in each window, each of --copy-spans attempts (probability
    --copy-aug) copies a span of --copy-len tokens to a later place at least --copy-min-dist tokens on. Predicting a
    copied span from its first occurrence is the retrieval the model needs at long context (induction / copying heads);
    natural code repeats identifiers too, but rarely enough for a 19M model to learn it in minutes."""
    lo, hi = (int(v) for v in args.copy_len.split(","))
    n = chunk.shape[1]
    for b in range(chunk.shape[0]):
        for _ in range(args.copy_spans):
            if torch.rand(1, generator=gen).item() >= args.copy_aug:
                continue
            length = int(torch.randint(lo, hi + 1, (1,), generator=gen))
            dist = min(args.copy_min_dist, n - 2 * length)
            if dist <= 0:
                continue
            src = int(torch.randint(0, n - length - dist, (1,), generator=gen))
            dst = int(torch.randint(src + dist, n - length + 1, (1,), generator=gen))
            chunk[b, dst:dst + length] = chunk[b, src:src + length].clone()


def train(args, torch, F, model, stream_np, device, budget):
    import numpy as np

    T, B = args.ctx, args.batch
    V = model.config.vocab_size
    stream = torch.from_numpy(stream_np.astype(np.int32)).to(device)
    N = stream.numel()
    if N < T + 2:
        raise RuntimeError(f"training stream has {N} tokens, fewer than one window of {T + 1}")
    ar = torch.arange(T + 1, device=device)
    gen = torch.Generator()
    gen.manual_seed(args.seed)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    except Exception as e:  # noqa: BLE001
        log(f"fused AdamW unavailable ({e!r}); using the default implementation")
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    compiled = False
    if args.compile:
        try:
            for layer in model.model.layers:
                layer.compile(dynamic=False)
            compiled = True
            log("torch.compile: decoder layers wrapped (compiles on the first step, counted in the budget)")
        except Exception as e:  # noqa: BLE001
            log(f"torch.compile unavailable: {e!r}")

    def uncompile():
        for layer in model.model.layers:
            if getattr(layer, "_compiled_call_impl", None) is not None:
                layer._compiled_call_impl = None

    def lr_at(step, progress):
        warm = min(1.0, (step + 1) / max(1, args.warmup))
        cos = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return args.lr * warm * (args.min_lr_ratio + (1.0 - args.min_lr_ratio) * cos)

    model.train()
    hist_loss, hist_gn = [], []
    pend_loss, pend_gn = [], []
    curve = []  # (step, tokens, seconds, mean loss since the previous point, lr)
    step, tokens, stopped_by, error = 0, 0, "time budget", None
    t_start = time.time()
    last_log, last_log_tokens, last_step_t = t_start, 0, t_start
    step_time = None
    lr = lr_at(0, 0.0)
    log(f"training: context {T}, batch {B} ({T * B} tokens/step), stream {N} tokens, budget {budget:.0f}s, "
        f"lr {args.lr} warmup {args.warmup} cosine to {args.min_lr_ratio}x by elapsed time")

    def flush_pending():
        if pend_loss:
            vals = torch.stack(pend_loss).float().cpu().tolist()
            gns = torch.stack(pend_gn).float().cpu().tolist()
            hist_loss.extend(vals)
            hist_gn.extend(gns)
            pend_loss.clear()
            pend_gn.clear()
            return vals
        return []

    while True:
        now = time.time()
        el = now - t_start
        if args.max_steps and step >= args.max_steps:
            stopped_by = "max steps"
            break
        if step_time is not None and el + step_time > budget:
            break
        if step_time is None and el > budget:
            break
        progress = el / budget
        if args.max_steps:
            progress = max(progress, step / args.max_steps)
        lr = lr_at(step, progress)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, N - T - 1, (B,), generator=gen).to(device)
        chunk = stream[starts[:, None] + ar[None, :]].long()
        if args.copy_aug > 0:
            copy_spans(args, torch, chunk, gen)
        x, y = chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()
        try:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                h = model.model(input_ids=x, use_cache=False).last_hidden_state
                logits = model.lm_head(h)
            loss = F.cross_entropy(logits.float().reshape(-1, V), y.reshape(-1))
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        except torch.cuda.OutOfMemoryError:
            opt.zero_grad(set_to_none=True)
            h = logits = loss = None
            torch.cuda.empty_cache()
            if B > 1 and step < 5:
                B //= 2
                log(f"OOM: batch halved to {B}")
                continue
            raise
        except Exception as e:  # noqa: BLE001
            opt.zero_grad(set_to_none=True)
            if compiled and step == 0:
                log(f"compiled step failed ({e!r}); falling back to eager")
                uncompile()
                compiled = False
                continue
            error = repr(e)
            stopped_by = "error"
            log("training step failed:\n" + traceback.format_exc())
            break
        pend_loss.append(loss.detach())
        pend_gn.append(gn.detach())
        step += 1
        tokens += B * T
        t_now = time.time()
        if step == 1:
            torch.cuda.synchronize()
            t_now = time.time()
            log(f"first step done in {t_now - t_start:.1f}s (includes CUDA / kernel set-up), "
                f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        elif step > 3:
            dt = t_now - last_step_t
            step_time = dt if step_time is None else 0.9 * step_time + 0.1 * dt
        last_step_t = t_now
        if t_now - last_log >= args.log_seconds or step == 1:
            vals = flush_pending()
            gns = hist_gn[-len(vals):] if vals else [float("nan")]
            mean = sum(vals) / max(len(vals), 1)
            t_now = time.time()
            rate = (tokens - last_log_tokens) / max(t_now - last_log, 1e-6)
            curve.append((step, tokens, round(t_now - t_start, 1), round(mean, 4), lr))
            log(f"step {step:5d}  tokens {tokens / 1e6:8.2f}M  loss {mean:.4f}  lr {lr:.2e}  "
                f"gnorm {gns[-1]:.2f}  {rate / 1e3:6.0f}K tok/s  train {t_now - t_start:5.0f}/{budget:.0f}s  "
                f"mem {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
            last_log, last_log_tokens = t_now, tokens
            if not math.isfinite(mean):
                stopped_by = "non-finite loss"
                error = "non-finite loss"
                break
    torch.cuda.synchronize()
    seconds = time.time() - t_start
    vals = flush_pending()
    if vals:
        curve.append((step, tokens, round(seconds, 1), round(sum(vals) / len(vals), 4), lr))
    if compiled:
        uncompile()
    tail = hist_loss[-20:]
    res = {"steps": step, "tokens": tokens, "seconds": round(seconds, 1), "budget_seconds": round(budget, 1),
           "tokens_per_second": round(tokens / max(seconds, 1e-6)), "batch": B, "context": T,
           "stopped_by": stopped_by, "error": error, "compiled": compiled,
           "final_loss_last20": round(sum(tail) / len(tail), 4) if tail else None,
           "loss_curve": [list(c) for c in curve],
           "loss_per_step": [round(v, 4) for v in hist_loss],
           "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
           "optimizer": f"AdamW(betas=(0.9, 0.95), eps=1e-8, weight_decay={args.wd} on matrices), "
                        f"grad clip {args.clip}, lr {args.lr} with {args.warmup} warmup steps and cosine decay to "
                        f"{args.min_lr_ratio}x over the wall-clock budget"}
    log(f"training done: {step} steps, {tokens / 1e6:.1f}M tokens in {seconds:.0f}s "
        f"({res['tokens_per_second'] / 1e3:.0f}K tok/s), stopped by {stopped_by}, "
        f"final loss (last 20 steps) {res['final_loss_last20']}")
    return res


# ----------------------------------------------------------------------------------------------------------------
# 4. export


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def export(args, torch, model, tok, tok_info, eot_id, pad_id, mdir):
    if os.path.isdir(mdir):
        shutil.rmtree(mdir)
    os.makedirs(mdir)
    model.eval()
    model.to(torch.bfloat16)
    model.save_pretrained(mdir, max_shard_size="15MB")
    tok.save(os.path.join(mdir, "tokenizer.json"))
    with open(os.path.join(mdir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOT, "eos_token": EOT,
                   "pad_token": PAD, "unk_token": None, "add_bos_token": False, "add_eos_token": False,
                   "model_max_length": args.ctx, "clean_up_tokenization_spaces": False}, f, indent=2)
    gpath = os.path.join(mdir, "generation_config.json")
    if not os.path.exists(gpath):
        with open(gpath, "w", encoding="utf-8") as f:
            json.dump({"bos_token_id": eot_id, "eos_token_id": eot_id, "pad_token_id": pad_id}, f, indent=2)
    files = {}
    for name in sorted(os.listdir(mdir)):
        files[name] = os.path.getsize(os.path.join(mdir, name))
    total = sum(files.values())
    biggest = max(files.values())
    log(f"exported {mdir}: " + ", ".join(f"{k} {v / MIB:.2f} MiB" for k, v in files.items())
        + f"; total {total / MB:.1f} MB")
    problems = []
    if total > 40 * MB:
        problems.append(f"model folder is {total / MB:.1f} MB > 40 MB")
    if biggest > 15.5 * MIB:
        problems.append(f"a file is {biggest / MIB:.2f} MiB > 15.5 MiB")
    for need in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        if need not in files:
            problems.append(f"{need} missing")
    if not any(n.endswith(".safetensors") for n in files):
        problems.append("no safetensors file")
    for p in problems:
        log(f"EXPORT PROBLEM: {p}")
    with open(os.path.join(mdir, "config.json"), encoding="utf-8") as f:
        config_json = json.load(f)
    return {"dir": mdir, "files": files, "total_bytes": total,
            "sha256": {k: sha256(os.path.join(mdir, k)) for k in files}, "problems": problems,
            "config_json": config_json}


def reload_check(torch, mdir, model, tok, sample_ids, device):
    """Reload the folder as a user would; same logits as the in-memory model, same tokenizer ids."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    res = {}
    try:
        ref = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.bfloat16).to(device).eval()
        ids = torch.tensor([sample_ids[:512]], device=device)
        with torch.inference_mode():
            a = model(input_ids=ids, use_cache=False).logits.float()
            b = ref(input_ids=ids, use_cache=False).logits.float()
        res["model_max_abs_logit_diff"] = float((a - b).abs().max())
        res["model_attn_implementation"] = getattr(ref.config, "_attn_implementation", None)
        del ref
    except Exception as e:  # noqa: BLE001
        res["model_error"] = repr(e)[:500]
    try:
        hf = AutoTokenizer.from_pretrained(mdir)
        text = tok.decode(sample_ids[:2000])
        a = hf(text, add_special_tokens=False)["input_ids"]
        b = tok.encode(text, add_special_tokens=False).ids
        res["tokenizer_class"] = type(hf).__name__
        res["tokenizer_ids_match"] = a == b
        res["tokenizer_eos"] = hf.eos_token
    except Exception as e:  # noqa: BLE001
        res["tokenizer_error"] = repr(e)[:500]
    log(f"reload check: {res}")
    return res


def pack(args, mdir, work, out):
    tar_path = os.path.join(work, "model.tar")
    with tarfile.open(tar_path, "w") as tf:
        tf.add(mdir, arcname=args.model_name)
    size = os.path.getsize(tar_path)
    part = 15 * MIB
    parts = []
    with open(tar_path, "rb") as f:
        i = 0
        while True:
            blk = f.read(part)
            if not blk:
                break
            name = f"model.tar.part{i}"
            with open(os.path.join(out, name), "wb") as g:
                g.write(blk)
            parts.append({"name": name, "bytes": len(blk)})
            i += 1
    tar_sha = sha256(tar_path)
    os.remove(tar_path)
    log(f"packed {size / MB:.1f} MB tar into {len(parts)} parts in {out} (cat model.tar.part* | tar x)")
    if len(parts) + 2 > 8:
        log("WARNING: more than 8 files in $OUT")
    return {"tar_bytes": size, "tar_sha256": tar_sha, "parts": parts, "arcname": args.model_name,
            "reassemble": "cat model.tar.part* | tar x"}


# ----------------------------------------------------------------------------------------------------------------
# 5. evaluation


def bucket_edges(ctx):
    edges = [0, 1024, 4096, 8192, 16384, 32768, 65536]
    out = []
    for lo, hi in zip(edges, edges[1:]):
        if lo < ctx:
            out.append((lo, min(hi, ctx)))
    return out


def bucket_name(lo, hi):
    def k(v):
        return f"{v // 1024}K" if v % 1024 == 0 else str(v)
    return f"{k(lo)}-{k(hi)}"


def pick_windows(streams, n, length, rng):
    """n windows of `length` tokens, round-robin over the streams long enough, random starts."""
    import numpy as np

    ok = [s for s in streams if len(s) >= length]
    if not ok:
        cat = np.concatenate(streams) if streams else np.zeros(0, dtype=np.uint16)
        if len(cat) < length:
            return []
        ok = [cat]
    out = []
    for i in range(n):
        s = ok[i % len(ok)]
        st = rng.randint(0, len(s) - length)
        out.append(s[st:st + length].astype(np.int64))
    return out


def position_losses(torch, F, model, windows, device, deadline, batch=4):
    """Mean per-position NLL (nats) over the windows; each window is ctx+1 tokens."""
    import numpy as np

    T = len(windows[0]) - 1
    total = torch.zeros(T, dtype=torch.float64, device=device)
    n = 0
    with torch.inference_mode():
        for i in range(0, len(windows), batch):
            if time.time() > deadline:
                break
            ids = torch.tensor(np.stack(windows[i:i + batch]), device=device)
            x, y = ids[:, :-1], ids[:, 1:]
            h = model.model(input_ids=x, use_cache=False).last_hidden_state
            for s in range(0, T, 4096):
                lg = model.lm_head(h[:, s:s + 4096]).float()
                nll = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y[:, s:s + 4096].reshape(-1), reduction="none")
                total[s:s + 4096] += nll.view(x.shape[0], -1).sum(0).double()
            n += x.shape[0]
    if n == 0:
        return None, 0
    return (total / n).cpu().tolist(), n


def summarize_positions(per_pos, ctx):
    buckets = {}
    for lo, hi in bucket_edges(ctx):
        seg = per_pos[lo:hi]
        buckets[bucket_name(lo, hi)] = round(sum(seg) / len(seg), 4)
    step = 512 if ctx >= 4096 else 128
    curve = []
    for lo in range(0, ctx, step):
        seg = per_pos[lo:lo + step]
        curve.append([lo, round(sum(seg) / len(seg), 4)])
    return buckets, curve


PROBE_PREFIXES = ["SECRET_KEY", "API_TOKEN", "SESSION_SALT", "BUILD_ID", "magic_cookie", "auth_nonce",
                  "CACHE_TAG", "license_key"]
PROBE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def make_probe(tok, rng):
    """A random `NAME = "value"` definition whose value tokens are the same alone as inside the definition."""
    for _ in range(100):
        name = f"{rng.choice(PROBE_PREFIXES)}_{''.join(rng.choice(PROBE_ALPHABET) for _ in range(4))}"
        value = "".join(rng.choice(PROBE_ALPHABET) for _ in range(rng.randint(6, 8)))
        enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
        def_ids = enc(f'{name} = "{value}"\n')
        pre_ids = enc(f'{name} = "')
        val_ids = enc(value)
        if def_ids[:len(pre_ids)] == pre_ids and def_ids[len(pre_ids):len(pre_ids) + len(val_ids)] == val_ids:
            return {"name": name, "value": value, "def_ids": def_ids, "query_ids": enc("\n") + pre_ids,
                    "value_ids": val_ids}
    raise RuntimeError("could not build a probe with consistent tokenization")


def score_prompts(torch, model, prompts, pad_id, device, batch=8):
    """prompts: list of (prefix ids, target ids). Teacher-forced: per-token log-prob and argmax of the target.
    All target tokens argmax-correct == greedy decoding reproduces the value exactly."""
    res = []
    with torch.inference_mode():
        for i in range(0, len(prompts), batch):
            chunk = prompts[i:i + batch]
            L = max(len(p) + len(t) for p, t in chunk)
            ids = torch.full((len(chunk), L), pad_id, dtype=torch.long)
            rows, cols, tgts = [], [], []
            for b, (p, t) in enumerate(chunk):
                seq = list(p) + list(t)
                ids[b, :len(seq)] = torch.tensor(seq, dtype=torch.long)
                for j, tt in enumerate(t):
                    rows.append(b)
                    cols.append(len(p) - 1 + j)
                    tgts.append(tt)
            ids = ids.to(device)
            h = model.model(input_ids=ids, use_cache=False).last_hidden_state
            sel = h[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
            lp = torch.log_softmax(model.lm_head(sel).float(), dim=-1)
            tg = torch.tensor(tgts, device=device)
            tok_lp = lp.gather(1, tg[:, None])[:, 0].cpu().tolist()
            ok = (lp.argmax(-1) == tg).cpu().tolist()
            k = 0
            for p, t in chunk:
                n = len(t)
                res.append({"lp": tok_lp[k:k + n], "ok": ok[k:k + n]})
                k += n
    return res


def retrieval_probe(torch, model, tok, heldout_streams, ctx, n_per, pad_id, device, seed, deadline):
    rng = random.Random(seed + 1234)
    nrng = random.Random(seed + 4321)
    distances = [d for d in (1024, 4096, 8192) if d + 96 < ctx] + [ctx - 96]
    out = {"distances": {}, "description":
           'A random line NAME = "value" (6-8 random [a-z0-9] chars) is put before a real held-out window of D '
           'tokens, followed by "\\nNAME = \\""; the value tokens are scored teacher-forced. exact_match: every '
           'value token is the argmax (= greedy decoding reproduces the value). control: the same window and '
           'query without the definition line (chance level).'}
    for D in distances:
        if time.time() > deadline:
            out["stopped_early"] = True
            break
        wins = pick_windows(heldout_streams, n_per, D, nrng)
        if not wins:
            continue
        test, ctrl = [], []
        for w in wins:
            pr = make_probe(tok, rng)
            filler = [int(v) for v in w]
            test.append((pr["def_ids"] + filler + pr["query_ids"], pr["value_ids"]))
            ctrl.append((filler + pr["query_ids"], pr["value_ids"]))
        r_test = score_prompts(torch, model, test, pad_id, device)
        r_ctrl = score_prompts(torch, model, ctrl, pad_id, device)

        def agg(rs):
            n = len(rs)
            return {"n": n,
                    "exact_match": round(sum(all(r["ok"]) for r in rs) / n, 4),
                    "first_token_acc": round(sum(r["ok"][0] for r in rs) / n, 4),
                    "token_acc": round(sum(sum(r["ok"]) for r in rs) / sum(len(r["ok"]) for r in rs), 4),
                    "mean_logprob_per_value_token": round(sum(sum(r["lp"]) for r in rs)
                                                         / sum(len(r["lp"]) for r in rs), 4)}

        out["distances"][str(D)] = {"with_definition": agg(r_test), "control_no_definition": agg(r_ctrl),
                                    "mean_value_tokens": round(sum(len(t) for _, t in test) / len(test), 2)}
        log(f"probe distance {D}: with definition {out['distances'][str(D)]['with_definition']}; "
            f"control {out['distances'][str(D)]['control_no_definition']}")
    far_keys = [k for k in out["distances"] if int(k) >= 8192 or int(k) == ctx - 96]
    far = [out["distances"][k] for k in far_keys]
    if far:
        n = sum(v["with_definition"]["n"] for v in far)
        out["far"] = {
            "distances": far_keys,
            "n": n,
            "exact_match": round(sum(v["with_definition"]["exact_match"] * v["with_definition"]["n"]
                                     for v in far) / n, 4),
            "control_exact_match": round(sum(v["control_no_definition"]["exact_match"]
                                             * v["control_no_definition"]["n"] for v in far) / n, 4),
            "mean_logprob": round(sum(v["with_definition"]["mean_logprob_per_value_token"]
                                      * v["with_definition"]["n"] for v in far) / n, 4),
            "control_mean_logprob": round(sum(v["control_no_definition"]["mean_logprob_per_value_token"]
                                              * v["control_no_definition"]["n"] for v in far) / n, 4)}
    return out


# ----------------------------------------------------------------------------------------------------------------
# model card


def model_card(R):
    c, tr, ev, m = R.get("corpus", {}), R.get("training", {}), R.get("eval", {}), R.get("model", {})
    tk = R.get("tokenizer", {})
    name = R["args"]["model_name"]
    lines = [f"# {name}", "",
             "A small long-context code language model trained by specattn's own script "
             "(`tools/train/train_longctx.py`), reproducibly, from sources already present on the training "
             "machine. It is a real Hugging Face checkpoint (`Qwen3ForCausalLM`) meant for testing long-context "
             "inference (KV paging, sparse attention, speculative decoding), not for use as an assistant.", "",
             "## Model", "",
             "| | |", "|---|---|",
             f"| architecture | `Qwen3ForCausalLM` (transformers {R.get('versions', {}).get('transformers')}) |",
             f"| parameters | {m.get('params', '?'):,} (tied input/output embeddings) |",
             f"| layers / hidden / FFN | {m.get('layers')} / {m.get('hidden')} / {m.get('ffn')} |",
             f"| attention | {m.get('heads')} query heads, {m.get('kv_heads')} KV heads (GQA), head dim "
             f"{m.get('head_dim')}, RMSNorm on q and k |",
             f"| positions | RoPE, theta {m.get('rope_theta'):g}, max_position_embeddings {m.get('max_pos')} |",
             f"| trained context | {tr.get('context')} tokens |",
             "| weights | bf16 safetensors, sharded |",
             f"| tokenizer | {tk.get('type')}, {tk.get('vocab_size')} ids; `<|endoftext|>` = {tk.get('eot_id')} "
             f"(BOS/EOS, also the package separator), `<|pad|>` = {tk.get('pad_id')} |", "",
             "## Data", "",
             "Source code and text files found on the training machine's image (Ubuntu 24.04, Python 3.12 "
             "virtual environment with torch and transformers); nothing was downloaded.", "",
             f"- roots: {', '.join(f'{r[0]}={r[1]}' for r in c.get('roots', []))}",
             f"- file types: site-packages {' '.join(SITE_EXTS)}; standard library {' '.join(STDLIB_EXTS)}; "
             f"/usr/include {' '.join(INCLUDE_EXTS)}; files over 1 MB, symlinks, non-UTF-8 files, "
             "`__pycache__`, `*.dist-info` and hidden folders skipped",
             "- a *package* is one top-level entry of a root; its files are concatenated in sorted path order "
             "(depth-first), each preceded by a `# ===== file: PATH =====` (or `//`) line, so related files sit "
             "next to each other; packages are separated by `<|endoftext|>`",
             f"- training: {c.get('train_packages_used')} packages, {c.get('train_bytes', 0) / MB:.1f} MB, "
             f"{c.get('train_tokens', 0):,} tokens (each package capped at {R['args']['max_pkg_mb']:g} MB, "
             f"total cap {R['args']['max_train_mb']:g} MB, packages taken in a seeded order)",
             f"- held out (whole packages, not in tokenizer or model training): "
             f"{', '.join(c.get('heldout_packages', []))} ({c.get('heldout_tokens', 0):,} tokens)",
             (f"- tokenizer trained on every {tk.get('sample_stride')}th training file "
              f"({tk.get('sample_bytes', 0) / MB:.1f} MB)" if tk.get('sample_stride') is not None
              else f"- tokenizer: {tk.get('type')}"), "",
             "## Training", "",
             f"- {tr.get('steps')} steps of {tr.get('batch')} x {tr.get('context')} tokens = "
             f"{tr.get('tokens', 0) / 1e6:.1f}M tokens in {tr.get('seconds')} s on one NVIDIA H200 "
             f"({tr.get('tokens_per_second', 0) / 1e3:.0f}K tokens/s), stopped by {tr.get('stopped_by')}",
             f"- {tr.get('optimizer')}; bf16 autocast with fp32 master weights, SDPA (flash) attention, seed "
             f"{R['args']['seed']}",
             f"- final training loss (mean of the last 20 steps): {tr.get('final_loss_last20')} nats/token",
             f"- whole command (corpus, tokenizer, training, export, evaluation): {R.get('total_seconds')} s", ""]
    if ev.get("bucket_loss"):
        lines += ["## Evaluation (held-out packages, bf16 weights)", "",
                  f"Mean loss (nats/token) by position in {ev.get('bucket_windows')} held-out windows of "
                  f"{tr.get('context')} tokens; it falls with position when the model uses long context:", "",
                  "| positions | " + " | ".join(ev["bucket_loss"].keys()) + " |",
                  "|---|" + "---|" * len(ev["bucket_loss"]),
                  "| held-out loss | " + " | ".join(str(v) for v in ev["bucket_loss"].values()) + " |"]
        if ev.get("train_bucket_loss"):
            lines.append("| training-package loss | "
                         + " | ".join(str(v) for v in ev["train_bucket_loss"].values()) + " |")
        lines.append("")
    pr = ev.get("probe") or {}
    if pr.get("distances"):
        lines += ["Retrieval probe: " + pr["description"], "",
                  "| distance (tokens) | exact match | control | value-token log-prob | control log-prob |",
                  "|---|---|---|---|---|"]
        for d, v in pr["distances"].items():
            w, cc = v["with_definition"], v["control_no_definition"]
            lines.append(f"| {d} | {w['exact_match']:.3f} (n={w['n']}) | {cc['exact_match']:.3f} | "
                         f"{w['mean_logprob_per_value_token']:.3f} | {cc['mean_logprob_per_value_token']:.3f} |")
        lines.append("")
    lines += ["## Reproduce", "", "On one H200 (about 8.5 minutes; from the specattn repository root):", "",
              "```sh", R.get("command", COMMAND), "```", "",
              f"Versions: {json.dumps(R.get('versions', {}))}. The number of steps depends on the wall clock, so a rerun "
              "matches closely but not bit for bit (`--max-steps N` fixes the step count).", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------


def write_eval(out, R):
    R["total_seconds"] = round(elapsed(), 1)
    try:
        R["model_card"] = model_card(R)
    except Exception as e:  # noqa: BLE001
        R["model_card_error"] = repr(e)
    tmp = os.path.join(out, "eval.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(R, f, indent=1, default=str)
    os.replace(tmp, os.path.join(out, "eval.json"))


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "w", encoding="utf-8", buffering=1)
    sys.stdout = Tee(sys.__stdout__, logf)
    sys.stderr = Tee(sys.__stderr__, logf)
    log(f"args: {vars(args)}")
    random.seed(args.seed)
    rng = random.Random(args.seed)
    # The command as given (flags and all), with the output folder written as the device's $OUT.
    argv = ["$OUT" if i > 0 and sys.argv[i - 1] == "--out" else a for i, a in enumerate(sys.argv[1:], 1)]
    command = "PYTHONUNBUFFERED=1 python3 tools/train/train_longctx.py " + " ".join(shlex.quote(a) if a != "$OUT" else a
                                                                            for a in argv)
    R = {"args": vars(args), "command": command, "errors": [], "timings": {}}

    # ---- 1 + 2: corpus and tokenizer
    t_phase = time.time()
    corpus_deadline = t_phase + args.corpus_seconds
    import numpy as np
    np.random.seed(args.seed)
    heldout, train_pkgs, roots, n_dropped = build_corpus(args, rng)
    tok, tok_info = load_tokenizer(args) if args.init_from else train_tokenizer(args, train_pkgs)
    used, stream_np, stopped_at = encode_packages(args, tok, heldout, train_pkgs, corpus_deadline)
    eot_id, pad_id = tok_info["eot_id"], tok_info["pad_id"]
    R["tokenizer"] = tok_info
    R["corpus"] = {
        "roots": [[r[0], r[1], list(r[2])] for r in roots],
        "max_file_bytes": MAX_FILE_BYTES,
        "heldout_preferences": HELDOUT_PREFS,
        "heldout_packages": [p["name"] for p in heldout],
        "heldout_bytes": sum(p["text_bytes"] for p in heldout),
        "heldout_tokens": int(sum(len(p["tokens"]) for p in heldout)),
        "train_packages_selected": len(train_pkgs),
        "train_packages_used": len(used),
        "train_packages_left_out_by_size_cap": n_dropped,
        "train_packages_left_out_by_time": (len(train_pkgs) - len(used)) if stopped_at is not None else 0,
        "train_bytes": sum(p["text_bytes"] for p in used),
        "train_tokens": int(len(stream_np)),
        "packages": [{"name": p["name"], "files": len(p["docs"]), "bytes": p["text_bytes"],
                      "tokens": int(len(p["tokens"])) if p.get("tokens") is not None else None,
                      "capped": bool(p.get("capped")), "heldout": bool(p.get("heldout"))}
                     for p in heldout + train_pkgs],
    }
    heldout_streams = [p["tokens"] for p in heldout if len(p["tokens"]) > 0]
    train_streams = [p["tokens"] for p in used]
    for p in heldout + train_pkgs:
        p["docs"] = None  # free the text
    R["timings"]["corpus_and_tokenizer"] = round(time.time() - t_phase, 1)
    log(f"phase corpus+tokenizer: {R['timings']['corpus_and_tokenizer']}s")

    # ---- 3: model and training
    t_phase = time.time()
    import torch
    import torch.nn.functional as F
    import transformers
    import tokenizers
    R["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0],
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    log(f"versions: {R['versions']}")
    if not torch.cuda.is_available():
        raise RuntimeError("CUDA is not available")
    device = torch.device("cuda")
    torch.manual_seed(args.seed)
    torch.cuda.manual_seed_all(args.seed)
    R["sdpa_preflight"] = sdpa_preflight(torch, F, device)
    model = build_model(args, torch, eot_id, pad_id, tok.get_vocab_size()).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    R["model"] = {"params": n_params, "hidden": args.hidden, "ffn": args.ffn, "layers": args.layers,
                  "heads": args.heads, "kv_heads": args.kv_heads, "head_dim": args.head_dim,
                  "rope_theta": args.rope_theta, "max_pos": args.max_pos,
                  "attn_implementation": getattr(model.config, "_attn_implementation", None),
                  "tied": model.lm_head.weight is model.model.embed_tokens.weight}
    log(f"model: Qwen3ForCausalLM, {n_params:,} parameters ({n_params / 1e6:.2f}M), attention "
        f"{R['model']['attn_implementation']}, tied {R['model']['tied']}")
    now = time.time()
    budget = min(args.train_seconds, (T0 + args.total_seconds - args.reserve_seconds) - now)
    budget = max(budget, 5.0)
    R["timings"]["model_setup"] = round(now - t_phase, 1)
    try:
        R["training"] = train(args, torch, F, model, stream_np, device, budget)
    except Exception as e:  # noqa: BLE001
        log("TRAINING FAILED:\n" + traceback.format_exc())
        R["errors"].append("training: " + repr(e))
        R["training"] = {"error": repr(e)}
    R["timings"]["training"] = round(time.time() - now, 1)
    del stream_np

    # ---- 4: export (before evaluating)
    t_phase = time.time()
    work = args.work_dir
    os.makedirs(work, exist_ok=True)
    mdir = os.path.join(work, args.model_name)
    export_ok = False
    try:
        R["export"] = export(args, torch, model, tok, tok_info, eot_id, pad_id, mdir)
        sample = [int(v) for v in (heldout_streams[0][:4096] if heldout_streams else train_streams[0][:4096])]
        R["export"]["reload_check"] = reload_check(torch, mdir, model, tok, sample, device)
        R["export"].update(pack(args, mdir, work, args.out))
        export_ok = True
    except Exception as e:  # noqa: BLE001
        log("EXPORT FAILED:\n" + traceback.format_exc())
        R["errors"].append("export: " + repr(e))
    R["timings"]["export"] = round(time.time() - t_phase, 1)
    write_eval(args.out, R)

    # ---- 5: evaluation
    t_phase = time.time()
    hard = T0 + args.hard_seconds
    ev = {}
    R["eval"] = ev
    model.eval()
    erng = random.Random(args.seed + 1)
    try:
        wins = pick_windows(heldout_streams, args.eval_windows, args.ctx + 1, erng)
        if not wins:
            raise RuntimeError("held-out packages too short for one window")
        per_pos, n = position_losses(torch, F, model, wins, device, hard)
        ev["bucket_windows"] = n
        ev["bucket_loss"], ev["loss_curve_512"] = summarize_positions(per_pos, args.ctx)
        log(f"held-out loss by position ({n} windows): {ev['bucket_loss']}")
    except Exception as e:  # noqa: BLE001
        log("BUCKET EVAL FAILED:\n" + traceback.format_exc())
        R["errors"].append("bucket eval: " + repr(e))
    try:
        wins = pick_windows(train_streams, max(4, args.eval_windows // 4), args.ctx + 1, erng)
        if wins:
            per_pos, n = position_losses(torch, F, model, wins, device, hard)
            ev["train_bucket_windows"] = n
            ev["train_bucket_loss"], _ = summarize_positions(per_pos, args.ctx)
            log(f"training-package loss by position ({n} windows): {ev['train_bucket_loss']}")
    except Exception as e:  # noqa: BLE001
        log("TRAIN BUCKET EVAL FAILED:\n" + traceback.format_exc())
        R["errors"].append("train bucket eval: " + repr(e))
    try:
        ev["probe"] = retrieval_probe(torch, model, tok, heldout_streams, args.ctx, args.probe_per_distance,
                                      pad_id, device, args.seed, hard)
    except Exception as e:  # noqa: BLE001
        log("PROBE FAILED:\n" + traceback.format_exc())
        R["errors"].append("probe: " + repr(e))
    R["timings"]["eval"] = round(time.time() - t_phase, 1)
    write_eval(args.out, R)

    # ---- summary
    tr = R.get("training", {})
    print("")
    print("=" * 78)
    print(f"SUMMARY  ({'smoke' if args.smoke else 'full'} run, {elapsed():.0f}s in all)")
    print(f"  params             {R['model']['params']:,}")
    print(f"  corpus             train {R['corpus']['train_tokens']:,} tokens "
          f"({R['corpus']['train_bytes'] / MB:.1f} MB, {R['corpus']['train_packages_used']} packages); "
          f"held out {', '.join(R['corpus']['heldout_packages'])}")
    print(f"  training           {tr.get('steps')} steps, {tr.get('tokens', 0) / 1e6:.1f}M tokens, "
          f"{tr.get('seconds')}s, {tr.get('tokens_per_second', 0) / 1e3:.0f}K tok/s, ctx {tr.get('context')}, "
          f"final loss {tr.get('final_loss_last20')}")
    for k, v in (ev.get("bucket_loss") or {}).items():
        tv = (ev.get("train_bucket_loss") or {}).get(k)
        print(f"  loss {k:>9}     held-out {v:.4f}" + (f"   train-pkgs {tv:.4f}" if tv is not None else ""))
    for d, v in ((ev.get("probe") or {}).get("distances") or {}).items():
        w, c = v["with_definition"], v["control_no_definition"]
        print(f"  probe d={d:>6}     exact {w['exact_match']:.3f} vs control {c['exact_match']:.3f}   "
              f"logprob {w['mean_logprob_per_value_token']:.3f} vs {c['mean_logprob_per_value_token']:.3f}")
    print(f"  timings            {R['timings']}")
    print(f"  export             {'ok' if export_ok else 'FAILED'}; errors: {R['errors'] or 'none'}")
    print(f"  outputs            {sorted(os.listdir(args.out))}")
    print("=" * 78)
    sys.stdout.flush()
    return 0 if export_ok and (R.get("training") or {}).get("error") is None else 1


if __name__ == "__main__":
    try:
        rc = main()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        rc = 1
    sys.stdout.flush()
    sys.exit(rc)
