/*
 * Constant-time comparison of secrets (MACs, tokens, API key hashes).
 *
 * CRYPTO_memcmp touches every byte whatever the contents, so the time taken tells an
 * attacker nothing about how many leading bytes of a guess were right. Lengths are
 * public (a tag or token has a fixed, known size), so a length mismatch returns early.
 */
#include "iotsec/crypto.h"

#include <openssl/crypto.h>

bool iotsec_ct_equal(struct iotsec_slice a, struct iotsec_slice b)
{
    if (a.len != b.len)
        return false;
    if (a.len == 0)
        return true;
    return CRYPTO_memcmp(a.ptr, b.ptr, a.len) == 0;
}
