/*
 * Device JWTs (JWS compact serialisation, RFC 7515/7519): issue and verify, HS256 (the
 * default) and ES256 (for services that verify with a published public key).
 *
 * Tokens are bearer credentials that devices and clients present to every entry point,
 * so verification is written against the known JWT attacks:
 * - the algorithm is pinned by the key object, never taken from the token: a header whose
 *   "alg" differs from the key's is refused ("alg confusion": an RS/ES public key used as
 *   an HMAC secret), and "none" is refused always;
 * - a "crit" header is refused (we implement no extensions), exactly three segments,
 *   strict base64url (no padding, no characters outside the alphabet, zero trailing bits),
 *   and a size bound (IOTSEC_JWT_MAX_TOKEN) before anything is decoded;
 * - header and claims are parsed with iotsec_json_parse, so duplicate claims are refused;
 * - ES256 signatures are the 64-byte r||s of RFC 7518 section 3.4, nothing else;
 * - exp is required; iss and aud must match; nbf and iat are checked with a leeway;
 *   a revoked jti is refused through a caller callback.
 * Time is always passed in by the caller (Unix seconds), so tests and replays are exact.
 * Failures are IOTSEC_ERR_AUTH (claims) or IOTSEC_ERR_VERIFY (signature), IOTSEC_ERR_FORMAT
 * or IOTSEC_ERR_TOO_LARGE (shape), with a message naming what failed
 * ("jwt: token expired at 2026-11-25T07:14:28Z").
 */
#ifndef IOTSEC_JWT_H
#define IOTSEC_JWT_H

#include "iotsec/buf.h"
#include "iotsec/crypto.h"
#include "iotsec/error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Bound on a whole token: far above a device token (~400 bytes), far below abuse. */
#define IOTSEC_JWT_MAX_TOKEN ((size_t)8 * 1024)
/* HS256 secrets shorter than the hash are refused (RFC 7518 section 3.2). */
#define IOTSEC_JWT_HS256_MIN_SECRET 32
#define IOTSEC_JWT_DEFAULT_ISSUER   "iot-platform"
#define IOTSEC_JWT_DEFAULT_AUDIENCE "iot-devices"
#define IOTSEC_JWT_DEFAULT_LIFETIME ((int64_t)24 * 3600)
#define IOTSEC_JWT_DEFAULT_LEEWAY   ((int64_t)30)
/* leeway_sec of 0 means the default; this asks for none at all. */
#define IOTSEC_JWT_NO_LEEWAY ((int64_t)-1)

enum iotsec_jwt_alg {
    IOTSEC_JWT_HS256,
    IOTSEC_JWT_ES256,
};

/* A key bound to one algorithm. Opaque; released with iotsec_jwt_key_free. */
struct iotsec_jwt_key;

/* HS256 with a copy of secret (at least IOTSEC_JWT_HS256_MIN_SECRET bytes; the copy is
 * wiped on free). kid may be NULL. */
IOTSEC_MUST_CHECK iotsec_result iotsec_jwt_key_hs256(struct iotsec_slice secret, const char *kid,
                                                     struct iotsec_jwt_key **out);
/* ES256 over an EC P-256 key, which the jwt key borrows (it must outlive it). A public
 * key verifies only; a private key also issues. kid may be NULL; when set, it is written
 * into issued headers, and a token that names a different kid is refused. */
IOTSEC_MUST_CHECK iotsec_result iotsec_jwt_key_es256(const struct iotsec_key *key, const char *kid,
                                                     struct iotsec_jwt_key **out);
enum iotsec_jwt_alg iotsec_jwt_key_alg(const struct iotsec_jwt_key *key);
void iotsec_jwt_key_free(struct iotsec_jwt_key *key);

/* Returns 0 when jti is not revoked, 1 when it is, negative when the lookup failed (the
 * token is then refused: revocation fails closed). */
typedef int (*iotsec_jwt_revoked_fn)(void *ctx, const char *jti);

/* NULL or zero fields mean the defaults above. */
struct iotsec_jwt_options {
    const char *issuer;
    const char *audience;
    int64_t lifetime_sec;             /* issue: exp - iat */
    int64_t leeway_sec;               /* verify: skew allowed on exp, nbf, iat (see NO_LEEWAY) */
    iotsec_jwt_revoked_fn is_revoked; /* verify: when set, jti is required and checked */
    void *revoked_ctx;
};

/* What the issuer says about the device; iss, aud, iat, exp and a random jti are added. */
struct iotsec_jwt_claims {
    const char *device_id;           /* required */
    const char *subject;             /* NULL: the device id */
    const char *const *capabilities; /* may be NULL when n_capabilities is 0 */
    size_t n_capabilities;
};

/* Appends a signed token to out. now is Unix seconds. */
IOTSEC_MUST_CHECK iotsec_result iotsec_jwt_issue(const struct iotsec_jwt_key *key,
                                                 const struct iotsec_jwt_options *opts,
                                                 const struct iotsec_jwt_claims *claims,
                                                 int64_t now, struct iotsec_buf *out);

/* Checks shape, header (alg pinned to key, no none, no crit, kid) and signature only;
 * no claim is examined. On success *header and *payload are new references the caller
 * releases with json_decref. header may be NULL if unwanted; when payload is NULL the
 * payload is only base64url-checked, not parsed as JSON (a JWS may carry any bytes, as
 * Wycheproof's vectors do). For tests and tools: a service accepting tokens calls
 * iotsec_jwt_verify. */
IOTSEC_MUST_CHECK iotsec_result iotsec_jwt_verify_signature(const struct iotsec_jwt_key *key,
                                                            struct iotsec_slice token,
                                                            json_t **header, json_t **payload);

/* Everything: iotsec_jwt_verify_signature, then exp (required), nbf, iat, iss, aud, the
 * types of deviceId, sub, capabilities and jti, and revocation. On success *claims (if
 * not NULL) is a new reference to the claims object. */
IOTSEC_MUST_CHECK iotsec_result iotsec_jwt_verify(const struct iotsec_jwt_key *key,
                                                  const struct iotsec_jwt_options *opts,
                                                  struct iotsec_slice token, int64_t now,
                                                  json_t **claims);

/* ---- JWKS: publishing ES256 verification keys (RFC 7517 section 5) ----
 * A service that must verify device tokens without holding the HS256 secret fetches the
 * JWK Set and picks the key by the token's kid:
 *   {"keys":[{"kty":"EC","crv":"P-256","x":"...","y":"...","kid":"...","alg":"ES256",
 *             "use":"sig"}]}
 * x and y are always 32 bytes before encoding (43 base64url characters), left-padded with
 * zeros (RFC 7518 section 6.2.1.2). Only public members are ever written, whether the
 * key holds a private part or not. Refused with IOTSEC_ERR_INVALID_ARG: an HS256 key (its
 * secret is the verification key, so publishing it would let anyone issue tokens), a key
 * without kid (verifiers could not choose), two keys with one kid, and an empty set. */
#define IOTSEC_JWKS_MAX_KEYS 16

/* *out is a new reference to the JWK Set object (release with json_decref). */
IOTSEC_MUST_CHECK iotsec_result iotsec_jwks_build(const struct iotsec_jwt_key *const *keys,
                                                  size_t n_keys, json_t **out);
/* The same document as compact JSON text, appended to out. */
IOTSEC_MUST_CHECK iotsec_result iotsec_jwks_write(const struct iotsec_jwt_key *const *keys,
                                                  size_t n_keys, struct iotsec_buf *out);

/* Strict base64url without padding (RFC 7515 section 2), exposed for tests and JWKS. */
IOTSEC_MUST_CHECK iotsec_result iotsec_base64url_encode(struct iotsec_slice in,
                                                        struct iotsec_buf *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_base64url_decode(struct iotsec_slice in,
                                                        struct iotsec_buf *out);

#endif
