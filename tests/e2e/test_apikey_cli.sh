#!/usr/bin/env bash
# `iotsec apikey` against a real store, and challenge-response with signatures made by
# the real openssl CLI. Devices are added with tests/helpers/auth_helper (the device
# command is being written in parallel); keys are checked through the library's
# authenticate, reading the key from stdin. Every failure must be one line on stderr
# with the documented exit status (1 failure, 2 usage).
source "$(dirname "$0")/lib.sh"

HELPER="$IOTSEC_BUILD_DIR/auth_helper"
DATA="$WORK/data"
mkdir -m 700 "$DATA"
STORE="$DATA/store.db"
export IOTSEC_DATA=/nonexistent-so-that---data-must-win

check_exit "add device" 0 "$HELPER" add-device "$STORE" sensor-1
check_exit "add a disabled device" 0 "$HELPER" add-device "$STORE" sensor-off - disabled

# --- create ----------------------------------------------------------------------------
check_exit "create" 0 "$IOTSEC" apikey create --device sensor-1 --data "$DATA"
KEY=$OUT
[[ "$KEY" =~ ^iot_[0-9a-f]{48}$ ]] && pass || fail "key format: '$KEY'"
[[ "$ERR" =~ ^iotsec:\ apikey:\ created\ key\ (ak_[0-9a-f]{16})\ for\ device\ sensor-1\;\ it\ is\ shown\ only\ this\ once$ ]] &&
    pass || fail "create message: '$ERR'"
KEY_ID=${BASH_REMATCH[1]:-none}
# Only the hash is stored: the key's text is nowhere in the database files.
if grep -rqa "${KEY#iot_}" "$DATA"; then fail "the key is stored in clear"; else pass; fi
check_exit "a second key, rate limited" 0 "$IOTSEC" apikey create --device sensor-1 --rate-limit 2 --data "$DATA"
KEY2=$OUT
KEY2_ID=$(sed -n 's/^iotsec: apikey: created key \(ak_[0-9a-f]*\) .*/\1/p' <<<"$ERR")
[ "$KEY" != "$KEY2" ] && pass || fail "two keys are equal"

# --- the keys authenticate ----------------------------------------------------------------
check_exit "key authenticates" 0 "$HELPER" check-key "$STORE" <<<"$KEY"
expect_eq "identity" "$OUT" "ok sensor-1 $KEY_ID"
check_exit "limited key, 1" 0 "$HELPER" check-key "$STORE" <<<"$KEY2"
# Each helper run is a new limiter, so the limit is checked in the unit tests; here the
# key's own limit shows in the listing.
check_exit "wrong key" 1 "$HELPER" check-key "$STORE" <<<"iot_$(openssl rand -hex 24)"
expect_contains "unknown" "$OUT" "unknown: apikey: unknown key"
check_exit "uppercase key" 1 "$HELPER" check-key "$STORE" <<<"${KEY^^}"
expect_contains "malformed" "$OUT" "malformed: apikey:"

# --- list ------------------------------------------------------------------------------------
check_exit "list" 0 "$IOTSEC" apikey list --device sensor-1 --data "$DATA"
expect_eq "list has a header and two keys" "$(wc -l <<<"$OUT")" "3"
expect_contains "list names the key id" "$OUT" "$KEY_ID"
expect_contains "list shows the per-key limit" "$(grep "$KEY2_ID" <<<"$OUT")" " 2"
expect_contains "list shows the default limit" "$(grep "$KEY_ID" <<<"$OUT")" "default"
case "$OUT" in *"${KEY#iot_}"* | *"${KEY2#iot_}"*) fail "list shows a key" ;; *) pass ;; esac
[[ "$(grep "$KEY_ID" <<<"$OUT")" =~ active ]] && pass || fail "key not active in list"

# --- revoke: effective at once ------------------------------------------------------------
check_exit "revoke" 0 "$IOTSEC" apikey revoke "$KEY_ID" --data "$DATA"
expect_eq "revoke message" "$ERR" "iotsec: apikey: key $KEY_ID revoked"
check_exit "revoked key is refused" 1 "$HELPER" check-key "$STORE" <<<"$KEY"
expect_eq "revoked reason" "$OUT" "revoked: apikey: key is revoked"
check_exit "the other key still works" 0 "$HELPER" check-key "$STORE" <<<"$KEY2"
check_exit "revoke twice" 1 "$IOTSEC" apikey revoke "$KEY_ID" --data "$DATA"
expect_eq "twice message" "$ERR" "iotsec: apikey: key $KEY_ID is already revoked"
check_exit "list after revoke" 0 "$IOTSEC" apikey list --device sensor-1 --data "$DATA"
expect_contains "revoked in list" "$(grep "$KEY_ID" <<<"$OUT")" "revoked 20"

# --- a disabled device's key -------------------------------------------------------------
check_exit "create for a disabled device" 0 "$IOTSEC" apikey create --device sensor-off --data "$DATA"
check_exit "its key is refused" 1 "$HELPER" check-key "$STORE" <<<"$OUT"
expect_eq "inactive reason" "$OUT" "device_inactive: apikey: the key's device is disabled"

# --- errors --------------------------------------------------------------------------------
check_exit "unknown device" 1 "$IOTSEC" apikey create --device nobody --data "$DATA"
expect_eq "unknown device message" "$ERR" "iotsec: apikey: no device 'nobody'"
expect_eq "nothing on stdout" "$OUT" ""
check_exit "list unknown device" 1 "$IOTSEC" apikey list --device nobody --data "$DATA"
expect_eq "list unknown device message" "$ERR" "iotsec: apikey: no device 'nobody'"
check_exit "revoke unknown key" 1 "$IOTSEC" apikey revoke ak_0000000000000000 --data "$DATA"
expect_eq "unknown key message" "$ERR" "iotsec: apikey: no key 'ak_0000000000000000'"
check_exit "revoke given a key" 2 "$IOTSEC" apikey revoke "$KEY2" --data "$DATA"
expect_contains "key-not-id message" "$ERR" "that is a key, not a key id"
check_exit "rate limit 0" 2 "$IOTSEC" apikey create --device sensor-1 --rate-limit 0 --data "$DATA"
expect_eq "rate message" "$ERR" "iotsec: apikey create: --rate-limit must be a number 1..100000, not '0'"
check_exit "rate limit junk" 2 "$IOTSEC" apikey create --device sensor-1 --rate-limit 5x --data "$DATA"
check_exit "rate limit negative" 2 "$IOTSEC" apikey create --device sensor-1 --rate-limit -5 --data "$DATA"
check_exit "missing device" 2 "$IOTSEC" apikey create --data "$DATA"
expect_eq "missing device message" "$ERR" "iotsec: apikey create: missing --device"
check_exit "abbreviated option" 2 "$IOTSEC" apikey create --dev sensor-1 --data "$DATA"
expect_eq "abbreviation message" "$ERR" "iotsec: apikey: unknown option '--dev' (see --help)"
check_exit "missing command" 2 "$IOTSEC" apikey --data "$DATA"
check_exit "unknown command" 2 "$IOTSEC" apikey rotate --data "$DATA"
check_exit "list takes no rate" 2 "$IOTSEC" apikey list --device sensor-1 --rate-limit 3 --data "$DATA"
check_exit "revoke takes no device" 2 "$IOTSEC" apikey revoke "$KEY_ID" --device sensor-1 --data "$DATA"
for c in "create --data $DATA" "list x y --device a --data $DATA" "revoke --data $DATA" "revoke a b --data $DATA"; do
    # shellcheck disable=SC2086
    check_exit "usage: $c" 2 "$IOTSEC" apikey $c
    expect_eq "one line: $c" "$(wc -l <<<"$ERR")" "1"
done
check_exit "help" 0 "$IOTSEC" apikey --help
expect_contains "help on stdout" "$OUT" "usage: iotsec apikey"
expect_eq "help quiet on stderr" "$ERR" ""
check_exit "listed in iotsec --help" 0 "$IOTSEC" --help
expect_contains "top-level help" "$OUT" "apikey"
chmod 777 "$DATA"
check_exit "world-writable data dir refused" 1 "$IOTSEC" apikey list --device sensor-1 --data "$DATA"
chmod 700 "$DATA"

# --- challenge-response with the real openssl CLI ------------------------------------------
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/ec.key" 2>/dev/null
openssl pkey -in "$WORK/ec.key" -pubout -out "$WORK/ec.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.key" 2>/dev/null
openssl pkey -in "$WORK/rsa.key" -pubout -out "$WORK/rsa.pub"
openssl genpkey -algorithm ED25519 -out "$WORK/ed.key"
openssl pkey -in "$WORK/ed.key" -pubout -out "$WORK/ed.pub"
for t in ec rsa ed; do
    check_exit "add device with $t key" 0 "$HELPER" add-device "$STORE" "dev-$t" "$WORK/$t.pub"
done
# The commands docs/device-auth.md gives device makers.
SIGN_DGST="openssl dgst -sha256 -sign"
check_exit "ECDSA P-256 by openssl dgst" 0 "$HELPER" challenge "$STORE" dev-ec "$WORK/chal" \
    "$SIGN_DGST $WORK/ec.key $WORK/chal | openssl base64 -A"
expect_eq "ec verified, replay refused" "$OUT" "verified
replay: challenge: unknown or already used for device dev-ec"
check_exit "RSA PKCS#1 v1.5 by openssl dgst" 0 "$HELPER" challenge "$STORE" dev-rsa "$WORK/chal" \
    "$SIGN_DGST $WORK/rsa.key $WORK/chal | openssl base64 -A"
expect_contains "rsa verified" "$OUT" "verified"
check_exit "Ed25519 by openssl pkeyutl" 0 "$HELPER" challenge "$STORE" dev-ed "$WORK/chal" \
    "openssl pkeyutl -sign -rawin -inkey $WORK/ed.key -in $WORK/chal | openssl base64 -A"
expect_contains "ed25519 verified" "$OUT" "verified"
# A signature by the wrong key, and one over the challenge plus a newline, are refused.
check_exit "wrong key" 1 "$HELPER" challenge "$STORE" dev-ec "$WORK/chal" \
    "$SIGN_DGST $WORK/rsa.key $WORK/chal | openssl base64 -A"
expect_contains "wrong key refused" "$OUT" "refused: challenge: the signature does not verify"
check_exit "signed with a newline" 1 "$HELPER" challenge "$STORE" dev-ed "$WORK/chal" \
    "(cat $WORK/chal; echo) >$WORK/chal.nl && openssl pkeyutl -sign -rawin -inkey $WORK/ed.key -in $WORK/chal.nl | openssl base64 -A"
expect_contains "newline refused" "$OUT" "refused: challenge: the signature does not verify"
# openssl base64 without -A wraps at 64 characters: not strict base64 for us.
check_exit "wrapped base64" 1 "$HELPER" challenge "$STORE" dev-rsa "$WORK/chal" \
    "$SIGN_DGST $WORK/rsa.key $WORK/chal | openssl base64"
expect_contains "wrapped refused" "$OUT" "refused: challenge: response: base64:"

finish
