#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian + Python machine:
# the cross toolchains and emulators (apt), and a virtualenv in .venv with the package and its
# test extras (pip). Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    gcc-arm-none-eabi picolibc-arm-none-eabi
    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
    qemu-system-arm qemu-system-misc
    clang cppcheck
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# clang's sanitizer and libFuzzer runtimes ship separately, in a package named after its major
# version (Debian 12: libclang-rt-14-dev); without them -fsanitize=fuzzer,address cannot link.
clang_major=$(clang -dumpversion | cut -d. -f1)
rt_pkg="libclang-rt-${clang_major}-dev"
if ! dpkg-query -W -f='${Status}' "$rt_pkg" 2>/dev/null | grep -q "install ok installed"; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing $rt_pkg"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$rt_pkg"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
