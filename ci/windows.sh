#!/usr/bin/env bash
# The Windows leg: the whole test suite built for x86_64-pc-windows-gnu and
# run under wine, the doctests too, and clippy for x86_64-pc-windows-msvc.
# See docs/windows.md.
#
# Run as root on a fresh Debian 12 machine, it installs what it needs first
# (wine, mingw-w64, the Rust targets). It keeps a wine prefix in
# $SOCKMUX_WINEPREFIX (default ~/.cache/sockmux/wineprefix), made once and
# reused, and puts there a stand-in bcryptprimitives.dll built from
# ci/bcryptprimitives/ when wine is older than 8.13. A re-run only rebuilds
# what changed. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

GNU=x86_64-pc-windows-gnu
MSVC=x86_64-pc-windows-msvc
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/sockmux"
export WINEPREFIX="${SOCKMUX_WINEPREFIX:-$CACHE/wineprefix}"
export WINEDEBUG=-all
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
# `wine`, not `wine64`: Debian puts only the wrapper on PATH, and it picks
# the 64-bit loader for a 64-bit program.
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine

start=$SECONDS
step() { printf '\n=== [windows %ds] %s\n' "$((SECONDS - start))" "$*"; }
die() {
    echo "ci/windows.sh: $*" >&2
    exit 1
}

# --- install what is missing -------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
if command -v dpkg-query >/dev/null; then
    for pkg in wine wine64 gcc-mingw-w64-x86-64; do
        installed "$pkg" || missing+=("$pkg")
    done
else
    command -v wine >/dev/null || missing+=(wine wine64)
    command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
fi
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root"
    step "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

targets=()
installed_targets=$(rustup target list --installed)
for t in "$GNU" "$MSVC"; do
    grep -qx "$t" <<<"$installed_targets" || targets+=("$t")
done
if ((${#targets[@]})); then
    step "rustup target add ${targets[*]}"
    rustup target add "${targets[@]}"
fi

# --- the wine prefix -----------------------------------------------------------
if [[ ! -f $WINEPREFIX/system.reg ]]; then
    step "wineboot --init ($WINEPREFIX)"
    mkdir -p "$WINEPREFIX"
    # No Mono or Gecko: nothing here needs them, and their installers would
    # want a display. wineboot returns before the prefix is finished.
    WINEDLLOVERRIDES="mscoree,mshtml=" wineboot --init
    wineserver -w
fi

# One wineserver for the whole leg, kept until the leg ends: without it the
# server exits a moment after its last client, and a test program that
# starts just then (doctests start many at once) fails with "wine client
# error: recvmsg: Connection reset by peer" before running anything.
wineserver -p
trap 'wineserver -k 2>/dev/null || true' EXIT

# Rust 1.78+ links every Windows program against bcryptprimitives.dll
# (ProcessPrng); wine has it from 8.13 on. Older wine (Debian 12: 8.0) gets
# the project's stand-in, or every test program exits with status 53.
wine_version=$(wine --version | sed -n 's/^wine-\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r wine_major wine_minor <<<"${wine_version:-0 0}"
if ((wine_major < 8 || (wine_major == 8 && wine_minor < 13))); then
    src=ci/bcryptprimitives/bcryptprimitives.c
    dll=$CACHE/bcryptprimitives.dll
    # Rebuilt when the source changed (a copy of it is kept beside the DLL).
    if [[ ! -f $dll ]] || ! cmp -s "$src" "$dll.c"; then
        step "build $dll"
        x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -shared -s -nostdlib \
            -Wl,--entry,DllMain -o "$dll.tmp" "$src" -ladvapi32
        mv "$dll.tmp" "$dll"
        cp "$src" "$dll.c"
    fi
    system32=$WINEPREFIX/drive_c/windows/system32
    if ! cmp -s "$dll" "$system32/bcryptprimitives.dll"; then
        step "install bcryptprimitives.dll into the wine prefix"
        cp "$dll" "$system32/bcryptprimitives.dll"
    fi
fi

# --- build and test ------------------------------------------------------------
step "cargo build --examples --target $GNU"
# Plain example binaries: tests run them, and `--all-targets` alone builds
# examples only in test mode.
cargo build --workspace --examples --target "$GNU"

step "cargo test --all-targets --target $GNU (under wine)"
cargo test --workspace --all-targets --target "$GNU"

step "cargo test --doc --target $GNU (under wine)"
cargo test --workspace --doc --target "$GNU"

step "cargo test -p sockmux-core --features faults --lib --target $GNU (under wine)"
# The fault plans' own tests (docs/testing.md), through Winsock.
cargo test -p sockmux-core --features faults --lib --target "$GNU"

step "cargo clippy --target $MSVC -D warnings"
cargo clippy --workspace --all-targets --all-features --target "$MSVC" -- -D warnings

step "Windows leg passed"
