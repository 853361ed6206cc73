#!/usr/bin/env bash
# Device-token verifications per second on one core (bench_jwt): iotsec_jwt_verify for
# HS256 and ES256, each against the bare signature check of the same bytes (HMAC-SHA256
# + constant-time compare; ECDSA P-256 verify) measured in the same run, with the ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IOTSEC_BUILD_DIR:-$root/build}
if [[ ! -x "$build/bench_jwt" ]]; then
    echo "jwt.sh: $build/bench_jwt not found (run make build, or set IOTSEC_BUILD_DIR)" >&2
    exit 1
fi
"$build/bench_jwt"
