#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian + Python machine:
# the cross toolchains and emulators (apt), the QEMU plugin header (from the qemu source package,
# because no Debian binary package ships it), and a virtualenv in .venv with the package and its
# test and firmware extras (pip); then the pinned TensorFlow Lite Micro sources, unpacked into the
# user cache (never into the checkout). Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    gcc-arm-none-eabi picolibc-arm-none-eabi libstdc++-arm-none-eabi-picolibc
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
    qemu-system-arm qemu-system-misc
    clang cppcheck gcc xz-utils git
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# qemu-plugin.h: the instruction-counting plugin (firmware/tools/qemu-plugin) is compiled against
# the header of the installed QEMU version. It is taken from that version's Debian source package
# at set-up time and kept out of the repository (firmware/tools/qemu-plugin/include is ignored).
PLUGIN_INCLUDE=firmware/tools/qemu-plugin/include
if [ ! -f "$PLUGIN_INCLUDE/qemu-plugin.h" ]; then
    if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # Mirror every binary 'deb' entry (deb822 .sources files and one-line sources.list) as
        # 'deb-src', in files of their own.
        echo "setup: adding deb-src entries so that apt-get source can fetch qemu"
        src822=""
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            src822+=$(awk 'BEGIN{RS=""; ORS="\n\n"} /(^|\n)Types:[^\n]*deb([ \n]|$)/ {
                               sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f")
            src822+=$'\n\n'
        done
        if [ -n "${src822//[$'\n']/}" ]; then
            printf '%s' "$src822" | $SUDO tee /etc/apt/sources.list.d/lutcodegen-src.sources >/dev/null
        fi
        if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
            sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list \
                | $SUDO tee /etc/apt/sources.list.d/lutcodegen-src.list >/dev/null
        fi
        $SUDO apt-get update -q
    fi
    qemu_version=$(dpkg-query -W -f='${source:Version}' qemu-system-arm)
    src_dir=.cache/qemu-source
    mkdir -p "$src_dir" "$PLUGIN_INCLUDE"
    echo "setup: fetching the qemu $qemu_version source package for qemu-plugin.h"
    # The header is stable within a QEMU release; fall back to the mirror's current qemu source.
    (cd "$src_dir" && { apt-get source -q --download-only "qemu=$qemu_version" \
                        || apt-get source -q --download-only qemu; })
    orig=$(ls "$src_dir"/qemu_*.orig.tar.* | head -n 1)
    tar -xf "$orig" -C "$src_dir" --wildcards '*/include/qemu/qemu-plugin.h'
    cp "$(find "$src_dir" -path '*/include/qemu/qemu-plugin.h' | head -n 1)" "$PLUGIN_INCLUDE/"
    rm -rf "$src_dir"
fi

# clang's sanitizer and libFuzzer runtimes ship separately, in a package named after its major
# version (Debian 12: libclang-rt-14-dev); without them -fsanitize=fuzzer,address cannot link.
clang_major=$(clang -dumpversion | cut -d. -f1)
rt_pkg="libclang-rt-${clang_major}-dev"
if ! dpkg-query -W -f='${Status}' "$rt_pkg" 2>/dev/null | grep -q "install ok installed"; then
    echo "setup: installing $rt_pkg"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$rt_pkg"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,firmware,report]"

# TensorFlow Lite Micro and the libraries it pins, for the TFLM tests and benchmarks: unpacked
# into the user cache (see lutcodegen/tflm/build.py) from the pinned archives when
# LUTCODEGEN_THIRD_PARTY names their folder, else fetched from the upstream repositories with git.
# Sources already unpacked are skipped.
fetch_args=()
if [ -n "${LUTCODEGEN_THIRD_PARTY:-}" ]; then
    fetch_args=(--from "$LUTCODEGEN_THIRD_PARTY")
fi
.venv/bin/python -m lutcodegen.tflm.build fetch ${fetch_args[@]+"${fetch_args[@]}"} >/dev/null
