#!/usr/bin/env bash
# The suite under fault plans (docs/testing.md): the tests of the examples
# and of streams (echo checksums, chat broadcast, line limits, graceful
# stop, the kv and http servers) again, built with the `faults` feature,
# once per seeded plan in SOCKMUX_FAULTS. Every server the tests start, in
# process or as an example binary, injects the plan's faults; every byte
# must still arrive, in order, within the tests' deadlines.
#
#   ci/faults.sh                 # the three plans below
#   ci/faults.sh 'seed=7,...'    # one plan of your own
set -euo pipefail
cd "$(dirname "$0")/.."

plans=("$@")
if ((${#plans[@]} == 0)); then
    plans=(
        # Short reads and writes, EINTR, spurious wake-ups.
        "seed=1,short=0.5,interrupt=0.2,spurious=0.2"
        # Late and split OS reports, wrong WouldBlock answers.
        "seed=2,delay=0.3,split=0.5,wouldblock=0.2"
        # A bit of everything that loses no byte, and accepts failing.
        "seed=3,short=0.3,delay=0.2,split=0.3,spurious=0.1,wouldblock=0.1,interrupt=0.1,emfile=0.02"
    )
fi
tests=(--test responder_echo --test responder_chat --test stream --test responder_stop
    --test kv --test http)

# The core crate's own tests of each fault, and the doctests of the
# feature's API.
cargo test -p sockmux-core --features faults

# The example binaries the tests start, with the feature (`--all-targets`
# alone builds examples only in test mode).
cargo build --features faults --examples
for plan in "${plans[@]}"; do
    printf '\n=== SOCKMUX_FAULTS=%s\n' "$plan"
    SOCKMUX_FAULTS="$plan" cargo test --features faults "${tests[@]}"
    # Record/replay and tcp_echo under the plan, printing the count of each
    # fault injected.
    SOCKMUX_FAULTS="$plan" cargo test --features faults --test faults -- --nocapture
done
# The plain examples again, for whatever runs next.
cargo build --examples
