#!/usr/bin/env bash
# AES-256-GCM seal throughput on 16 KiB messages: ours (build/bench_aead, through
# iotsec_aead_seal) against `openssl speed -evp aes-256-gcm` on the same size, in the
# same run. Both divide by CPU time. openssl speed encrypts a stream through ONE context
# (no per-message key setup, nonce or tag), so it is the ceiling: the ratio is what a
# complete, self-contained seal per message costs over bulk encryption. Target >= 0.9.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IOTSEC_BUILD_DIR:-$root/build}
seconds=${AEAD_BENCH_SECONDS:-3}

if [[ ! -x "$build/bench_aead" ]]; then
    echo "aead.sh: $build/bench_aead not found (run make build, or set IOTSEC_BUILD_DIR)" >&2
    exit 1
fi

# -mr: machine-readable, "+F:<n>:<name>:<bytes per second>".
openssl_bps=$(openssl speed -mr -evp aes-256-gcm -bytes 16384 -seconds "$seconds" 2>/dev/null |
    awk -F: '/^\+F:/ { print $4 }')
ours_mbps=$("$build/bench_aead" | awk '/^aead_seal_16k:/ { print $2 }')

if [[ -z "$openssl_bps" || -z "$ours_mbps" ]]; then
    echo "aead.sh: could not read a figure (openssl: '${openssl_bps}', iotsec: '${ours_mbps}')" >&2
    exit 1
fi
awk -v ours="$ours_mbps" -v bps="$openssl_bps" 'BEGIN {
    ref = bps / 1e6
    printf "aes-256-gcm 16KiB seal: iotsec %.0f MB/s, openssl speed %.0f MB/s, ratio %.2f\n", ours, ref, ours / ref
}'
