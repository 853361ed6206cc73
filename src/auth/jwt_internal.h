/*
 * What jwt.c (issue, verify) and jwks.c (publishing the public keys) share: the key
 * object behind the opaque struct iotsec_jwt_key of include/iotsec/jwt.h.
 */
#ifndef IOTSEC_JWT_INTERNAL_H
#define IOTSEC_JWT_INTERNAL_H

#include "iotsec/jwt.h"

struct iotsec_jwt_key {
    enum iotsec_jwt_alg alg;
    struct iotsec_buf secret;    /* HS256 */
    const struct iotsec_key *ec; /* ES256, borrowed */
    char *kid;
};

#endif
