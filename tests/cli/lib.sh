# Helpers for the CLI black-box tests: each test script sources this, gets BIN and SRC, and calls the checks.
# Not a test itself (no test_ prefix).
set -u
BIN=$1
SRC=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n_failed=0
n_passed=0

# expect_error NAME PATTERN CMD...: CMD exits non-zero (not by a signal) with exactly one stderr line matching PATTERN.
expect_error() {
    local name=$1 pattern=$2; shift 2
    timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    local lines; lines=$(wc -l <"$TMP/err")
    if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then
        echo "FAIL $name: exit code $rc (want a clean non-zero exit)"; cat "$TMP/err"; n_failed=$((n_failed + 1))
    elif [ "$lines" -ne 1 ]; then
        echo "FAIL $name: $lines stderr lines (want 1)"; cat "$TMP/err"; n_failed=$((n_failed + 1))
    elif ! grep -qE -e "$pattern" "$TMP/err"; then
        echo "FAIL $name: stderr does not match /$pattern/: $(cat "$TMP/err")"; n_failed=$((n_failed + 1))
    else
        echo "ok   $name: $(cat "$TMP/err")"; n_passed=$((n_passed + 1))
    fi
}

# expect_ok NAME CMD...: CMD exits 0; its stdout is left in $TMP/out.
expect_ok() {
    local name=$1; shift
    if timeout 300 "$@" >"$TMP/out" 2>"$TMP/err"; then
        echo "ok   $name"; n_passed=$((n_passed + 1))
    else
        echo "FAIL $name: exit $?"; cat "$TMP/err"; n_failed=$((n_failed + 1))
    fi
}

# check NAME CONDITION-COMMAND...: a plain assertion.
check() {
    local name=$1; shift
    if "$@"; then echo "ok   $name"; n_passed=$((n_passed + 1)); else echo "FAIL $name"; n_failed=$((n_failed + 1)); fi
}

finish() {
    echo "$n_passed passed, $n_failed failed"
    [ $n_failed -eq 0 ]
}
