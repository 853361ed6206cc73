/*
 * The event log: security events in the store, each record carrying the SHA-256 of the
 * record before it, so that editing, deleting or reordering records is detectable
 * (docs/events.md, "The hash chain").
 *
 * A record's hash is SHA-256 over an unambiguous encoding of everything in it:
 *
 *   "iotsec-event-v1" || u64 seq || u64 ts || u8 severity
 *     || u32 len || event_type || u32 len || device_id || u32 len || source_ip
 *     || u32 len || details || prev_hash (32 bytes)
 *
 * (integers big-endian; every string length-prefixed, so no two different records encode
 * the same bytes). The store assigns seq and prev_hash inside one write transaction
 * (iotsec_store_event_append) and this module computes the hash, so concurrent writers in
 * any process can neither fork the chain nor leave a gap.
 *
 * Verification walks the log in constant memory and reports every bad record:
 *   EDITED     the record's contents no longer hash to its stored hash;
 *   MOVED      the contents hash correctly only under another sequence number: the
 *              record was renumbered (reordered, or shifted to hide a deletion);
 *   MISSING    sequence numbers jump: records were deleted;
 *   UNLINKED   prev_hash is not the stored hash of the record before it (a neighbour was
 *              edited, moved or deleted, or the hashes were recomputed);
 *   UNREADABLE the store cannot read a record (a field out of bounds);
 *   HEAD       the log does not reach, or differs at, a head the caller saved earlier.
 *
 * What a chain alone cannot show: deleting records at the end (the shorter log is itself
 * a valid chain), or rewriting a suffix and recomputing every hash after it (the hash is
 * not keyed). Both are caught by comparing against a head (seq + hash) saved somewhere
 * the attacker cannot write: the syslog sink sends every record's seq, and
 * `iotsec events verify --head SEQ:HASH` checks one.
 */
#ifndef IOTSEC_EVENTLOG_H
#define IOTSEC_EVENTLOG_H

#include "iotsec/error.h"
#include "iotsec/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The chain hash of rec from its fields, seq and prev_hash (rec->hash is not read). */
IOTSEC_MUST_CHECK iotsec_result iotsec_eventlog_hash(const struct iotsec_store_event *rec,
                                                     uint8_t out[IOTSEC_STORE_HASH_LEN]);

/* Appends rec to the chained log (iotsec_store_event_append with iotsec_eventlog_hash).
 * rec is in/out: seq, prev_hash, hash and the canonical source address are filled in. */
IOTSEC_MUST_CHECK iotsec_result iotsec_eventlog_append(struct iotsec_store *s,
                                                       struct iotsec_store_event *rec);

enum iotsec_eventlog_problem_kind {
    IOTSEC_EVENTLOG_EDITED = 1,
    IOTSEC_EVENTLOG_MOVED,
    IOTSEC_EVENTLOG_MISSING,
    IOTSEC_EVENTLOG_UNLINKED,
    IOTSEC_EVENTLOG_UNREADABLE,
    IOTSEC_EVENTLOG_HEAD,
};

struct iotsec_eventlog_problem {
    enum iotsec_eventlog_problem_kind kind;
    int64_t seq;       /* the record concerned (MISSING: the first missing one) */
    int64_t other_seq; /* MOVED: the seq it was written as; MISSING: the last missing one */
    char message[256]; /* "record 3 was edited: its contents do not match its hash" */
};

/* A head saved earlier: the log must contain record seq with exactly this hash. */
struct iotsec_eventlog_head {
    int64_t seq;
    uint8_t hash[IOTSEC_STORE_HASH_LEN];
};

struct iotsec_eventlog_verify_result {
    uint64_t records;  /* records read */
    uint64_t problems; /* problems found (every one was passed to the callback) */
    struct iotsec_eventlog_problem first; /* valid when problems > 0 */
    int64_t last_seq;                     /* the head as read: 0 for an empty log */
    uint8_t last_hash[IOTSEC_STORE_HASH_LEN];
};

/* Called for each problem in seq order; returning false stops the walk early. */
typedef bool (*iotsec_eventlog_problem_fn)(void *ctx, const struct iotsec_eventlog_problem *p);

/* How far from its position a renumbered record is looked for (hashes tried per bad
 * record, each way), so a tampered log costs at most this much extra per record. */
#define IOTSEC_EVENTLOG_MOVE_SEARCH 256

/* Walks the whole log. Succeeds when the walk completed, whether or not problems were
 * found (out->problems says); fails only when the store cannot be read at all. head may
 * be NULL; fn may be NULL. */
IOTSEC_MUST_CHECK iotsec_result iotsec_eventlog_verify(struct iotsec_store *s,
                                                       const struct iotsec_eventlog_head *head,
                                                       iotsec_eventlog_problem_fn fn, void *ctx,
                                                       struct iotsec_eventlog_verify_result *out);

/* "SEQ:HEX64" <-> head. Parsing is strict (decimal seq >= 1, 64 hex digits). */
#define IOTSEC_EVENTLOG_HEAD_STR_MAX (20 + 1 + 64 + 1)
IOTSEC_MUST_CHECK iotsec_result iotsec_eventlog_head_parse(const char *text,
                                                           struct iotsec_eventlog_head *out);
void iotsec_eventlog_head_format(const struct iotsec_eventlog_head *head,
                                 char out[IOTSEC_EVENTLOG_HEAD_STR_MAX]);

#endif
