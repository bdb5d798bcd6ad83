#!/usr/bin/env bash
# Model-shape presets (model/presets.h) from the command line, as far as a machine without a GPU goes: `info` shows a
# preset's shape (no weights are loaded: they are made on the GPU), and every way of asking for one where it cannot
# run ends with one clear line.
. "$(dirname "$0")/lib.sh"

expect_ok "info preset" "$BIN" info -m preset:llama-3.1-8b --json
check "llama-3.1-8b shape and size" python3 -c "
import json; j = json.load(open('$TMP/out'))
assert (j['n_layer'], j['n_head'], j['n_head_kv'], j['head_dim'], j['n_vocab']) == (32, 32, 8, 128, 128256), j
assert j['n_params'] == 8030261248, j['n_params']   # Llama-3.1-8B's published count
assert j['tokenizer_vocab'] is None"
expect_ok "info qwen3-8b" "$BIN" info -m preset:qwen3-8b --json
check "qwen3-8b size" python3 -c "
import json; j = json.load(open('$TMP/out')); assert j['n_params'] == 8190735360 and j['qk_norm'], j['n_params']"
expect_error "unknown preset" "unknown preset 'nope' \(presets: llama-3.1-8b" "$BIN" info -m preset:nope
expect_error "preset on the cpu" "random weights generated on the GPU: run it with --device cuda" \
    "$BIN" generate -m preset:qwen3-0.6b -p hi
expect_error "bench preset without cuda" "add --device cuda" "$BIN" bench --preset llama-3.2-1b --ctx-len 64
expect_error "bench preset without lengths" "give prompt lengths with --ctx-len" \
    "$BIN" bench --preset llama-3.2-1b --device cuda
finish
