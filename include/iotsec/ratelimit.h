/*
 * Per-identity rate limiting (GCRA, the generic cell rate algorithm).
 *
 * The HTTP layer asks for one decision per request, keyed by the authenticated identity
 * (a device id, an API key's id), never by anything the client chooses, so that nobody
 * can spend someone else's budget. The wire contract is "60 requests per minute per
 * device" with a 429 and a Retry-After, so a refusal says how long to wait.
 *
 * Why GCRA: one int64 per key (the theoretical arrival time, TAT) gives the same answers
 * as a token bucket of `burst` tokens refilled at `rate` per `period`, with no refill
 * timer and no floating point. A key whose TAT is in the past is in exactly the state of
 * a key never seen, which is what lets the table forget idle keys without changing any
 * decision.
 *
 * Bounds, because this sits in front of everything a hostile network can reach:
 * - memory is fixed at creation: a set-associative table of `capacity` slots (rounded up
 *   to a power of two, at least one bucket of IOTSEC_RATELIMIT_WAYS), never resized;
 * - each decision costs O(1): hash the key (OpenSSL's SipHash-2-4 with a random key, so that
 *   nobody can aim keys at a bucket), then scan its two candidate buckets of
 *   IOTSEC_RATELIMIT_WAYS slots each under their stripe locks. Two choices let the table
 *   fill well past half before any bucket overflows (bench_ratelimit holds 61% and the
 *   tests 50%, every key active, nothing displaced); one choice overflows far earlier;
 * - when a new key finds both its buckets full, an idle slot (TAT <= now) is reused,
 *   which changes no decision. If every candidate slot is active, the slot with the
 *   smallest TAT (the key closest to idle) is evicted and the new key is admitted with
 *   a fresh budget. We evict rather than refuse because refusing would let whoever
 *   fills the table lock out every identity not yet in it; the cost is that the evicted
 *   key gets a fresh budget early. Size `capacity` above the number of identities
 *   active within one period (e.g. 2x) and this does not happen; the stats count it.
 *
 * Time is passed in by the caller (milliseconds, any monotonic-enough origin, >= 0), so
 * tests are deterministic and a server can use CLOCK_MONOTONIC. A clock that steps back
 * only makes the limiter stricter for a while, never laxer.
 *
 * Thread safety: all functions except free may be called concurrently on one limiter.
 */
#ifndef IOTSEC_RATELIMIT_H
#define IOTSEC_RATELIMIT_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key in bytes. Identities are ids, not documents. */
#define IOTSEC_RATELIMIT_KEY_MAX 128
/* Slots per bucket: the number of keys one bucket holds before it must evict. */
#define IOTSEC_RATELIMIT_WAYS 8
/* Bounds that keep the integer arithmetic exact (see ratelimit.c). */
#define IOTSEC_RATELIMIT_RATE_MAX     1000000u
#define IOTSEC_RATELIMIT_PERIOD_MAX   ((int64_t)366 * 24 * 3600 * 1000) /* a year, in ms */
#define IOTSEC_RATELIMIT_BURST_MAX    1000000u
#define IOTSEC_RATELIMIT_CAPACITY_MAX ((size_t)1 << 26)
/* now_ms must lie in 0..IOTSEC_RATELIMIT_NOW_MAX (2^42 ms: the year 2109 in Unix ms),
 * so that now_ms * rate plus a full burst fits in an int64. */
#define IOTSEC_RATELIMIT_NOW_MAX ((int64_t)1 << 42)

struct iotsec_ratelimit_config {
    uint32_t rate;     /* requests allowed per period, 1..IOTSEC_RATELIMIT_RATE_MAX */
    int64_t period_ms; /* 1..IOTSEC_RATELIMIT_PERIOD_MAX */
    uint32_t burst;    /* requests allowed back to back by a fresh key, 1..BURST_MAX;
                          the contract's 60/min is rate 60, period 60000, burst 60 */
    size_t capacity;   /* slots (keys remembered), 1..IOTSEC_RATELIMIT_CAPACITY_MAX */
};

struct iotsec_ratelimit_stats {
    size_t slots;            /* fixed at creation */
    size_t memory_bytes;     /* the table's size, fixed at creation */
    size_t entries;          /* slots in use now (idle ones included until reused) */
    uint64_t reused_idle;    /* new keys placed in an idle key's slot: harmless */
    uint64_t evicted_active; /* new keys that displaced a still-limited key */
};

struct iotsec_ratelimit;

IOTSEC_MUST_CHECK iotsec_result iotsec_ratelimit_new(const struct iotsec_ratelimit_config *config,
                                                     struct iotsec_ratelimit **out);

/* Decides one request by key at now_ms. *allowed says whether it may proceed; when it
 * may not, *retry_after_ms (if not NULL) is the wait until it would be allowed, at least
 * 1; when allowed it is 0. A refused request spends nothing. Fails (IOTSEC_ERR_INVALID_ARG)
 * only for an empty key, a key over IOTSEC_RATELIMIT_KEY_MAX bytes or now_ms out of
 * range; callers must treat that as a refusal. */
IOTSEC_MUST_CHECK iotsec_result iotsec_ratelimit_take(struct iotsec_ratelimit *rl,
                                                      struct iotsec_slice key, int64_t now_ms,
                                                      bool *allowed, int64_t *retry_after_ms);

void iotsec_ratelimit_get_stats(struct iotsec_ratelimit *rl, struct iotsec_ratelimit_stats *out);

void iotsec_ratelimit_free(struct iotsec_ratelimit *rl);

#endif
