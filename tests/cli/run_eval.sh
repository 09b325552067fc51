# uquant run and uquant eval.
. "$(dirname "$0")/common.bash"
M="$SRC/models/stories260K"
WANT="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high"

expect_rc 0 "$UQ" run --help; expect_in "--top-p"
expect_rc 2 "$UQ" run
expect_rc 2 "$UQ" run "$M" --temp hot
expect_rc 2 "$UQ" run "$M" --top-p 2
# greedy from BOS prints the published sample exactly
got=$("$UQ" run "$M" -n 60 2>/dev/null)
[ "$got" = "$WANT" ] || fail "greedy text differs: $got"
# 8-bit too
"$UQ" quantize "$M" -o "$TMP/q8" --bits 8 --group-size 32 -q || fail "quantize"
got=$("$UQ" run "$TMP/q8" -n 60 --backend cpu-ref 2>/dev/null)
[ "$got" = "$WANT" ] || fail "8-bit greedy text differs: $got"
# a prompt is echoed and continued; sampling is reproducible for a seed
expect_rc 0 "$UQ" run "$M" -p "Once upon a time, Lily" -n 20 --temp 0.8 --seed 7
expect_in "Once upon a time, Lily "
first=$OUT_TEXT
expect_rc 0 "$UQ" run "$M" -p "Once upon a time, Lily" -n 20 --temp 0.8 --seed 7
[ "$OUT_TEXT" = "$first" ] || fail "same seed, different text"
expect_rc 0 "$UQ" run "$M" -n 5 --backend cpu-ref -v; expect_in "backend: cpu-ref"
expect_rc 1 "$UQ" run "$M" --backend nosuch; expect_in "unknown backend"
expect_rc 1 "$UQ" run "$TMP/missing"; expect_in "error"

# eval
D="$SHARED/data/moby-dev.txt"
if [ -f "$D" ]; then
    expect_rc 2 "$UQ" eval "$M"; expect_in "--data"
    expect_rc 2 "$UQ" eval "$M" --data "$D" --protocol nope
    expect_rc 0 "$UQ" eval "$M" --data "$D" --ctx 64 --max-windows 4
    expect_in "perplexity"; expect_in "252 scored"
    expect_rc 0 "$UQ" eval "$TMP/q8" --reference "$M" --data "$D" --ctx 64 --max-windows 4 --protocol llamacpp --json
    expect_in '"scored_tokens": 128'; expect_in '"kl_mean"'; expect_in '"top1_agreement"'; expect_in '"cosine_similarity"'
    expect_rc 1 "$UQ" eval "$M" --data "$TMP/missing.txt"; expect_in "missing.txt"
    expect_rc 1 "$UQ" eval "$M" --data "$D" --ctx 4096; expect_in "positions"
fi
finish
