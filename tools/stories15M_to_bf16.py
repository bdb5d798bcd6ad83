#!/usr/bin/env python3
# Writes data/stories15M_bf16/: stories15M as a Hugging Face Llama directory with bf16 matrices (config.json,
# model.safetensors, and llama2.c's tokenizer.bin, which the engine reads from a directory too).
#
# Why: the device machine receives the working tree plus carried paths, 64 MiB at most, and the fp32 llama2.c
# file alone is 61 MB. The bf16 copy (30 MB) is what scripts/gpu_check.sh carries; the CUDA backend rounds the
# weights to bf16 anyway, so the CPU backend on this copy is the like-for-like oracle of the greedy comparison.
#
# Q and K rows are permuted from llama2.c's interleaved RoPE pairs to Hugging Face's half-split layout (the
# permutation transformers' convert_llama_weights_to_hf.py applies), so the directory is an ordinary
# LlamaForCausalLM; the attention scores are unchanged. Norm weights stay fp32.
#
# Standard library only (the build machine has no numpy). Run from the repo root:
#     python3 tools/stories15M_to_bf16.py [data/stories15M/stories15M.bin] [data/stories15M_bf16]
import array
import json
import os
import shutil
import struct
import sys


def bf16_bytes(floats):
    """fp32 values -> bf16 bytes, round to nearest even (as PyTorch and core/dtype.h's f32_to_bf16)."""
    bits = array.array("I", floats.tobytes())
    out = array.array("H", bytes(2 * len(bits)))
    for i, b in enumerate(bits):
        if (b & 0x7FFFFFFF) > 0x7F800000:
            out[i] = (b >> 16) | 0x40
        else:
            out[i] = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF
    return out.tobytes()


def half_split_rows(w, n_head, head_dim, n_in):
    """Rows (h, 2i + c) -> (h, c * head_dim / 2 + i): interleaved RoPE pairs to rotate_half pairs."""
    out = array.array("f", bytes(4 * len(w)))
    half = head_dim // 2
    for h in range(n_head):
        for i in range(half):
            for c in range(2):
                src = (h * head_dim + 2 * i + c) * n_in
                dst = (h * head_dim + c * half + i) * n_in
                out[dst:dst + n_in] = w[src:src + n_in]
    return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "data/stories15M/stories15M.bin"
    dst = sys.argv[2] if len(sys.argv) > 2 else "data/stories15M_bf16"
    with open(src, "rb") as f:
        data = f.read()
    dim, hidden, n_layer, n_head, n_head_kv, vocab, seq_len = struct.unpack("<7i", data[:28])
    tied = vocab > 0
    vocab = abs(vocab)
    head_dim = dim // n_head
    kv_dim = n_head_kv * head_dim
    payload = array.array("f", data[28:])
    at = 0

    def take(n):
        nonlocal at
        t = payload[at:at + n]
        at += n
        return t

    tensors = {}  # name -> (dtype, shape, bytes)
    tensors["model.embed_tokens.weight"] = ("BF16", [vocab, dim], bf16_bytes(take(vocab * dim)))
    stacked = [("input_layernorm.weight", [dim]), ("self_attn.q_proj.weight", [dim, dim]),
               ("self_attn.k_proj.weight", [kv_dim, dim]), ("self_attn.v_proj.weight", [kv_dim, dim]),
               ("self_attn.o_proj.weight", [dim, dim]), ("post_attention_layernorm.weight", [dim]),
               ("mlp.gate_proj.weight", [hidden, dim]), ("mlp.down_proj.weight", [dim, hidden]),
               ("mlp.up_proj.weight", [hidden, dim])]
    for suffix, shape in stacked:
        n = shape[0] * (shape[1] if len(shape) > 1 else 1)
        for il in range(n_layer):
            t = take(n)
            name = "model.layers.%d.%s" % (il, suffix)
            if len(shape) == 1:
                tensors[name] = ("F32", shape, t.tobytes())
                continue
            if suffix == "self_attn.q_proj.weight":
                t = half_split_rows(t, n_head, head_dim, dim)
            elif suffix == "self_attn.k_proj.weight":
                t = half_split_rows(t, n_head_kv, head_dim, dim)
            tensors[name] = ("BF16", shape, bf16_bytes(t))
    tensors["model.norm.weight"] = ("F32", [dim], take(dim).tobytes())
    at += seq_len * head_dim  # freq_cis_real, freq_cis_imag
    if not tied:
        tensors["lm_head.weight"] = ("BF16", [vocab, dim], bf16_bytes(take(vocab * dim)))

    os.makedirs(dst, exist_ok=True)
    header = {}
    offset = 0
    for name, (dt, shape, b) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, (_, _, b) in tensors.items():
            f.write(b)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
        "intermediate_size": hidden, "num_hidden_layers": n_layer, "num_attention_heads": n_head,
        "num_key_value_heads": n_head_kv, "vocab_size": vocab, "max_position_embeddings": seq_len,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tied, "bos_token_id": 1,
        "eos_token_id": [2, 1], "torch_dtype": "bfloat16",
    }
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    shutil.copy(os.path.join(os.path.dirname(src), "tokenizer.bin"), os.path.join(dst, "tokenizer.bin"))
    print("wrote", dst)


if __name__ == "__main__":
    main()
