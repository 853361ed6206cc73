/*
 * A pki signer whose key never leaves a PKCS#11 token: pki hands over the to-be-signed
 * bytes, the token signs them (ECDSA P-256 over SHA-256, DER), and pki checks the result
 * against the public key read from the token here.
 */
#include "iotsec/hsm.h"
#include "iotsec/registry.h"

#include <stdio.h>
#include <string.h>

static iotsec_result token_sign(const struct iotsec_pki_signer *signer, struct iotsec_slice tbs,
                                struct iotsec_buf *sig)
{
    const struct iotsec_registry_token_signer *ts = signer->ctx;
    return iotsec_hsm_sign(ts->hsm, ts->label, tbs, sig);
}

iotsec_result iotsec_registry_token_signer_init(struct iotsec_registry_token_signer *ts,
                                                struct iotsec_hsm *hsm, const char *label)
{
    *ts = (struct iotsec_registry_token_signer){.hsm = hsm};
    IOTSEC_ENSURE(label != NULL && label[0] != '\0' && strlen(label) < sizeof(ts->label),
                  IOTSEC_ERR_INVALID_ARG, "registry: token key label must be 1 to %zu bytes",
                  sizeof(ts->label) - 1);
    snprintf(ts->label, sizeof(ts->label), "%s", label);
    struct iotsec_buf pem;
    iotsec_buf_init(&pem);
    iotsec_result r = iotsec_hsm_pubkey_pem(hsm, label, &pem);
    if (iotsec_ok(r))
        r = iotsec_key_from_pem(iotsec_buf_slice(&pem), &ts->public_key);
    iotsec_buf_free(&pem);
    IOTSEC_GUARD(r);
    IOTSEC_ENSURE(iotsec_key_type(ts->public_key) == IOTSEC_KEY_EC_P256, IOTSEC_ERR_INVALID_ARG,
                  "registry: token key '%s' is not an EC P-256 key", label);
    ts->signer =
        (struct iotsec_pki_signer){.public_key = ts->public_key, .sign = token_sign, .ctx = ts};
    return IOTSEC_RESULT_OK;
}

void iotsec_registry_token_signer_clear(struct iotsec_registry_token_signer *ts)
{
    iotsec_key_free(ts->public_key);
    *ts = (struct iotsec_registry_token_signer){0};
}
