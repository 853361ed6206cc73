#!/usr/bin/env bash
# The vault's benchmarks:
#  1. bench_vault: durable put+get per second through the library, against the bare
#     atomic write of a file of the same size (same run).
#  2. The CLI: one `iotsec vault get` is dominated by deriving the key with scrypt
#     (N=2^15, r=8, p=1, by design). Reference: `openssl kdf` deriving the same key,
#     timed in the same run. The ratio is CLI time / bare scrypt time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IOTSEC_BUILD_DIR:-$root/build}
runs=${VAULT_BENCH_RUNS:-10}

"$build/bench_vault"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(umask 077 && echo "bench passphrase" >"$work/pass")
export IOTSEC_PASSPHRASE_FILE="$work/pass"
"$build/iotsec" vault init --vault "$work/v" 2>/dev/null
printf 'value' | "$build/iotsec" vault put k --vault "$work/v"

ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
for _ in $(seq "$runs"); do "$build/iotsec" vault get k --vault "$work/v" >/dev/null; done
t1=$(ms)
for _ in $(seq "$runs"); do
    openssl kdf -keylen 32 -kdfopt pass:benchpassphrase -kdfopt hexsalt:00112233445566778899aabbccddeeff \
        -kdfopt n:32768 -kdfopt r:8 -kdfopt p:1 SCRYPT >/dev/null
done
t2=$(ms)
cli=$(((t1 - t0) / runs))
kdf=$(((t2 - t1) / runs))
awk -v c="$cli" -v k="$kdf" 'BEGIN { printf "vault get via the CLI: %d ms per call; openssl kdf scrypt N=2^15 r=8 p=1 alone: %d ms; ratio %.2f\n", c, k, c / k }'
