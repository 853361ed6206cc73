#!/usr/bin/env bash
# A crash at any point of a vault write leaves either the old or the new vault, never a
# broken one, and a write that reported success is never lost.
#
# Part 1 kills a writer that saves in a tight loop (tests/helpers/vault_crash_writer) at
# random moments, so the kill lands anywhere in the write sequence, and opens the vault
# after each kill: it must open, and its counter must be the last number the writer
# reported as committed, or the one after it (the write in flight when it died).
# Part 2 does the same with the real CLI (`iotsec vault put`) killed at random.
source "$(dirname "$0")/lib.sh"

KILLS_LOOP=${VAULT_CRASH_KILLS:-60}
KILLS_CLI=${VAULT_CRASH_CLI_KILLS:-20}
WRITER="$IOTSEC_BUILD_DIR/vault_crash_writer"
V="$WORK/vault"
P="$WORK/pass"
make_secret_file "$P" "crash test passphrase"
export IOTSEC_PASSPHRASE_FILE="$P"

"$IOTSEC" vault init --vault "$V" 2>/dev/null
printf '0' | "$IOTSEC" vault put counter --vault "$V"
head -c 262144 /dev/zero | "$IOTSEC" vault put filler --vault "$V"

committed=0
mid_write_kills=0
for i in $(seq 1 "$KILLS_LOOP"); do
    "$WRITER" "$V" "$P" >"$WORK/progress" 2>"$WORK/writer.err" &
    pid=$!
    # Let the writer pass scrypt and reach its save loop (most kills should land there),
    # but on every fifth round kill it at once, possibly before its first save.
    if [ $((i % 5)) -ne 0 ]; then
        for _ in $(seq 1 200); do [ -s "$WORK/progress" ] && break; sleep 0.01; done
    fi
    sleep "0.0$((RANDOM % 40 + 10))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    last=$(tail -n 1 "$WORK/progress" 2>/dev/null || true)
    last=${last:-0}

    value=$("$IOTSEC" vault get counter --vault "$V" 2>"$WORK/get.err") || {
        fail "kill $i: vault does not open after the kill: $(cat "$WORK/get.err")"
        continue
    }
    # The counter restarts from 1 in every writer run: the vault holds either the last
    # committed number of this run or the one in flight (or, if this run committed
    # nothing, the previous run's).
    if [ "$last" -eq 0 ]; then
        if [ "$value" == "$committed" ] || [ "$value" == "1" ]; then pass; else
            fail "kill $i: counter $value, expected $committed or 1"
        fi
    elif [ "$value" -eq "$last" ] || [ "$value" -eq $((last + 1)) ]; then
        pass
    else
        fail "kill $i: counter $value, but the writer had committed $last"
    fi
    [ "$value" -ne "$last" ] && mid_write_kills=$((mid_write_kills + 1))
    committed=$value
    "$IOTSEC" vault get filler --vault "$V" >"$WORK/filler"
    filler=$(od -An -tu1 -N4 "$WORK/filler" | tr -s ' ')
    want=$(((value) & 255))
    expect_eq "kill $i: filler written with the counter" "$filler" " $want $want $want $want"
done
echo "writer loop: $KILLS_LOOP kills, $mid_write_kills landed after a save began and before it was reported"

for i in $(seq 1 "$KILLS_CLI"); do
    before=$("$IOTSEC" vault get counter --vault "$V")
    new="cli-$i"
    printf '%s' "$new" | "$IOTSEC" vault put counter --vault "$V" 2>/dev/null &
    pid=$!
    sleep "0.$((RANDOM % 200))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    value=$("$IOTSEC" vault get counter --vault "$V" 2>"$WORK/get.err") || {
        fail "cli kill $i: vault does not open: $(cat "$WORK/get.err")"
        continue
    }
    if [ "$value" == "$before" ] || [ "$value" == "$new" ]; then pass; else
        fail "cli kill $i: counter '$value', expected '$before' or '$new'"
    fi
done

# The next successful write clears the temporary files that killed writers left behind.
printf 'done' | "$IOTSEC" vault put counter --vault "$V"
stale=$(find "$WORK" -maxdepth 1 -name 'vault.tmp.*' | wc -l)
expect_eq "no stale temporary files after a successful write" "$stale" "0"
expect_eq "vault mode" "$(stat -c %a "$V")" "600"
finish
