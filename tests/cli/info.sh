# uquant info, --help, --version and exit codes.
. "$(dirname "$0")/common.bash"

expect_rc 0 "$UQ" --version; expect_in "uquant 0."
expect_rc 0 "$UQ" --help; expect_in "info"
expect_rc 2 "$UQ"
expect_rc 2 "$UQ" frobnicate; expect_in "unknown command"
expect_rc 0 "$UQ" info --help; expect_in "usage: uquant info"
expect_rc 0 "$UQ" help info; expect_in "usage: uquant info"
expect_rc 2 "$UQ" info
expect_rc 2 "$UQ" info --bogus "$SRC/models/stories260K"
expect_rc 2 "$UQ" info a b

# the bundled model
expect_rc 0 "$UQ" info "$SRC/models/stories260K"
expect_in "LlamaForCausalLM"; expect_in "47 tensors"; expect_in "model.layers.4.mlp.down_proj.weight"
expect_rc 0 "$UQ" info --json "$SRC/models/stories260K"
expect_in '"tensors": 47'; expect_in '"F32": {'; expect_in '"runnable": true'
# a single file works too
expect_rc 0 "$UQ" info "$SRC/models/stories260K/model.safetensors"; expect_in "47 tensors"

if [ -f "$SHARED/models/bench-28m/model.safetensors" ]; then
    expect_rc 0 "$UQ" info --json "$SHARED/models/bench-28m"
    expect_in '"tensors": 74'; expect_in '"BF16": {'; expect_in '"parameters": 27795968'
    expect_in '"rope_theta": 10000'
fi

# bad input: clear error, exit 1, no crash
expect_rc 1 "$UQ" info "$TMP/missing"; expect_in "error"
printf 'garbage' > "$TMP/bad.safetensors"
expect_rc 1 "$UQ" info "$TMP/bad.safetensors"; expect_in "bad.safetensors"
mkdir -p "$TMP/badcfg" && cp "$SRC/models/stories260K/model.safetensors" "$TMP/badcfg/"
printf '{"hidden_size": "x"}' > "$TMP/badcfg/config.json"
expect_rc 1 "$UQ" info "$TMP/badcfg"; expect_in "hidden_size"
# unknown architecture: info still works
printf '{"architectures": ["BertModel"], "model_type": "bert"}' > "$TMP/badcfg/config.json"
expect_rc 0 "$UQ" info "$TMP/badcfg"; expect_in "not runnable"
finish
