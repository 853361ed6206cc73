#!/usr/bin/env bash
# `iotsec events` and `iotsec block` against a store seeded through the monitor library
# (tests/helpers/event_tool.c): list filters and formats, verify on an intact log and
# after each kind of tampering done straight to the SQLite file, verify --head catching
# a truncated log, and block add/list/rm with their events and their errors. Every
# failure must be exactly one line on stderr with the documented exit status (1 failure,
# 2 usage).
source "$(dirname "$0")/lib.sh"

TOOL="$IOTSEC_BUILD_DIR/event_tool"
DATA="$WORK/data"
mkdir -m 700 "$DATA"
DB="$DATA/store.db"
ev() { "$IOTSEC" events "$@" --data "$DATA"; }
blk() { "$IOTSEC" block "$@" --data "$DATA"; }
lines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }

check_exit "seed" 0 "$TOOL" seed "$DB"
expect_eq "seeded" "$OUT" "seeded 10"

# --- list -----------------------------------------------------------------------------
check_exit "list" 0 ev list
expect_eq "list shows every event" "$(lines "$OUT")" 10
expect_contains "list columns" "$(printf '%s\n' "$OUT" | sed -n 3p)" \
    "3      2023-11-14T22:13:22.000Z critical tamper_attempt         dev-b                -               {\"what\":\"boot chain\"}"
check_exit "list --type" 0 ev list --type auth_failure
expect_eq "five auth failures" "$(lines "$OUT")" 5
check_exit "list --type --limit keeps the newest, oldest first" 0 ev list --type auth_failure --limit 2
expect_eq "limit 2" "$(printf '%s\n' "$OUT" | cut -c1-6 | tr -d ' ' | tr '\n' ,)" "7,8,"
check_exit "list --severity" 0 ev list --severity high
expect_contains "the detection is high" "$OUT" "brute_force_detected"
expect_eq "one high event" "$(lines "$OUT")" 1
check_exit "list --device" 0 ev list --device dev-b
expect_eq "one event about dev-b" "$(lines "$OUT")" 1
check_exit "list --since" 0 ev list --since 2023-11-14T22:13:27Z
expect_eq "three events at or after :27" "$(lines "$OUT")" 3
check_exit "list --since with an offset" 0 ev list --since 2023-11-14T23:13:27+01:00
expect_eq "the same three" "$(lines "$OUT")" 3
check_exit "list --json" 0 ev list --json --severity critical
expect_eq "DESIGN.md form" "$OUT" '{"timestamp":"2023-11-14T22:13:22.000Z","eventType":"tamper_attempt","severity":"critical","deviceId":"dev-b","sourceIp":null,"details":{"what":"boot chain"}}'
check_exit "list --json parses as JSON" 0 bash -c "'$IOTSEC' events list --json --data '$DATA' | node -e 'let n=0;require(\"readline\").createInterface({input:process.stdin}).on(\"line\",l=>{const o=JSON.parse(l);if(Object.keys(o).join()!==\"timestamp,eventType,severity,deviceId,sourceIp,details\")process.exit(1);n++}).on(\"close\",()=>process.exit(n===10?0:1))'"
check_exit "list no match" 0 ev list --type firmware_rejected
expect_eq "nothing printed" "$OUT" ""
check_exit "list bad type" 2 ev list --type auth_fail
expect_contains "bad type names the word" "$ERR" "iotsec: events list: --type: event: unknown type 'auth_fail'"
check_exit "list bad severity" 2 ev list --severity severe
expect_eq "one line" "$(lines "$ERR")" 1
check_exit "list bad since" 2 ev list --since yesterday
expect_contains "bad since" "$ERR" "iotsec: events list: --since: rfc3339"
check_exit "list bad limit" 2 ev list --limit 0
expect_eq "bad limit" "$ERR" "iotsec: events list: --limit must be a number from 1 to 1000, not '0'"
check_exit "list --limit 1001" 2 ev list --limit 1001
check_exit "unknown option" 2 ev list --typo x
expect_eq "unknown option message" "$ERR" "iotsec: events: unknown option '--typo' (see --help)"
check_exit "abbreviated option refused" 2 ev list --sev high
check_exit "verify takes no list options" 2 ev verify --json
check_exit "unknown subcommand" 2 ev show
check_exit "help" 0 "$IOTSEC" events --help
expect_contains "help on stdout" "$OUT" "usage: iotsec events"

# --- verify ---------------------------------------------------------------------------
check_exit "verify intact" 0 ev verify
expect_contains "verify intact" "$OUT" "event log intact: 10 records, head 10:"
HEAD=${OUT##* head }
check_exit "verify with its head" 0 ev verify --head "$HEAD"
check_exit "verify bad head" 2 ev verify --head 10:xyz
expect_eq "bad head message" "$ERR" "iotsec: events verify: --head: event log head: the hash must be 64 hex digits"

cp "$DB" "$WORK/clean.db"
restore() { cp "$WORK/clean.db" "$DB"; rm -f "$DB-wal" "$DB-shm"; }

"$TOOL" tamper "$DB" "UPDATE events SET details = '{\"what\":\"nothing\"}' WHERE seq = 3"
check_exit "verify after an edit" 1 ev verify
expect_eq "edit: one line naming record 3" "$ERR" "iotsec: events verify: record 3 was edited: its contents do not match its hash (1 problem in all)"
expect_eq "edit: stdout lists it" "$OUT" "record 3 was edited: its contents do not match its hash"

restore
"$TOOL" tamper "$DB" "DELETE FROM events WHERE seq = 5"
check_exit "verify after a deletion" 1 ev verify
expect_eq "delete names record 5" "$ERR" "iotsec: events verify: record 5 is missing (deleted) (1 problem in all)"

restore
"$TOOL" tamper "$DB" "UPDATE events SET seq = 100 WHERE seq = 2; UPDATE events SET seq = 2 WHERE seq = 6; UPDATE events SET seq = 6 WHERE seq = 100"
check_exit "verify after a swap" 1 ev verify
expect_eq "swap names record 2" "$ERR" "iotsec: events verify: record 2 was moved: it was written as record 6 (reordered or renumbered) (4 problems in all)"
expect_eq "every problem on stdout" "$(lines "$OUT")" 4

restore
"$TOOL" tamper "$DB" "DELETE FROM events WHERE seq >= 9"
check_exit "truncation is invisible to the chain alone" 0 ev verify
check_exit "truncation is caught with the saved head" 1 ev verify --head "$HEAD"
expect_eq "truncation message" "$ERR" "iotsec: events verify: the log ends at record 8 but the saved head is record 10: records were deleted from the end (1 problem in all)"
restore

# --- block ----------------------------------------------------------------------------
check_exit "the detector's block is listed" 0 blk list
check_exit "block add" 0 blk add 203.0.113.5 --for 2h --reason "port scan"
expect_contains "add message" "$ERR" "iotsec: block: 203.0.113.5 blocked until "
check_exit "block add IPv6, non-canonical" 0 blk add 2001:DB8:0:0::1
expect_eq "canonical and permanent" "$ERR" "iotsec: block: 2001:db8::1 blocked permanently"
check_exit "block add device" 0 blk add device:dev-b --for 7d
check_exit "block list" 0 blk list
expect_contains "list has the address" "$OUT" "203.0.113.5"
expect_contains "list has the reason" "$OUT" "port scan"
expect_contains "list has the permanent block" "$OUT" "2001:db8::1"
expect_contains "permanent is said" "$(printf '%s\n' "$OUT" | grep 2001:db8::1)" "permanent"
expect_contains "list has the device" "$OUT" "device:dev-b"
check_exit "block_added events" 0 ev list --type block_added --json
expect_eq "three operator blocks plus the detector's" "$(lines "$OUT")" 4
expect_contains "who added it" "$OUT" '"by":"cli"'
check_exit "the log stays intact" 0 ev verify
check_exit "block rm" 0 blk rm 203.0.113.5
expect_eq "rm message" "$ERR" "iotsec: block: 203.0.113.5 unblocked"
check_exit "block rm again" 1 blk rm 203.0.113.5
expect_eq "rm missing" "$ERR" "iotsec: block rm: no block for 203.0.113.5"
check_exit "block_removed event" 0 ev list --type block_removed
expect_eq "one removal" "$(lines "$OUT")" 1

check_exit "bad address" 1 blk add 203.0.113.300
expect_eq "bad address message" "$ERR" "iotsec: block add: store: block source '203.0.113.300' must be an IP address or \"device:<id>\""
check_exit "zone id refused" 1 blk add fe80::1%eth0
expect_eq "one line" "$(lines "$ERR")" 1
for d in 0m 15 15x -5m 1.5h "15 m" 3651d forever; do
    check_exit "bad duration '$d'" 2 blk add 203.0.113.6 --for "$d"
    expect_contains "bad duration '$d' message" "$ERR" "iotsec: block add: --for: duration"
    expect_eq "bad duration '$d' is one line" "$(lines "$ERR")" 1
done
check_exit "no block from bad input" 0 blk list
case "$OUT" in *203.0.113.6*|*203.0.113.300*) fail "a refused block was stored" ;; *) pass ;; esac
check_exit "add without source" 2 blk add
check_exit "add with two sources" 2 blk add 10.0.0.1 10.0.0.2
check_exit "rm takes no --for" 2 blk rm 10.0.0.1 --for 1h
check_exit "list takes no argument" 2 blk list 10.0.0.1
check_exit "unknown block command" 2 blk drop 10.0.0.1
check_exit "reason too long" 1 blk add 10.0.0.7 --reason "$(printf 'x%.0s' $(seq 300))"
check_exit "block help" 0 "$IOTSEC" block --help
expect_contains "help on stdout" "$OUT" "usage: iotsec block"
check_exit "events still intact" 0 ev verify

finish
