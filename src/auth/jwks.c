/*
 * The JWK Set (RFC 7517) that publishes our ES256 token keys, so that services verify
 * device tokens with a public key and never need the HS256 secret.
 *
 * Built from the jwt key objects themselves, not from PEM files beside them, so the set
 * cannot drift from the keys that sign: the kid written here is the kid that issue puts
 * into token headers. Members are written by name from a fixed list, never copied from
 * the key, which is how "no private member (d) can leak" is made structural rather than
 * a filter that a future key type could slip past.
 */
#include "iotsec/json.h"
#include "iotsec/jwt.h"
#include "jwt_internal.h"

#include <string.h>

/* 32 bytes of base64url without padding. */
#define COORD_B64_LEN 43

static iotsec_result coord_b64(const uint8_t coord[IOTSEC_P256_COORD_LEN],
                               char out[COORD_B64_LEN + 1])
{
    struct iotsec_buf b = {0};
    iotsec_result res =
        iotsec_base64url_encode(iotsec_slice_make(coord, IOTSEC_P256_COORD_LEN), &b);
    if (iotsec_ok(res) && b.len != COORD_B64_LEN) {
        iotsec_error_set(IOTSEC_ERR_CRYPTO, "jwks: coordinate encoded to %zu characters", b.len);
        res = IOTSEC_RESULT_ERR;
    }
    if (iotsec_ok(res)) {
        memcpy(out, b.ptr, COORD_B64_LEN);
        out[COORD_B64_LEN] = '\0';
    }
    iotsec_buf_free(&b);
    return res;
}

static iotsec_result check_key(const struct iotsec_jwt_key *const *keys, size_t i)
{
    const struct iotsec_jwt_key *k = keys[i];
    IOTSEC_ENSURE(k != NULL, IOTSEC_ERR_INVALID_ARG, "jwks: key %zu is missing", i);
    IOTSEC_ENSURE(k->alg == IOTSEC_JWT_ES256, IOTSEC_ERR_INVALID_ARG,
                  "jwks: key %zu is HS256, whose secret must never be published", i);
    IOTSEC_ENSURE(k->kid != NULL, IOTSEC_ERR_INVALID_ARG,
                  "jwks: key %zu has no kid (verifiers choose the key by kid)", i);
    for (size_t j = 0; j < i; j++)
        IOTSEC_ENSURE(strcmp(keys[j]->kid, k->kid) != 0, IOTSEC_ERR_INVALID_ARG,
                      "jwks: keys %zu and %zu share the kid '%s'", j, i, k->kid);
    return IOTSEC_RESULT_OK;
}

static iotsec_result jwk_append(const struct iotsec_jwt_key *k, json_t *arr)
{
    uint8_t x[IOTSEC_P256_COORD_LEN], y[IOTSEC_P256_COORD_LEN];
    char xs[COORD_B64_LEN + 1], ys[COORD_B64_LEN + 1];
    IOTSEC_GUARD(iotsec_key_ec_p256_public_xy(k->ec, x, y));
    IOTSEC_GUARD(coord_b64(x, xs));
    IOTSEC_GUARD(coord_b64(y, ys));
    /* Insertion order is output order: the RFC 7517 example's member order. */
    json_t *jwk = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-256", "x", xs,
                            "y", ys, "kid", k->kid, "alg", "ES256", "use", "sig");
    IOTSEC_ENSURE(jwk != NULL, IOTSEC_ERR_INVALID_ARG,
                  "jwks: kid '%s' cannot be encoded (not valid UTF-8?)", k->kid);
    IOTSEC_ENSURE(json_array_append_new(arr, jwk) == 0, IOTSEC_ERR_NOMEM, NULL);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_jwks_build(const struct iotsec_jwt_key *const *keys, size_t n_keys,
                                json_t **out)
{
    *out = NULL;
    IOTSEC_ENSURE(keys != NULL && n_keys > 0, IOTSEC_ERR_INVALID_ARG,
                  "jwks: a key set needs at least one key");
    IOTSEC_ENSURE(n_keys <= IOTSEC_JWKS_MAX_KEYS, IOTSEC_ERR_INVALID_ARG,
                  "jwks: %zu keys exceed the limit of %d", n_keys, IOTSEC_JWKS_MAX_KEYS);
    for (size_t i = 0; i < n_keys; i++)
        IOTSEC_GUARD(check_key(keys, i));
    json_t *arr = json_array();
    IOTSEC_ENSURE_ALLOC(arr);
    for (size_t i = 0; i < n_keys; i++) {
        if (!iotsec_ok(jwk_append(keys[i], arr))) {
            json_decref(arr);
            return IOTSEC_RESULT_ERR;
        }
    }
    /* json_pack's "o" takes arr's reference, on failure too. */
    json_t *set = json_pack("{s:o}", "keys", arr);
    IOTSEC_ENSURE_ALLOC(set);
    *out = set;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_jwks_write(const struct iotsec_jwt_key *const *keys, size_t n_keys,
                                struct iotsec_buf *out)
{
    json_t *set = NULL;
    IOTSEC_GUARD(iotsec_jwks_build(keys, n_keys, &set));
    iotsec_result res = iotsec_json_dump(set, 0, out);
    json_decref(set);
    return res;
}
