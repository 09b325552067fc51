#!/bin/sh
# Installs the Debian packages uquant needs to build and test, when missing.
# Usage: scripts/install-deps.sh [--fuzz]   (--fuzz adds clang for the fuzzers)
set -e
pkgs="build-essential cmake pkg-config libjansson-dev libpcre2-dev libcmocka-dev"
for a in "$@"; do
    case "$a" in
    --fuzz) pkgs="$pkgs clang libclang-rt-dev" ;;
    --cross) pkgs="$pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
    esac
done
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "error: packages missing ($missing) and neither root nor sudo is available" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
