/*
 * What jwt.c (issue, verify) and jwks.c (publishing the public keys) share: the key
 * object behind the opaque struct iotsec_jwt_key of include/iotsec/jwt.h.
 */
#ifndef IOTSEC_JWT_INTERNAL_H
#define IOTSEC_JWT_INTERNAL_H

#include "iotsec/jwt.h"

struct iotsec_jwt_key {
    enum iotsec_jwt_alg alg;
    struct iotsec_hmac_key *hmac; /* HS256: the secret, prepared */
    const struct iotsec_key *ec;  /* ES256, borrowed */
    char *kid;
    /* The base64url header segment this key issues. verify recognises it byte for byte
     * and skips decoding and parsing it: check_header's verdict on these exact bytes was
     * taken once, when the key was made. */
    struct iotsec_buf header_b64;
};

#endif
