#!/usr/bin/env bash
# --tp on the command line: simulated tensor parallelism gives the one-rank output; values the model's heads do not
# allow, and --device cuda --tp N without N GPUs (CI has none), fail with one line.
source "$(dirname "$0")/lib.sh"
MHA=$SRC/tests/fixtures/models/llama_mha_tied_f32_oldconfig # 4 heads, 4 KV heads
GQA=$SRC/tests/fixtures/models/mistral_gqa4_f32              # 8 heads, 2 KV heads

expect_error "--tp 3 on 4 KV heads" "^specattn: error: --tp 3 does not divide the 4 KV heads of this model$" \
    "$BIN" generate -m "$MHA" -p hi --tp 3
expect_error "--tp 4 on 2 KV heads" "--tp 4 exceeds the 2 KV heads" "$BIN" generate -m "$GQA" -p hi --tp 4
expect_error "--tp 0" "--tp must be at least 1" "$BIN" generate -m "$MHA" -p hi --tp 0
expect_error "--tp not a number" "tp|could not be converted|number" "$BIN" generate -m "$MHA" -p hi --tp two
expect_error "--tp 2 on cuda without 2 GPUs" "no CUDA device found|no CUDA backend|needs 2 GPUs" \
    "$BIN" generate -m "$MHA" -p hi --tp 2 --device cuda
expect_error "bad SPECATTN_TP_TRANSPORT" "SPECATTN_TP_TRANSPORT must be nccl or local|no CUDA backend" \
    env SPECATTN_TP_TRANSPORT=udp "$BIN" generate -m "$MHA" -p hi --tp 2 --device cuda
expect_error "bench --tp 3" "--tp 3 does not divide" "$BIN" bench -m "$MHA" --tp 3 -n 4 -r 1 --spec none

for tp in 1 2 4; do
    expect_ok "generate --tp $tp" "$BIN" generate -m "$MHA" -p "Once upon a time" -n 24 --temp 0 --ignore-eos \
        --spec specattn --spec-min-tokens 4 --json
    cp "$TMP/out" "$TMP/tp$tp.json"
done
check "--tp 2 and 4 give the --tp 1 tokens" python3 -c "
import json; t=[json.load(open('$TMP/tp%d.json' % n))['token_ids'] for n in (1, 2, 4)]
assert len(t[0]) == 24 and t[0] == t[1] == t[2], t"

expect_ok "bench --tp 1,2" "$BIN" bench -m "$GQA" --tp 1,2 -n 12 -r 1 --spec none,specattn --spec-min-tokens 4 --json
check "bench rows per tp, lossless" python3 -c "
import json; rows=json.load(open('$TMP/out'))
assert sorted(set(r['tp'] for r in rows)) == [1, 2], rows
assert all(r['lossless'] == 'yes' for r in rows if r['method'] != 'none'), rows"
finish
