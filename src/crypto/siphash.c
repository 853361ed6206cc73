/*
 * A keyed 64-bit hash for hash tables that attackers fill (rate limiter, detectors):
 * SipHash-2-4 from OpenSSL (EVP_MAC "SIPHASH"), under a random key, so that nobody
 * outside can choose keys that collide.
 *
 * An EVP_MAC_CTX is not safe to share between threads, and duplicating one for every call
 * would cost an allocation per hash. Each thread therefore keeps a few contexts,
 * duplicated from the hasher's template on first use and found again by the hasher's
 * id (ids are never reused, so a freed hasher's contexts are simply never matched
 * again; they are freed when the thread replaces them or ends).
 */
#include "iotsec/crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define THREAD_CACHE 4

struct iotsec_siphash {
    EVP_MAC_CTX *template_ctx;
    uint64_t id;
};

struct thread_cache {
    uint64_t id[THREAD_CACHE];
    EVP_MAC_CTX *ctx[THREAD_CACHE];
    unsigned next;
};

static atomic_uint_fast64_t next_id = 1;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_key_ok;

static void cache_free(void *p)
{
    struct thread_cache *c = p;
    for (size_t i = 0; i < THREAD_CACHE; i++)
        EVP_MAC_CTX_free(c->ctx[i]);
    free(c);
}

static void cache_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

iotsec_result iotsec_siphash_new(struct iotsec_siphash **out)
{
    IOTSEC_ENSURE(pthread_once(&cache_once, cache_init) == 0 && cache_key_ok, IOTSEC_ERR_NOMEM,
                  "siphash: no thread-local slot");
    struct iotsec_siphash *h = calloc(1, sizeof(*h));
    IOTSEC_ENSURE_ALLOC(h);
    uint8_t key[16];
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    h->template_ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    bool ok = h->template_ctx != NULL && iotsec_ok(iotsec_random(key, sizeof(key))) &&
              EVP_MAC_init(h->template_ctx, key, sizeof(key), params) == 1;
    iotsec_wipe(key, sizeof(key));
    if (!ok) {
        iotsec_siphash_free(h);
        iotsec_error_set_ossl(IOTSEC_ERR_CRYPTO, "siphash: cannot set up SIPHASH");
        return IOTSEC_RESULT_ERR;
    }
    h->id = atomic_fetch_add(&next_id, 1);
    *out = h;
    return IOTSEC_RESULT_OK;
}

void iotsec_siphash_free(struct iotsec_siphash *h)
{
    if (h == NULL)
        return;
    EVP_MAC_CTX_free(h->template_ctx);
    free(h);
}

static EVP_MAC_CTX *thread_ctx(const struct iotsec_siphash *h)
{
    struct thread_cache *c = pthread_getspecific(cache_key);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL || pthread_setspecific(cache_key, c) != 0) {
            free(c);
            return NULL;
        }
    }
    for (size_t i = 0; i < THREAD_CACHE; i++)
        if (c->id[i] == h->id)
            return c->ctx[i];
    size_t i = c->next++ % THREAD_CACHE;
    EVP_MAC_CTX_free(c->ctx[i]);
    c->ctx[i] = EVP_MAC_CTX_dup(h->template_ctx);
    c->id[i] = c->ctx[i] != NULL ? h->id : 0;
    return c->ctx[i];
}

iotsec_result iotsec_siphash64(const struct iotsec_siphash *h, struct iotsec_slice data,
                               uint64_t *out)
{
    EVP_MAC_CTX *ctx = thread_ctx(h);
    IOTSEC_ENSURE(ctx != NULL, IOTSEC_ERR_NOMEM, "siphash: out of memory");
    uint8_t digest[8];
    size_t n = 0;
    /* A NULL key re-initialises with the key already set. */
    IOTSEC_GUARD_OSSL(EVP_MAC_init(ctx, NULL, 0, NULL), IOTSEC_ERR_CRYPTO, "siphash: init");
    IOTSEC_GUARD_OSSL(EVP_MAC_update(ctx, data.ptr, data.len), IOTSEC_ERR_CRYPTO,
                      "siphash: update");
    IOTSEC_GUARD_OSSL(EVP_MAC_final(ctx, digest, &n, sizeof(digest)), IOTSEC_ERR_CRYPTO,
                      "siphash: final");
    IOTSEC_ENSURE(n == sizeof(digest), IOTSEC_ERR_CRYPTO, "siphash: %zu-byte digest", n);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | digest[i];
    *out = v;
    return IOTSEC_RESULT_OK;
}
