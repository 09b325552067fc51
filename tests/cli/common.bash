# Shared helpers for the command-line tests (sourced).
set -u
UQ="${UQ_BIN:?UQ_BIN must name the uquant binary}"
SHARED="${UQ_SHARED_DIR:-../shared}"
SRC="${UQ_SOURCE_DIR:?}"
TMP="${UQ_TMPDIR:-/tmp}/cli-$(basename "$0" .sh)"
rm -rf "$TMP" && mkdir -p "$TMP"
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# expect_rc WANT CMD...: runs CMD, checks its exit status, keeps output in $OUT_TEXT
expect_rc() {
    local want=$1; shift
    OUT_TEXT=$("$@" 2>&1); rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, want $want; output: $(printf '%s' "$OUT_TEXT" | head -5)"
}
expect_in() { printf '%s' "$OUT_TEXT" | grep -qF -- "$1" || fail "output lacks '$1': $(printf '%s' "$OUT_TEXT" | head -5)"; }
finish() {
    if [ "$failures" -gt 0 ]; then echo "$failures check(s) failed"; exit 1; fi
    echo "all checks passed"
}
