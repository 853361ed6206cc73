#!/usr/bin/env bash
# `iotsec hsm` and an HSM-protected vault against a real SoftHSM2 token that this test
# creates in a temporary directory. A signature made in the token must verify with plain
# `openssl dgst -sha256 -verify`.
source "$(dirname "$0")/lib.sh"

MODULE=${IOTSEC_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" >"$WORK/softhsm2.conf"
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
make_secret_file "$WORK/pin" "$(openssl rand -hex 8)"
make_secret_file "$WORK/so-pin" "$(openssl rand -hex 8)"
export IOTSEC_PKCS11_MODULE="$MODULE" IOTSEC_HSM_TOKEN=iotsec-test IOTSEC_HSM_PIN_FILE="$WORK/pin"

# --- the token ----------------------------------------------------------------------------
check_exit "init-token" 0 "$IOTSEC" hsm init-token --so-pin-file "$WORK/so-pin"
expect_eq "init-token message" "$ERR" "iotsec: hsm: token 'iotsec-test' initialised"
check_exit "init-token twice" 1 "$IOTSEC" hsm init-token --so-pin-file "$WORK/so-pin"
expect_eq "duplicate token message" "$ERR" "iotsec: hsm: a token labelled 'iotsec-test' already exists"

# --- keys, signatures ---------------------------------------------------------------------
check_exit "keygen ec" 0 "$IOTSEC" hsm keygen --label release
expect_eq "keygen message" "$ERR" "iotsec: hsm: ec key 'release' generated in the token"
check_exit "keygen duplicate label" 1 "$IOTSEC" hsm keygen --label release
expect_eq "duplicate label message" "$ERR" "iotsec: hsm: a key labelled 'release' already exists"
check_exit "pubkey" 0 "$IOTSEC" hsm pubkey --label release --out "$WORK/pub.pem"
expect_contains "pubkey is a P-256 PEM" "$(openssl pkey -pubin -in "$WORK/pub.pem" -noout -text)" "NIST CURVE: P-256"
head -c 100000 /dev/urandom >"$WORK/image"
check_exit "sign" 0 "$IOTSEC" hsm sign --label release --in "$WORK/image" --out "$WORK/image.sig"
check_exit "openssl verifies the token's signature" 0 \
    openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/image.sig" "$WORK/image"
expect_eq "openssl says" "$OUT" "Verified OK"
check_exit "iotsec verifies" 0 "$IOTSEC" hsm verify --label release --in "$WORK/image" --sig "$WORK/image.sig"
expect_eq "verify says" "$OUT" "signature OK"
cp "$WORK/image" "$WORK/tampered" && printf 'x' | dd of="$WORK/tampered" bs=1 seek=500 conv=notrunc 2>/dev/null
check_exit "iotsec refuses a tampered image" 1 "$IOTSEC" hsm verify --label release --in "$WORK/tampered" --sig "$WORK/image.sig"
expect_eq "tampered message" "$ERR" "iotsec: hsm: signature verification failed"
check_exit "openssl refuses it too" 1 \
    openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/image.sig" "$WORK/tampered"
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/other.key" 2>/dev/null
openssl dgst -sha256 -sign "$WORK/other.key" -out "$WORK/other.sig" "$WORK/image"
check_exit "a signature by another key is refused" 1 "$IOTSEC" hsm verify --label release --in "$WORK/image" --sig "$WORK/other.sig"
printf 'garbage' >"$WORK/garbage.sig"
check_exit "a malformed signature is refused" 1 "$IOTSEC" hsm verify --label release --in "$WORK/image" --sig "$WORK/garbage.sig"
expect_eq "malformed signature message" "$ERR" "iotsec: hsm: the signature is not a DER ECDSA signature"
check_exit "unknown key label" 1 "$IOTSEC" hsm sign --label nope --in "$WORK/image" --out "$WORK/x.sig"
expect_eq "unknown label message" "$ERR" "iotsec: hsm: no key labelled 'nope'"

# --- failures name their CKR_ code or the option -----------------------------------------
make_secret_file "$WORK/bad-pin" "000000"
check_exit "wrong PIN" 1 "$IOTSEC" hsm pubkey --label release --pin-file "$WORK/bad-pin"
expect_eq "wrong PIN message" "$ERR" "iotsec: hsm: C_Login: CKR_PIN_INCORRECT"
check_exit "unknown token" 1 "$IOTSEC" hsm pubkey --label release --token other
expect_eq "unknown token message" "$ERR" "iotsec: hsm: no token labelled 'other'"
check_exit "missing module" 1 "$IOTSEC" hsm pubkey --label release --module "$WORK/none.so"
expect_contains "missing module message" "$ERR" "iotsec: hsm: cannot load module $WORK/none.so"
check_exit "not a PKCS#11 module" 1 "$IOTSEC" hsm pubkey --label release --module /lib/x86_64-linux-gnu/libc.so.6
expect_contains "not a module message" "$ERR" "is not a PKCS#11 module"
printf '1234\n' >"$WORK/open-pin" && chmod 644 "$WORK/open-pin"
check_exit "world-readable PIN file refused" 1 "$IOTSEC" hsm pubkey --label release --pin-file "$WORK/open-pin"
expect_contains "PIN file mode message" "$ERR" "readable by group or others (mode 0644)"
check_exit "missing --label" 2 "$IOTSEC" hsm sign --in "$WORK/image" --out "$WORK/x.sig"
expect_eq "missing label message" "$ERR" "iotsec: hsm sign: missing --label"
check_exit "no PIN on argv" 2 "$IOTSEC" hsm pubkey --label release --pin 1234
check_exit "bad key type" 2 "$IOTSEC" hsm keygen --label x --type rsa

# --- a vault whose data key the token wraps -----------------------------------------------
check_exit "keygen aes" 0 "$IOTSEC" hsm keygen --label vault-kek --type aes
V="$WORK/vault"
check_exit "vault init with a token key" 0 "$IOTSEC" vault init --vault "$V" --hsm-key vault-kek
check_exit "put through the token" 0 sh -c "printf 'in the token' | '$IOTSEC' vault put s --vault '$V'"
check_exit "get through the token" 0 "$IOTSEC" vault get s --vault "$V"
expect_eq "token vault value" "$OUT" "in the token"
check_exit "token vault with a wrong PIN" 1 "$IOTSEC" vault get s --vault "$V" --pin-file "$WORK/bad-pin"
expect_eq "token vault wrong PIN message" "$ERR" "iotsec: hsm: C_Login: CKR_PIN_INCORRECT"
check_exit "token vault without token options" 1 env -u IOTSEC_PKCS11_MODULE "$IOTSEC" vault get s --vault "$V"
expect_eq "token vault needs the module" "$ERR" "iotsec: vault: token key needs --hsm-module (or IOTSEC_PKCS11_MODULE)"
check_exit "keygen second aes" 0 "$IOTSEC" hsm keygen --label other-kek --type aes
cp "$V" "$WORK/vault-copy"
label_offset=15 # magic 8, version 2, source 1, flags 1, params length 2, label length 1
printf 'other-kek' | dd of="$WORK/vault-copy" bs=1 seek=$label_offset conv=notrunc 2>/dev/null
check_exit "header naming another token key is refused" 1 "$IOTSEC" vault get s --vault "$WORK/vault-copy"
expect_eq "another key message" "$ERR" "iotsec: vault $WORK/vault-copy: wrong token key or corrupted file"
make_secret_file "$WORK/pass" "moving to a passphrase"
check_exit "rekey from token to passphrase" 0 "$IOTSEC" vault rekey --vault "$V" --new-passphrase-file "$WORK/pass"
check_exit "now opens with the passphrase" 0 "$IOTSEC" vault get s --vault "$V" --passphrase-file "$WORK/pass"
expect_eq "value after moving out of the token" "$OUT" "in the token"
check_exit "rekey from passphrase back into the token" 0 "$IOTSEC" vault rekey --vault "$V" --passphrase-file "$WORK/pass" --new-hsm-key other-kek
check_exit "opens with the token again" 0 "$IOTSEC" vault get s --vault "$V"
expect_eq "value after moving into the token" "$OUT" "in the token"
finish
