#!/usr/bin/env bash
# Noise-free figures of docs/benchmarks.md: user-space instructions per
# request (valgrind --tool=callgrind on the server) and system calls per
# request (perf's raw_syscalls tracepoint, or strace -c -f where perf cannot
# count it), each over a fixed number of 64-byte requests, for the sockmux
# servers and every reference. About 3 minutes.
#
#   ci/bench-counts.sh           # 10,000 and 40,000 requests (difference)
#   ci/bench-counts.sh --quick   # 2,000 and 6,000
#   SOCKMUX_BENCH_FEATURES=sockmux-core/faults ci/bench-counts.sh   # fault injection compiled in
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v strace >/dev/null || missing+=(strace)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
fi
exec cargo run --release -p sockmux-bench --bin bench -- --counts "$@"
