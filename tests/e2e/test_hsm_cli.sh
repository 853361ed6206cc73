#!/usr/bin/env bash
# `iotsec hsm` and an HSM-protected vault against a real SoftHSM2 token that this test
# creates in a temporary directory (removed on exit by lib.sh's trap). A signature made in
# the token must verify with plain `openssl dgst -sha256 -verify`; every failure must be
# exactly one line on stderr with the documented exit status (1 failure, 2 usage).
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
# An independent tool sees the token, initialised and with a user PIN.
slots=$(softhsm2-util --show-slots)
expect_contains "softhsm2-util sees the token" "$slots" "Label:            iotsec-test"
expect_contains "the user PIN is set" "$slots" "User PIN init.:   yes"

# --- keys, signatures ---------------------------------------------------------------------
check_exit "keygen ec" 0 "$IOTSEC" hsm keygen --label release
expect_eq "keygen message" "$ERR" "iotsec: hsm: ec key 'release' generated in the token"
check_exit "keygen duplicate label" 1 "$IOTSEC" hsm keygen --label release
expect_eq "duplicate label message" "$ERR" "iotsec: hsm: a key labelled 'release' already exists"
check_exit "pubkey" 0 "$IOTSEC" hsm pubkey --label release --out "$WORK/pub.pem"
expect_eq "pubkey --out prints nothing" "$OUT$ERR" ""
expect_contains "pubkey is a P-256 PEM" "$(openssl pkey -pubin -in "$WORK/pub.pem" -noout -text)" "NIST CURVE: P-256"
check_exit "pubkey to stdout" 0 "$IOTSEC" hsm pubkey --label release
expect_eq "stdout PEM is the file's PEM" "$OUT" "$(cat "$WORK/pub.pem")"
head -c 100000 /dev/urandom >"$WORK/image"
check_exit "sign" 0 "$IOTSEC" hsm sign --label release --in "$WORK/image" --out "$WORK/image.sig"
expect_eq "sign prints nothing" "$OUT$ERR" ""
expect_contains "the signature is a DER SEQUENCE of two INTEGERs" \
    "$(openssl asn1parse -inform DER -in "$WORK/image.sig")" "prim: INTEGER"
check_exit "openssl verifies the token's signature" 0 \
    openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/image.sig" "$WORK/image"
expect_eq "openssl says" "$OUT" "Verified OK"
check_exit "iotsec verifies" 0 "$IOTSEC" hsm verify --label release --in "$WORK/image" --sig "$WORK/image.sig"
expect_eq "verify says" "$OUT" "signature OK"
expect_eq "verify is quiet on stderr" "$ERR" ""
cp "$WORK/image" "$WORK/tampered" && printf 'x' | dd of="$WORK/tampered" bs=1 seek=500 conv=notrunc 2>/dev/null
cmp -s "$WORK/image" "$WORK/tampered" && fail "the tampered copy is identical" || pass
check_exit "iotsec refuses a tampered image" 1 "$IOTSEC" hsm verify --label release --in "$WORK/tampered" --sig "$WORK/image.sig"
expect_eq "tampered message" "$ERR" "iotsec: hsm: signature verification failed"
expect_eq "no OK on stdout" "$OUT" ""
check_exit "openssl refuses it too" 1 \
    openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/image.sig" "$WORK/tampered"
expect_eq "openssl says" "$OUT" "Verification failure"
# A signature by OpenSSL with a software key does not pass for the token's key.
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/other.key" 2>/dev/null
openssl dgst -sha256 -sign "$WORK/other.key" -out "$WORK/other.sig" "$WORK/image"
check_exit "a signature by another key is refused" 1 "$IOTSEC" hsm verify --label release --in "$WORK/image" --sig "$WORK/other.sig"
expect_eq "another key message" "$ERR" "iotsec: hsm: signature verification failed"
printf 'garbage' >"$WORK/garbage.sig"
check_exit "a malformed signature is refused" 1 "$IOTSEC" hsm verify --label release --in "$WORK/image" --sig "$WORK/garbage.sig"
expect_eq "malformed signature message" "$ERR" "iotsec: hsm: the signature is not a DER ECDSA signature"
check_exit "unknown key label" 1 "$IOTSEC" hsm sign --label nope --in "$WORK/image" --out "$WORK/x.sig"
expect_eq "unknown label message" "$ERR" "iotsec: hsm: no key labelled 'nope'"
[ -e "$WORK/x.sig" ] && fail "a failed sign left $WORK/x.sig" || pass
check_exit "sign a missing file" 1 "$IOTSEC" hsm sign --label release --in "$WORK/absent" --out "$WORK/x.sig"
expect_contains "missing input names the file" "$ERR" "$WORK/absent"

# --- failures name their CKR_ code or the option -----------------------------------------
make_secret_file "$WORK/bad-pin" "000000"
check_exit "wrong PIN" 1 "$IOTSEC" hsm pubkey --label release --pin-file "$WORK/bad-pin"
expect_eq "wrong PIN message" "$ERR" "iotsec: hsm: C_Login: CKR_PIN_INCORRECT"
check_exit "unknown token" 1 "$IOTSEC" hsm pubkey --label release --token other
expect_eq "unknown token message" "$ERR" "iotsec: hsm: no token labelled 'other'"
check_exit "missing module" 1 "$IOTSEC" hsm pubkey --label release --module "$WORK/none.so"
expect_contains "missing module message" "$ERR" "iotsec: hsm: cannot load module $WORK/none.so"
check_exit "not a PKCS#11 module" 1 "$IOTSEC" hsm pubkey --label release --module libc.so.6
expect_eq "not a module message" "$ERR" "iotsec: hsm: libc.so.6 is not a PKCS#11 module (no C_GetFunctionList)"
cp "$WORK/pin" "$WORK/open-pin" && chmod 644 "$WORK/open-pin"
check_exit "world-readable PIN file refused" 1 "$IOTSEC" hsm pubkey --label release --pin-file "$WORK/open-pin"
expect_eq "PIN file mode message" "$ERR" \
    "iotsec: PIN file $WORK/open-pin: readable by group or others (mode 0644); it must be 0600 or stricter"
ln -s "$WORK/pin" "$WORK/pin-link"
check_exit "PIN file behind a symlink refused" 1 "$IOTSEC" hsm pubkey --label release --pin-file "$WORK/pin-link"
expect_contains "symlink message" "$ERR" "is a symbolic link"
check_exit "--pin-file overrides the environment" 0 env IOTSEC_HSM_PIN_FILE="$WORK/bad-pin" \
    "$IOTSEC" hsm pubkey --label release --pin-file "$WORK/pin"

# --- usage errors: exit 2, one line, nothing loaded --------------------------------------
check_exit "missing --label" 2 "$IOTSEC" hsm sign --in "$WORK/image" --out "$WORK/x.sig"
expect_eq "missing label message" "$ERR" "iotsec: hsm sign: missing --label"
check_exit "missing --sig" 2 "$IOTSEC" hsm verify --label release --in "$WORK/image"
expect_eq "missing sig message" "$ERR" "iotsec: hsm verify: missing --sig"
check_exit "no PIN on argv" 2 "$IOTSEC" hsm pubkey --label release --pin 1234
expect_eq "unknown option message" "$ERR" "iotsec: hsm: unknown option '--pin' (see --help)"
check_exit "bad key type" 2 "$IOTSEC" hsm keygen --label x --type rsa
expect_eq "bad type message" "$ERR" "iotsec: hsm keygen: --type must be ec or aes, not 'rsa'"
check_exit "an option the command does not take" 2 "$IOTSEC" hsm verify --label release \
    --in "$WORK/image" --sig "$WORK/image.sig" --out "$WORK/x"
expect_eq "does not apply message" "$ERR" "iotsec: hsm verify: --out does not apply (see --help)"
check_exit "option without its value" 2 "$IOTSEC" hsm pubkey --label
expect_eq "needs a value message" "$ERR" "iotsec: hsm: option '--label' needs a value (see --help)"
check_exit "empty label" 2 "$IOTSEC" hsm pubkey --label=
expect_eq "empty value message" "$ERR" "iotsec: hsm: option '--label' needs a value"
check_exit "unknown short option" 2 "$IOTSEC" hsm pubkey -x --label release
expect_eq "short option message" "$ERR" "iotsec: hsm: unknown option '-x' (see --help)"
check_exit "no command" 2 "$IOTSEC" hsm --label release
expect_eq "no command message" "$ERR" "iotsec: hsm: missing command: init-token, keygen, sign, verify or pubkey"
check_exit "unknown command" 2 "$IOTSEC" hsm export --label release
expect_eq "unknown command message" "$ERR" "iotsec: hsm: unknown command 'export' (init-token, keygen, sign, verify, pubkey)"
check_exit "no module anywhere" 2 env -u IOTSEC_PKCS11_MODULE "$IOTSEC" hsm pubkey --label release
expect_eq "no module message" "$ERR" "iotsec: hsm pubkey: give --module or set IOTSEC_PKCS11_MODULE"
check_exit "an empty variable is unset" 2 env IOTSEC_HSM_PIN_FILE= "$IOTSEC" hsm pubkey --label release
expect_eq "no PIN file message" "$ERR" "iotsec: hsm pubkey: give --pin-file or set IOTSEC_HSM_PIN_FILE"
check_exit "--help" 0 "$IOTSEC" hsm --help
expect_contains "usage on stdout" "$OUT" "usage: iotsec hsm <command> [options]"
expect_eq "nothing on stderr" "$ERR" ""

# --- a vault whose data key the token wraps -----------------------------------------------
check_exit "keygen aes" 0 "$IOTSEC" hsm keygen --label vault-kek --type aes
expect_eq "keygen aes message" "$ERR" "iotsec: hsm: aes key 'vault-kek' generated in the token"
check_exit "an AES key does not sign" 1 "$IOTSEC" hsm sign --label vault-kek --in "$WORK/image" --out "$WORK/x.sig"
expect_eq "AES key sign message" "$ERR" "iotsec: hsm: no key labelled 'vault-kek'"
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
