#!/usr/bin/env bash
# Bad input gets one clear error line and a non-zero exit: never a crash, a hang or silent garbage.
source "$(dirname "$0")/lib.sh"
TINY=$SRC/tests/fixtures/models/llama_mha_tied_f32_oldconfig

expect_error "missing model" "nope" "$BIN" generate -m /nonexistent/nope -p hi
expect_error "empty prompt" "empty" "$BIN" generate -p "" -n 5
expect_error "no prompt" "prompt" "$BIN" generate -n 5
expect_error "-n beyond the context" "context" "$BIN" generate -p "Once upon a time" -n 1000
expect_error "prompt beyond the context" "context" "$BIN" generate -p "$(printf 'word %.0s' $(seq 400))" -n 5
expect_error "ctx-size beyond the model" "ctx-size" "$BIN" generate -p hi -c 100000
expect_error "bad temperature" "temp" "$BIN" generate -p hi --temp -1
expect_error "bad top-p" "top-p" "$BIN" generate -p hi --top-p 0
expect_error "bad flag value" "n-predict|could not be converted|number" "$BIN" generate -p hi -n abc
expect_error "missing prompt file" "prompt file" "$BIN" generate -f /nonexistent/prompt.txt
expect_error "bad prompt ids" "token id" "$BIN" generate -m "$TINY" --prompt-ids 1,x,3
expect_error "prompt id outside vocab" "vocabulary" "$BIN" generate -m "$TINY" --prompt-ids 1,99999

# Broken llama2.c checkpoint: truncated.
mkdir -p "$TMP/trunc" && head -c 1000000 "$SRC/data/stories15M/stories15M.bin" > "$TMP/trunc/m.bin" \
    && cp "$SRC/data/stories15M/tokenizer.bin" "$TMP/trunc/"
expect_error "truncated llama2.c checkpoint" "size|truncated|bytes" "$BIN" generate -m "$TMP/trunc/m.bin" -p hi

# Broken HF directories, each a copy of a good one with one thing wrong.
bad() { rm -rf "$TMP/$1" && cp -r "$TINY" "$TMP/$1" && echo "$TMP/$1"; }
d=$(bad nonjson) && echo "{not json" > "$d/config.json"
expect_error "config.json not JSON" "config.json" "$BIN" generate -m "$d" -p hi
d=$(bad arch) && sed -i 's/LlamaForCausalLM/GPTNeoXForCausalLM/' "$d/config.json"
expect_error "unknown architecture" "GPTNeoXForCausalLM" "$BIN" generate -m "$d" -p hi
d=$(bad shape) && sed -i 's/"intermediate_size": 160/"intermediate_size": 128/' "$d/config.json"
expect_error "wrong shape" "shape|mlp" "$BIN" generate -m "$d" -p hi
d=$(bad trunc) && head -c 20000 "$TINY/model.safetensors" > "$d/model.safetensors"
expect_error "truncated safetensors" "safetensors" "$BIN" generate -m "$d" -p hi
d=$(bad header) && python3 - "$d/model.safetensors" <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
struct.pack_into('<Q', b, 0, 1 << 40)   # a header length far beyond the file
open(p, 'wb').write(b)
PY
expect_error "safetensors header lies about its size" "header" "$BIN" generate -m "$d" -p hi
d=$(bad notok) && rm "$d/tokenizer.json"
expect_error "missing tokenizer.json" "tokenizer" "$BIN" generate -m "$d" -p hi
d=$(bad badtok) && echo '{"model": 5}' > "$d/tokenizer.json"
expect_error "malformed tokenizer.json" "tokenizer" "$BIN" generate -m "$d" -p hi
expect_error "unknown subcommand" "nope|subcommand" "$BIN" nope
finish
