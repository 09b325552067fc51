# Perplexity of bench-28m on the whole sotu-dev text under both protocols,
# within 0.5% of the PyTorch figures in refs/bench-28m-ppl.json. (Labelled
# slow: skipped in the sanitizer run, where it would take too long.)
. "$(dirname "$0")/common.bash"
M="$SHARED/models/bench-28m"; D="$SHARED/data/sotu-dev.txt"; R="$SHARED/refs/bench-28m-ppl.json"
if [ ! -f "$M/model.safetensors" ] || [ ! -f "$D" ] || [ ! -f "$R" ]; then echo "skipped: shared data missing"; exit 0; fi
# the reference figures, read without a JSON tool: "sotu-dev.txt": { "windows": { "ppl": X ...
ref_ppl() { tr -d ' \n' < "$R" | sed -n "s/.*\"sotu-dev.txt\":{\(.*\)/\1/p" | sed -n "s/.*\"$1\":{\"ppl\":\([0-9.]*\).*/\1/p"; }
for proto in windows llamacpp; do
    ref=$(ref_ppl "$proto")
    [ -n "$ref" ] || { fail "no reference ppl for $proto"; continue; }
    expect_rc 0 "$UQ" eval "$M" --data "$D" --protocol "$proto" --json
    got=$(printf '%s' "$OUT_TEXT" | sed -n 's/.*"ppl": \([0-9.]*\).*/\1/p' | head -1)
    echo "$proto: ppl $got (reference $ref)"
    awk -v g="$got" -v w="$ref" 'BEGIN { d = (g - w) / w; if (d < 0) d = -d; exit !(d < 0.005) }' ||
        fail "$proto: ppl $got is not within 0.5% of $ref"
done
finish
