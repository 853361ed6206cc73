#!/usr/bin/env bash
# The load generator (build/bench_loadgen) against the reference server of bench/https.sh:
# nginx, TLS 1.3 only, client certificates from the iotsec CA required, `return 204` on
# /api/telemetry. Keeps the tool from rotting: both modes answer only 2xx with no errors,
# the request cap is exact, and the checks it must make do fail (wrong CA, wrong name,
# a client certificate nginx refuses, a path that answers 404). nginx missing is a failure,
# not a skip: scripts/install-deps installs it.
source "$(dirname "$0")/lib.sh"

LOADGEN="$IOTSEC_BUILD_DIR/bench_loadgen"
HTTPS_WORK="$WORK"
source "$IOTSEC_SOURCE_DIR/bench/lib/https.bash"
cleanup_hooks+=("https_stop_all")

check_exit "parser and histogram self-test" 0 "$LOADGEN" --self-test
expect_contains "self-test summary" "$OUT" ", 0 failed"
check_exit "usage error without --port" 2 "$LOADGEN" --cert x --key x --ca x
check_exit "bad --mode" 2 "$LOADGEN" --port 1 --cert x --key x --ca x --mode fast
check_exit "unreadable --ca is a setup failure" 1 "$LOADGEN" --port 1 --cert x --key x \
    --ca "$WORK/none.pem"

if ! https_make_pki; then
    fail "cannot make the CA and certificates"
    finish
fi
if ! https_start_nginx; then
    fail "nginx did not start (is it installed? scripts/install-deps installs it)"
    finish
fi

field() { https_field "$1" "$2" || echo "missing"; }

# run NAME EXPECTED_EXIT ARGS...: the load generator against nginx; $LINE is its summary.
run() {
    local name=$1 want=$2
    shift 2
    check_exit "$name" "$want" "$LOADGEN" --host 127.0.0.1 --port "$NGINX_PORT" \
        --ca "$WORK/var/ca.crt" --cert "$WORK/certs/dev-0.crt" --key "$WORK/certs/dev-0.key" "$@"
    LINE=$(grep '^mode=' <<<"$OUT" || true)
}

clean_run() { # NAME: only 2xx, no errors, at least one request
    local n
    n=$(field "$LINE" requests)
    if [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]]; then pass; else fail "$1: no requests ($LINE)"; fi
    expect_eq "$1: all 2xx" "$(field "$LINE" status_2xx)" "$n"
    expect_eq "$1: no errors" "$(field "$LINE" errors)" "0"
    expect_eq "$1: no 4xx" "$(field "$LINE" status_4xx)" "0"
    expect_eq "$1: no 5xx" "$(field "$LINE" status_5xx)" "0"
}

run "keep-alive for 1 s" 0 --mode keepalive --duration 1 --connections 8 --threads 2 --devices 10
clean_run "keep-alive"
expect_eq "keep-alive: one handshake per connection" "$(field "$LINE" handshakes)" "8"
expect_contains "human-readable form" "$OUT" "latency    p50"

run "full handshakes for 1 s" 0 --mode handshake --duration 1 --connections 4
clean_run "handshake"
hs=$(field "$LINE" handshakes)
req=$(field "$LINE" requests)
if [[ "$hs" =~ ^[0-9]+$ && "$hs" -ge "$req" ]]; then pass; else
    fail "handshake mode: $hs handshakes for $req requests"
fi

run "request cap" 0 --mode keepalive --duration 5 --connections 4 --requests 57
expect_eq "the cap is exact" "$(field "$LINE" requests)" "57"
expect_eq "the cap ends the run early" "$(awk -v s="$(field "$LINE" seconds)" 'BEGIN { print (s < 4) }')" "1"

run "GET on another path" 0 --method GET --path /nothing-here --duration 1 --connections 2 \
    --requests 20
expect_eq "404s are counted as 4xx" "$(field "$LINE" status_4xx)" "20"
expect_eq "404s are not errors" "$(field "$LINE" errors)" "0"

# --- the checks that must fail --------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other-ca \
    -keyout "$WORK/other-ca.key" -out "$WORK/other-ca.crt" 2>/dev/null
run "a server certificate from another CA" 1 --ca "$WORK/other-ca.crt" --duration 1 \
    --connections 2 --requests 6
expect_eq "wrong CA: nothing completed" "$(field "$LINE" requests)" "0"
expect_eq "wrong CA: every attempt a TLS error" "$(field "$LINE" err_tls)" "6"

run "a server certificate for another name" 1 --servername iotsec.example --duration 1 \
    --connections 2 --requests 6
expect_eq "wrong name: every attempt a TLS error" "$(field "$LINE" err_tls)" "6"

# A client certificate nginx must refuse: signed by a CA it does not trust.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=dev-0 \
    -keyout "$WORK/rogue.key" -out "$WORK/rogue.csr" 2>/dev/null
openssl x509 -req -in "$WORK/rogue.csr" -CA "$WORK/other-ca.crt" -CAkey "$WORK/other-ca.key" \
    -set_serial 7 -days 2 -out "$WORK/rogue.crt" 2>/dev/null
run "a client certificate from another CA" 0 --cert "$WORK/rogue.crt" --key "$WORK/rogue.key" \
    --duration 1 --connections 2 --requests 10
# nginx finishes the handshake and answers 400 itself; other servers end it with an alert.
refused=$(awk -v a="$(field "$LINE" status_4xx)" -v b="$(field "$LINE" err_tls)" 'BEGIN { print (a + b > 0) }')
expect_eq "rogue client: refused" "$refused" "1"
expect_eq "rogue client: never 2xx" "$(field "$LINE" status_2xx)" "0"

finish
