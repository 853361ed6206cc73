#!/usr/bin/env bash
# iotsecd end to end, with real clients on loopback: curl and openssl s_client with and
# without a client certificate, TLS 1.2 refused, refused devices (revoked, disabled,
# unknown CA) at the next connection without a restart, every kind of bad telemetry,
# 413/415/404/405, 429 with Retry-After, a slow client cut off while others are served,
# kill -9 after N acknowledged records (all N there after a restart), SIGTERM drains.
source "$(dirname "$0")/lib.sh"
IOTSECD="$IOTSEC_BUILD_DIR/iotsecd"

cd "$WORK"
make_secret_file "$WORK/pass" "iotsecd e2e passphrase"
export IOTSEC_PASSPHRASE_FILE="$WORK/pass" IOTSEC_DATA="$WORK/var"
mkdir -m 700 out
"$IOTSEC" ca init --intermediate 2>/dev/null
"$IOTSEC" ca server-cert 2>/dev/null
for d in dev-1 dev-2 dev-3 dev-rate dev-dur dev-slow dev-crl; do
    "$IOTSEC" device issue --id "$d" --out out 2>/dev/null
done
IOTSEC_DATA="$WORK/other" "$IOTSEC" ca init 2>/dev/null
IOTSEC_DATA="$WORK/other" "$IOTSEC" device issue --id dev-1 --out "$WORK/other" 2>/dev/null

cat >var/iotsecd.conf <<'EOF'
[server]
threads = 2
[limits]
rate_per_minute = 20
auth_rate_per_minute = 15
request_timeout_ms = 2000
max_body_bytes = 4096
[monitor]
# This run makes many failures on purpose; brute force has its own part at the end.
failures = 64
EOF
chmod 600 var/iotsecd.conf

# Two free ports, as the kernel hands them out.
read -r DPORT APORT < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
SERVER_PID=""
start_server() {
    "$IOTSECD" --device-port "$DPORT" --api-port "$APORT" >>"$WORK/server.out" 2>>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if curl -s --cacert var/ca.crt "https://127.0.0.1:$APORT/healthz" >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    fail "iotsecd did not start: $(tail -3 "$WORK/server.log")"
    return 1
}
cleanup_hooks+=('[ -n "$SERVER_PID" ] && kill -9 $SERVER_PID 2>/dev/null')
start_server

dcurl() { # DEVICE ARGS...: curl on the device listener with DEVICE's certificate
    local dev=$1
    shift
    curl -sS --cacert var/ca.crt --cert "out/$dev.crt" --key "out/$dev.key" "$@"
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
post() { # DEVICE BODY [CONTENT-TYPE]: prints "STATUS BODY"
    local dev=$1 body=$2 type=${3:-application/json}
    dcurl "$dev" -o "$WORK/.body" -w '%{http_code}' -H "Content-Type: $type" \
        --data-binary "$body" "https://127.0.0.1:$DPORT/api/telemetry"
    printf ' %s' "$(cat "$WORK/.body")"
}
# A refused handshake: curl fails (exit 35, 55 or 56 depending on when the alert arrives)
# and no HTTP status comes back.
refused() { # NAME CURL-ARGS...
    local name=$1
    shift
    set +e
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert var/ca.crt "$@")
    local rc=$?
    set -e
    if [ "$rc" -ne 0 ] && [ "$code" = "000" ]; then pass; else fail "$name: curl exit $rc, status $code"; fi
}
good() { printf '{"device_id":"%s","timestamp":"%s","temperature":21.5,"humidity":40,"battery":90}' "$1" "$(now)"; }

# --- TLS ------------------------------------------------------------------------------------
check_exit "device with a certificate" 0 dcurl dev-1 "https://127.0.0.1:$DPORT/healthz"
expect_eq "healthz" "$OUT" '{"status":"ok"}'
refused "no client certificate is refused" "https://127.0.0.1:$DPORT/healthz"
check_exit "TLS 1.2 refused (device)" 35 dcurl dev-1 --tlsv1.2 --tls-max 1.2 "https://127.0.0.1:$DPORT/healthz"
check_exit "TLS 1.2 refused (api)" 35 curl -sS --cacert var/ca.crt --tlsv1.2 --tls-max 1.2 "https://127.0.0.1:$APORT/healthz"
check_exit "api listener without certificate" 0 curl -sS --cacert var/ca.crt "https://127.0.0.1:$APORT/healthz"
s_client=$(echo | openssl s_client -connect "127.0.0.1:$APORT" -CAfile var/ca.crt -verify_return_error -verify_ip 127.0.0.1 2>&1 </dev/null || true)
expect_contains "s_client: TLS 1.3" "$s_client" "TLSv1.3"
expect_contains "s_client: server verified" "$s_client" "Verify return code: 0 (ok)"
s_client=$(echo | openssl s_client -connect "127.0.0.1:$DPORT" -CAfile var/ca.crt -cert out/dev-1.crt -key out/dev-1.key -tls1_2 2>&1 </dev/null || true)
expect_contains "s_client -tls1_2 refused" "$s_client" "alert protocol version"
refused "device of another CA refused" --cert other/dev-1.crt --key other/dev-1.key "https://127.0.0.1:$DPORT/healthz"

# --- telemetry --------------------------------------------------------------------------------
res=$(post dev-1 "$(good dev-1)")
expect_contains "telemetry accepted" "$res" '202 {"status":"accepted","seq":'
check_exit "read back" 0 dcurl dev-1 "https://127.0.0.1:$DPORT/api/devices/dev-1/telemetry"
expect_contains "stored body" "$OUT" '"temperature":21.5'
check_exit "another device's telemetry" 0 dcurl dev-1 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$DPORT/api/devices/dev-2/telemetry"
expect_eq "403 for another device's telemetry" "$OUT" "403"

expect_contains "invalid JSON" "$(post dev-1 '{"device_id":')" '400 {"error":"Validation failed","details":[{"code":"invalid_json"'
expect_contains "duplicate keys" "$(post dev-1 '{"device_id":"dev-1","device_id":"dev-1","timestamp":"2026-01-01T00:00:00Z"}')" '"invalid_json"'
res=$(post dev-1 '{"device_id":"dev-1","temperature":"hot","humidity":120,"extra":1}')
expect_contains "missing timestamp" "$res" '"code":"required","path":["timestamp"]'
expect_contains "wrong type" "$res" '"code":"invalid_type","path":["temperature"]'
expect_contains "out of range" "$res" '"code":"too_big","path":["humidity"]'
expect_contains "unknown field" "$res" '"unrecognized_keys"'
expect_contains "future timestamp" "$(post dev-1 '{"device_id":"dev-1","timestamp":"2099-01-01T00:00:00Z"}')" '"future_date"'
expect_contains "trailing bytes" "$(post dev-1 "$(good dev-1) x")" '"invalid_json"'
expect_contains "another device's id" "$(post dev-1 "$(good dev-2)")" '403 {"error":"device_id is not the authenticated device"}'
expect_contains "wrong content type" "$(post dev-1 "$(good dev-1)" text/plain)" '415 '
head -c 5000 /dev/zero | tr '\0' ' ' >"$WORK/big.json"
expect_contains "body over the limit" "$(post dev-1 "@$WORK/big.json")" '413 {"error":"Request body too large"}'
head -c 2000000 /dev/zero | tr '\0' 'a' >"$WORK/2mb.json"
code=$(dcurl dev-1 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$WORK/2mb.json" "https://127.0.0.1:$DPORT/api/telemetry" || true)
expect_eq "2 MB body" "$code" "413"
check_exit "404" 0 dcurl dev-1 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$DPORT/nothing"
expect_eq "404 status" "$OUT" "404"
check_exit "405" 0 dcurl dev-1 -D - -o /dev/null "https://127.0.0.1:$DPORT/api/telemetry"
expect_contains "405 status" "$OUT" "405"
expect_contains "405 Allow" "$OUT" "Allow: POST"
check_exit "API listener needs credentials" 0 curl -s -o /dev/null -w '%{http_code}' --cacert var/ca.crt -H 'Content-Type: application/json' -d "$(good dev-1)" "https://127.0.0.1:$APORT/api/telemetry"
expect_eq "401 without credentials" "$OUT" "401"

# --- the API listener: API keys, device tokens, challenge-response ------------------------
apost() { # BODY HEADER...: POST telemetry to the API listener; prints "STATUS BODY"
    local body=$1
    shift
    local args=()
    for h in "$@"; do args+=(-H "$h"); done
    curl -sS --cacert var/ca.crt -o "$WORK/.body" -w '%{http_code}' -H 'Content-Type: application/json' \
        "${args[@]}" --data-binary "$body" "https://127.0.0.1:$APORT/api/telemetry"
    printf ' %s' "$(cat "$WORK/.body")"
}
KEY=$("$IOTSEC" apikey create --device dev-1 2>/dev/null)
expect_contains "API key telemetry" "$(apost "$(good dev-1)" "X-API-Key: $KEY")" '202 {"status":"accepted"'
expect_contains "API key for another device's body" "$(apost "$(good dev-2)" "X-API-Key: $KEY")" "403"
check_exit "API key reads its device's telemetry" 0 curl -sS --cacert var/ca.crt -H "X-API-Key: $KEY" "https://127.0.0.1:$APORT/api/devices/dev-1/telemetry"
expect_contains "API key read" "$OUT" '"temperature":21.5'
expect_contains "unknown API key" "$(apost "$(good dev-1)" "X-API-Key: iot_$(openssl rand -hex 24)")" '401 {"error":"Invalid API key"}'
expect_contains "malformed API key" "$(apost "$(good dev-1)" "X-API-Key: iot_XYZ")" "401"
key_id=$("$IOTSEC" apikey list --device dev-1 | awk 'NR==2 {print $1}')
check_exit "revoke the API key" 0 "$IOTSEC" apikey revoke "$key_id"
expect_contains "revoked API key refused at once" "$(apost "$(good dev-1)" "X-API-Key: $KEY")" "401"

check_exit "token for the certificate" 0 dcurl dev-1 -X POST "https://127.0.0.1:$DPORT/api/auth/token"
TOKEN=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
expect_contains "token answer" "$OUT" '"tokenType":"Bearer","expiresIn":86400'
expect_contains "token telemetry" "$(apost "$(good dev-1)" "Authorization: Bearer $TOKEN")" "202"
sig=${TOKEN##*.}
first=${sig:0:1}
[ "$first" = "A" ] && other=B || other=A
expect_contains "tampered token" "$(apost "$(good dev-1)" "Authorization: Bearer ${TOKEN%.*}.$other${sig:1}")" '401 {"error":"Invalid token"}'
expect_contains "alg none token" "$(apost "$(good dev-1)" "Authorization: Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJkZXZpY2VJZCI6ImRldi0xIn0.")" "401"
check_exit "no token on the API listener" 0 curl -s -o /dev/null -w '%{http_code}' --cacert var/ca.crt -X POST "https://127.0.0.1:$APORT/api/auth/token"
expect_eq "token needs the device listener" "$OUT" "403"
check_exit "token for dev-2" 0 dcurl dev-2 -X POST "https://127.0.0.1:$DPORT/api/auth/token"
TOKEN2=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$IOTSEC" device disable dev-2 2>/dev/null
expect_contains "token of a disabled device refused" "$(apost "$(good dev-2)" "Authorization: Bearer $TOKEN2")" "401"
"$IOTSEC" device enable dev-2 2>/dev/null

challenge_json=$(curl -sS --cacert var/ca.crt -H 'Content-Type: application/json' -d '{"deviceId":"dev-1"}' "https://127.0.0.1:$APORT/api/auth/challenge")
expect_contains "challenge issued" "$challenge_json" '"expiresAt":"'
CH=$(echo "$challenge_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["challenge"])')
SIG=$(printf '%s' "$CH" | openssl dgst -sha256 -sign out/dev-1.key | base64 -w0)
verify_body="{\"deviceId\":\"dev-1\",\"challenge\":\"$CH\",\"response\":\"$SIG\"}"
check_exit "challenge verified" 0 curl -sS --cacert var/ca.crt -H 'Content-Type: application/json' -d "$verify_body" "https://127.0.0.1:$APORT/api/auth/verify"
CTOKEN=$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
expect_contains "challenge token works" "$(apost "$(good dev-1)" "Authorization: Bearer $CTOKEN")" "202"
check_exit "replayed response" 0 curl -s -o /dev/null -w '%{http_code}' --cacert var/ca.crt -H 'Content-Type: application/json' -d "$verify_body" "https://127.0.0.1:$APORT/api/auth/verify"
expect_eq "replay refused" "$OUT" "401"
check_exit "unknown device challenge" 0 curl -s -o /dev/null -w '%{http_code}' --cacert var/ca.crt -H 'Content-Type: application/json' -d '{"deviceId":"ghost"}' "https://127.0.0.1:$APORT/api/auth/challenge"
expect_eq "unknown device: 404" "$OUT" "404"
check_exit "challenge with an extra field" 0 curl -s -o /dev/null -w '%{http_code}' --cacert var/ca.crt -H 'Content-Type: application/json' -d '{"deviceId":"dev-1","x":1}' "https://127.0.0.1:$APORT/api/auth/challenge"
expect_eq "extra field: 400" "$OUT" "400"

# --- operators ------------------------------------------------------------------------------
expect_contains "first start printed the one-time password" "$(cat "$WORK/server.out")" "operator 'admin' created"
OTP=$(sed -n 2p "$WORK/server.out" | tr -d ' ')
expect_eq "the password is not in the log" "$(grep -c -- "$OTP" "$WORK/server.log" || true)" "0"
ocurl() { # TOKEN METHOD PATH [BODY]: prints "STATUS BODY"
    local tok=$1 method=$2 path=$3 body=${4:-}
    local args=(-X "$method")
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    curl -sS --cacert var/ca.crt -o "$WORK/.body" -w '%{http_code}' "${args[@]}" "https://127.0.0.1:$APORT$path"
    printf ' %s' "$(cat "$WORK/.body")"
}
login() { # USER PASSWORD: prints the session token
    ocurl "" POST /api/auth/login "{\"username\":\"$1\",\"password\":\"$2\"}" | cut -d' ' -f2- |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("token",""))'
}
expect_contains "wrong password" "$(ocurl "" POST /api/auth/login '{"username":"admin","password":"not the password"}')" '401 {"error":"Login failed"}'
expect_contains "unknown user, same answer" "$(ocurl "" POST /api/auth/login '{"username":"mallory","password":"whatever it is"}')" '401 {"error":"Login failed"}'
ADMIN=$(login admin "$OTP")
expect_contains "session token" "$ADMIN" "ses_"
expect_contains "one-time password: nothing but a change" "$(ocurl "$ADMIN" GET /api/security/events)" '403 {"error":"Password change required'
expect_contains "password changed" "$(ocurl "$ADMIN" POST /api/auth/password "{\"currentPassword\":\"$OTP\",\"newPassword\":\"admin password for the e2e\"}")" "200"
res=$(ocurl "$ADMIN" GET "/api/security/events?type=auth_failure&limit=5")
expect_contains "events for the admin" "$res" '200 {"events":[{'
expect_contains "login failures are events" "$res" '"reason":"bad_password"'
expect_contains "bad filter" "$(ocurl "$ADMIN" GET "/api/security/events?severity=loud")" "400"
expect_contains "devices listed" "$(ocurl "$ADMIN" GET /api/devices)" '"id":"dev-1","status":"active"'
expect_contains "admin disables a device" "$(ocurl "$ADMIN" POST /api/devices/dev-2/disable)" '200 {"id":"dev-2","status":"disabled"}'
refused "disabled through the API" --cert out/dev-2.crt --key out/dev-2.key "https://127.0.0.1:$DPORT/healthz"
expect_contains "admin enables it" "$(ocurl "$ADMIN" POST /api/devices/dev-2/enable)" "200"
expect_contains "operator reads telemetry" "$(ocurl "$ADMIN" GET /api/devices/dev-1/telemetry)" '"temperature":21.5'
expect_contains "operators send no telemetry" "$(apost "$(good dev-1)" "Authorization: Bearer $ADMIN")" "403"
expect_contains "blocks listed" "$(ocurl "$ADMIN" GET /api/security/blocks)" '200 {"blocks":'
expect_contains "command recorded" "$(ocurl "$ADMIN" POST /api/commands '{"action":"restart","target":"dev-1"}')" '202 {"id":'
expect_contains "reset needs confirmation" "$(ocurl "$ADMIN" POST /api/commands '{"action":"reset","target":"dev-1"}')" 'Reset action requires confirmation'
expect_contains "confirmed reset" "$(ocurl "$ADMIN" POST /api/commands '{"action":"reset","target":"dev-1","payload":{"confirm":true}}')" '"action":"reset","status":"pending"'
expect_contains "unknown action" "$(ocurl "$ADMIN" POST /api/commands '{"action":"format","target":"dev-1"}')" '"invalid_enum_value"'
expect_contains "command for no device" "$(ocurl "$ADMIN" POST /api/commands '{"action":"restart","target":"ghost"}')" "404"
res=$(ocurl "$ADMIN" POST /api/users '{"username":"bob","role":"operator"}')
expect_contains "account created" "$res" '201 {"username":"bob","role":"operator","oneTimePassword":"'
BOB_OTP=$(echo "${res#201 }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["oneTimePassword"])')
expect_eq "the one-time password is not logged" "$(grep -c -- "$BOB_OTP" "$WORK/server.log" || true)" "0"
expect_contains "duplicate account" "$(ocurl "$ADMIN" POST /api/users '{"username":"bob","role":"viewer"}')" "409"
expect_contains "bad role" "$(ocurl "$ADMIN" POST /api/users '{"username":"carol","role":"root"}')" "400"
expect_contains "accounts listed" "$(ocurl "$ADMIN" GET /api/users)" '"username":"bob","role":"operator","disabled":false'
expect_contains "role changed" "$(ocurl "$ADMIN" POST /api/users/bob/role '{"role":"viewer"}')" "200"
expect_contains "account disabled" "$(ocurl "$ADMIN" POST /api/users/bob/disable)" "200"
expect_contains "the last admin stays" "$(ocurl "$ADMIN" POST /api/users/admin/role '{"role":"viewer"}')" '409 {"error":"Refused: an enabled admin must remain"}'
expect_contains "account removed" "$(ocurl "$ADMIN" DELETE /api/users/bob)" "200"
expect_contains "removed is gone" "$(ocurl "$ADMIN" DELETE /api/users/bob)" "404"
res=$(ocurl "$ADMIN" POST /api/devices/dev-1/apikeys '{"rateLimit":100}')
expect_contains "API key made over the API" "$res" '201 {"key":"iot_'
NEWKEY=$(echo "${res#201 }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
NEWKEY_ID=$(echo "${res#201 }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keyId"])')
expect_contains "the new key works" "$(apost "$(good dev-1)" "X-API-Key: $NEWKEY")" "202"
expect_contains "keys listed, never the key" "$(ocurl "$ADMIN" GET /api/devices/dev-1/apikeys)" "\"keyId\":\"$NEWKEY_ID\""
if ocurl "$ADMIN" GET /api/devices/dev-1/apikeys | grep -q "$NEWKEY"; then fail "a key was listed"; else pass; fi
expect_contains "key for no device" "$(ocurl "$ADMIN" POST /api/devices/ghost/apikeys '{}')" "404"
expect_contains "key revoked over the API" "$(ocurl "$ADMIN" DELETE "/api/apikeys/$NEWKEY_ID")" "200"
expect_contains "revoked key refused" "$(apost "$(good dev-1)" "X-API-Key: $NEWKEY")" "401"
expect_contains "revoked twice" "$(ocurl "$ADMIN" DELETE "/api/apikeys/$NEWKEY_ID")" "409"
make_secret_file "$WORK/viewer-pass" "viewer password for the e2e"
"$IOTSEC" user add viewer1 --role viewer --password-file "$WORK/viewer-pass" >/dev/null 2>&1
VIEWER=$(login viewer1 "viewer password for the e2e")
expect_contains "viewer reads events" "$(ocurl "$VIEWER" GET /api/security/events)" "200"
expect_contains "viewer may not disable" "$(ocurl "$VIEWER" POST /api/devices/dev-1/disable)" '403 {"error":"The viewer role lacks devices.write"}'
expect_contains "viewer may not unblock" "$(ocurl "$VIEWER" DELETE /api/security/blocks/10.0.0.1)" "403"
expect_contains "viewer sends no commands" "$(ocurl "$VIEWER" POST /api/commands '{"action":"restart","target":"dev-1"}')" "403"
expect_contains "viewer manages no accounts" "$(ocurl "$VIEWER" POST /api/users '{"username":"eve","role":"admin"}')" "403"
expect_contains "viewer manages no keys" "$(ocurl "$VIEWER" POST /api/devices/dev-1/apikeys '{}')" "403"
"$IOTSEC" user disable viewer1 >/dev/null 2>&1
expect_contains "disabled operator's session ends" "$(ocurl "$VIEWER" GET /api/security/events)" "401"
expect_contains "logout" "$(ocurl "$ADMIN" DELETE /api/auth/session)" "200"
expect_contains "after logout" "$(ocurl "$ADMIN" GET /api/security/events)" '401 {"error":"Invalid or expired session"}'
expect_contains "a made-up session" "$(ocurl "ses_$(openssl rand -hex 24)" GET /api/devices)" "401"

# --- rate limit ---------------------------------------------------------------------------
# 20 a minute with a burst of 20: about 20 pass back to back (one more every 3 s).
accepted=0
headers=""
for _ in $(seq 1 30); do
    headers=$(dcurl dev-rate -D - -o "$WORK/.body" -H 'Content-Type: application/json' --data-binary "$(good dev-rate)" "https://127.0.0.1:$DPORT/api/telemetry")
    case "$headers" in *" 202 "*) accepted=$((accepted + 1)) ;; *) break ;; esac
done
if [ "$accepted" -ge 20 ] && [ "$accepted" -le 23 ]; then pass; else fail "accepted $accepted before the limit, wanted 20 to 23"; fi
expect_contains "then 429" "$headers" " 429 "
expect_contains "Retry-After" "$headers" "Retry-After: "
expect_contains "429 body" "$(cat "$WORK/.body")" '{"error":"Rate limit exceeded","retryAfter":'
expect_contains "other devices are not limited" "$(post dev-1 "$(good dev-1)")" "202"

# --- refused at the next connection, without a restart -------------------------------------
check_exit "disable dev-2" 0 "$IOTSEC" device disable dev-2
refused "disabled device refused" --cert out/dev-2.crt --key out/dev-2.key "https://127.0.0.1:$DPORT/healthz"
check_exit "enable dev-2" 0 "$IOTSEC" device enable dev-2
# Several connections, so both workers' store handles are seen to follow the CLI's writes.
for i in 1 2 3 4; do check_exit "enabled again ($i)" 0 dcurl dev-2 "https://127.0.0.1:$DPORT/healthz"; done
check_exit "disable dev-2 again" 0 "$IOTSEC" device disable dev-2
for i in 1 2 3 4; do refused "disabled again ($i)" --cert out/dev-2.crt --key out/dev-2.key "https://127.0.0.1:$DPORT/healthz"; done
check_exit "enable dev-2 again" 0 "$IOTSEC" device enable dev-2
check_exit "revoke dev-3" 0 "$IOTSEC" device revoke dev-3
refused "revoked device refused" --cert out/dev-3.crt --key out/dev-3.key "https://127.0.0.1:$DPORT/healthz"
# The CRL reload (at most a second later) refuses it too, and the log says why.
sleep 1.2
refused "still refused after the CRL reload" --cert out/dev-3.crt --key out/dev-3.key "https://127.0.0.1:$DPORT/healthz"
expect_contains "auth failure logged" "$(cat "$WORK/server.log")" '"msg":"auth_failure"'

# --- a slow client is cut off, others are served ----------------------------------------
slow_start=$(date +%s)
( for _ in $(seq 1 15); do printf 'G'; sleep 1; done ) |
    openssl s_client -quiet -connect "127.0.0.1:$DPORT" -cert out/dev-slow.crt -key out/dev-slow.key -CAfile var/ca.crt >/dev/null 2>&1 &
slow_pid=$!
sleep 0.5
check_exit "others served meanwhile" 0 dcurl dev-1 "https://127.0.0.1:$DPORT/healthz"
for _ in $(seq 1 100); do kill -0 $slow_pid 2>/dev/null || break; sleep 0.1; done
slow_took=$(($(date +%s) - slow_start))
if kill -0 $slow_pid 2>/dev/null; then
    fail "slow client still connected after ${slow_took}s"
    kill $slow_pid 2>/dev/null || true
else
    # The pipe's writer notices the close at its next byte, within a second.
    if [ "$slow_took" -le 6 ]; then pass; else fail "slow client cut off only after ${slow_took}s"; fi
fi

# --- metrics ------------------------------------------------------------------------------
check_exit "metrics" 0 curl -sS --cacert var/ca.crt "https://127.0.0.1:$APORT/metrics"
expect_contains "requests counter" "$OUT" 'iotsecd_requests_total{route="/api/telemetry",status="2xx"}'
expect_contains "latency histogram" "$OUT" 'iotsecd_request_seconds_bucket{le="+Inf"}'
expect_contains "429 counted" "$OUT" 'iotsecd_rate_limited_total 1'

# --- the credential endpoints have a budget per address ----------------------------------
codes=""
for _ in $(seq 1 16); do
    codes="$codes $(curl -s -o /dev/null -w '%{http_code}' --cacert var/ca.crt -H 'Content-Type: application/json' -d '{"deviceId":"ghost"}' "https://127.0.0.1:$APORT/api/auth/challenge")"
done
expect_contains "challenge guessing is rate limited" "$codes" "429"
expect_contains "login shares the budget" "$(ocurl "" POST /api/auth/login '{"username":"admin","password":"x"}')" "429"

# --- a CRL change reaches devices whose acceptance is cached --------------------------------
# dev-crl connects (its chain's verification is cached by the worker), then a CRL made with
# the openssl CLI revokes it while the registry still calls it active: only a verifier
# reloaded with the new CRL, and its cache emptied, can refuse it.
check_exit "dev-crl accepted (and cached)" 0 dcurl dev-crl "https://127.0.0.1:$DPORT/healthz"
check_exit "again, from the cache" 0 dcurl dev-crl "https://127.0.0.1:$DPORT/healthz"
"$IOTSEC" vault get ca-issuing.key >"$WORK/issuing.key"
chmod 600 "$WORK/issuing.key"
mkdir -p "$WORK/openssl-ca"
crl_serial=$(openssl x509 -in out/dev-crl.crt -noout -serial | cut -d= -f2)
printf 'R\t%s\t%s\t%s\tunknown\t/CN=dev-crl\n' "$(date -u -d '+1 year' +%y%m%d%H%M%SZ)" \
    "$(date -u +%y%m%d%H%M%SZ)" "$crl_serial" >"$WORK/openssl-ca/index.txt"
printf '%X\n' $(($(openssl crl -in var/ca.crl -noout -crlnumber | cut -d= -f2) + 1)) >"$WORK/openssl-ca/crlnumber"
printf '[ca]\ndefault_ca = my\n[my]\ndatabase = %s/openssl-ca/index.txt\ncrlnumber = %s/openssl-ca/crlnumber\ndefault_md = sha256\ndefault_crl_days = 7\ncrl_extensions = ext\n[ext]\nauthorityKeyIdentifier = keyid:always\n' \
    "$WORK" "$WORK" >"$WORK/openssl-ca/ca.cnf"
check_exit "openssl makes a CRL" 0 openssl ca -config "$WORK/openssl-ca/ca.cnf" -gencrl -keyfile "$WORK/issuing.key" -cert var/ca-issuing.crt -out "$WORK/openssl.crl"
cp "$WORK/openssl.crl" var/ca.crl.new && mv var/ca.crl.new var/ca.crl
sleep 1.2
expect_contains "the registry still calls dev-crl active" "$("$IOTSEC" device show dev-crl)" "active"
refused "dev-crl refused once the CRL is reloaded" --cert out/dev-crl.crt --key out/dev-crl.key "https://127.0.0.1:$DPORT/healthz"
check_exit "ca crl rebuilds the CRL from the registry" 0 "$IOTSEC" ca crl
sleep 1.2
check_exit "dev-crl accepted again" 0 dcurl dev-crl "https://127.0.0.1:$DPORT/healthz"

# --- SIGHUP: a new server certificate without a restart ------------------------------------
serial_now() {
    echo | openssl s_client -connect "127.0.0.1:$APORT" -CAfile var/ca.crt 2>/dev/null </dev/null |
        openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
old_serial=$(serial_now)
check_exit "a new server certificate" 0 "$IOTSEC" ca server-cert --days 30
new_serial=$(openssl x509 -in var/server.crt -noout -serial | cut -d= -f2)
expect_eq "still the old one before SIGHUP" "$(serial_now)" "$old_serial"
kill -HUP "$SERVER_PID"
sleep 0.5
expect_eq "the new one after SIGHUP" "$(serial_now)" "$new_serial"
check_exit "devices still served" 0 dcurl dev-1 "https://127.0.0.1:$DPORT/healthz"
cp var/server.key "$WORK/server.key.good"
printf 'not a key\n' >var/server.key
kill -HUP "$SERVER_PID"
sleep 0.5
expect_contains "a broken key is refused and logged" "$(cat "$WORK/server.log")" '"msg":"TLS reload failed; keeping the current certificate"'
expect_eq "the running certificate stays" "$(serial_now)" "$new_serial"
cp "$WORK/server.key.good" var/server.key

# --- kill -9 after N acknowledged records: all N survive ------------------------------------
acked=0
for i in $(seq 1 12); do
    post dev-dur "$(good dev-dur)" | grep -q '^202' && acked=$((acked + 1))
done
# and a concurrent burst, several records per group commit
seq 1 8 | xargs -P 8 -I{} sh -c "curl -s -o /dev/null -w '%{http_code}\n' --cacert var/ca.crt --cert out/dev-dur.crt --key out/dev-dur.key -H 'Content-Type: application/json' --data-binary '$(good dev-dur)' https://127.0.0.1:$DPORT/api/telemetry" >"$WORK/burst"
acked=$((acked + $(grep -c 202 "$WORK/burst")))
expect_eq "all acknowledged" "$acked" "20"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
start_server
check_exit "read after kill -9" 0 dcurl dev-dur "https://127.0.0.1:$DPORT/api/devices/dev-dur/telemetry"
stored=$(echo "$OUT" | grep -o '"seq":' | wc -l)
expect_eq "every acknowledged record survived kill -9" "$stored" "$acked"

# --- SIGTERM drains and exits 0 ------------------------------------------------------------
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
rc=$?
set -e
SERVER_PID=""
expect_eq "SIGTERM exit status" "$rc" "0"
expect_contains "drained" "$(cat "$WORK/server.log")" '"msg":"stopped"'

# --- brute force: five failures from one address block it, everywhere -----------------------
sed -i 's/^failures = 64$/failures = 5/' var/iotsecd.conf
start_server
for i in 1 2 3 4 5; do
    refused "bad certificate $i" --cert other/dev-1.crt --key other/dev-1.key "https://127.0.0.1:$DPORT/healthz"
done
sleep 0.5 # the writer thread records the events and the block
refused "a good device from the blocked address" --cert out/dev-1.crt --key out/dev-1.key "https://127.0.0.1:$DPORT/healthz"
refused "the API listener too" "https://127.0.0.1:$APORT/healthz"
check_exit "brute_force_detected in the log" 0 "$IOTSEC" events list --type brute_force_detected --json
expect_contains "detection event" "$OUT" '"eventType":"brute_force_detected","severity":"high"'
expect_contains "detected source" "$OUT" '"sourceIp":"127.0.0.1"'
check_exit "auth failures in the log" 0 "$IOTSEC" events list --type auth_failure --json
expect_contains "auth_failure event" "$OUT" '"reason":"bad_certificate"'
check_exit "block listed" 0 "$IOTSEC" block list
expect_contains "127.0.0.1 blocked" "$OUT" "127.0.0.1"
check_exit "operator lifts the block" 0 "$IOTSEC" block rm 127.0.0.1
check_exit "served again" 0 dcurl dev-1 "https://127.0.0.1:$DPORT/healthz"
# Five bad API keys on one kept-alive connection: the requests after the detection get 403
# (new connections from the address are refused at the TLS handshake, as above). A fresh
# server: the detector reports an address once per window, and this one was just seen.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
start_server
expect_eq "the one-time password is printed once" "$(grep -c "operator 'admin' created" "$WORK/server.out")" "1"
urls=()
for _ in $(seq 1 9); do urls+=(-o /dev/null "https://127.0.0.1:$APORT/api/devices/dev-1/telemetry"); done
statuses=$(curl -s --rate 3/s --cacert var/ca.crt -H "X-API-Key: iot_$(openssl rand -hex 24)" -w '%{http_code}\n' "${urls[@]}" | tr '\n' ' ')
expect_contains "bad API keys: 401 first" "$statuses" "401 401 401 401 401"
expect_contains "then 403 for that address" "$statuses" "403"
refused "new connections from the address" "https://127.0.0.1:$APORT/healthz"
check_exit "api_key failures in the log" 0 "$IOTSEC" events list --type auth_failure --json
expect_contains "api key failure event" "$OUT" '"method":"api_key","reason":"unknown"'
"$IOTSEC" block rm 127.0.0.1 2>/dev/null
check_exit "event log intact" 0 "$IOTSEC" events verify
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# --- first start in an empty data directory: everything is made, nothing is reused ------------
check_exit "no passphrase, no terminal: nothing starts" 1 env -u IOTSEC_PASSPHRASE_FILE "$IOTSECD" --data "$WORK/fresh0" --device-port "$DPORT" --api-port "$APORT"
expect_contains "says which secret is missing" "$ERR" "passphrase"
if [ -e "$WORK/fresh0/ca.crt" ]; then fail "a CA was left without its key"; else pass; fi
"$IOTSECD" --data "$WORK/fresh" --device-port "$DPORT" --api-port "$APORT" >"$WORK/fresh.out" 2>"$WORK/fresh.log" &
FRESH_PID=$!
cleanup_hooks+=('kill -9 $FRESH_PID 2>/dev/null')
for _ in $(seq 1 200); do
    curl -s --cacert "$WORK/fresh/ca.crt" "https://127.0.0.1:$APORT/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done
check_exit "first start serves" 0 curl -sS --cacert "$WORK/fresh/ca.crt" "https://127.0.0.1:$APORT/healthz"
for f in ca.crt ca-issuing.crt ca.crl server.crt server.key jwt-hs256.key vault store.db; do
    if [ -e "$WORK/fresh/$f" ]; then pass; else fail "first start made no $f"; fi
done
expect_eq "server key private" "$(stat -c %a "$WORK/fresh/server.key")" "600"
expect_eq "token secret private" "$(stat -c %a "$WORK/fresh/jwt-hs256.key")" "600"
expect_contains "first admin printed" "$(cat "$WORK/fresh.out")" "operator 'admin' created"
check_exit "the CLI uses the CA it made" 0 env IOTSEC_DATA="$WORK/fresh" "$IOTSEC" device issue --id fresh-1 --out "$WORK/fresh"
check_exit "and iotsecd accepts the device" 0 curl -sS --cacert "$WORK/fresh/ca.crt" --cert "$WORK/fresh/fresh-1.crt" --key "$WORK/fresh/fresh-1.key" "https://127.0.0.1:$DPORT/healthz"
ca_before=$(sha256sum "$WORK/fresh/ca.crt")
kill -TERM $FRESH_PID
wait $FRESH_PID 2>/dev/null || true
"$IOTSECD" --data "$WORK/fresh" --device-port "$DPORT" --api-port "$APORT" >"$WORK/fresh2.out" 2>>"$WORK/fresh.log" &
FRESH_PID=$!
for _ in $(seq 1 200); do
    curl -s --cacert "$WORK/fresh/ca.crt" "https://127.0.0.1:$APORT/healthz" >/dev/null 2>&1 && break
    sleep 0.05
done
expect_eq "second start keeps the CA" "$(sha256sum "$WORK/fresh/ca.crt")" "$ca_before"
expect_eq "no second admin" "$(cat "$WORK/fresh2.out")" ""
kill -TERM $FRESH_PID
wait $FRESH_PID 2>/dev/null || true

# --- bad options ----------------------------------------------------------------------------
check_exit "unknown option" 2 "$IOTSECD" --device-prot 1
check_exit "bad port" 2 "$IOTSECD" --device-port 70000
check_exit "help" 0 "$IOTSECD" --help
expect_contains "help text" "$OUT" "usage: iotsecd"

finish
