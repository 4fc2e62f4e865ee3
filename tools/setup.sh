#!/usr/bin/env bash
# Set up edgec on a fresh Debian/Ubuntu machine.
#   tools/setup.sh         install edgec, the host and arm64 cross toolchains and QEMU
#                          (the main job)
#   tools/setup.sh test    also install what the test suite needs (clang, cmake, valgrind,
#                          torch CPU, scikit-learn, the QEMU instruction-count plugin)
# System packages are installed only when run as root; otherwise the missing ones are listed.
set -euo pipefail
mode="${1:-main}"
cd "$(dirname "$0")/.."

# The main job cross-compiles for arm64 and runs the result under QEMU user mode.
APT_MAIN=(gcc make gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
# clang without Recommends lacks the sanitizer runtimes (-fsanitize=address fails to link):
# libclang-rt-dev ships libclang_rt.asan/ubsan for the default clang.
APT_TEST=(clang libclang-rt-dev cmake valgrind gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)

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
    # the test extra brings coremltools (CoreML targets), ai-edge-litert and tflite-micro
    # the test extra also brings ai-edge-litert and tflite-micro (TFLite targets, docs/tflite.md)
    "$PY" -m pip install -q --disable-pip-version-check -e ".[test]"
    # QEMU instruction-count plugin for the arm64 benchmarks: the plugin header comes from
    # Debian's qemu source package of the installed version (root: a deb-src entry is added
    # when apt has none); see tools/build_tcg_plugin.py. edgec itself never changes the system.
    if command -v qemu-aarch64 >/dev/null; then
        plugin_dir="$("$PY" tools/build_tcg_plugin.py --print-dir)"
        if [ -n "${EDGEC_QEMU_PLUGIN_H:-}" ] || [ -f "$plugin_dir/qemu-plugin.h" ]; then
            "$PY" tools/build_tcg_plugin.py >/dev/null || echo "setup: QEMU plugin not built" >&2
        elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            qemu_version="$(qemu-aarch64 --version | sed -n 's/.*(Debian \([^)]*\)).*/\1/p' \
                            | sed 's/+b[0-9]*$//')"
            if ! grep -rqsE '^\s*(deb-src\s|Types:.*deb-src)' /etc/apt/sources.list \
                    /etc/apt/sources.list.d/; then
                codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
                deb_src=/etc/apt/sources.list.d/edgec-deb-src.sources
                echo "setup: adding a deb-src entry in $deb_src"
                cat > "$deb_src" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
            fi
            qemu_src="$(mktemp -d)"
            if [ -n "$qemu_version" ] && apt-get update -qq \
                    && (cd "$qemu_src" && apt-get source -qq --download-only \
                        "qemu=$qemu_version" >/dev/null 2>&1); then
                "$PY" tools/build_tcg_plugin.py --from-source "$qemu_src" >/dev/null \
                    || echo "setup: QEMU plugin not built" >&2
            else
                echo "setup: QEMU plugin not built (Debian's qemu source package not found)" >&2
            fi
            rm -rf "$qemu_src"
        else
            echo "setup: not root; rerun 'tools/setup.sh test' as root for the QEMU plugin" >&2
        fi
    fi
else
    "$PY" -m pip install -q --disable-pip-version-check -e .
fi
echo "setup: done ($mode)"
