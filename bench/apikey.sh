#!/usr/bin/env bash
# API-key checks per second on one core (bench_apikey) against a store of 10,000 keys,
# next to the bare primitive (SHA-256 + the same indexed SELECT through a raw prepared
# statement) measured in the same run on the same database file, and the ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"${IOTSEC_BUILD_DIR:-$root/build}/bench_apikey"
