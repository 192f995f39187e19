#!/usr/bin/env bash
# The whole test suite: formatting, lints, docs, every test on Linux, and the
# Windows leg (x86_64-pc-windows-gnu under wine) when ci/windows.sh exists;
# in between, the examples' and streams' tests again under three seeded
# fault plans (ci/faults.sh), and the fuzz targets for a bounded time (ci/fuzz.sh;
# SOCKMUX_SKIP_FUZZ=1 skips them).
# Run as root on a fresh Debian machine, it installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

# --- install what is missing -------------------------------------------------
need_components=()
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || need_components+=(rustfmt)
rustup component list --installed 2>/dev/null | grep -q '^clippy' || need_components+=(clippy)
if ((${#need_components[@]})); then
    step "rustup component add ${need_components[*]}"
    rustup component add "${need_components[@]}"
fi

# Real clients (and reference servers) for the tests that drive the examples
# with them (tests/real_clients.rs, tests/kv_real_clients.rs,
# tests/http_real_clients.rs and the like): required here, so a missing
# one fails the suite instead of skipping those tests. A command each, with
# the Debian package that has it.
declare -A client_pkg=(
    [socat]=socat
    [redis-cli]=redis-tools
    [redis-benchmark]=redis-tools
    [curl]=curl
    [wrk]=wrk
)
missing_pkgs=()
for cmd in "${!client_pkg[@]}"; do
    command -v "$cmd" >/dev/null || missing_pkgs+=("${client_pkg[$cmd]}")
done
if ((${#missing_pkgs[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        step "apt-get install ${missing_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
    else
        echo "ci/test.sh: missing ${missing_pkgs[*]}; install them (apt-get install ${missing_pkgs[*]}) or run as root" >&2
        exit 1
    fi
fi
export SOCKMUX_REQUIRE_REAL_CLIENTS=1

# --- the Linux leg -------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo clippy -D warnings, the stats feature off"
# `stats` is off by default in sockmux-core and sockmux-responder, on in the
# sockmux crate: both ways must build (tests/stats*.rs need it: skipped).
cargo clippy -p sockmux-core -p sockmux-responder --all-targets -- -D warnings
cargo clippy -p sockmux --no-default-features --all-targets -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "cargo test"
# Plain example binaries first: tests run them (`--all-targets` alone builds
# examples only in test mode).
cargo build --workspace --examples
cargo test --workspace --all-targets
cargo test --workspace --doc

step "cargo test --release --test misuse"
# The misuse detector is compiled out of release builds: nothing is logged.
cargo test --release --test misuse

step "the zero-allocation tests, the stats feature off"
# With the feature on (above) and off, no allocation per event.
cargo test --no-default-features --test stream_alloc --test responder_alloc \
    --test udp_sessions_alloc --test http_alloc --test kv_alloc --test codec_alloc

# --- the suite under fault plans ---------------------------------------------
step "the suite under fault plans (ci/faults.sh)"
ci/faults.sh

step "the soak, 10 s (tests/soak.rs)"
# Ignored in the plain run above; docs/reliability.md, "The soak".
SOCKMUX_SOAK_SECS=10 cargo test --test soak -- --ignored

# --- the fuzz targets --------------------------------------------------------
if [[ "${SOCKMUX_SKIP_FUZZ:-0}" != 1 ]]; then
    step "fuzz targets (ci/fuzz.sh)"
    ci/fuzz.sh
fi

# --- the Windows leg ---------------------------------------------------------
if [[ -x ci/windows.sh && "${SOCKMUX_SKIP_WINDOWS:-0}" != 1 ]]; then
    step "Windows leg (ci/windows.sh)"
    ci/windows.sh
fi

step "all passed"
