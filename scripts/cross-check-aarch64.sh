#!/bin/sh
# Compiles every library source for aarch64 with Debian's cross compiler
# (gcc-aarch64-linux-gnu), warnings as errors, so the NEON kernels and the
# portable code keep building for Arm. Objects only: nothing is linked or run.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CROSS_CC:-aarch64-linux-gnu-gcc}
command -v "$cc" >/dev/null || { echo "error: $cc not found (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The dependencies' headers are plain C declarations: borrow the host's
# (without the host's system headers).
mkdir -p "$work/include"
for h in jansson.h jansson_config.h pcre2.h; do
    for d in /usr/include /usr/include/x86_64-linux-gnu; do
        [ -f "$d/$h" ] && cp "$d/$h" "$work/include/" && break
    done
done
n=0
for f in $(find "$root/src" -name '*.c' | sort); do
    "$cc" -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
        -Wno-format-truncation -Werror -I "$root/include" -I "$root/src" -I "$work/include" \
        -c "$f" -o "$work/obj.o"
    n=$((n + 1))
done
echo "aarch64: $n library sources compile cleanly with $cc"
