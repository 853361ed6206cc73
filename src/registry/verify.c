/*
 * The client check both servers call: pki's verdict on the chain, then the registry's
 * on the device. Every refusal says which step refused, for the auth_failure event.
 */
#include "iotsec/registry.h"

#include <string.h>

const char *iotsec_registry_refusal_name(enum iotsec_registry_refusal why)
{
    switch (why) {
    case IOTSEC_REGISTRY_ACCEPTED:
        return "accepted";
    case IOTSEC_REGISTRY_BAD_CERTIFICATE:
        return "bad_certificate";
    case IOTSEC_REGISTRY_UNKNOWN_DEVICE:
        return "unknown_device";
    case IOTSEC_REGISTRY_DISABLED:
        return "disabled";
    case IOTSEC_REGISTRY_REVOKED:
        return "revoked";
    case IOTSEC_REGISTRY_NOT_CURRENT:
        return "not_current";
    case IOTSEC_REGISTRY_LOOKUP_FAILED:
        return "lookup_failed";
    }
    return "unknown";
}

static iotsec_result refuse(enum iotsec_registry_refusal *why, enum iotsec_registry_refusal reason,
                            const char *device_id, const char *what)
{
    *why = reason;
    IOTSEC_BAIL(IOTSEC_ERR_AUTH, "registry: device '%s' %s", device_id, what);
}

/* A store failure while checking is a refusal too (fail closed), but keeps the store's
 * message so the operator sees what went wrong. */
static iotsec_result lookup_failed(enum iotsec_registry_refusal *why)
{
    *why = IOTSEC_REGISTRY_LOOKUP_FAILED;
    iotsec_error_prefix("registry: lookup failed, refusing: ");
    return IOTSEC_RESULT_ERR;
}

static iotsec_result check_current_cert(struct iotsec_store *s, const struct iotsec_pki_peer *peer,
                                        enum iotsec_registry_refusal *why)
{
    struct iotsec_store_cert cert;
    if (!iotsec_ok(iotsec_store_cert_get_by_fingerprint(s, peer->fingerprint, &cert))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            return refuse(why, IOTSEC_REGISTRY_NOT_CURRENT, peer->device_id,
                          "presented a certificate the registry never recorded");
        return lookup_failed(why);
    }
    if (strcmp(cert.device_id, peer->device_id) != 0)
        return refuse(why, IOTSEC_REGISTRY_NOT_CURRENT, peer->device_id,
                      "presented a certificate recorded for another device");
    if (cert.revoked_at != 0)
        return refuse(why, IOTSEC_REGISTRY_REVOKED, peer->device_id,
                      "presented a revoked certificate");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_registry_check_peer(struct iotsec_store *s, const struct iotsec_pki_peer *peer,
                                         enum iotsec_registry_refusal *why)
{
    enum iotsec_registry_refusal ignored;
    if (why == NULL)
        why = &ignored;
    *why = IOTSEC_REGISTRY_ACCEPTED;

    struct iotsec_store_device d = {0};
    if (!iotsec_ok(iotsec_store_device_get(s, peer->device_id, &d))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            return refuse(why, IOTSEC_REGISTRY_UNKNOWN_DEVICE, peer->device_id, "is not enrolled");
        if (iotsec_error_code() == IOTSEC_ERR_INVALID_ARG)
            return refuse(why, IOTSEC_REGISTRY_UNKNOWN_DEVICE, peer->device_id,
                          "is not a device id");
        return lookup_failed(why);
    }
    enum iotsec_store_device_status status = d.status;
    /* Public data: a fingerprint is a hash of a certificate the peer itself sent. */
    bool current = strcmp(d.cert_fingerprint, peer->fingerprint) == 0;
    iotsec_store_device_clear(&d);

    if (status == IOTSEC_STORE_DEVICE_REVOKED)
        return refuse(why, IOTSEC_REGISTRY_REVOKED, peer->device_id, "is revoked");
    if (status == IOTSEC_STORE_DEVICE_DISABLED)
        return refuse(why, IOTSEC_REGISTRY_DISABLED, peer->device_id, "is disabled");
    if (status != IOTSEC_STORE_DEVICE_ACTIVE)
        return refuse(why, IOTSEC_REGISTRY_DISABLED, peer->device_id, "is not active");
    if (!current)
        return refuse(why, IOTSEC_REGISTRY_NOT_CURRENT, peer->device_id,
                      "presented a certificate other than its current one (renewed or never "
                      "issued by this registry)");
    return check_current_cert(s, peer, why);
}

iotsec_result iotsec_registry_verify_client(struct iotsec_pki_verifier *v, struct iotsec_store *s,
                                            struct iotsec_slice chain, time_t at,
                                            struct iotsec_pki_peer *out,
                                            enum iotsec_registry_refusal *why)
{
    enum iotsec_registry_refusal ignored;
    if (why == NULL)
        why = &ignored;
    *why = IOTSEC_REGISTRY_ACCEPTED;
    if (!iotsec_ok(iotsec_pki_verify_client(v, chain, at, out))) {
        *why = IOTSEC_REGISTRY_BAD_CERTIFICATE;
        return IOTSEC_RESULT_ERR;
    }
    return iotsec_registry_check_peer(s, out, why);
}
