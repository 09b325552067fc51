# uquant memory, uquant compare, and --backend on the commands that compute.
. "$(dirname "$0")/common.bash"
M="$SRC/models/stories260K"

expect_rc 0 "$UQ" memory; expect_in "RAM"; expect_in "process"
expect_rc 0 "$UQ" memory "$M" --bits 4 --group-size 32 --ctx 512
expect_in "quantized"; expect_in "KV cache"
expect_rc 0 "$UQ" memory "$M" --json; expect_in '"ram_total"'; expect_in '"kv_cache": 2621440'
expect_rc 2 "$UQ" memory "$M" --bits 12
expect_rc 1 "$UQ" memory "$TMP/missing"

expect_rc 0 "$UQ" compare "$M" --bits 4 --group-size 32 --tokens 64 --decode 8 --backends cpu-ref --json
expect_in '"backend": "cpu-ref"'; expect_in '"kl_mean"'; expect_in '"ok": true'
expect_rc 0 "$UQ" compare "$M" --bits 8 --group-size 32 --tokens 64 --decode 8
expect_in "backend"; expect_in "cpu-ref"
expect_rc 2 "$UQ" compare "$M" --tokens 1

# a named backend that cannot run is a clear error
expect_rc 1 "$UQ" run "$M" -n 4 --backend nosuch; expect_in "unknown backend"
expect_rc 1 "$UQ" quantize "$M" -o "$TMP/q" --backend nosuch; expect_in "unknown backend"
[ -e "$TMP/q" ] && fail "a failed quantize left an output"
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/qref" --backend cpu-ref -q
expect_rc 0 "$UQ" quantize "$M" -o "$TMP/qcpu" --backend cpu -q
cmp -s "$TMP/qref/model.safetensors" "$TMP/qcpu/model.safetensors" || fail "cpu-ref and cpu quantization differ"
finish
