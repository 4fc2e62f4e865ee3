#!/usr/bin/env bash
# Set up edgec on a fresh Debian/Ubuntu machine.
#   tools/setup.sh         install edgec and the host toolchain (the main job)
#   tools/setup.sh test    also install what the test suite needs (cross toolchains, QEMU,
#                          clang, cmake; reference runtimes: onnxruntime, LiteRT, TFLM)
# System packages are installed only when run as root; otherwise the missing ones are listed.
set -euo pipefail
mode="${1:-main}"
cd "$(dirname "$0")/.."

APT_MAIN=(gcc make)
APT_TEST=(clang cmake valgrind gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
          gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)

want=("${APT_MAIN[@]}")
[ "$mode" = test ] && want+=("${APT_TEST[@]}")
missing=()
for pkg in "${want[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    else
        echo "setup: not root; install these system packages for full functionality:" \
             "${missing[*]}" >&2
    fi
fi

PY="${PYTHON:-python3}"
# torch is pinned to the CPU build (2.13.0): an unpinned torch pulls a multi-GB CUDA build.
if [ "$mode" = test ]; then
    "$PY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
    "$PY" -m pip install -q --disable-pip-version-check -e ".[test]"
else
    "$PY" -m pip install -q --disable-pip-version-check -e .
fi
echo "setup: done ($mode)"
