/*
 * Enrolment, renewal, disable/enable, revocation and the CRL: each change of a device's
 * state is one store transaction, so the registry, the certificates it records and the
 * CRL built from them never disagree.
 */
#include "iotsec/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t ms(time_t t)
{
    return (int64_t)t * 1000;
}

static void key_cleanup(struct iotsec_key **k)
{
    iotsec_key_free(*k);
}

static void buf_cleanup(struct iotsec_buf *b)
{
    iotsec_buf_free(b);
}

static void device_cleanup(struct iotsec_store_device *d)
{
    iotsec_store_device_clear(d);
}

struct enrol_tx {
    const struct iotsec_registry_enrolment *e;
    struct iotsec_slice cert_pem;
    const struct iotsec_pki_issued *info;
    const char *public_key_pem;
};

/* Renewal: the device must be active; its current certificate becomes superseded. */
static iotsec_result renew_device(struct iotsec_store *s, const struct iotsec_registry_enrolment *e)
{
    struct iotsec_store_device d IOTSEC_DEFER(device_cleanup) = {0};
    IOTSEC_GUARD(iotsec_store_device_get(s, e->device_id, &d));
    IOTSEC_ENSURE(d.status == IOTSEC_STORE_DEVICE_ACTIVE, IOTSEC_ERR_PERMISSION,
                  "registry: device '%s' is %s; only an active device can be renewed", e->device_id,
                  iotsec_store_device_status_name(d.status));
    if (d.cert_serial[0] != '\0') {
        iotsec_result r =
            iotsec_store_cert_revoke(s, d.cert_serial, IOTSEC_STORE_CRL_SUPERSEDED, ms(e->now));
        if (!iotsec_ok(r) && iotsec_error_code() != IOTSEC_ERR_EXISTS)
            return r;
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result enrol_in_tx(struct iotsec_store *s, void *ctx)
{
    const struct enrol_tx *tx = ctx;
    const struct iotsec_registry_enrolment *e = tx->e;
    int64_t now = ms(e->now);
    if (e->renew) {
        IOTSEC_GUARD(renew_device(s, e));
    } else {
        struct iotsec_store_device d = {
            .status = IOTSEC_STORE_DEVICE_ACTIVE, .created_at = now, .updated_at = now};
        snprintf(d.id, sizeof(d.id), "%s", e->device_id);
        snprintf(d.model, sizeof(d.model), "%s", e->model != NULL ? e->model : "");
        if (!iotsec_ok(iotsec_store_device_insert(s, &d))) {
            if (iotsec_error_code() == IOTSEC_ERR_EXISTS)
                IOTSEC_BAIL(IOTSEC_ERR_EXISTS,
                            "registry: device '%s' is already enrolled (renew it to issue a new "
                            "certificate)",
                            e->device_id);
            return IOTSEC_RESULT_ERR;
        }
    }
    struct iotsec_store_cert c = {
        .not_before = ms(tx->info->not_before),
        .not_after = ms(tx->info->not_after),
        .issued_at = now,
    };
    snprintf(c.serial, sizeof(c.serial), "%s", tx->info->serial);
    snprintf(c.device_id, sizeof(c.device_id), "%s", e->device_id);
    snprintf(c.fingerprint, sizeof(c.fingerprint), "%s", tx->info->fingerprint);
    IOTSEC_GUARD(iotsec_store_cert_insert(s, &c));
    IOTSEC_GUARD(iotsec_store_device_set_certificate(s, e->device_id, tx->info->fingerprint,
                                                     tx->info->serial, now));
    IOTSEC_GUARD(iotsec_store_device_set_public_key(s, e->device_id, tx->public_key_pem, now));
    if (e->on_issued != NULL)
        IOTSEC_GUARD(e->on_issued(e->on_issued_ctx, tx->cert_pem, tx->info));
    return IOTSEC_RESULT_OK;
}

/* Refuse early, before anything is signed (a token signature can be slow or counted);
 * the transaction checks again. */
static iotsec_result precheck(struct iotsec_store *s, const struct iotsec_registry_enrolment *e)
{
    IOTSEC_ENSURE(iotsec_pki_device_id_valid(e->device_id), IOTSEC_ERR_INVALID_ARG,
                  "registry: device id must be 1 to 64 characters of [A-Za-z0-9_-]");
    IOTSEC_ENSURE((e->csr_pem.len > 0) != (e->public_key != NULL), IOTSEC_ERR_INVALID_ARG,
                  "registry: give either a CSR or a public key");
    struct iotsec_store_device d IOTSEC_DEFER(device_cleanup) = {0};
    iotsec_result r = iotsec_store_device_get(s, e->device_id, &d);
    if (!iotsec_ok(r) && iotsec_error_code() != IOTSEC_ERR_NOT_FOUND)
        return r;
    bool exists = iotsec_ok(r);
    IOTSEC_ENSURE(e->renew || !exists, IOTSEC_ERR_EXISTS,
                  "registry: device '%s' is already enrolled (renew it to issue a new "
                  "certificate)",
                  e->device_id);
    IOTSEC_ENSURE(!e->renew || exists, IOTSEC_ERR_NOT_FOUND,
                  "registry: device '%s' is not enrolled, so it cannot be renewed", e->device_id);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_registry_enrol(struct iotsec_store *s, const struct iotsec_pki_ca *ca,
                                    const struct iotsec_registry_enrolment *e,
                                    struct iotsec_buf *cert_pem, struct iotsec_pki_issued *info)
{
    IOTSEC_GUARD(precheck(s, e));

    struct iotsec_key *csr_key IOTSEC_DEFER(key_cleanup) = NULL;
    const struct iotsec_key *public_key = e->public_key;
    if (public_key == NULL) {
        IOTSEC_GUARD(iotsec_pki_csr_public_key(e->csr_pem, &csr_key));
        public_key = csr_key;
    }
    struct iotsec_buf pub_pem IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init(&pub_pem);
    IOTSEC_GUARD(iotsec_key_public_to_pem(public_key, &pub_pem));
    IOTSEC_GUARD(iotsec_buf_terminate(&pub_pem));

    struct iotsec_pki_device_params params = {
        .device_id = e->device_id, .validity_days = e->validity_days, .now = e->now};
    struct iotsec_buf cert IOTSEC_DEFER(buf_cleanup);
    iotsec_buf_init(&cert);
    struct iotsec_pki_issued issued;
    if (e->csr_pem.len > 0)
        IOTSEC_GUARD(iotsec_pki_issue_device_csr(ca, &params, e->csr_pem, &cert, &issued));
    else
        IOTSEC_GUARD(iotsec_pki_issue_device_key(ca, &params, public_key, &cert, &issued));

    struct enrol_tx tx = {.e = e,
                          .cert_pem = iotsec_buf_slice(&cert),
                          .info = &issued,
                          .public_key_pem = (const char *)pub_pem.ptr};
    IOTSEC_GUARD(iotsec_store_transaction(s, enrol_in_tx, &tx));
    if (cert_pem != NULL)
        IOTSEC_GUARD(iotsec_buf_append_slice(cert_pem, iotsec_buf_slice(&cert)));
    if (info != NULL)
        *info = issued;
    return IOTSEC_RESULT_OK;
}

struct enable_tx {
    const char *device_id;
    bool enabled;
    int64_t now;
};

static iotsec_result set_enabled_in_tx(struct iotsec_store *s, void *ctx)
{
    const struct enable_tx *tx = ctx;
    struct iotsec_store_device d IOTSEC_DEFER(device_cleanup) = {0};
    IOTSEC_GUARD(iotsec_store_device_get(s, tx->device_id, &d));
    IOTSEC_ENSURE(d.status != IOTSEC_STORE_DEVICE_REVOKED, IOTSEC_ERR_PERMISSION,
                  "registry: device '%s' is revoked, which is final (enrol it again under a "
                  "new id)",
                  tx->device_id);
    enum iotsec_store_device_status want =
        tx->enabled ? IOTSEC_STORE_DEVICE_ACTIVE : IOTSEC_STORE_DEVICE_DISABLED;
    if (d.status == want)
        return IOTSEC_RESULT_OK;
    return iotsec_store_device_set_status(s, tx->device_id, want, tx->now);
}

iotsec_result iotsec_registry_set_enabled(struct iotsec_store *s, const char *device_id,
                                          bool enabled, time_t now)
{
    struct enable_tx tx = {.device_id = device_id, .enabled = enabled, .now = ms(now)};
    return iotsec_store_transaction(s, set_enabled_in_tx, &tx);
}

iotsec_result iotsec_registry_revoke(struct iotsec_store *s, const char *device_id,
                                     enum iotsec_pki_crl_reason reason, time_t now,
                                     size_t *certs_revoked)
{
    struct iotsec_store_device d IOTSEC_DEFER(device_cleanup) = {0};
    IOTSEC_GUARD(iotsec_store_device_get(s, device_id, &d));
    IOTSEC_ENSURE(d.status != IOTSEC_STORE_DEVICE_REVOKED, IOTSEC_ERR_EXISTS,
                  "registry: device '%s' is already revoked", device_id);
    /* The two enumerations share RFC 5280's numbers. */
    return iotsec_store_device_revoke(s, device_id, (int)reason, ms(now), certs_revoked);
}

/* The store speaks reason codes the CRL builder does not issue (certificateHold): refuse
 * rather than guess. */
static iotsec_result crl_reason(int store_reason, const char *serial,
                                enum iotsec_pki_crl_reason *out)
{
    switch (store_reason) {
    case IOTSEC_STORE_CRL_UNSPECIFIED:
    case IOTSEC_STORE_CRL_KEY_COMPROMISE:
    case IOTSEC_STORE_CRL_CA_COMPROMISE:
    case IOTSEC_STORE_CRL_AFFILIATION_CHANGED:
    case IOTSEC_STORE_CRL_SUPERSEDED:
    case IOTSEC_STORE_CRL_CESSATION_OF_OPERATION:
    case IOTSEC_STORE_CRL_PRIVILEGE_WITHDRAWN:
        *out = (enum iotsec_pki_crl_reason)store_reason;
        return IOTSEC_RESULT_OK;
    default:
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT,
                    "registry: certificate %s has reason code %d, which "
                    "iotsec does not put on a CRL",
                    serial, store_reason);
    }
}

struct revoked_set {
    struct iotsec_store_cert_list *pages;
    size_t n_pages;
    struct iotsec_pki_revoked *entries;
    size_t count;
};

static void revoked_set_free(struct revoked_set *r)
{
    for (size_t i = 0; i < r->n_pages; i++)
        iotsec_store_cert_list_free(&r->pages[i]);
    free(r->pages);
    free(r->entries);
}

/* Every revoked, unexpired certificate, page by page. The entries point into the pages'
 * serials, so the pages stay until the CRL is built. */
static iotsec_result collect_revoked(struct iotsec_store *s, int64_t unexpired_at,
                                     struct revoked_set *r)
{
    const char *after = NULL;
    for (;;) {
        struct iotsec_store_cert_list *grown =
            realloc(r->pages, (r->n_pages + 1) * sizeof(*r->pages));
        IOTSEC_ENSURE_ALLOC(grown);
        r->pages = grown;
        struct iotsec_store_cert_list *page = &r->pages[r->n_pages];
        *page = (struct iotsec_store_cert_list){0};
        struct iotsec_store_page p = {.after = after, .limit = IOTSEC_STORE_LIST_MAX};
        IOTSEC_GUARD(iotsec_store_cert_list_revoked(s, unexpired_at, &p, page));
        r->n_pages++;
        if (page->count > 0) {
            struct iotsec_pki_revoked *more =
                realloc(r->entries, (r->count + page->count) * sizeof(*r->entries));
            IOTSEC_ENSURE_ALLOC(more);
            r->entries = more;
            for (size_t i = 0; i < page->count; i++) {
                const struct iotsec_store_cert *c = &page->items[i];
                struct iotsec_pki_revoked *e = &r->entries[r->count++];
                e->serial = c->serial;
                e->revoked_at = (time_t)(c->revoked_at / 1000);
                IOTSEC_GUARD(crl_reason(c->revocation_reason, c->serial, &e->reason));
            }
            after = page->items[page->count - 1].serial;
        }
        if (!page->more)
            return IOTSEC_RESULT_OK;
    }
}

iotsec_result iotsec_registry_build_crl(struct iotsec_store *s, const struct iotsec_pki_ca *ca,
                                        const struct iotsec_pki_crl_params *params,
                                        struct iotsec_buf *crl_pem)
{
    struct revoked_set r IOTSEC_DEFER(revoked_set_free) = {0};
    IOTSEC_GUARD(collect_revoked(s, ms(params->this_update), &r));
    return iotsec_pki_crl_build(ca, params, r.entries, r.count, crl_pem);
}
