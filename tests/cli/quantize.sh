# uquant quantize: options, output folder, --config, --force, --json, errors.
. "$(dirname "$0")/common.bash"
M="$SRC/models/stories260K"

expect_rc 0 "$UQ" quantize --help; expect_in "--layer-bits"
expect_rc 2 "$UQ" quantize "$M"; expect_in "missing -o"
expect_rc 2 "$UQ" quantize -o "$TMP/x"
expect_rc 2 "$UQ" quantize "$M" -o "$TMP/x" --bits 9
expect_rc 2 "$UQ" quantize "$M" -o "$TMP/x" --bits four
expect_rc 2 "$UQ" quantize "$M" -o "$TMP/x" --group-size 20
expect_rc 2 "$UQ" quantize "$M" -o "$TMP/x" --scheme nf5
expect_rc 2 "$UQ" quantize "$M" -o "$TMP/x" --layer-bits "nobits"
expect_rc 2 "$UQ" quantize "$M" -o "$TMP/x" --recipe mixed_9_9
expect_rc 2 "$UQ" quantize "$M" -o "$TMP/x" --frobnicate
[ -e "$TMP/x" ] && fail "usage errors left an output"

expect_rc 0 "$UQ" quantize "$M" -o "$TMP/q4"
expect_in "kept float: no group size of 32/64/128 divides its input dimension 172"
expect_in "quantized 31 of 36 weights"
expect_rc 0 "$UQ" info "$TMP/q4"; expect_in "quantization"; expect_in "5.000 bits per weight"; expect_in "size before"
expect_rc 0 "$UQ" info --json "$TMP/q4"; expect_in '"weights_quantized": 31'
# no overwrite without --force; --force replaces
expect_rc 1 "$UQ" quantize "$M" -o "$TMP/q4"; expect_in "already exists"
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/q4" --force --bits 8 --json; expect_in '"bits_per_weight": 9'
# flags override --config
printf '{"default_bits": 3, "group_size": 32, "skip_modules": ["k_proj"], "layer_bits": {"model.layers.0": 6}}' > "$TMP/cfg.json"
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/cfgq" --config "$TMP/cfg.json" --group-size 64 --json
expect_in '"group_size": 64'; expect_in '"bits": 3'; expect_in '"bits": 6'; expect_in 'skipped (matches \"k_proj\")'
printf '{"bits": 3, "colour": "red"}' > "$TMP/badcfg.json"
expect_rc 1 "$UQ" quantize "$M" -o "$TMP/y" --config "$TMP/badcfg.json"; expect_in "colour"
# mixed precision flags, symmetric, recipe
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/mix" --layer-bits 'model.layers.1.*=2:32' --skip lm_head --output-bits 8 --json
expect_in '"bits": 2'; expect_in '"bits": 8'
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/sym" --scheme symmetric --bits 8 --group-size 0
expect_in "quantized 36 of 36 weights"
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/rec" --recipe mixed_3_6 -q
[ -z "$OUT_TEXT" ] || fail "-q printed: $OUT_TEXT"
# the input is never modified
before=$(cat "$M"/* | cksum)
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/again" -q
[ "$(cat "$M"/* | cksum)" = "$before" ] || fail "the input changed"
# bad input
printf 'junk' > "$TMP/junk.safetensors"
expect_rc 1 "$UQ" quantize "$TMP/junk.safetensors" -o "$TMP/z"; expect_in "junk.safetensors"
[ -e "$TMP/z" ] && fail "a failed run left an output"
ls "$TMP" | grep -q uquant-tmp && fail "a temporary folder was left behind"
finish
