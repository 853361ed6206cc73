/*
 * Random bytes for keys, nonces, salts and tokens.
 *
 * Everything comes from OpenSSL's private DRBG (RAND_priv_bytes): it is seeded from the
 * kernel, reseeds itself, is fork-safe, and is kept apart from the public DRBG that
 * produces values which become visible (so that those cannot help predict our secrets).
 * RAND_priv_bytes takes an int count, so large requests are served in chunks.
 */
#include "iotsec/crypto.h"

#include <openssl/rand.h>

#define RNG_CHUNK ((size_t)1 << 20)

iotsec_result iotsec_random(void *dst, size_t n)
{
    uint8_t *p = dst;
    while (n > 0) {
        size_t chunk = n < RNG_CHUNK ? n : RNG_CHUNK;
        IOTSEC_GUARD_OSSL(RAND_priv_bytes(p, (int)chunk), IOTSEC_ERR_CRYPTO,
                          "random: the OpenSSL DRBG failed to produce %zu bytes", chunk);
        p += chunk;
        n -= chunk;
    }
    return IOTSEC_RESULT_OK;
}
