/*
 * Challenge-response authentication of a device by its registered public key
 * (docs/device-auth.md).
 *
 * The server issues a challenge: 32 bytes from OpenSSL's CSPRNG, sent as 64 lowercase hex
 * digits, valid for IOTSEC_CHALLENGE_TTL_MS (5 minutes) and for one device. The device
 * signs the challenge string itself (the 64 ASCII characters, not the bytes they encode)
 * with its private key and returns the signature in standard base64 (RFC 4648 section 4,
 * padded). Accepted signatures, by the type of the device's registered key:
 *   EC P-256  ECDSA with SHA-256, DER-encoded   openssl dgst -sha256 -sign
 *   RSA       PKCS#1 v1.5 with SHA-256, >= 2048 bits
 *   Ed25519   pure Ed25519 (RFC 8032)           openssl pkeyutl -sign -rawin
 *
 * Single use: a challenge is consumed by the first verify attempt that names it with its
 * device, whether that attempt succeeds or fails (a malformed response, a bad signature),
 * so each challenge gives an attacker one guess and a replay always fails. A challenge
 * presented with another device's id is not found and stays with its own device.
 *
 * Bounds, because issuing is reachable before authentication: the store has a fixed
 * capacity chosen at creation and a cap on the challenges one device may have
 * outstanding. Expired entries are reclaimed as they are met and, when the store is
 * full, by a sweep (only when some entry can have expired). When no slot can be found,
 * issue fails with IOTSEC_ERR_BUSY instead of growing: the caller answers 429/503.
 * Every operation is O(1) expected (a hash table keyed by device id with a random seed)
 * except that sweep, O(capacity).
 *
 * Times are Unix milliseconds passed in by the caller. A challenge issued at t is valid
 * at every now < t + ttl and expired from t + ttl on.
 *
 * Thread safety: every function except free may be called concurrently on one store.
 * The state lives in memory: with several API server processes, a device must verify
 * at the process that issued its challenge (or the store moves to shared storage).
 */
#ifndef IOTSEC_CHALLENGE_H
#define IOTSEC_CHALLENGE_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/time.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOTSEC_CHALLENGE_BYTES   32
#define IOTSEC_CHALLENGE_HEX_LEN 64
#define IOTSEC_CHALLENGE_TTL_MS  ((int64_t)5 * 60 * 1000)
/* The longest signature accepted: RSA-16384. The response is its base64. */
#define IOTSEC_CHALLENGE_SIG_MAX      2048
#define IOTSEC_CHALLENGE_RESPONSE_MAX (4 * ((IOTSEC_CHALLENGE_SIG_MAX + 2) / 3))
/* Defaults and limits of the configuration. */
#define IOTSEC_CHALLENGE_DEFAULT_CAPACITY   10000
#define IOTSEC_CHALLENGE_DEFAULT_PER_DEVICE 4
#define IOTSEC_CHALLENGE_CAPACITY_MAX       ((size_t)1 << 22)

struct iotsec_challenge_config {
    size_t capacity;   /* challenges outstanding at once; 0: the default */
    size_t per_device; /* outstanding per device, 1..capacity; 0: the default */
    int64_t ttl_ms;    /* 0: IOTSEC_CHALLENGE_TTL_MS; at most one hour */
};

struct iotsec_challenge {
    char hex[IOTSEC_CHALLENGE_HEX_LEN + 1]; /* the "challenge" of the wire contract */
    int64_t expires_at_ms;
    char expires_at[IOTSEC_TIME_STR_MAX]; /* RFC 3339 with milliseconds, UTC: "expiresAt" */
};

struct iotsec_challenge_stats {
    size_t capacity;
    size_t outstanding; /* entries held now, expired ones not yet reclaimed included */
    uint64_t issued;
    uint64_t verified;       /* attempts that passed */
    uint64_t failed;         /* attempts that consumed a challenge and failed */
    uint64_t expired;        /* entries reclaimed unused, or presented too late */
    uint64_t refused_full;   /* issue refused: the store was full */
    uint64_t refused_device; /* issue refused: the device's cap was reached */
};

struct iotsec_challenge_store; /* opaque */

/* config may be NULL (the defaults). IOTSEC_ERR_CONFIG names a value out of range. */
IOTSEC_MUST_CHECK iotsec_result iotsec_challenge_store_new(
    const struct iotsec_challenge_config *config, struct iotsec_challenge_store **out);
void iotsec_challenge_store_free(struct iotsec_challenge_store *cs);

/* Issues a challenge for device_id (1..64 characters of [A-Za-z0-9_-]) at now.
 * IOTSEC_ERR_BUSY when the store is full or the device has its cap of challenges
 * outstanding. The caller checks that the device exists and may authenticate. */
IOTSEC_MUST_CHECK iotsec_result iotsec_challenge_issue(struct iotsec_challenge_store *cs,
                                                       const char *device_id, int64_t now,
                                                       struct iotsec_challenge *out);

/* Verifies a response. Succeeds only when challenge_hex is exactly 64 lowercase hex
 * digits naming an unexpired challenge issued to device_id, and response_b64 is the
 * strict base64 of a valid signature over challenge_hex by public_key_pem (the device's
 * registered key, SubjectPublicKeyInfo PEM). The challenge is consumed as soon as it is
 * found, before the response is even decoded. Errors: IOTSEC_ERR_INVALID_ARG (device id),
 * IOTSEC_ERR_FORMAT (challenge or response malformed, or the registered key unusable),
 * IOTSEC_ERR_AUTH (no such challenge for this device: unknown, used, or expired),
 * IOTSEC_ERR_VERIFY (the signature does not verify). */
IOTSEC_MUST_CHECK iotsec_result iotsec_challenge_verify(
    struct iotsec_challenge_store *cs, const char *device_id, struct iotsec_slice challenge_hex,
    struct iotsec_slice response_b64, struct iotsec_slice public_key_pem, int64_t now);

void iotsec_challenge_get_stats(struct iotsec_challenge_store *cs,
                                struct iotsec_challenge_stats *out);

/* Strict standard base64 (RFC 4648 section 4): padded to a multiple of 4, no whitespace
 * or other characters, zero unused bits, so one byte string has one spelling. Appends
 * the bytes to out; IOTSEC_ERR_FORMAT says what is wrong. */
IOTSEC_MUST_CHECK iotsec_result iotsec_base64_decode(struct iotsec_slice in,
                                                     struct iotsec_buf *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_base64_encode(struct iotsec_slice in,
                                                     struct iotsec_buf *out);

#endif
