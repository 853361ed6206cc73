#!/usr/bin/env bash
# The store's benchmarks (bench_store): durable chained event appends and block checks,
# each against the bare SQLite statement with the same settings, in the same run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"${IOTSEC_BUILD_DIR:-$root/build}/bench_store"
