#!/usr/bin/env bash
# `specattn generate`, `tokenize` and `info` on stories15M and a tiny HF checkpoint, as a user runs them.
source "$(dirname "$0")/lib.sh"
STORIES=$SRC/data/stories15M/stories15M.bin
TINY=$SRC/tests/fixtures/models/qwen3_qknorm_bf16_sharded

known="Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the sky. It was the sun! She thought it was so pretty."
expect_ok "generate greedy (default model)" "$BIN" generate -p "Once upon a time" -n 60 --temp 0
check "known story on stdout" bash -c "printf 'Once upon a time%s' \"\$(cat $TMP/out)\" | grep -qF \"$known\""
expect_ok "generate --echo" "$BIN" generate -m "$STORIES" -p "Once upon a time" -n 60 --temp 0 --echo
check "echo prints the prompt first" bash -c "head -c ${#known} $TMP/out | grep -qxF \"$known\""
check "stats on stderr" grep -qE "prompt 5 tokens.*generation 60 tokens.*tokens/s" "$TMP/err"

expect_ok "generate --json" "$BIN" generate -p "Once upon a time" -n 20 --temp 0 --json
check "json has the fields" python3 -c "
import json,sys; j=json.load(open('$TMP/out'))
assert j['prompt_token_ids']==[1,9038,2501,263,931], j['prompt_token_ids']
assert len(j['token_ids'])==20 and j['text'].startswith(', there was a little girl')
assert j['stats']['generation_tokens_per_s']>0 and j['finish_reason']=='length'"

expect_ok "generate -f prompt file" bash -c "printf 'Once upon a time' > $TMP/p.txt && $BIN generate -f $TMP/p.txt -n 8 --temp 0"
check "file prompt continues the story" grep -qF ", there was a little girl" "$TMP/out"
expect_ok "generate sampled, seeded" "$BIN" generate -p "Once upon a time" -n 30 --temp 1 --seed 7 --json
cp "$TMP/out" "$TMP/a.json"
expect_ok "same seed again" "$BIN" generate -p "Once upon a time" -n 30 --temp 1 --seed 7 --json
check "same seed, same tokens" python3 -c "
import json; a=json.load(open('$TMP/a.json')); b=json.load(open('$TMP/out')); assert a['token_ids']==b['token_ids']"
expect_ok "batch of two prompts" "$BIN" generate -p "Once upon a time" -p "The dog" -n 10 --temp 0 --json
check "two results" python3 -c "import json; assert len(json.load(open('$TMP/out'))['results'])==2"
expect_ok "stop string" "$BIN" generate -p "Once upon a time" -n 60 --temp 0 --stop Lily --json
check "stop string cuts" python3 -c "
import json; j=json.load(open('$TMP/out')); assert j['text']==', there was a little girl named ' and j['finish_reason']=='stop', j"

expect_ok "tiny HF model by token ids" "$BIN" generate -m "$TINY" --prompt-ids 0,10,20,30 -n 5 --temp 0 --json
check "five ids" python3 -c "import json; assert len(json.load(open('$TMP/out'))['token_ids'])==5"

expect_ok "tokenize default" "$BIN" tokenize "Hello world"
check "tokenize ids" grep -qxF "[15043,3186]" "$TMP/out"
expect_ok "tokenize --add-special" "$BIN" tokenize --add-special "Hello world"
check "tokenize with BOS" grep -qxF "[1,15043,3186]" "$TMP/out"
expect_ok "tokenize a tokenizer.json" "$BIN" tokenize -m "$SRC/data/tokenizers/qwen2_5/tokenizer.json" "Hello"
check "qwen Hello" grep -qxF "[9707]" "$TMP/out"
expect_ok "info" "$BIN" info
check "info shape" grep -qE "n_layer +6" "$TMP/out"
expect_ok "info hf --json" "$BIN" info -m "$TINY" --json
check "info qwen3" python3 -c "import json; j=json.load(open('$TMP/out')); assert j['family']=='qwen3' and j['head_dim']==32"
finish
