#!/usr/bin/env bash
# The benchmark of docs/benchmarks.md, in one run: TCP echo servers on raw
# mio (twice: the A/A check), tokio, calloop, the sockmux-core table and the
# tcp_echo example, each under 1, 50 and 1000 connections of 64- and
# 4096-byte ping-pong, server and load generator pinned to separate cores,
# 3 repetitions; prints one table of ratios to raw mio and writes
# docs/bench-chart.svg. About 12 minutes on 2 cores.
#
#   ci/bench.sh            # the full run
#   ci/bench.sh --quick    # one short repetition, no chart (about 1 minute)
#   ci/bench.sh --fairness # instead: a ping-pong's latency next to a flood
#                          # (mio, sockmux-core, sockmux; see docs/benchmarks.md)
#   ci/bench.sh --help     # the other options
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }
exec cargo run --release -p sockmux-bench --bin bench -- "$@"
