#!/bin/sh
# Runs every libFuzzer target of a fuzz build for SECONDS each, from the seed
# corpus in fuzz/corpus/<target>/ (a scratch copy grows; the seeds stay).
# Usage: scripts/run-fuzz.sh BUILD_DIR SECONDS
set -e
build=$1; seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin"); target=${name#fuzz_}
    work="$build/fuzz-work/$target"; mkdir -p "$work/corpus" "$work/artifacts"
    [ -d "$root/fuzz/corpus/$target" ] && cp -n "$root/fuzz/corpus/$target"/* "$work/corpus/" 2>/dev/null || true
    dict=""; [ -f "$root/fuzz/$target.dict" ] && dict="-dict=$root/fuzz/$target.dict"
    echo "== $name: $seconds s"
    UQ_FUZZ_TOKENIZER="$root/models/stories260K/tokenizer.json" \
    "$bin" $dict -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        "$work/corpus" 2>&1 | grep -E "^(stat::|==|SUMMARY|#[0-9]+ +DONE)|ERROR" || true
    if ls "$work/artifacts"/* >/dev/null 2>&1; then echo "$name: crash inputs in $work/artifacts"; status=1; fi
done
exit $status
