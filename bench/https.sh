#!/usr/bin/env bash
# The HTTPS API over mutual TLS: iotsecd against nginx, in the same run, on the same
# machine, with the same certificates (a throwaway iotsec CA, a P-256 server certificate,
# a P-256 device certificate), both TLS 1.3 only with client certificates required.
# nginx answers `return 204;` on POST /api/telemetry: the cost of TLS and HTTP alone, the
# floor under any real handler. build/bench_loadgen drives both:
#   keep-alive  HTTPS_CONNECTIONS connections posting telemetry back to back;
#   handshake   one request per new connection, no resumption: full handshakes per second.
# Prints each figure with its p99 latency, then the ratios iotsecd / nginx (telemetry
# answered 2xx per second; full handshakes per second). Until apps/iotsecd exists the
# iotsecd half prints "iotsecd: not built, skipped" and nginx's figures stand alone.
#
# Knobs (environment): HTTPS_SECONDS per run (5), HTTPS_CONNECTIONS keep-alive
# connections (64), HTTPS_HS_CONNECTIONS concurrent handshakes (16), HTTPS_THREADS
# load-generator threads (the core count), HTTPS_DEVICES device ids in the bodies (100).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IOTSEC_BUILD_DIR:-$root/build}
seconds=${HTTPS_SECONDS:-5}
connections=${HTTPS_CONNECTIONS:-64}
hs_connections=${HTTPS_HS_CONNECTIONS:-16}
threads=${HTTPS_THREADS:-$(nproc)}
devices=${HTTPS_DEVICES:-1} # iotsecd accepts only the certificate's own device id

IOTSEC=$build/iotsec
LOADGEN=$build/bench_loadgen
for f in "$IOTSEC" "$LOADGEN"; do
    if [[ ! -x "$f" ]]; then
        echo "https.sh: $f not found (run make build, or set IOTSEC_BUILD_DIR)" >&2
        exit 1
    fi
done

HTTPS_WORK=$(mktemp -d)
source "$root/bench/lib/https.bash"
trap 'https_stop_all; rm -rf "$HTTPS_WORK"' EXIT

https_make_pki

# run_mode NAME PORT MODE: one run; sets <NAME>_<MODE> to the load generator's summary line.
run_mode() {
    local name=$1 port=$2 mode=$3 line
    if [[ "$mode" == keepalive ]]; then
        line=$(https_loadgen "$port" keepalive "$seconds" --connections "$connections" \
            --threads "$threads" --devices "$devices")
        report "$name" "keep-alive telemetry" "$line" rps "req/s"
    else
        line=$(https_loadgen "$port" handshake "$seconds" --connections "$hs_connections" \
            --threads "$threads" --devices "$devices")
        report "$name" "full handshakes" "$line" hps "handshakes/s"
    fi
    printf -v "${name}_${mode}" '%s' "$line"
}

# report NAME WHAT LINE FIELD UNIT
report() {
    local l=$3
    printf '%s %s: %.0f %s, p50 %s ms, p99 %s ms, p99.9 %s ms (2xx %s, 4xx %s, 5xx %s, errors %s)\n' \
        "$1" "$2" "$(https_field "$l" "$4")" "$5" "$(https_field "$l" p50_ms)" \
        "$(https_field "$l" p99_ms)" "$(https_field "$l" p999_ms)" \
        "$(https_field "$l" status_2xx)" "$(https_field "$l" status_4xx)" \
        "$(https_field "$l" status_5xx)" "$(https_field "$l" errors)"
}

# per_second LINE FIELD: FIELD divided by the run's seconds.
per_second() {
    awk -v n="$(https_field "$1" "$2")" -v s="$(https_field "$1" seconds)" \
        'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'
}

echo "machine: $(nproc) cores, load generator ($threads thread(s)) on the same cores; ${seconds}s per run"

# Both servers are up at once (an idle one costs nothing) and their runs alternate, so that
# a change in what else the shared cores are doing lands on both sides of a ratio.
https_start_nginx
have_iotsecd=false
if [[ -x "$build/iotsecd" ]]; then
    https_start_iotsecd "$build/iotsecd"
    have_iotsecd=true
fi
for mode in keepalive handshake; do
    run_mode nginx "$NGINX_PORT" "$mode"
    if $have_iotsecd; then run_mode iotsecd "$IOTSECD_PORT" "$mode"; fi
done
https_stop_all

# The reference must be sound, or every ratio below is meaningless.
for l in "$nginx_keepalive" "$nginx_handshake"; do
    if [[ "$(https_field "$l" errors)" != 0 || "$(https_field "$l" status_2xx)" == 0 ||
        "$(https_field "$l" requests)" != "$(https_field "$l" status_2xx)" ]]; then
        echo "https.sh: the nginx reference run was not clean: $l" >&2
        exit 1
    fi
done
if ! $have_iotsecd; then
    echo "iotsecd: not built, skipped"
    exit 0
fi

# Telemetry is compared on answers that accepted it (2xx): a server that refuses fast
# (429, 403) must not look fast. Full handshakes count as they complete.
awk -v a="$(per_second "$iotsecd_keepalive" status_2xx)" \
    -v b="$(per_second "$nginx_keepalive" status_2xx)" \
    -v pa="$(https_field "$iotsecd_keepalive" p99_ms)" \
    -v pb="$(https_field "$nginx_keepalive" p99_ms)" 'BEGIN {
    printf "ratio telemetry 2xx/s iotsecd/nginx: %.2f (%.0f vs %.0f; p99 %s ms vs %s ms)\n",
        (b > 0 ? a / b : 0), a, b, pa, pb
}'
awk -v a="$(https_field "$iotsecd_handshake" hps)" -v b="$(https_field "$nginx_handshake" hps)" \
    -v pa="$(https_field "$iotsecd_handshake" p99_ms)" \
    -v pb="$(https_field "$nginx_handshake" p99_ms)" 'BEGIN {
    printf "ratio full handshakes/s iotsecd/nginx: %.2f (%.0f vs %.0f; p99 %s ms vs %s ms)\n",
        (b > 0 ? a / b : 0), a, b, pa, pb
}'
