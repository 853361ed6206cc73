#!/usr/bin/env bash
# `iotsec vault` as an operator uses it: every command, and every way to get it wrong,
# each with its exit status, its one line on stderr, and the vault file untouched.
source "$(dirname "$0")/lib.sh"

V="$WORK/data/vault"
P="$WORK/pass"
make_secret_file "$P" "correct horse battery staple"
sum() { sha256sum "$1" | cut -d' ' -f1; }

# --- init -------------------------------------------------------------------------------
check_exit "init" 0 "$IOTSEC" vault init --vault "$V" --passphrase-file "$P"
expect_eq "init message" "$ERR" "iotsec: vault $V created"
expect_eq "vault file mode" "$(stat -c %a "$V")" "600"
expect_eq "data directory mode" "$(stat -c %a "$WORK/data")" "700"
check_exit "init refuses an existing vault" 1 "$IOTSEC" vault init --vault "$V" --passphrase-file "$P"
expect_contains "init existing message" "$ERR" "already exists; a vault is never overwritten"
expect_eq "stored KDF is scrypt N=2^15 r=8 p=1" "$(od -An -tx1 -j12 -N11 "$V" | tr -d ' \n')" \
    "001a0f0000000800000001"

# --- put / get / list / rm --------------------------------------------------------------
export IOTSEC_PASSPHRASE_FILE="$P"
check_exit "put from stdin" 0 sh -c "printf 's3cr3t' | '$IOTSEC' vault put db/password --vault '$V'"
check_exit "get" 0 "$IOTSEC" vault get db/password --vault "$V"
expect_eq "get returns the value" "$OUT" "s3cr3t"
head -c 65536 /dev/urandom >"$WORK/blob"
check_exit "put binary" 0 sh -c "'$IOTSEC' vault put blob --vault '$V' <'$WORK/blob'"
"$IOTSEC" vault get blob --vault "$V" >"$WORK/blob.out"
expect_eq "binary value round-trips byte for byte" "$(sum "$WORK/blob.out")" "$(sum "$WORK/blob")"
check_exit "put empty value" 0 sh -c "'$IOTSEC' vault put empty --vault '$V' </dev/null"
check_exit "get empty value" 0 "$IOTSEC" vault get empty --vault "$V"
expect_eq "empty value" "$OUT" ""
check_exit "put replaces" 0 sh -c "printf 'n3w' | '$IOTSEC' vault put db/password --vault '$V'"
check_exit "list" 0 "$IOTSEC" vault list --vault "$V"
expect_eq "list is sorted" "$OUT" "$(printf 'blob\ndb/password\nempty')"
expect_eq "replaced value" "$("$IOTSEC" vault get db/password --vault "$V")" "n3w"
check_exit "rm" 0 "$IOTSEC" vault rm empty --vault "$V"
check_exit "get removed" 1 "$IOTSEC" vault get empty --vault "$V"
expect_eq "get removed message" "$ERR" "iotsec: vault: no secret named 'empty'"
check_exit "rm missing" 1 "$IOTSEC" vault rm nothing --vault "$V"
check_exit "bad name" 1 sh -c "printf x | '$IOTSEC' vault put 'bad name' --vault '$V'"
expect_eq "bad name message" "$ERR" \
    "iotsec: vault: invalid character 0x20 at position 4 of a secret name (allowed: letters, digits and ._:/@-)"
head -c $((1024 * 1024 + 1)) /dev/zero >"$WORK/big"
before=$(sum "$V")
check_exit "value over 1 MiB refused" 1 sh -c "'$IOTSEC' vault put big --vault '$V' <'$WORK/big'"
expect_eq "over-limit message" "$ERR" "iotsec: stdin: input exceeds the limit of 1048576 bytes"
expect_eq "refused put leaves the file" "$(sum "$V")" "$before"

# --- wrong keys, damaged files ----------------------------------------------------------
make_secret_file "$WORK/wrong" "not the passphrase"
before=$(sum "$V")
check_exit "wrong passphrase" 1 "$IOTSEC" vault get blob --vault "$V" --passphrase-file "$WORK/wrong"
expect_eq "wrong passphrase message" "$ERR" "iotsec: vault $V: wrong passphrase or corrupted file"
check_exit "wrong passphrase on put" 1 sh -c "printf x | '$IOTSEC' vault put blob --vault '$V' --passphrase-file '$WORK/wrong'"
expect_eq "wrong passphrase leaves the file" "$(sum "$V")" "$before"

size=$(stat -c %s "$V")
cp "$V" "$WORK/truncated" && truncate -s $((size - 1)) "$WORK/truncated"
check_exit "truncated file" 1 "$IOTSEC" vault list --vault "$WORK/truncated"
expect_contains "truncated message" "$ERR" "iotsec: vault $WORK/truncated: truncated file: input is truncated"
cp "$V" "$WORK/tampered"
printf '\x55' | dd of="$WORK/tampered" bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
check_exit "tampered body" 1 "$IOTSEC" vault list --vault "$WORK/tampered"
expect_eq "tampered body message" "$ERR" \
    "iotsec: vault $WORK/tampered: contents are corrupted (authentication failed)"
cp "$V" "$WORK/salted"
printf '\x00' | dd of="$WORK/salted" bs=1 seek=30 conv=notrunc 2>/dev/null
check_exit "tampered salt" 1 "$IOTSEC" vault list --vault "$WORK/salted"
expect_eq "tampered salt message" "$ERR" "iotsec: vault $WORK/salted: wrong passphrase or corrupted file"
cp "$V" "$WORK/v2"
printf '\x00\x02' | dd of="$WORK/v2" bs=1 seek=8 conv=notrunc 2>/dev/null
check_exit "unknown version" 1 "$IOTSEC" vault list --vault "$WORK/v2"
expect_eq "unknown version message" "$ERR" \
    "iotsec: vault $WORK/v2: unsupported vault version 2 (this iotsec reads version 1)"
printf 'hello' >"$WORK/notavault"
check_exit "not a vault" 1 "$IOTSEC" vault list --vault "$WORK/notavault"
expect_contains "not a vault message" "$ERR" "truncated file"
head -c 100 /dev/zero >"$WORK/zeros"
check_exit "bad magic" 1 "$IOTSEC" vault list --vault "$WORK/zeros"
expect_eq "bad magic message" "$ERR" "iotsec: vault $WORK/zeros: not an iotsec vault (bad magic)"
cp "$V" "$WORK/trailing" && printf 'x' >>"$WORK/trailing"
check_exit "trailing bytes" 1 "$IOTSEC" vault list --vault "$WORK/trailing"
expect_eq "trailing message" "$ERR" "iotsec: vault $WORK/trailing: 1 unexpected trailing bytes"
check_exit "missing vault" 1 "$IOTSEC" vault list --vault "$WORK/none"
expect_eq "missing vault message" "$ERR" \
    "iotsec: vault $WORK/none: no such file (create one with 'iotsec vault init')"
ln -s "$V" "$WORK/link"
check_exit "symlinked vault refused" 1 "$IOTSEC" vault list --vault "$WORK/link"
expect_contains "symlink message" "$ERR" "is a symbolic link"

# --- where the passphrase may come from -------------------------------------------------
printf 'x\n' >"$WORK/open-pass" && chmod 644 "$WORK/open-pass"
check_exit "world-readable passphrase file refused" 1 "$IOTSEC" vault list --vault "$V" --passphrase-file "$WORK/open-pass"
expect_eq "loose mode message" "$ERR" \
    "iotsec: passphrase file $WORK/open-pass: readable by group or others (mode 0644); it must be 0600 or stricter"
make_secret_file "$WORK/empty-pass" ""
check_exit "empty passphrase refused" 1 "$IOTSEC" vault list --vault "$V" --passphrase-file "$WORK/empty-pass"
check_exit "no passphrase option on argv" 2 "$IOTSEC" vault list --vault "$V" --passphrase hunter2
expect_eq "argv passphrase message" "$ERR" "iotsec: vault: unknown option '--passphrase' (see --help)"
check_exit "abbreviated options are not guessed" 2 "$IOTSEC" vault list --vault "$V" --pass "$P"
check_exit "option=value form works" 0 "$IOTSEC" vault list --vault="$V" --passphrase-file="$P"
check_exit "no passphrase at all, no terminal" 1 env -u IOTSEC_PASSPHRASE_FILE setsid "$IOTSEC" vault list --vault "$V" </dev/null
expect_eq "no passphrase message" "$ERR" \
    "iotsec: vault: no passphrase: give --passphrase-file or set IOTSEC_PASSPHRASE_FILE"
check_exit "env var names the passphrase file" 0 "$IOTSEC" vault list --vault "$V"
check_exit "IOTSEC_DATA sets the default vault" 0 env IOTSEC_DATA="$WORK/data" "$IOTSEC" vault list
expect_contains "default vault listing" "$OUT" "blob"

# --- usage ------------------------------------------------------------------------------
check_exit "unknown command" 2 "$IOTSEC" vault frobnicate --vault "$V"
check_exit "missing name" 2 "$IOTSEC" vault get --vault "$V"
expect_eq "missing name message" "$ERR" "iotsec: vault get: missing NAME"
check_exit "extra argument" 2 "$IOTSEC" vault list extra --vault "$V"
check_exit "help" 0 "$IOTSEC" vault --help
expect_contains "help text" "$OUT" "usage: iotsec vault"

# --- rekey ------------------------------------------------------------------------------
make_secret_file "$WORK/new-pass" "a brand new passphrase"
check_exit "rekey" 0 "$IOTSEC" vault rekey --vault "$V" --new-passphrase-file "$WORK/new-pass"
check_exit "old passphrase no longer opens" 1 "$IOTSEC" vault list --vault "$V"
check_exit "new passphrase opens" 0 "$IOTSEC" vault get db/password --vault "$V" --passphrase-file "$WORK/new-pass"
expect_eq "secrets survive rekey" "$OUT" "n3w"
check_exit "rekey without a new key" 2 "$IOTSEC" vault rekey --vault "$V" </dev/null

# --- concurrent writers lose nothing ----------------------------------------------------
export IOTSEC_PASSPHRASE_FILE="$WORK/new-pass"
for w in a b; do
    (for i in $(seq 1 12); do printf '%s' "$w$i" | "$IOTSEC" vault put "c/$w$i" --vault "$V"; done) &
done
wait
expect_eq "24 concurrent puts all landed" "$("$IOTSEC" vault list --vault "$V" | grep -c '^c/')" "24"
expect_eq "a concurrent value" "$("$IOTSEC" vault get c/b7 --vault "$V")" "b7"
finish
