#!/usr/bin/env bash
# The device lifecycle through the real CLI: `ca init`, `device issue|revoke|disable|enable`,
# `ca crl`, and `device verify`, the check the servers make. Certificates that must be
# refused are made with the real openssl CLI (some signed with our own CA key, taken from
# the vault), so each refusal is pki's or the registry's, not a parsing accident.
source "$(dirname "$0")/lib.sh"

cd "$WORK"
make_secret_file "$WORK/pass" "lifecycle test passphrase"
export IOTSEC_PASSPHRASE_FILE="$WORK/pass" IOTSEC_DATA="$WORK/var"
mkdir -m 700 out

# --- the CA -------------------------------------------------------------------------------
check_exit "ca init" 0 "$IOTSEC" ca init --intermediate
expect_contains "ca init message" "$ERR" "CA created"
for f in ca.crt ca-issuing.crt ca.crl ca-root.crl ca.json vault; do
    if [ -f "var/$f" ]; then pass; else fail "ca init wrote no var/$f"; fi
done
expect_eq "vault stays private" "$(stat -c %a var/vault)" "600"
check_exit "ca init twice" 1 "$IOTSEC" ca init
expect_contains "a CA is never overwritten" "$ERR" "never overwritten"
# openssl agrees that the intermediate chains to the root.
check_exit "openssl verifies the issuing CA" 0 openssl verify -x509_strict -CAfile var/ca.crt var/ca-issuing.crt
check_exit "ca show" 0 "$IOTSEC" ca show
expect_contains "ca show lists the issuing CA" "$OUT" "ca-issuing.crt"

# --- issue: key made here, and from a CSR -----------------------------------------------
check_exit "issue with a made key" 0 "$IOTSEC" device issue --id dev-1 --model sensor-v2 --out out
expect_eq "key file mode" "$(stat -c %a out/dev-1.key)" "600"
cat var/ca-issuing.crt var/ca.crt >chain.pem
check_exit "openssl verifies the device cert" 0 openssl verify -x509_strict -purpose sslclient -CAfile var/ca.crt -untrusted var/ca-issuing.crt out/dev-1.crt
subject=$(openssl x509 -in out/dev-1.crt -noout -subject -nameopt RFC2253)
expect_eq "CN is the device id" "$subject" "subject=CN=dev-1"
text=$(openssl x509 -in out/dev-1.crt -noout -text)
expect_contains "EKU clientAuth" "$text" "TLS Web Client Authentication"
expect_contains "CA:FALSE" "$text" "CA:FALSE"
serial=$(openssl x509 -in out/dev-1.crt -noout -serial | cut -d= -f2)
expect_eq "128-bit serial" "${#serial}" "32"
check_exit "the key matches the certificate" 0 sh -c \
    "[ \"\$(openssl pkey -in out/dev-1.key -pubout)\" = \"\$(openssl x509 -in out/dev-1.crt -noout -pubkey)\" ]"
check_exit "verify dev-1" 0 "$IOTSEC" device verify --cert out/dev-1.crt
expect_contains "verify names the device" "$OUT" "accepted: device dev-1"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev-2.key \
    -subj /CN=dev-2 -out dev-2.csr 2>/dev/null
check_exit "issue from a CSR" 0 "$IOTSEC" device issue --id dev-2 --csr dev-2.csr
echo "$OUT" >dev-2.crt
check_exit "verify dev-2" 0 "$IOTSEC" device verify --cert dev-2.crt
openssl req -new -newkey rsa:2048 -nodes -keyout rsa.key -subj /CN=dev-rsa -out rsa.csr 2>/dev/null
check_exit "issue from an RSA CSR" 0 "$IOTSEC" device issue --id dev-rsa --csr rsa.csr --out out
check_exit "verify RSA device" 0 "$IOTSEC" device verify --cert out/dev-rsa.crt

# --- bad input to issue -----------------------------------------------------------------
check_exit "duplicate id" 1 "$IOTSEC" device issue --id dev-1 --out "$WORK"
expect_contains "duplicate id message" "$ERR" "already enrolled"
check_exit "bad id" 2 "$IOTSEC" device issue --id 'dev 1' --out out
expect_contains "bad id message" "$ERR" "[A-Za-z0-9_-]"
check_exit "key without --out" 2 "$IOTSEC" device issue --id dev-9
check_exit "CSR with another CN" 1 "$IOTSEC" device issue --id dev-3 --csr dev-2.csr
check_exit "garbage CSR" 1 "$IOTSEC" device issue --id dev-3 --csr /etc/hostname
check_exit "no half-enrolled device" 1 "$IOTSEC" device show dev-3
check_exit "unknown option" 2 "$IOTSEC" device issue --id dev-3 --ou out
check_exit "--days out of range" 2 "$IOTSEC" device issue --id dev-3 --out out --days 0
touch out/dev-4.crt
check_exit "refuses to overwrite a cert file" 1 "$IOTSEC" device issue --id dev-4 --out out
check_exit "nothing recorded for dev-4" 1 "$IOTSEC" device show dev-4

# --- time -----------------------------------------------------------------------------
check_exit "expired" 1 "$IOTSEC" device verify --cert out/dev-1.crt --at 2040-01-01T00:00:00Z
expect_contains "expired message" "$ERR" "expired"
check_exit "not yet valid" 1 "$IOTSEC" device verify --cert out/dev-1.crt --at 2020-01-01T00:00:00Z
expect_contains "not yet valid message" "$ERR" "not yet valid"

# --- certificates pki must refuse, made with openssl --------------------------------------
"$IOTSEC" vault get ca-issuing.key >issuing.key
chmod 600 issuing.key
openssl ecparam -name prime256v1 -genkey -noout -out leaf.key 2>/dev/null
sign_leaf() { # NAME SUBJECT EXTENSIONS
    printf '%s\n' "$3" >"$1.ext"
    openssl req -new -key leaf.key -subj "$2" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA var/ca-issuing.crt -CAkey issuing.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 30 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    cat "$1.crt" var/ca-issuing.crt >"$1.chain"
}
good_ext='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid'
sign_leaf ghost /CN=ghost "$good_ext"
check_exit "unknown device (sound certificate)" 1 "$IOTSEC" device verify --cert ghost.chain
expect_contains "unknown device reason" "$ERR" "refused (unknown_device)"
sign_leaf server /CN=dev-1 "${good_ext/clientAuth/serverAuth}"
check_exit "serverAuth-only EKU" 1 "$IOTSEC" device verify --cert server.chain
expect_contains "serverAuth refusal" "$ERR" "refused (bad_certificate)"
sign_leaf catrue /CN=dev-1 "${good_ext/CA:FALSE/CA:TRUE}"
check_exit "CA:TRUE leaf" 1 "$IOTSEC" device verify --cert catrue.chain
expect_contains "CA:TRUE refusal" "$ERR" "refused (bad_certificate)"
sign_leaf badcn "/CN=dev-1 extra" "$good_ext"
check_exit "bad CN" 1 "$IOTSEC" device verify --cert badcn.chain
expect_contains "bad CN refusal" "$ERR" "refused (bad_certificate)"
sign_leaf twocn "/CN=dev-1/CN=dev-2" "$good_ext"
check_exit "two CNs" 1 "$IOTSEC" device verify --cert twocn.chain
# The same key and CN as dev-1, but not the certificate the registry issued.
sign_leaf forged /CN=dev-1 "$good_ext"
check_exit "a certificate the registry never issued" 1 "$IOTSEC" device verify --cert forged.chain
expect_contains "not current reason" "$ERR" "refused (not_current)"
openssl req -x509 -new -key leaf.key -subj /CN=dev-1 -days 30 -out self.crt 2>/dev/null
check_exit "self-signed" 1 "$IOTSEC" device verify --cert self.crt
expect_contains "self-signed refusal" "$ERR" "refused (bad_certificate)"
# Another platform's CA issues a device with a known id.
IOTSEC_DATA="$WORK/other" "$IOTSEC" ca init >/dev/null 2>&1
IOTSEC_DATA="$WORK/other" "$IOTSEC" device issue --id dev-1 --out "$WORK/other" >/dev/null 2>&1
check_exit "wrong CA" 1 "$IOTSEC" device verify --cert "$WORK/other/dev-1.crt"
expect_contains "wrong CA refusal" "$ERR" "refused (bad_certificate)"
check_exit "verify without --cert" 2 "$IOTSEC" device verify

# --- disable / enable ---------------------------------------------------------------------
check_exit "disable" 0 "$IOTSEC" device disable dev-1
check_exit "disabled device refused" 1 "$IOTSEC" device verify --cert out/dev-1.crt
expect_contains "disabled reason" "$ERR" "refused (disabled)"
check_exit "enable" 0 "$IOTSEC" device enable dev-1
check_exit "enabled device accepted" 0 "$IOTSEC" device verify --cert out/dev-1.crt
check_exit "disable unknown device" 1 "$IOTSEC" device disable nobody
expect_contains "unknown device message" "$ERR" "nobody"

# --- renew: the old certificate is refused at once -----------------------------------------
cp out/dev-1.crt dev-1-old.crt
check_exit "renew" 0 "$IOTSEC" device issue --id dev-1 --out out --renew
check_exit "renewed certificate accepted" 0 "$IOTSEC" device verify --cert out/dev-1.crt
check_exit "old certificate refused" 1 "$IOTSEC" device verify --cert dev-1-old.crt
expect_contains "old certificate is on the CRL" "$ERR" "revoked"
old_serial=$(openssl x509 -in dev-1-old.crt -noout -serial | cut -d= -f2)
crl_text=$(openssl crl -in var/ca.crl -noout -text)
expect_contains "CRL lists the superseded certificate" "$crl_text" "$old_serial"
check_exit "renew unknown device" 1 "$IOTSEC" device issue --id nobody --out out --renew

# --- revoke -------------------------------------------------------------------------------
number_before=$(openssl crl -in var/ca.crl -noout -crlnumber | cut -d= -f2)
check_exit "revoke" 0 "$IOTSEC" device revoke dev-2 --reason key-compromise
check_exit "revoked device refused" 1 "$IOTSEC" device verify --cert dev-2.crt
expect_contains "revoked refusal" "$ERR" "revoked"
number_after=$(openssl crl -in var/ca.crl -noout -crlnumber | cut -d= -f2)
if [ $((number_after)) -gt $((number_before)) ]; then pass; else fail "CRL number did not grow"; fi
# An independent verifier sees the revocation in our CRL.
cat var/ca-issuing.crt var/ca.crt >trust.pem
cat var/ca.crl var/ca-root.crl >crls.pem
check_exit "openssl sees the revocation" 2 openssl verify -crl_check_all -CAfile trust.pem -CRLfile crls.pem dev-2.crt
check_exit "openssl accepts a good device with the CRLs" 0 openssl verify -crl_check_all -CAfile trust.pem -CRLfile crls.pem out/dev-1.crt
check_exit "revoke twice" 1 "$IOTSEC" device revoke dev-2
expect_contains "revoke twice message" "$ERR" "already revoked"
check_exit "revoked is final" 1 "$IOTSEC" device enable dev-2
expect_contains "final message" "$ERR" "final"
check_exit "bad reason" 2 "$IOTSEC" device revoke dev-1 --reason because
# Each change is in the security event log, in the same transaction as the change.
check_exit "events of the lifecycle" 0 "$IOTSEC" events list --json
expect_contains "revocation event" "$OUT" '"eventType":"device_revoked","severity":"medium","deviceId":"dev-2"'
expect_contains "revocation reason" "$OUT" '"reason":"key-compromise"'
expect_contains "disable event" "$OUT" '"eventType":"device_disabled"'
check_exit "event log intact" 0 "$IOTSEC" events verify
check_exit "list revoked" 0 "$IOTSEC" device list --status revoked
expect_contains "list shows dev-2" "$OUT" "dev-2"
check_exit "list bad status" 2 "$IOTSEC" device list --status gone
check_exit "show" 0 "$IOTSEC" device show dev-1
expect_contains "show lists both certificates" "$OUT" "revoked"

# --- ca crl -------------------------------------------------------------------------------
check_exit "ca crl" 0 "$IOTSEC" ca crl --next-update-days 2
crl_text=$(openssl crl -in var/ca.crl -noout -text)
expect_contains "fresh CRL still lists dev-2" "$crl_text" "Key Compromise"
check_exit "wrong passphrase changes nothing" 1 env IOTSEC_PASSPHRASE_FILE="$WORK/other-pass" "$IOTSEC" device disable dev-1
check_exit "dev-1 still accepted" 0 "$IOTSEC" device verify --cert out/dev-1.crt

# --- the servers' certificate ----------------------------------------------------------
check_exit "server-cert" 0 "$IOTSEC" ca server-cert
expect_eq "server key mode" "$(stat -c %a var/server.key)" "600"
check_exit "openssl: server cert for 127.0.0.1" 0 openssl verify -x509_strict -purpose sslserver -verify_ip 127.0.0.1 -CAfile var/ca.crt -untrusted var/server.crt var/server.crt
check_exit "openssl: server cert for localhost" 0 openssl verify -purpose sslserver -verify_hostname localhost -CAfile var/ca.crt -untrusted var/server.crt var/server.crt
check_exit "openssl: not for another name" 2 openssl verify -purpose sslserver -verify_hostname example.com -CAfile var/ca.crt -untrusted var/server.crt var/server.crt
check_exit "server-cert with names" 0 "$IOTSEC" ca server-cert --dns iot.example --ip 10.0.0.5 --days 30
san=$(openssl x509 -in var/server.crt -noout -ext subjectAltName)
expect_contains "SAN has the DNS name" "$san" "DNS:iot.example"
expect_contains "SAN has the IP" "$san" "IP Address:10.0.0.5"
check_exit "server-cert refuses a wildcard" 1 "$IOTSEC" ca server-cert --dns '*.example'
check_exit "a device certificate is not a server certificate" 1 "$IOTSEC" device verify --cert var/server.crt

# --- help ---------------------------------------------------------------------------------
for cmd in ca device; do
    check_exit "$cmd --help" 0 "$IOTSEC" "$cmd" --help
    expect_contains "$cmd --help text" "$OUT" "usage: iotsec $cmd"
done

# --- the root key in a PKCS#11 token (SoftHSM2) -----------------------------------------
MODULE=${IOTSEC_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$WORK/tokens" >"$WORK/softhsm2.conf"
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
make_secret_file "$WORK/pin" "$(openssl rand -hex 8)"
make_secret_file "$WORK/so-pin" "$(openssl rand -hex 8)"
export IOTSEC_PKCS11_MODULE="$MODULE" IOTSEC_HSM_TOKEN=ca-token IOTSEC_HSM_PIN_FILE="$WORK/pin"
"$IOTSEC" hsm init-token --so-pin-file "$WORK/so-pin" 2>/dev/null
export IOTSEC_DATA="$WORK/hsm-var"
check_exit "ca init with the root key in the token" 0 "$IOTSEC" ca init --hsm ca-root
expect_eq "ca.json names the token key" "$(cat hsm-var/ca.json)" '{"rootKey":"pkcs11:ca-root","version":1}'
if [ -e hsm-var/vault ]; then fail "a token CA needs no vault"; else pass; fi
check_exit "issue with the token key" 0 "$IOTSEC" device issue --id tok-1 --out out
check_exit "token-signed device verifies" 0 "$IOTSEC" device verify --cert out/tok-1.crt
check_exit "openssl verifies the token-signed device" 0 openssl verify -x509_strict -CAfile hsm-var/ca.crt out/tok-1.crt
check_exit "revoke with the token key" 0 "$IOTSEC" device revoke tok-1
check_exit "token CA's CRL refuses tok-1" 1 "$IOTSEC" device verify --cert out/tok-1.crt
make_secret_file "$WORK/bad-pin" "0000"
check_exit "wrong PIN" 1 env IOTSEC_HSM_PIN_FILE="$WORK/bad-pin" "$IOTSEC" device issue --id tok-2 --out out
expect_contains "wrong PIN message" "$ERR" "PIN"
check_exit "nothing recorded without the key" 1 "$IOTSEC" device show tok-2

finish
