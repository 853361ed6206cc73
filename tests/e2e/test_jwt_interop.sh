#!/usr/bin/env bash
# Device JWTs against an independent implementation: node's jsonwebtoken (pinned in
# tests/e2e/node/package-lock.json, installed by scripts/install-deps). Our tokens
# (tests/helpers/jwt_tool over include/iotsec/jwt.h) must verify there with the same
# secret or public key, with the claims of the wire contract; its tokens must verify
# with ours; and what it can be made to sign that we must refuse (alg none, another
# secret, expired, another audience or issuer, alg confusion) is refused.
# node is a requirement, not an option: without it this test fails, it never skips.
source "$(dirname "$0")/lib.sh"

TOOL="$IOTSEC_BUILD_DIR/jwt_tool"
NODE_DIR="$IOTSEC_SOURCE_DIR/tests/e2e/node"
if ! command -v node >/dev/null; then
    echo "FAIL: node is not installed (scripts/install-deps installs it)" >&2
    exit 1
fi
if [ ! -d "$NODE_DIR/node_modules/jsonwebtoken" ]; then
    echo "FAIL: $NODE_DIR/node_modules is missing (run scripts/install-deps)" >&2
    exit 1
fi
if [ ! -x "$TOOL" ]; then
    echo "FAIL: $TOOL is not built" >&2
    exit 1
fi

NOW=$(date +%s)
SECRET="$WORK/secret"
OTHER_SECRET="$WORK/other-secret"
make_secret_file "$SECRET" "$(head -c 48 /dev/urandom | base64 -w0)"
make_secret_file "$OTHER_SECRET" "$(head -c 48 /dev/urandom | base64 -w0)"
"$TOOL" genkey "$WORK/es.pem"
"$TOOL" genkey "$WORK/other.pem"
"$TOOL" pubkey --key "$WORK/es.pem" >"$WORK/es.pub.pem"
"$TOOL" pubkey --key "$WORK/other.pem" >"$WORK/other.pub.pem"
"$TOOL" jwks --key "$WORK/es.pem" --kid k1 --key "$WORK/other.pem" --kid k2 >"$WORK/jwks.json"

# Tokens and claims go through stdin, never argv. AT is the verifier's clock.
AT=$NOW
ours_verify() { local tok=$1; shift; "$TOOL" verify --now "$AT" "$@" <<<"$tok"; }
node_verify() { local tok=$1; shift; node "$NODE_DIR/jwt-check.js" verify --now "$AT" "$@" <<<"$tok"; }
node_issue() { local claims=$1; shift; node "$NODE_DIR/jwt-check.js" issue "$@" <<<"$claims"; }
# The token with its fifth-last character changed (not the last: its low bits are unused,
# and a lenient base64url decoder would read the same signature).
flip() { local c=${1: -5:1}; [ "$c" = A ] && c=B || c=A; printf '%s' "${1:0:${#1}-5}$c${1: -4}"; }
field() { jq -c ".$1" <<<"$OUT"; } # a member of the claims in $OUT, as JSON
header_of() { node -e 'process.stdout.write(Buffer.from(process.argv[1], "base64url").toString())' "${1%%.*}"; }
# Claims valid now, with jq edits applied (e.g. '.aud = "x"').
claims() {
    jq -cn --argjson now "$NOW" '{deviceId: "dev-n", capabilities: ["telemetry:write"],
        iat: $now, exp: ($now + 3600), iss: "iot-platform", aud: "iot-devices",
        sub: "dev-n", jti: "node-jti-1"} | '"${1:-.}"
}

# --- HS256: ours -> node -------------------------------------------------------------------
tok=$("$TOOL" issue --secret "$SECRET" --device dev-1 --cap telemetry:write --cap commands:read \
    --now "$NOW")
check_exit "node verifies our HS256 token" 0 \
    node_verify "$tok" --alg HS256 --key-file "$SECRET" --iss iot-platform --aud iot-devices
expect_eq "deviceId" "$(field deviceId)" '"dev-1"'
expect_eq "capabilities" "$(field capabilities)" '["telemetry:write","commands:read"]'
expect_eq "iss" "$(field iss)" '"iot-platform"'
expect_eq "aud" "$(field aud)" '"iot-devices"'
expect_eq "sub defaults to the device id" "$(field sub)" '"dev-1"'
expect_eq "jti is 16 random bytes, base64url" "$(jq '.jti | test("^[A-Za-z0-9_-]{22}$")' <<<"$OUT")" true
expect_eq "iat is the issue time" "$(field iat)" "$NOW"
expect_eq "exp - iat is 24 h" "$(jq '.exp - .iat' <<<"$OUT")" 86400
expect_eq "HS256 header" "$(header_of "$tok")" '{"alg":"HS256","typ":"JWT"}'
# These checks can fail: the same token with another secret, audience or clock is refused.
check_exit "node: our HS256 token, another secret" 1 \
    node_verify "$tok" --alg HS256 --key-file "$OTHER_SECRET"
expect_contains "node: another secret" "$ERR" "invalid signature"
check_exit "node: our HS256 token, another audience" 1 \
    node_verify "$tok" --alg HS256 --key-file "$SECRET" --aud somebody-else
expect_contains "node: another audience" "$ERR" "jwt audience invalid"
AT=$((NOW + 86400))
check_exit "node: our HS256 token after 24 h" 1 node_verify "$tok" --alg HS256 --key-file "$SECRET"
expect_contains "node: expired" "$ERR" "jwt expired"
AT=$NOW
check_exit "node: our HS256 token, one signature character changed" 1 \
    node_verify "$(flip "$tok")" --alg HS256 --key-file "$SECRET"

# --- HS256: node -> ours -------------------------------------------------------------------
ntok=$(node_issue "$(claims)" --alg HS256 --key-file "$SECRET")
check_exit "we verify node's HS256 token" 0 ours_verify "$ntok" --secret "$SECRET"
expect_eq "claims as node signed them" "$OUT" "$(claims | jq -cS .)"
check_exit "node's HS256 token, another secret" 1 ours_verify "$ntok" --secret "$OTHER_SECRET"
expect_contains "another secret" "$ERR" "jwt: signature does not verify"

# --- ES256: ours -> node (PEM, and the key from our JWKS) -------------------------------
etok=$("$TOOL" issue --key "$WORK/es.pem" --kid k1 --device dev-2 --cap firmware:read --now "$NOW")
expect_eq "ES256 header names the kid" "$(header_of "$etok")" '{"alg":"ES256","typ":"JWT","kid":"k1"}'
check_exit "node verifies our ES256 token with the public key PEM" 0 \
    node_verify "$etok" --alg ES256 --key-file "$WORK/es.pub.pem" --iss iot-platform --aud iot-devices
expect_eq "ES256 deviceId" "$(field deviceId)" '"dev-2"'
expect_eq "ES256 exp - iat" "$(jq '.exp - .iat' <<<"$OUT")" 86400
check_exit "node verifies our ES256 token with the JWKS key k1" 0 \
    node_verify "$etok" --alg ES256 --jwks-file "$WORK/jwks.json" --kid k1
expect_eq "JWKS key: deviceId" "$(field deviceId)" '"dev-2"'
check_exit "node: our ES256 token against the JWKS key k2" 1 \
    node_verify "$etok" --alg ES256 --jwks-file "$WORK/jwks.json" --kid k2
expect_contains "node: k2 is another key" "$ERR" "invalid signature"
check_exit "node: our ES256 token against another PEM" 1 \
    node_verify "$etok" --alg ES256 --key-file "$WORK/other.pub.pem"
expect_eq "JWKS has two public EC keys and nothing private" \
    "$(jq -c '[.keys[] | [.kty, .crv, .kid, .alg, .use, (.x | length), (.y | length), has("d")]]' "$WORK/jwks.json")" \
    '[["EC","P-256","k1","ES256","sig",43,43,false],["EC","P-256","k2","ES256","sig",43,43,false]]'

# --- ES256: node -> ours -------------------------------------------------------------------
entok=$(node_issue "$(claims)" --alg ES256 --key-file "$WORK/es.pem" --kid k1)
check_exit "we verify node's ES256 token with the public key" 0 \
    ours_verify "$entok" --key "$WORK/es.pub.pem" --kid k1
expect_eq "ES256 claims as node signed them" "$OUT" "$(claims | jq -cS .)"
check_exit "node's ES256 token, another key" 1 ours_verify "$entok" --key "$WORK/other.pub.pem"
expect_contains "another key" "$ERR" "jwt: signature does not verify"
check_exit "node's ES256 token, another kid" 1 ours_verify "$entok" --key "$WORK/es.pub.pem" --kid k2
expect_contains "another kid" "$ERR" "jwt: token kid does not match the key"

# --- what node signs and we refuse -------------------------------------------------------
t=$(node_issue "$(claims)" --alg none)
check_exit "alg none from node" 1 ours_verify "$t" --secret "$SECRET"
expect_contains "alg none" "$ERR" "jwt: token has no signature"
check_exit "alg none with a signature pasted on" 1 ours_verify "$t${ntok##*.}" --secret "$SECRET"
expect_contains "alg none, pasted" "$ERR" "jwt: algorithm none is not accepted"
t=$(node_issue "$(claims)" --alg HS256 --key-file "$OTHER_SECRET")
check_exit "node token, wrong secret" 1 ours_verify "$t" --secret "$SECRET"
expect_contains "wrong secret" "$ERR" "jwt: signature does not verify"
t=$(node_issue "$(claims '.iat -= 7200 | .exp = .iat + 3600')" --alg HS256 --key-file "$SECRET")
check_exit "node token, expired an hour ago" 1 ours_verify "$t" --secret "$SECRET"
expect_contains "expired" "$ERR" "jwt: token expired at"
t=$(node_issue "$(claims '.aud = "other-service"')" --alg HS256 --key-file "$SECRET")
check_exit "node token, wrong audience" 1 ours_verify "$t" --secret "$SECRET"
expect_contains "wrong audience" "$ERR" "jwt: token audience is not iot-devices"
t=$(node_issue "$(claims '.iss = "evil"')" --alg HS256 --key-file "$SECRET")
check_exit "node token, wrong issuer" 1 ours_verify "$t" --secret "$SECRET"
expect_contains "wrong issuer" "$ERR" "jwt: token issuer is not iot-platform"
# Alg confusion: HS256 keyed with the bytes of our public key PEM, sent to an ES256 verifier.
(umask 077 && cp "$WORK/es.pub.pem" "$WORK/pub-as-secret")
t=$(node_issue "$(claims)" --alg HS256 --key-file "$WORK/pub-as-secret")
check_exit "HS256 keyed with the ES256 public key" 1 ours_verify "$t" --key "$WORK/es.pub.pem"
expect_contains "alg confusion" "$ERR" "jwt: token algorithm is not ES256"
# ES256 node token to an HS256 verifier.
check_exit "ES256 token to an HS256 key" 1 ours_verify "$entok" --secret "$SECRET"
expect_contains "ES256 on HS256" "$ERR" "jwt: token algorithm is not HS256"

finish
