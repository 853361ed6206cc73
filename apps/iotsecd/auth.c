/*
 * The credentials iotsecd accepts besides a client certificate: API keys, device tokens
 * (JWT, HS256) and challenge-response. The decisions are the auth module's; this file
 * only sets up their state for the server.
 *
 * The token secret is DIR/jwt-hs256.key: 32 random bytes, mode 0600, made on the first
 * start. Another service that must verify tokens without the secret can be given ES256
 * keys and the JWKS document instead (docs/tokens.md).
 */
#include "iotsecd.h"

#include "iotsec/apikey.h"
#include "iotsec/challenge.h"
#include "iotsec/crypto.h"
#include "iotsec/file.h"
#include "iotsec/jwt.h"
#include "iotsec/log.h"

#include <stdio.h>

#define JWT_SECRET_FILE "jwt-hs256.key"
#define JWT_SECRET_LEN  32
#define JWT_KID         "iotsecd-hs256"

static iotsec_result load_secret(const char *dir, struct iotsec_buf *secret)
{
    char path[IOTSECD_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, JWT_SECRET_FILE);
    if (!iotsec_file_exists(path)) {
        uint8_t fresh[JWT_SECRET_LEN];
        IOTSEC_GUARD(iotsec_random(fresh, sizeof(fresh)));
        iotsec_result r =
            iotsec_file_write_atomic(path, iotsec_slice_make(fresh, sizeof(fresh)), 0600);
        iotsec_wipe(fresh, sizeof(fresh));
        IOTSEC_GUARD(r);
        iotsec_log_info("created the device token secret", IOTSEC_LOG_STR("file", path));
    }
    return iotsec_file_read_private(path, 1024, secret);
}

iotsec_result iotsecd_auth_init(struct iotsecd *server)
{
    struct iotsec_buf secret;
    iotsec_buf_init_secret(&secret);
    iotsec_result r = load_secret(server->cfg.data_dir, &secret);
    if (iotsec_ok(r))
        r = iotsec_jwt_key_hs256(iotsec_buf_slice(&secret), JWT_KID, &server->jwt_key);
    iotsec_buf_free(&secret);
    IOTSEC_GUARD(r);
    /* [limits] rate_per_minute may go up to 1000000 for devices; an API key's default
     * cannot pass the key maximum, so it takes the lower of the two. */
    uint32_t key_rate = server->cfg.rate_per_minute;
    if (key_rate > IOTSEC_APIKEY_RATE_MAX)
        key_rate = IOTSEC_APIKEY_RATE_MAX;
    struct iotsec_apikey_auth_config ac = {.default_rate_per_min = key_rate};
    IOTSEC_GUARD(iotsec_apikey_auth_new(&ac, &server->apikeys));
    return iotsec_challenge_store_new(NULL, &server->challenges);
}

void iotsecd_auth_free(struct iotsecd *server)
{
    iotsec_jwt_key_free(server->jwt_key);
    iotsec_apikey_auth_free(server->apikeys);
    iotsec_challenge_store_free(server->challenges);
    server->jwt_key = NULL;
    server->apikeys = NULL;
    server->challenges = NULL;
}
