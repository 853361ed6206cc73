/*
 * Fuzzes JWT verification (iotsec_jwt_verify) with arbitrary bytes as the token, against
 * a fixed HS256 key and a fixed ES256 key, at a fixed time.
 *
 * Invariants beyond "no crash":
 * - nothing is ever accepted: the fuzzer cannot forge an HMAC or ECDSA signature, so an
 *   acceptance means a check was skipped (alg none, a stripped signature, confusion);
 * - a refusal always carries a message starting "jwt: " and no claims are returned.
 * The seed corpus holds real tokens signed with other keys, so mutations start from the
 * right shape and reach header, base64url and claim parsing.
 */
#include "iotsec/jwt.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SECRET[] = "fuzz-secret-fuzz-secret-fuzz-secret-0123";

static struct iotsec_jwt_key *hs_key, *es_key;
static struct iotsec_key *ec;

static void setup(void)
{
    if (hs_key != NULL)
        return;
    if (!iotsec_ok(
            iotsec_jwt_key_hs256(iotsec_slice_make(SECRET, strlen(SECRET)), NULL, &hs_key)) ||
        !iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &ec)) ||
        !iotsec_ok(iotsec_jwt_key_es256(ec, NULL, &es_key)))
        abort();
}

static void must_refuse(const struct iotsec_jwt_key *key, struct iotsec_slice token)
{
    json_t *claims = (json_t *)1;
    if (iotsec_ok(iotsec_jwt_verify(key, NULL, token, 1795000000, &claims)))
        abort();
    if (claims != NULL)
        abort();
    if (strncmp(iotsec_error_message(), "jwt: ", 5) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    struct iotsec_slice token = iotsec_slice_make(data, size);
    must_refuse(hs_key, token);
    must_refuse(es_key, token);
    return 0;
}
