/*
 * HMAC-SHA256 (RFC 2104) through EVP_MAC, for JWT HS256, API key hashes and the event
 * log's chain.
 *
 * The EVP_MAC is fetched once per process. Verification recomputes the tag and compares
 * it in constant time; it accepts only the full 32-byte tag, because accepting a
 * truncated tag would let an attacker choose how many bits of it they have to guess.
 * The recomputed tag is wiped: for a forged input it is exactly the tag the attacker
 * wanted.
 *
 * A prepared key (struct iotsec_hmac_key) holds an EVP_MAC_CTX initialised with the key
 * and is never used directly: each MAC works on EVP_MAC_CTX_dup of it, which only reads
 * the template, so one prepared key serves concurrent verifiers without a lock. OpenSSL
 * 3 otherwise fetches the digest by name and hashes both pads on every EVP_MAC_init,
 * which for a 300-byte token costs as much as the MAC itself.
 */
#include "iotsec/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_mac;

static void fetch_hmac(void)
{
    hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static void mac_ctx_cleanup(EVP_MAC_CTX **ctx)
{
    EVP_MAC_CTX_free(*ctx);
}

/* A context keyed with key, for HMAC-SHA256. */
static iotsec_result keyed_ctx(struct iotsec_slice key, EVP_MAC_CTX **out)
{
    /* OpenSSL takes a NULL key as "keep the previous key": an empty key must be non-NULL. */
    static const uint8_t empty[1];
    static char digest_name[] = "SHA256";

    *out = NULL;
    pthread_once(&hmac_once, fetch_hmac);
    IOTSEC_ENSURE(hmac_mac != NULL, IOTSEC_ERR_CRYPTO,
                  "hmac: HMAC is not available from the OpenSSL providers");
    EVP_MAC_CTX *ctx IOTSEC_DEFER(mac_ctx_cleanup) = EVP_MAC_CTX_new(hmac_mac);
    IOTSEC_ENSURE_ALLOC(ctx);

    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    const uint8_t *key_ptr = key.len == 0 ? empty : key.ptr;
    IOTSEC_GUARD_OSSL(EVP_MAC_init(ctx, key_ptr, key.len, params), IOTSEC_ERR_CRYPTO,
                      "hmac: init with a %zu-byte key", key.len);
    *out = ctx;
    ctx = NULL;
    return IOTSEC_RESULT_OK;
}

/* Feeds data to a keyed context and writes the tag. */
static iotsec_result mac_finish(EVP_MAC_CTX *ctx, struct iotsec_slice data,
                                uint8_t out[IOTSEC_HMAC_SHA256_LEN])
{
    if (data.len > 0)
        IOTSEC_GUARD_OSSL(EVP_MAC_update(ctx, data.ptr, data.len), IOTSEC_ERR_CRYPTO,
                          "hmac: update");
    size_t out_len = 0;
    IOTSEC_GUARD_OSSL(EVP_MAC_final(ctx, out, &out_len, IOTSEC_HMAC_SHA256_LEN), IOTSEC_ERR_CRYPTO,
                      "hmac: final");
    IOTSEC_ENSURE(out_len == IOTSEC_HMAC_SHA256_LEN, IOTSEC_ERR_CRYPTO,
                  "hmac: OpenSSL produced a %zu-byte tag, expected %d", out_len,
                  IOTSEC_HMAC_SHA256_LEN);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hmac_sha256(struct iotsec_slice key, struct iotsec_slice data,
                                 uint8_t out[IOTSEC_HMAC_SHA256_LEN])
{
    EVP_MAC_CTX *ctx IOTSEC_DEFER(mac_ctx_cleanup) = NULL;
    IOTSEC_GUARD(keyed_ctx(key, &ctx));
    return mac_finish(ctx, data, out);
}

/* Recomputed tag against the given one; the recomputed tag is wiped. */
static iotsec_result tag_check(const uint8_t expected[IOTSEC_HMAC_SHA256_LEN],
                               struct iotsec_slice tag)
{
    bool match = iotsec_ct_equal(iotsec_slice_make(expected, IOTSEC_HMAC_SHA256_LEN), tag);
    IOTSEC_ENSURE(match, IOTSEC_ERR_VERIFY, "hmac: tag does not match");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_hmac_sha256_verify(struct iotsec_slice key, struct iotsec_slice data,
                                        struct iotsec_slice tag)
{
    IOTSEC_ENSURE(tag.len == IOTSEC_HMAC_SHA256_LEN, IOTSEC_ERR_VERIFY,
                  "hmac: tag must be %d bytes, got %zu (truncated tags are not accepted)",
                  IOTSEC_HMAC_SHA256_LEN, tag.len);
    uint8_t expected[IOTSEC_HMAC_SHA256_LEN];
    IOTSEC_GUARD(iotsec_hmac_sha256(key, data, expected));
    iotsec_result res = tag_check(expected, tag);
    iotsec_wipe(expected, sizeof(expected));
    return res;
}

/* ---- prepared keys ---- */

struct iotsec_hmac_key {
    EVP_MAC_CTX *tmpl; /* keyed, never fed data: only copied */
};

iotsec_result iotsec_hmac_key_new(struct iotsec_slice key, struct iotsec_hmac_key **out)
{
    *out = NULL;
    struct iotsec_hmac_key *k = calloc(1, sizeof(*k));
    IOTSEC_ENSURE_ALLOC(k);
    if (!iotsec_ok(keyed_ctx(key, &k->tmpl))) {
        free(k);
        return IOTSEC_RESULT_ERR;
    }
    *out = k;
    return IOTSEC_RESULT_OK;
}

void iotsec_hmac_key_free(struct iotsec_hmac_key *key)
{
    if (key == NULL)
        return;
    EVP_MAC_CTX_free(key->tmpl); /* the HMAC provider cleanses its state */
    free(key);
}

iotsec_result iotsec_hmac_key_mac(const struct iotsec_hmac_key *key, struct iotsec_slice data,
                                  uint8_t out[IOTSEC_HMAC_SHA256_LEN])
{
    EVP_MAC_CTX *ctx IOTSEC_DEFER(mac_ctx_cleanup) = EVP_MAC_CTX_dup(key->tmpl);
    IOTSEC_ENSURE(ctx != NULL, IOTSEC_ERR_NOMEM, "hmac: copying the prepared key");
    return mac_finish(ctx, data, out);
}

iotsec_result iotsec_hmac_key_verify(const struct iotsec_hmac_key *key, struct iotsec_slice data,
                                     struct iotsec_slice tag)
{
    IOTSEC_ENSURE(tag.len == IOTSEC_HMAC_SHA256_LEN, IOTSEC_ERR_VERIFY,
                  "hmac: tag must be %d bytes, got %zu (truncated tags are not accepted)",
                  IOTSEC_HMAC_SHA256_LEN, tag.len);
    uint8_t expected[IOTSEC_HMAC_SHA256_LEN];
    IOTSEC_GUARD(iotsec_hmac_key_mac(key, data, expected));
    iotsec_result res = tag_check(expected, tag);
    iotsec_wipe(expected, sizeof(expected));
    return res;
}
