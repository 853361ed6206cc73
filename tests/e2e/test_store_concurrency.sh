#!/usr/bin/env bash
# Several processes share one store file, as iotsecd and the broker plugin do.
#
# Part 1 starts three writers (tests/helpers/store_writer) at once on a database that does
# not exist yet, so creation, the switch to WAL and the migrations race too. Each appends
# events to the hash-chained log and inserts devices. Afterwards the log must hold every
# event exactly once, numbered 1..N without gaps, each record linked to the one before;
# every device must be there; and the numbers each writer was given must be disjoint.
# Part 2 kills a writer with SIGKILL at random moments: the chain must stay intact, and
# every append the writer reported as done must still be there (at most the one in flight
# when it died is added on top).
source "$(dirname "$0")/lib.sh"

WRITER="$IOTSEC_BUILD_DIR/store_writer"
DB="$WORK/store.db"
EVENTS=${STORE_E2E_EVENTS:-400}
DEVICES=${STORE_E2E_DEVICES:-80}
KILLS=${STORE_E2E_KILLS:-15}

# ---- part 1: concurrent writers ----
pids=()
for w in a b c; do
    "$WRITER" write "$DB" "writer-$w" "$EVENTS" "$DEVICES" >"$WORK/seq.$w" 2>"$WORK/err.$w" &
    pids+=($!)
done
for i in 0 1 2; do
    if wait "${pids[$i]}"; then pass; else fail "writer $i failed: $(cat "$WORK"/err.*)"; fi
done

check_exit "verify after concurrent writers" 0 "$WRITER" verify "$DB"
expect_eq "every event and device is there" "$OUT" "events $((3 * EVENTS)) devices $((3 * DEVICES))"

# The sequence numbers handed to the writers are exactly 1..3*EVENTS, none twice.
sort -n "$WORK"/seq.a "$WORK"/seq.b "$WORK"/seq.c >"$WORK/seq.all"
seq 1 $((3 * EVENTS)) >"$WORK/seq.want"
if cmp -s "$WORK/seq.all" "$WORK/seq.want"; then pass; else fail "writers were given overlapping or missing sequence numbers"; fi

# The writers ran at the same time: their numbers interleave.
first_c=$(head -n 1 "$WORK/seq.c")
last_a=$(tail -n 1 "$WORK/seq.a")
last_b=$(tail -n 1 "$WORK/seq.b")
if [ "$first_c" -lt "$last_a" ] || [ "$first_c" -lt "$last_b" ]; then pass; else fail "writer c only started after the others finished"; fi

# The database and its WAL companions are private to the owner.
for f in "$DB" "$DB-wal" "$DB-shm"; do
    [ -e "$f" ] || continue
    expect_eq "mode of $(basename "$f")" "$(stat -c %a "$f")" 600
done

# ---- part 2: writers killed mid-write ----
committed=$((3 * EVENTS))
for i in $(seq 1 "$KILLS"); do
    "$WRITER" write "$DB" "victim" 100000 0 >"$WORK/progress" 2>"$WORK/victim.err" &
    pid=$!
    sleep "0.$((RANDOM % 15 + 5))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    last=$(tail -n 1 "$WORK/progress" 2>/dev/null || true)
    last=${last:-$committed}

    check_exit "verify after kill $i" 0 "$WRITER" verify "$DB"
    total=${OUT#events }
    total=${total%% *}
    if [ "$total" -ge "$last" ] && [ "$total" -le $((last + 1)) ]; then
        pass
    else
        fail "kill $i: writer reported $last committed, the log holds $total"
    fi
    committed=$total
done

finish
