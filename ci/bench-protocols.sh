#!/usr/bin/env bash
# The protocol benchmark of docs/benchmarks.md, in one run: HTTP servers
# under wrk (nginx in one process, the raw mio reference, the `http`
# example) and Redis-protocol servers under redis-benchmark (redis-server
# without persistence, the `kv` example), each server pinned to core 0 and
# its client to core 1; requests per second and server CPU per request as
# ratios to nginx and to redis-server. Rows of examples not in the tree are
# left out. About 4 minutes.
#
#   ci/bench-protocols.sh                # 3 repetitions of 5 s per load
#   ci/bench-protocols.sh --quick        # one short repetition
#   ci/bench-protocols.sh --help         # --secs, --reps, --only http|redis, ...
#
# As root on Debian it installs what is missing (nginx-light, redis-server,
# redis-tools, wrk), without starting their system services.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A pkg=([nginx]=nginx-light [redis-server]=redis-server
    [redis-benchmark]=redis-tools [wrk]=wrk [taskset]=util-linux)
missing=()
for cmd in "${!pkg[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${pkg[$cmd]}")
done
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        # No service starts on install: the benchmark starts its own.
        policy=/usr/sbin/policy-rc.d
        restore=""
        [[ -e $policy ]] && restore=$(mktemp) && cp -p "$policy" "$restore"
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
        if [[ -n $restore ]]; then mv "$restore" "$policy"; else rm -f "$policy"; fi
        [[ ${status:-0} == 0 ]] || exit "$status"
    else
        echo "ci/bench-protocols.sh: missing ${missing[*]}; install them or run as root" >&2
        exit 1
    fi
fi
exec cargo run --release -p sockmux-bench --bin bench_protocols -- "$@"
