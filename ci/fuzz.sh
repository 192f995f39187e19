#!/usr/bin/env bash
# The fuzz targets of fuzz/ (cargo-fuzz, libFuzzer, nightly Rust), each run
# for a bounded time: $SOCKMUX_FUZZ_SECONDS seconds (default 20) per target.
# Installs what is missing first: the nightly toolchain (rustup), cargo-fuzz
# (cargo install), and, as root on Debian, a C++ compiler for libFuzzer.
# Exits non-zero when a target fails (its input is left in
# fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${SOCKMUX_FUZZ_SECONDS:-20}"
step() { printf '\n=== [fuzz] %s\n' "$*"; }
die() {
    echo "ci/fuzz.sh: $*" >&2
    exit 1
}

# --- install what is missing -------------------------------------------------
if ! command -v c++ >/dev/null; then
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
        die "no C++ compiler (libFuzzer needs one): install g++ or run as root"
    step "apt-get install g++"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    step "rustup toolchain install nightly"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# --- run every target ----------------------------------------------------------
cd fuzz
targets=$(cargo fuzz list)
[[ -n $targets ]] || die "no fuzz targets in fuzz/"
for target in $targets; do
    step "cargo fuzz run $target (${seconds}s)"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds"
done
