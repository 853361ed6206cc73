#!/usr/bin/env bash
# Rate-limit decisions per second on one core (bench_ratelimit), against a bare hash
# lookup of the same table size measured in the same run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"${IOTSEC_BUILD_DIR:-$root/build}/bench_ratelimit"
