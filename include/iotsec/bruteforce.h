/*
 * Brute-force detection: `threshold` authentication failures within `window_ms` for one
 * device, or from one source address, is an attack (DESIGN.md: 5 in 5 minutes, both
 * configurable). docs/events.md explains the rules and the eviction trade-off.
 *
 * Exact sliding window, O(1) per failure: each key keeps the times of its last
 * `threshold` failures in a ring; the key trips when the oldest of those is within the
 * window of the newest. A key trips at most once per window (then it re-arms), so an
 * attacker who keeps failing raises one detection per window, not one per attempt.
 *
 * Bounded memory whatever arrives: two fixed tables allocated at creation (one for
 * device ids, one for source addresses, so that a flood of one kind cannot push out
 * counters of the other), each `capacity` slots, set-associative (8 ways), each key
 * hashed with SipHash under a random key (OpenSSL's EVP_MAC) into two candidate buckets.
 * A new key takes an empty slot, else an idle one (no failure within the window and not
 * tripped within it: forgetting it changes no decision), else evicts the candidate with
 * the FEWEST failures inside the window (the oldest among equals). So a flood of
 * one-attempt addresses evicts other one-attempt addresses; pushing out a counter that
 * stands at k failures needs all 16 of its candidate slots held by keys with at least k
 * failures each, which the keyed hash prevents an attacker from aiming. The stats count
 * every eviction of a key that still had failures in the window.
 *
 * Time is passed in by the caller (ms, >= 0); the library reads no clock. A time earlier
 * than a key's last failure counts as that time (clocks that step back never erase
 * failures). Thread-safe: one mutex per detector.
 */
#ifndef IOTSEC_BRUTEFORCE_H
#define IOTSEC_BRUTEFORCE_H

#include "iotsec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOTSEC_BRUTEFORCE_DEFAULT_THRESHOLD 5
#define IOTSEC_BRUTEFORCE_DEFAULT_WINDOW_MS ((int64_t)5 * 60 * 1000)
#define IOTSEC_BRUTEFORCE_DEFAULT_CAPACITY  65536
#define IOTSEC_BRUTEFORCE_THRESHOLD_MAX     64
#define IOTSEC_BRUTEFORCE_WINDOW_MAX        ((int64_t)7 * 24 * 3600 * 1000)
#define IOTSEC_BRUTEFORCE_CAPACITY_MAX      ((size_t)1 << 24)
/* Keys are device ids (64) or canonical addresses (45); longer keys are refused. */
#define IOTSEC_BRUTEFORCE_KEY_MAX 72
#define IOTSEC_BRUTEFORCE_WAYS    8

/* Zero fields take the defaults above. */
struct iotsec_bruteforce_config {
    uint32_t threshold; /* failures that make an attack, 1..THRESHOLD_MAX */
    int64_t window_ms;  /* within this long, 1..WINDOW_MAX */
    size_t capacity;    /* slots per table (device ids, addresses), rounded up to a power of
                           two and at least 16, at most CAPACITY_MAX */
};

struct iotsec_bruteforce_verdict {
    bool device_detected;     /* this failure made the device key trip */
    bool source_detected;     /* this failure made the source key trip */
    bool device_under_attack; /* the device key tripped within the window (now included):
                                 the monitor blocks every source still failing against it */
    uint32_t device_failures; /* failures of the key within the window, now included */
    uint32_t source_failures;
};

struct iotsec_bruteforce_stats {
    size_t slots;          /* per table */
    size_t memory_bytes;   /* both tables, fixed at creation */
    size_t device_entries; /* slots in use */
    size_t source_entries;
    uint64_t evicted_active; /* keys pushed out while they still had failures in the window */
    uint64_t detections;
};

struct iotsec_bruteforce;

IOTSEC_MUST_CHECK iotsec_result iotsec_bruteforce_new(const struct iotsec_bruteforce_config *config,
                                                      struct iotsec_bruteforce **out);
void iotsec_bruteforce_free(struct iotsec_bruteforce *bf);

/* Records one authentication failure at now_ms. device_id and source may be NULL or ""
 * (that key is not counted). IOTSEC_ERR_INVALID_ARG for a key over
 * IOTSEC_BRUTEFORCE_KEY_MAX bytes or a negative time. */
IOTSEC_MUST_CHECK iotsec_result iotsec_bruteforce_record(struct iotsec_bruteforce *bf,
                                                         const char *device_id, const char *source,
                                                         int64_t now_ms,
                                                         struct iotsec_bruteforce_verdict *out);

void iotsec_bruteforce_get_stats(struct iotsec_bruteforce *bf, struct iotsec_bruteforce_stats *out);

#endif
