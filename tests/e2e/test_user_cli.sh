#!/usr/bin/env bash
# `iotsec user` against a fresh data directory: accounts are created, listed, changed and
# removed through the real binary; logins are tried with `user check`; TOTP codes come
# from an independent implementation (node's HMAC-SHA1 and our own base32 decoding here,
# not liboath). Secrets must never show up in argv, in `user list`, or on stderr.
source "$(dirname "$0")/lib.sh"

DATA="$WORK/data"
u() { "$IOTSEC" user --data "$DATA" "$@"; }

# The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 key at a Unix time.
totp_code() { # BASE32 UNIX_TIME
    node -e '
const crypto = require("crypto");
const [b32, t] = process.argv.slice(1);
const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
let bits = "";
for (const c of b32) { const v = alpha.indexOf(c); if (v < 0) process.exit(3); bits += v.toString(2).padStart(5, "0"); }
const key = [];
for (let i = 0; i + 8 <= bits.length; i += 8) key.push(parseInt(bits.slice(i, i + 8), 2));
const counter = Buffer.alloc(8);
counter.writeBigUInt64BE(BigInt(Math.floor(Number(t) / 30)));
const mac = crypto.createHmac("sha1", Buffer.from(key)).update(counter).digest();
const off = mac[19] & 15;
console.log(String((mac.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, "0"));' "$1" "$2"
}

# `user check NAME` with stdin from a string.
check_login() { # NAME EXPECTED_EXIT STDIN
    local name=$1 want=$2 input=$3
    check_exit "check $name" "$want" bash -c 'printf "%s" "$1" | "$2" user --data "$3" check "$4"' \
        _ "$input" "$IOTSEC" "$DATA" "$name"
}

# --- help, usage errors -------------------------------------------------------------------
check_exit "help" 0 "$IOTSEC" user --help
expect_contains "help text" "$OUT" "usage: iotsec user <command>"
check_exit "no command" 2 u
expect_eq "no command message" "$ERR" "iotsec: user: missing command: add, passwd, totp, role, list, disable, enable, rm or check"
check_exit "unknown command" 2 u frobnicate
check_exit "add without --role" 2 u add alice
expect_eq "missing role message" "$ERR" "iotsec: user add: missing --role"
check_exit "bad role" 2 u add alice --role root
expect_eq "bad role message" "$ERR" "iotsec: user add: unknown role 'root' (admin, operator or viewer)"
check_exit "a password in argv is not an option" 2 u add alice --role viewer --password hunter2hunter2
expect_eq "no --password option" "$ERR" "iotsec: user: unknown option '--password' (see --help)"
check_exit "abbreviated option refused" 2 u add alice --ro viewer
check_exit "option that does not apply" 2 u list --role admin
expect_eq "does not apply message" "$ERR" "iotsec: user list: --role does not apply (see --help)"
check_exit "extra argument" 2 u rm alice bob
expect_eq "extra argument message" "$ERR" "iotsec: user rm: unexpected argument 'bob'"
check_exit "role needs a role" 2 u role alice
expect_eq "role missing message" "$ERR" "iotsec: user role: missing ROLE"

# --- add with a one-time password ---------------------------------------------------------
check_exit "add alice" 0 u add alice --role operator
OTP_PW=$OUT
[[ "$OTP_PW" =~ ^[a-z2-7]{4}(-[a-z2-7]{4}){7}$ ]] && pass || fail "one-time password shape: '$OTP_PW'"
expect_eq "add message" "$ERR" "iotsec: user: alice created (operator); its one-time password is on stdout, shown only now"
expect_eq "store file is private" "$(stat -c %a "$DATA/store.db")" "600"
check_exit "duplicate name" 1 u add alice --role viewer
expect_contains "duplicate message" "$ERR" "iotsec: store: user alice: already exists"
check_exit "list" 0 u list
expect_contains "list header" "$OUT" "NAME                     ROLE     STATUS   TOTP PASSWORD  CREATED"
expect_contains "list row" "$OUT" "alice                    operator enabled  no   one-time"
case "$OUT" in *'$argon2'* | *"$OTP_PW"*) fail "list shows a hash or the password" ;; *) pass ;; esac
check_login alice 0 "$OTP_PW"
expect_eq "one-time login" "$OUT" "ok: alice, role operator, must change password"
check_login alice 1 "wrong password here"
expect_eq "failed login message" "$ERR" "iotsec: user check: login failed"
check_login nobody 1 "wrong password here"
expect_eq "unknown user: the same message" "$ERR" "iotsec: user check: login failed"

# --- passwd -------------------------------------------------------------------------------
make_secret_file "$WORK/pw1" "a long and new password"
check_exit "passwd from a file" 0 u passwd alice --password-file "$WORK/pw1"
expect_eq "passwd message" "$ERR" "iotsec: user: password of alice changed"
check_login alice 0 "a long and new password"
expect_eq "login with the new password" "$OUT" "ok: alice, role operator"
check_login alice 1 "$OTP_PW"
cp "$WORK/pw1" "$WORK/pw-open" && chmod 644 "$WORK/pw-open"
check_exit "world-readable password file refused" 1 u passwd alice --password-file "$WORK/pw-open"
expect_contains "permission message names the file" "$ERR" "$WORK/pw-open"
make_secret_file "$WORK/pw-short" "short"
check_exit "short password refused" 1 u passwd alice --password-file "$WORK/pw-short"
expect_eq "short password message" "$ERR" "iotsec: password: must be at least 12 bytes"
check_exit "passwd without a terminal or file" 1 u passwd alice </dev/null
expect_eq "no terminal message" "$ERR" "iotsec: user: no terminal to prompt on; give --password-file"
check_exit "passwd of an unknown user" 1 u passwd nobody --password-file "$WORK/pw1"
expect_eq "unknown user message" "$ERR" "iotsec: store: user nobody: not found"
check_exit "add with a password file" 0 u add bob --role viewer --password-file "$WORK/pw1"
expect_eq "add with file prints nothing on stdout" "$OUT" ""
check_login bob 0 "a long and new password"
expect_eq "bob's login" "$OUT" "ok: bob, role viewer"

# --- roles ----------------------------------------------------------------------------------
check_exit "role change" 0 u role bob operator
expect_eq "role message" "$ERR" "iotsec: user: bob is now operator"
check_exit "role bad" 2 u role bob superuser
check_login bob 0 "a long and new password"
expect_eq "bob is an operator now" "$OUT" "ok: bob, role operator"
make_secret_file "$WORK/pw-root" "root password, long enough"
check_exit "add root" 0 u add root --role admin --password-file "$WORK/pw-root"
check_exit "the last admin cannot be demoted" 1 u role root viewer
expect_eq "last admin message" "$ERR" "iotsec: operator: root is the last enabled admin; make another admin first"
check_exit "the last admin cannot be disabled" 1 u disable root
check_exit "the last admin cannot be removed" 1 u rm root
check_login root 0 "root password, long enough"
expect_eq "root is still admin" "$OUT" "ok: root, role admin"

# --- TOTP ---------------------------------------------------------------------------------
check_exit "totp enrol" 0 u totp alice
URI=$(sed -n 1p <<<"$OUT")
KEY=$(sed -n 2p <<<"$OUT")
[[ "$KEY" =~ ^[A-Z2-7]{32}$ ]] && pass || fail "base32 key shape: '$KEY'"
expect_eq "otpauth URI" "$URI" "otpauth://totp/iotsec:alice?secret=$KEY&issuer=iotsec&algorithm=SHA1&digits=6&period=30"
case "$ERR" in *"$KEY"*) fail "the key is on stderr" ;; *) pass ;; esac
check_exit "list after totp" 0 u list
expect_contains "list shows TOTP" "$OUT" "alice                    operator enabled  yes  set"
case "$OUT" in *"$KEY"*) fail "list shows the TOTP key" ;; *) pass ;; esac
check_login alice 1 "a long and new password"
expect_eq "no code: same message" "$ERR" "iotsec: user check: login failed"
NOW=$(date +%s)
CODE=$(totp_code "$KEY" "$NOW")
BAD=$(printf '%06d' $(((10#$CODE + 1) % 1000000)))
check_login alice 1 "$(printf 'a long and new password\n%s\n' "$BAD")"
check_login alice 1 "$(printf 'a long and new password\n %s\n' "$CODE")"
check_login alice 0 "$(printf 'a long and new password\n%s\n' "$CODE")"
expect_eq "password and code" "$OUT" "ok: alice, role operator"
OLD=$(totp_code "$KEY" $((NOW - 120)))
if [ "$OLD" != "$CODE" ]; then
    check_login alice 1 "$(printf 'a long and new password\n%s\n' "$OLD")"
fi
check_exit "totp disable" 0 u totp alice --disable
expect_eq "totp disable message" "$ERR" "iotsec: user: TOTP removed from alice"
expect_eq "totp disable prints nothing" "$OUT" ""
check_login alice 0 "a long and new password"

# --- disable, enable, rm ------------------------------------------------------------------
check_exit "disable" 0 u disable alice
check_login alice 1 "a long and new password"
check_exit "enable" 0 u enable alice
check_login alice 0 "a long and new password"
check_exit "rm" 0 u rm alice
expect_eq "rm message" "$ERR" "iotsec: user: alice removed"
check_exit "rm again" 1 u rm alice
expect_eq "rm again message" "$ERR" "iotsec: store: user alice: not found"
check_exit "list after rm" 0 u list
case "$OUT" in *alice*) fail "alice is still listed" ;; *) pass ;; esac

# --- secrets never in argv: look at a running login's command line ------------------------
mkfifo "$WORK/fifo"
"$IOTSEC" user --data "$DATA" check bob <"$WORK/fifo" >"$WORK/fifo.out" 2>&1 &
pid=$!
exec 3>"$WORK/fifo"
for _ in $(seq 50); do [ -r "/proc/$pid/cmdline" ] && break; sleep 0.1; done
cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" || true)
expect_contains "the running check is ours" "$cmdline" "user --data $DATA check bob"
case "$cmdline" in *"new password"*) fail "password in argv" ;; *) pass ;; esac
printf 'a long and new password\n' >&3
exec 3>&-
wait "$pid" && pass || fail "check through the fifo failed: $(cat "$WORK/fifo.out")"
expect_eq "check through the fifo" "$(cat "$WORK/fifo.out")" "ok: bob, role operator"

# --- the data directory is checked --------------------------------------------------------
mkdir -m 0777 "$WORK/open"
check_exit "group-writable data directory" 1 "$IOTSEC" user --data "$WORK/open" list
expect_contains "data directory message" "$ERR" "group or others may write to it"

finish
