/*
 * SHA-256, one-shot and streaming (firmware images are hashed while they download, in
 * constant memory).
 *
 * The EVP_MD is fetched from the provider once per process (pthread_once) instead of on
 * every call: an implicit fetch costs a provider lookup under a lock, which matters on
 * per-message paths such as the event log's hash chain. A context that has produced its
 * digest refuses further use rather than silently hashing into a finished state.
 */
#include "iotsec/crypto.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

struct iotsec_sha256 {
    EVP_MD_CTX *ctx;
    bool finished;
};

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static iotsec_result sha256_algorithm(const EVP_MD **md)
{
    pthread_once(&sha256_once, fetch_sha256);
    IOTSEC_ENSURE(sha256_md != NULL, IOTSEC_ERR_CRYPTO,
                  "sha256: SHA-256 is not available from the OpenSSL providers");
    *md = sha256_md;
    return IOTSEC_RESULT_OK;
}

static void sha256_cleanup(struct iotsec_sha256 **h)
{
    iotsec_sha256_free(*h);
}

iotsec_result iotsec_sha256_new(struct iotsec_sha256 **out)
{
    const EVP_MD *md;
    IOTSEC_GUARD(sha256_algorithm(&md));
    struct iotsec_sha256 *h IOTSEC_DEFER(sha256_cleanup) = calloc(1, sizeof(*h));
    IOTSEC_ENSURE_ALLOC(h);
    h->ctx = EVP_MD_CTX_new();
    IOTSEC_ENSURE_ALLOC(h->ctx);
    IOTSEC_GUARD_OSSL(EVP_DigestInit_ex2(h->ctx, md, NULL), IOTSEC_ERR_CRYPTO, "sha256: init");
    *out = h;
    h = NULL;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_sha256_update(struct iotsec_sha256 *h, struct iotsec_slice data)
{
    IOTSEC_ENSURE(!h->finished, IOTSEC_ERR_INVALID_ARG,
                  "sha256: update after final (the context is finished)");
    if (data.len == 0)
        return IOTSEC_RESULT_OK;
    IOTSEC_GUARD_OSSL(EVP_DigestUpdate(h->ctx, data.ptr, data.len), IOTSEC_ERR_CRYPTO,
                      "sha256: update");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_sha256_final(struct iotsec_sha256 *h, uint8_t out[IOTSEC_SHA256_LEN])
{
    IOTSEC_ENSURE(!h->finished, IOTSEC_ERR_INVALID_ARG,
                  "sha256: final called twice (the context is finished)");
    h->finished = true;
    IOTSEC_GUARD_OSSL(EVP_DigestFinal_ex(h->ctx, out, NULL), IOTSEC_ERR_CRYPTO, "sha256: final");
    return IOTSEC_RESULT_OK;
}

void iotsec_sha256_free(struct iotsec_sha256 *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

iotsec_result iotsec_sha256(struct iotsec_slice data, uint8_t out[IOTSEC_SHA256_LEN])
{
    static const uint8_t empty[1];
    const EVP_MD *md;
    IOTSEC_GUARD(sha256_algorithm(&md));
    const void *p = data.len == 0 ? empty : data.ptr;
    IOTSEC_GUARD_OSSL(EVP_Digest(p, data.len, out, NULL, md, NULL), IOTSEC_ERR_CRYPTO,
                      "sha256: digest of %zu bytes", data.len);
    return IOTSEC_RESULT_OK;
}
