/*
 * API keys: a long random secret a device sends as X-API-Key (docs/device-auth.md).
 *
 * Format (the wire contract): "iot_" followed by exactly 48 lowercase hex digits, the
 * encoding of 24 random bytes from OpenSSL's CSPRNG. Parsing is strict: any other length,
 * prefix, case or byte (a NUL, a space, a newline) is refused with a message saying what
 * is wrong, and nothing is trimmed, so one key has exactly one spelling.
 *
 * Storage: only SHA-256(key string) is stored, with a public key id ("ak_" + 16 hex
 * digits, random and unrelated to the key) that operators list and revoke by. A fast
 * hash is enough: slow password hashes exist to make guessing low-entropy secrets
 * expensive, and guessing 192 random bits is out of reach at any speed. A fast hash is
 * also what lets a request be checked with one indexed lookup.
 *
 * Checking a presented key (iotsec_apikey_authenticate), in this order:
 *   1. the format (MALFORMED);
 *   2. one lookup by the store's unique hash index (UNKNOWN when absent), then a
 *      constant-time comparison of the stored hash with the computed one (the index only
 *      finds the row; the comparison decides);
 *   3. revocation (REVOKED), read from the store on every request: there is no cache, so
 *      a revocation takes effect for the very next request, in every process;
 *   4. the device's status (DEVICE_INACTIVE unless active);
 *   5. the key's own rate limit (RATE_LIMITED, with a Retry-After), keyed by the key id;
 *   6. last_used_at is written at most once per IOTSEC_APIKEY_TOUCH_INTERVAL_MS per key
 *      (the stored value decides, so no state is kept here either).
 * Refusals are failures (IOTSEC_ERR_AUTH, or IOTSEC_ERR_FORMAT for MALFORMED) so a caller
 * cannot mistake one for success; the reason code is for the security event log.
 *
 * Thread safety: an authenticator (its rate limiters) may be used by many threads at
 * once. A store handle is for one thread at a time (store.h), so each thread passes its
 * own. Key generation and parsing keep no state.
 */
#ifndef IOTSEC_APIKEY_H
#define IOTSEC_APIKEY_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOTSEC_APIKEY_PREFIX     "iot_"
#define IOTSEC_APIKEY_PREFIX_LEN 4
#define IOTSEC_APIKEY_RANDOM_LEN 24
#define IOTSEC_APIKEY_LEN        (IOTSEC_APIKEY_PREFIX_LEN + 2 * IOTSEC_APIKEY_RANDOM_LEN) /* 52 */
#define IOTSEC_APIKEY_HASH_LEN   32
/* "ak_" + 16 lowercase hex digits. */
#define IOTSEC_APIKEY_ID_LEN 19
/* The platform's default when a key's own limit is 0 (the contract's 60 per minute). */
#define IOTSEC_APIKEY_DEFAULT_RATE_PER_MIN 60
/* The highest per-key limit accepted when a key is created. */
#define IOTSEC_APIKEY_RATE_MAX 100000u
/* last_used_at moves at most this often per key: each move is a durable write. */
#define IOTSEC_APIKEY_TOUCH_INTERVAL_MS 60000
/* Distinct per-minute limits an authenticator can serve at once (one limiter each). */
#define IOTSEC_APIKEY_RATE_CLASSES_MAX 16

/* A newly made key. `key` is the secret, shown to the operator once; wipe it with
 * iotsec_apikey_secret_wipe() as soon as it has been shown. */
struct iotsec_apikey_secret {
    char key[IOTSEC_APIKEY_LEN + 1];
    char key_id[IOTSEC_APIKEY_ID_LEN + 1];
    uint8_t hash[IOTSEC_APIKEY_HASH_LEN];
};

/* Generates a key, its id and its hash. Stores nothing. */
IOTSEC_MUST_CHECK iotsec_result iotsec_apikey_generate(struct iotsec_apikey_secret *out);
void iotsec_apikey_secret_wipe(struct iotsec_apikey_secret *k);

/* Checks the format strictly and computes the stored hash. IOTSEC_ERR_FORMAT with the
 * reason ("apikey: 47 characters, expected 52") for anything but the exact format. */
IOTSEC_MUST_CHECK iotsec_result iotsec_apikey_parse(struct iotsec_slice text,
                                                    uint8_t hash[IOTSEC_APIKEY_HASH_LEN]);

/* Generates a key for an existing, unrevoked device and stores its hash. rate_per_min 0
 * means the platform default; otherwise 1..IOTSEC_APIKEY_RATE_MAX. NOT_FOUND when the
 * device does not exist, INVALID_ARG when it is revoked or the rate is out of range. */
IOTSEC_MUST_CHECK iotsec_result iotsec_apikey_create(struct iotsec_store *s, const char *device_id,
                                                     uint32_t rate_per_min, int64_t now,
                                                     struct iotsec_apikey_secret *out);

/* ---- checking presented keys ---- */
enum iotsec_apikey_reason {
    IOTSEC_APIKEY_OK = 0,
    IOTSEC_APIKEY_MALFORMED,
    IOTSEC_APIKEY_UNKNOWN,
    IOTSEC_APIKEY_REVOKED,
    IOTSEC_APIKEY_DEVICE_INACTIVE,
    IOTSEC_APIKEY_RATE_LIMITED,
    IOTSEC_APIKEY_ERROR, /* the store failed: refuse, and report it as a server error */
};

struct iotsec_apikey_auth_config {
    uint32_t default_rate_per_min; /* for keys whose own limit is 0; 0 means 60 */
    size_t keys_per_limiter;       /* keys each limiter remembers; 0 means 4096 */
};

struct iotsec_apikey_identity {
    enum iotsec_apikey_reason reason;
    char device_id[IOTSEC_STORE_ID_MAX + 1]; /* set once the key is found (REVOKED on) */
    char key_id[IOTSEC_STORE_ID_MAX + 1];
    int64_t retry_after_ms; /* RATE_LIMITED: the wait before a retry can succeed */
    bool touched;           /* this call wrote last_used_at */
    bool touch_failed;      /* writing last_used_at failed; the key was still accepted */
};

struct iotsec_apikey_auth; /* opaque */

/* config may be NULL (the defaults). */
IOTSEC_MUST_CHECK iotsec_result iotsec_apikey_auth_new(
    const struct iotsec_apikey_auth_config *config, struct iotsec_apikey_auth **out);
void iotsec_apikey_auth_free(struct iotsec_apikey_auth *auth);

/* Checks a presented key at now (Unix ms). Success only when every check passes; then
 * out->device_id and out->key_id name the caller. Any refusal fails, with out->reason
 * saying which check refused (a failure of the store is IOTSEC_APIKEY_ERROR, with the
 * store's error). The key itself never appears in an error message. */
IOTSEC_MUST_CHECK iotsec_result iotsec_apikey_authenticate(struct iotsec_apikey_auth *auth,
                                                           struct iotsec_store *s,
                                                           struct iotsec_slice key, int64_t now,
                                                           struct iotsec_apikey_identity *out);

/* "ok", "malformed", "unknown", "revoked", "device_inactive", "rate_limited", "error". */
const char *iotsec_apikey_reason_name(enum iotsec_apikey_reason reason);

#endif
