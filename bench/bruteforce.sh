#!/usr/bin/env bash
# Brute-force detector: failures per second on one core against a bare table lookup and
# the bare keyed hash (SipHash) measured in the same run, and its memory after a million
# distinct source addresses against an unbounded set of them (bench_bruteforce).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"${IOTSEC_BUILD_DIR:-$root/build}/bench_bruteforce"
