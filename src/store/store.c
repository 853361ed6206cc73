/*
 * The store's front: picks the backend from the URL, checks every argument, and
 * dispatches through the backend's table of functions (include/iotsec/store.h).
 *
 * All validation and canonicalisation happens here rather than in a backend, so that
 * SQLite and the PostgreSQL backend to come store exactly the same bytes for the same
 * call and neither can forget a bound. Records the caller passes in are copied before
 * canonical forms are written into them; the caller's structs are not modified (except
 * the event, which is documented as in/out). Results are zeroed before a backend fills
 * them and released again if it fails, so a failed call never leaves a half-filled
 * record or a leak for the caller to handle.
 */
#include "store_backend.h"
#include "store_check.h"

#include "iotsec/buf.h"

#include <stdlib.h>
#include <string.h>

/* Pages read by iotsec_store_event_foreach between calls of its function. */
#define FOREACH_PAGE 256

static char empty_object[] = "{}";

/* ---- enumeration names ---- */

static const char *const status_names[] = {
    [IOTSEC_STORE_DEVICE_ACTIVE] = "active",
    [IOTSEC_STORE_DEVICE_DISABLED] = "disabled",
    [IOTSEC_STORE_DEVICE_REVOKED] = "revoked",
};
static const char *const role_names[] = {
    [IOTSEC_STORE_ROLE_ADMIN] = "admin",
    [IOTSEC_STORE_ROLE_OPERATOR] = "operator",
    [IOTSEC_STORE_ROLE_VIEWER] = "viewer",
};
static const char *const severity_names[] = {
    [IOTSEC_STORE_SEVERITY_LOW] = "low",
    [IOTSEC_STORE_SEVERITY_MEDIUM] = "medium",
    [IOTSEC_STORE_SEVERITY_HIGH] = "high",
    [IOTSEC_STORE_SEVERITY_CRITICAL] = "critical",
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, int v)
{
    return v >= 1 && (size_t)v < n ? names[v] : NULL;
}

static iotsec_result parse_name(const char *const *names, size_t n, const char *what,
                                const char *accepted, const char *name, int *out)
{
    for (size_t i = 1; name != NULL && i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = (int)i;
            return IOTSEC_RESULT_OK;
        }
    }
    IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "store: unknown %s; expected one of %s", what, accepted);
}

const char *iotsec_store_device_status_name(enum iotsec_store_device_status status)
{
    return name_of(status_names, COUNT(status_names), (int)status);
}

const char *iotsec_store_role_name(enum iotsec_store_role role)
{
    return name_of(role_names, COUNT(role_names), (int)role);
}

const char *iotsec_store_severity_name(enum iotsec_store_severity severity)
{
    return name_of(severity_names, COUNT(severity_names), (int)severity);
}

iotsec_result iotsec_store_device_status_parse(const char *name,
                                               enum iotsec_store_device_status *out)
{
    int v;
    IOTSEC_GUARD(parse_name(status_names, COUNT(status_names), "device status",
                            "active, disabled, revoked", name, &v));
    *out = (enum iotsec_store_device_status)v;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_store_role_parse(const char *name, enum iotsec_store_role *out)
{
    int v;
    IOTSEC_GUARD(
        parse_name(role_names, COUNT(role_names), "role", "admin, operator, viewer", name, &v));
    *out = (enum iotsec_store_role)v;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_store_severity_parse(const char *name, enum iotsec_store_severity *out)
{
    int v;
    IOTSEC_GUARD(parse_name(severity_names, COUNT(severity_names), "severity",
                            "low, medium, high, critical", name, &v));
    *out = (enum iotsec_store_severity)v;
    return IOTSEC_RESULT_OK;
}

/* ---- records ---- */

void iotsec_store_device_clear(struct iotsec_store_device *d)
{
    if (d == NULL)
        return;
    free(d->public_key_pem);
    *d = (struct iotsec_store_device){0};
}

void iotsec_store_device_list_free(struct iotsec_store_device_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        iotsec_store_device_clear(&l->items[i]);
    free(l->items);
    *l = (struct iotsec_store_device_list){0};
}

void iotsec_store_cert_list_free(struct iotsec_store_cert_list *l)
{
    if (l == NULL)
        return;
    free(l->items);
    *l = (struct iotsec_store_cert_list){0};
}

void iotsec_store_apikey_list_free(struct iotsec_store_apikey_list *l)
{
    if (l == NULL)
        return;
    free(l->items);
    *l = (struct iotsec_store_apikey_list){0};
}

void iotsec_store_user_clear(struct iotsec_store_user *u)
{
    if (u != NULL)
        iotsec_wipe(u, sizeof(*u));
}

void iotsec_store_user_list_free(struct iotsec_store_user_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        iotsec_store_user_clear(&l->items[i]);
    free(l->items);
    *l = (struct iotsec_store_user_list){0};
}

void iotsec_store_event_clear(struct iotsec_store_event *ev)
{
    if (ev == NULL)
        return;
    free(ev->details);
    *ev = (struct iotsec_store_event){0};
}

void iotsec_store_event_list_free(struct iotsec_store_event_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        iotsec_store_event_clear(&l->items[i]);
    free(l->items);
    *l = (struct iotsec_store_event_list){0};
}

void iotsec_store_block_list_free(struct iotsec_store_block_list *l)
{
    if (l == NULL)
        return;
    free(l->items);
    *l = (struct iotsec_store_block_list){0};
}

/* ---- open, close, transactions ---- */

iotsec_result iotsec_store_open(const char *url, struct iotsec_store **out)
{
    IOTSEC_ENSURE(url != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "store: no URL given");
    *out = NULL;
    IOTSEC_ENSURE(strnlen(url, 4097) <= 4096, IOTSEC_ERR_CONFIG,
                  "store: URL is longer than 4096 characters");
    /* URLs are not echoed in messages: a PostgreSQL URL may carry a password. */
    IOTSEC_ENSURE(strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0,
                  IOTSEC_ERR_CONFIG,
                  "store: the PostgreSQL backend is not part of this build; use sqlite:PATH");
    const struct store_backend *backend = &store_sqlite_backend;
    const char *target = url;
    if (strncmp(url, "sqlite:", 7) == 0) {
        target = url + 7;
        /* "sqlite:///var/lib/iotsec/store.db" names the absolute path, as in URLs. */
        if (strncmp(target, "//", 2) == 0)
            target += 2;
    } else {
        IOTSEC_ENSURE(strstr(url, "://") == NULL, IOTSEC_ERR_CONFIG,
                      "store: unknown URL scheme; expected sqlite:PATH or a file path");
    }
    IOTSEC_ENSURE(target[0] != '\0', IOTSEC_ERR_CONFIG, "store: the URL names no database");
    return backend->open(target, out);
}

void iotsec_store_close(struct iotsec_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

const char *iotsec_store_backend_name(const struct iotsec_store *s)
{
    return s->ops->name;
}

static iotsec_result usable(const struct iotsec_store *s);

iotsec_result iotsec_store_set_sync(struct iotsec_store *s, enum iotsec_store_sync mode)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(mode == IOTSEC_STORE_SYNC_FULL || mode == IOTSEC_STORE_SYNC_PROCESS,
                  IOTSEC_ERR_INVALID_ARG, "store: unknown durability mode %d", (int)mode);
    return s->ops->set_sync(s, mode);
}

static iotsec_result usable(const struct iotsec_store *s)
{
    IOTSEC_ENSURE(s != NULL, IOTSEC_ERR_INVALID_ARG, "store: no store handle");
    IOTSEC_ENSURE(!s->in_chain_callback, IOTSEC_ERR_BUSY,
                  "store: called from an event-chain callback, which runs inside the append's "
                  "write transaction");
    return IOTSEC_RESULT_OK;
}

#define OUT_PARAM(p)                                                                               \
    IOTSEC_ENSURE((p) != NULL, IOTSEC_ERR_INVALID_ARG, "store: %s: no result argument", __func__)

iotsec_result iotsec_store_transaction(struct iotsec_store *s, iotsec_store_tx_fn fn, void *ctx)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(fn != NULL, IOTSEC_ERR_INVALID_ARG, "store: transaction without a function");
    IOTSEC_GUARD(s->ops->tx_begin(s));
    iotsec_result r = fn(s, ctx);
    if (!iotsec_ok(r)) {
        /* A rollback leaves fn's error in place: that is the one the caller needs. */
        (void)s->ops->tx_end(s, false);
        return r;
    }
    return s->ops->tx_end(s, true);
}

/* ---- devices ---- */

static iotsec_result check_device_id(const char *id)
{
    return store_check_text("device id", id, 1, IOTSEC_STORE_ID_MAX, STORE_CS_ID);
}

static iotsec_result check_status(enum iotsec_store_device_status status, bool any_allowed)
{
    IOTSEC_ENSURE((any_allowed && status == IOTSEC_STORE_DEVICE_ANY) ||
                      iotsec_store_device_status_name(status) != NULL,
                  IOTSEC_ERR_INVALID_ARG,
                  "store: device status %d is not active (1), disabled (2) "
                  "or revoked (3)",
                  (int)status);
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_pem(const char *pem)
{
    if (pem == NULL)
        return IOTSEC_RESULT_OK;
    return store_check_text("device public key PEM", pem, 0, IOTSEC_STORE_PEM_MAX, STORE_CS_PEM);
}

/* The current certificate is both a fingerprint and a serial, or neither. */
static iotsec_result check_current_cert(const char *fingerprint, const char *serial,
                                        char fp_out[IOTSEC_STORE_FINGERPRINT_LEN + 1],
                                        char serial_out[IOTSEC_STORE_SERIAL_MAX + 1])
{
    IOTSEC_GUARD(store_check_hex("device certificate fingerprint", fingerprint,
                                 IOTSEC_STORE_FINGERPRINT_LEN, IOTSEC_STORE_FINGERPRINT_LEN, true,
                                 fp_out));
    IOTSEC_GUARD(store_check_hex("device certificate serial", serial, 1, IOTSEC_STORE_SERIAL_MAX,
                                 true, serial_out));
    IOTSEC_ENSURE((fp_out[0] == '\0') == (serial_out[0] == '\0'), IOTSEC_ERR_INVALID_ARG,
                  "store: a device's current certificate needs both its fingerprint and its "
                  "serial, or neither");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_store_device_insert(struct iotsec_store *s,
                                         const struct iotsec_store_device *d)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(d != NULL, IOTSEC_ERR_INVALID_ARG, "store: no device given");
    struct iotsec_store_device c = *d;
    IOTSEC_GUARD(check_device_id(d->id));
    IOTSEC_GUARD(
        store_check_text("device model", d->model, 0, IOTSEC_STORE_MODEL_MAX, STORE_CS_PRINTABLE));
    IOTSEC_GUARD(check_status(d->status, false));
    IOTSEC_GUARD(
        check_current_cert(d->cert_fingerprint, d->cert_serial, c.cert_fingerprint, c.cert_serial));
    IOTSEC_GUARD(check_pem(d->public_key_pem));
    IOTSEC_GUARD(store_check_time("device created_at", d->created_at));
    IOTSEC_GUARD(store_check_time("device updated_at", d->updated_at));
    return s->ops->device_insert(s, &c);
}

iotsec_result iotsec_store_device_get(struct iotsec_store *s, const char *id,
                                      struct iotsec_store_device *out)
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_device){0};
    IOTSEC_GUARD(check_device_id(id));
    iotsec_result r = s->ops->device_get(s, id, out);
    if (!iotsec_ok(r))
        iotsec_store_device_clear(out);
    return r;
}

iotsec_result iotsec_store_device_set_status(struct iotsec_store *s, const char *id,
                                             enum iotsec_store_device_status status, int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_device_id(id));
    IOTSEC_GUARD(check_status(status, false));
    IOTSEC_GUARD(store_check_time("update time", now));
    return s->ops->device_set_status(s, id, status, now);
}

iotsec_result iotsec_store_device_set_certificate(struct iotsec_store *s, const char *id,
                                                  const char *fingerprint, const char *serial,
                                                  int64_t now)
{
    char fp[IOTSEC_STORE_FINGERPRINT_LEN + 1], sn[IOTSEC_STORE_SERIAL_MAX + 1];
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_device_id(id));
    IOTSEC_GUARD(check_current_cert(fingerprint, serial, fp, sn));
    IOTSEC_GUARD(store_check_time("update time", now));
    return s->ops->device_set_certificate(s, id, fp, sn, now);
}

iotsec_result iotsec_store_device_set_public_key(struct iotsec_store *s, const char *id,
                                                 const char *pem, int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_device_id(id));
    IOTSEC_GUARD(check_pem(pem));
    IOTSEC_GUARD(store_check_time("update time", now));
    return s->ops->device_set_public_key(s, id, pem == NULL ? "" : pem, now);
}

iotsec_result iotsec_store_device_revoke(struct iotsec_store *s, const char *id, int reason,
                                         int64_t now, size_t *certs_revoked)
{
    size_t ignored;
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_device_id(id));
    IOTSEC_GUARD(store_check_crl_reason(reason));
    IOTSEC_GUARD(store_check_time("revocation time", now));
    IOTSEC_ENSURE(now > 0, IOTSEC_ERR_INVALID_ARG, "store: revocation time must be after 1970");
    return s->ops->device_revoke(s, id, reason, now,
                                 certs_revoked != NULL ? certs_revoked : &ignored);
}

iotsec_result iotsec_store_device_list(struct iotsec_store *s,
                                       enum iotsec_store_device_status status,
                                       const struct iotsec_store_page *page,
                                       struct iotsec_store_device_list *out)
{
    struct iotsec_store_page p;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_device_list){0};
    IOTSEC_GUARD(check_status(status, true));
    IOTSEC_GUARD(store_check_page(page, &p));
    iotsec_result r = s->ops->device_list(s, status, &p, out);
    if (!iotsec_ok(r))
        iotsec_store_device_list_free(out);
    return r;
}

/* ---- certificates ---- */

static iotsec_result check_serial(const char *serial, char out[IOTSEC_STORE_SERIAL_MAX + 1])
{
    return store_check_hex("certificate serial", serial, 1, IOTSEC_STORE_SERIAL_MAX, false, out);
}

iotsec_result iotsec_store_cert_insert(struct iotsec_store *s, const struct iotsec_store_cert *c)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(c != NULL, IOTSEC_ERR_INVALID_ARG, "store: no certificate given");
    struct iotsec_store_cert n = *c;
    IOTSEC_GUARD(check_serial(c->serial, n.serial));
    IOTSEC_GUARD(check_device_id(c->device_id));
    IOTSEC_GUARD(store_check_hex("certificate fingerprint", c->fingerprint,
                                 IOTSEC_STORE_FINGERPRINT_LEN, IOTSEC_STORE_FINGERPRINT_LEN, false,
                                 n.fingerprint));
    IOTSEC_GUARD(store_check_time("certificate not_before", c->not_before));
    IOTSEC_GUARD(store_check_time("certificate not_after", c->not_after));
    IOTSEC_GUARD(store_check_time("certificate issued_at", c->issued_at));
    IOTSEC_GUARD(store_check_time("certificate revoked_at", c->revoked_at));
    IOTSEC_ENSURE(c->not_before <= c->not_after, IOTSEC_ERR_INVALID_ARG,
                  "store: certificate %s: not_after is before not_before", n.serial);
    if (c->revoked_at > 0)
        IOTSEC_GUARD(store_check_crl_reason(c->revocation_reason));
    else
        n.revocation_reason = 0;
    return s->ops->cert_insert(s, &n);
}

iotsec_result iotsec_store_cert_get(struct iotsec_store *s, const char *serial,
                                    struct iotsec_store_cert *out)
{
    char sn[IOTSEC_STORE_SERIAL_MAX + 1];
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_cert){0};
    IOTSEC_GUARD(check_serial(serial, sn));
    return s->ops->cert_get(s, sn, out);
}

iotsec_result iotsec_store_cert_get_by_fingerprint(struct iotsec_store *s, const char *fingerprint,
                                                   struct iotsec_store_cert *out)
{
    char fp[IOTSEC_STORE_FINGERPRINT_LEN + 1];
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_cert){0};
    IOTSEC_GUARD(store_check_hex("certificate fingerprint", fingerprint,
                                 IOTSEC_STORE_FINGERPRINT_LEN, IOTSEC_STORE_FINGERPRINT_LEN, false,
                                 fp));
    return s->ops->cert_get_by_fingerprint(s, fp, out);
}

iotsec_result iotsec_store_cert_revoke(struct iotsec_store *s, const char *serial, int reason,
                                       int64_t now)
{
    char sn[IOTSEC_STORE_SERIAL_MAX + 1];
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_serial(serial, sn));
    IOTSEC_GUARD(store_check_crl_reason(reason));
    IOTSEC_GUARD(store_check_time("revocation time", now));
    /* revoked_at 0 means "not revoked", so a revocation at the epoch itself would vanish. */
    IOTSEC_ENSURE(now > 0, IOTSEC_ERR_INVALID_ARG, "store: revocation time must be after 1970");
    return s->ops->cert_revoke(s, sn, reason, now);
}

iotsec_result iotsec_store_cert_list_revoked(struct iotsec_store *s, int64_t unexpired_at,
                                             const struct iotsec_store_page *page,
                                             struct iotsec_store_cert_list *out)
{
    struct iotsec_store_page p;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_cert_list){0};
    IOTSEC_GUARD(store_check_time("unexpired_at", unexpired_at));
    IOTSEC_GUARD(store_check_page(page, &p));
    iotsec_result r = s->ops->cert_list_revoked(s, unexpired_at, &p, out);
    if (!iotsec_ok(r))
        iotsec_store_cert_list_free(out);
    return r;
}

iotsec_result iotsec_store_cert_list_by_device(struct iotsec_store *s, const char *device_id,
                                               const struct iotsec_store_page *page,
                                               struct iotsec_store_cert_list *out)
{
    struct iotsec_store_page p;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_cert_list){0};
    IOTSEC_GUARD(check_device_id(device_id));
    IOTSEC_GUARD(store_check_page(page, &p));
    iotsec_result r = s->ops->cert_list_by_device(s, device_id, &p, out);
    if (!iotsec_ok(r))
        iotsec_store_cert_list_free(out);
    return r;
}

/* ---- API keys ---- */

static iotsec_result check_key_id(const char *key_id)
{
    return store_check_text("API key id", key_id, 1, IOTSEC_STORE_ID_MAX, STORE_CS_ID);
}

iotsec_result iotsec_store_apikey_insert(struct iotsec_store *s,
                                         const struct iotsec_store_apikey *k)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(k != NULL, IOTSEC_ERR_INVALID_ARG, "store: no API key given");
    IOTSEC_GUARD(check_key_id(k->key_id));
    IOTSEC_GUARD(check_device_id(k->device_id));
    IOTSEC_GUARD(store_check_time("API key created_at", k->created_at));
    IOTSEC_GUARD(store_check_time("API key last_used_at", k->last_used_at));
    IOTSEC_GUARD(store_check_time("API key revoked_at", k->revoked_at));
    return s->ops->apikey_insert(s, k);
}

iotsec_result iotsec_store_apikey_get(struct iotsec_store *s, const char *key_id,
                                      struct iotsec_store_apikey *out)
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_apikey){0};
    IOTSEC_GUARD(check_key_id(key_id));
    return s->ops->apikey_get(s, key_id, out);
}

iotsec_result iotsec_store_apikey_find_by_hash(struct iotsec_store *s,
                                               const uint8_t hash[IOTSEC_STORE_HASH_LEN],
                                               struct iotsec_store_apikey *out)
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_apikey){0};
    IOTSEC_ENSURE(hash != NULL, IOTSEC_ERR_INVALID_ARG, "store: no API key hash given");
    return s->ops->apikey_find_by_hash(s, hash, out);
}

iotsec_result iotsec_store_apikey_touch(struct iotsec_store *s, const char *key_id, int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_key_id(key_id));
    IOTSEC_GUARD(store_check_time("last use time", now));
    return s->ops->apikey_touch(s, key_id, now);
}

iotsec_result iotsec_store_apikey_revoke(struct iotsec_store *s, const char *key_id, int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_key_id(key_id));
    IOTSEC_GUARD(store_check_time("revocation time", now));
    IOTSEC_ENSURE(now > 0, IOTSEC_ERR_INVALID_ARG, "store: revocation time must be after 1970");
    return s->ops->apikey_revoke(s, key_id, now);
}

iotsec_result iotsec_store_apikey_list_by_device(struct iotsec_store *s, const char *device_id,
                                                 const struct iotsec_store_page *page,
                                                 struct iotsec_store_apikey_list *out)
{
    struct iotsec_store_page p;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_apikey_list){0};
    IOTSEC_GUARD(check_device_id(device_id));
    IOTSEC_GUARD(store_check_page(page, &p));
    iotsec_result r = s->ops->apikey_list_by_device(s, device_id, &p, out);
    if (!iotsec_ok(r))
        iotsec_store_apikey_list_free(out);
    return r;
}

/* ---- operators ---- */

static iotsec_result check_user_name(const char *name)
{
    return store_check_text("user name", name, 1, IOTSEC_STORE_USER_MAX, STORE_CS_USER);
}

static iotsec_result check_password_hash(const char *hash)
{
    return store_check_text("password hash", hash, 1, IOTSEC_STORE_PASSWORD_HASH_MAX,
                            STORE_CS_TOKEN);
}

static iotsec_result check_role(enum iotsec_store_role role)
{
    IOTSEC_ENSURE(iotsec_store_role_name(role) != NULL, IOTSEC_ERR_INVALID_ARG,
                  "store: role %d is not admin (1), operator (2) or viewer (3)", (int)role);
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_totp(const uint8_t *secret, size_t len)
{
    IOTSEC_ENSURE(len <= IOTSEC_STORE_TOTP_SECRET_MAX, IOTSEC_ERR_INVALID_ARG,
                  "store: TOTP secret is %zu bytes, over the limit of %d", len,
                  IOTSEC_STORE_TOTP_SECRET_MAX);
    IOTSEC_ENSURE(len == 0 || secret != NULL, IOTSEC_ERR_INVALID_ARG,
                  "store: TOTP secret is missing");
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_store_user_insert(struct iotsec_store *s, const struct iotsec_store_user *u)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(u != NULL, IOTSEC_ERR_INVALID_ARG, "store: no user given");
    IOTSEC_GUARD(check_user_name(u->name));
    IOTSEC_GUARD(check_password_hash(u->password_hash));
    IOTSEC_GUARD(check_totp(u->totp_secret, u->totp_secret_len));
    IOTSEC_GUARD(check_role(u->role));
    IOTSEC_GUARD(store_check_time("user created_at", u->created_at));
    IOTSEC_GUARD(store_check_time("user updated_at", u->updated_at));
    return s->ops->user_insert(s, u);
}

iotsec_result iotsec_store_user_get(struct iotsec_store *s, const char *name,
                                    struct iotsec_store_user *out)
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_user){0};
    IOTSEC_GUARD(check_user_name(name));
    iotsec_result r = s->ops->user_get(s, name, out);
    if (!iotsec_ok(r))
        iotsec_store_user_clear(out);
    return r;
}

iotsec_result iotsec_store_user_set_password(struct iotsec_store *s, const char *name,
                                             const char *password_hash, bool must_change_password,
                                             int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_user_name(name));
    IOTSEC_GUARD(check_password_hash(password_hash));
    IOTSEC_GUARD(store_check_time("update time", now));
    return s->ops->user_set_password(s, name, password_hash, must_change_password, now);
}

iotsec_result iotsec_store_user_set_totp(struct iotsec_store *s, const char *name,
                                         const uint8_t *secret, size_t len, int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_user_name(name));
    IOTSEC_GUARD(check_totp(secret, len));
    IOTSEC_GUARD(store_check_time("update time", now));
    return s->ops->user_set_totp(s, name, secret, len, now);
}

iotsec_result iotsec_store_user_set_role(struct iotsec_store *s, const char *name,
                                         enum iotsec_store_role role, int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_user_name(name));
    IOTSEC_GUARD(check_role(role));
    IOTSEC_GUARD(store_check_time("update time", now));
    return s->ops->user_set_role(s, name, role, now);
}

iotsec_result iotsec_store_user_set_disabled(struct iotsec_store *s, const char *name,
                                             bool disabled, int64_t now)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_user_name(name));
    IOTSEC_GUARD(store_check_time("update time", now));
    return s->ops->user_set_disabled(s, name, disabled, now);
}

iotsec_result iotsec_store_user_list(struct iotsec_store *s, const struct iotsec_store_page *page,
                                     struct iotsec_store_user_list *out)
{
    struct iotsec_store_page p;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_user_list){0};
    IOTSEC_GUARD(store_check_page(page, &p));
    iotsec_result r = s->ops->user_list(s, &p, out);
    if (!iotsec_ok(r))
        iotsec_store_user_list_free(out);
    return r;
}

iotsec_result iotsec_store_user_delete(struct iotsec_store *s, const char *name)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(check_user_name(name));
    return s->ops->user_delete(s, name);
}

/* ---- events ---- */

static iotsec_result check_severity(const char *field, enum iotsec_store_severity sev,
                                    bool any_allowed)
{
    IOTSEC_ENSURE((any_allowed && sev == IOTSEC_STORE_SEVERITY_ANY) ||
                      iotsec_store_severity_name(sev) != NULL,
                  IOTSEC_ERR_INVALID_ARG,
                  "store: %s %d is not low (1), medium (2), high (3) or critical (4)", field,
                  (int)sev);
    return IOTSEC_RESULT_OK;
}

/* Runs the caller's chain function with the store marked busy, so that a callback
 * calling back into the store fails cleanly instead of re-entering a transaction. */
struct chain_guard {
    struct iotsec_store *s;
    iotsec_store_chain_fn fn;
    void *ctx;
};

static iotsec_result guarded_chain(void *ctx, struct iotsec_store_event *ev)
{
    struct chain_guard *g = ctx;
    g->s->in_chain_callback = true;
    iotsec_result r = g->fn(g->ctx, ev);
    g->s->in_chain_callback = false;
    return r;
}

iotsec_result iotsec_store_event_append(struct iotsec_store *s, struct iotsec_store_event *ev,
                                        iotsec_store_chain_fn chain, void *ctx)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(ev != NULL && chain != NULL, IOTSEC_ERR_INVALID_ARG,
                  "store: event append needs an event and a chain function");
    struct iotsec_store_event e = *ev;
    IOTSEC_GUARD(store_check_time("event timestamp", ev->ts));
    IOTSEC_GUARD(store_check_text("event type", ev->event_type, 1, IOTSEC_STORE_EVENT_TYPE_MAX,
                                  STORE_CS_TYPE));
    IOTSEC_GUARD(check_severity("event severity", ev->severity, false));
    IOTSEC_GUARD(
        store_check_text("event device id", ev->device_id, 0, IOTSEC_STORE_ID_MAX, STORE_CS_ID));
    IOTSEC_GUARD(store_check_ip("event source ip", ev->source_ip, true, e.source_ip));
    if (ev->details == NULL)
        e.details = empty_object;
    else
        IOTSEC_GUARD(store_check_json_object("event details", ev->details));
    e.seq = 0;
    memset(e.prev_hash, 0, sizeof(e.prev_hash));
    memset(e.hash, 0, sizeof(e.hash));

    struct chain_guard g = {.s = s, .fn = chain, .ctx = ctx};
    IOTSEC_GUARD(s->ops->event_append(s, &e, guarded_chain, &g));
    ev->seq = e.seq;
    memcpy(ev->source_ip, e.source_ip, sizeof(ev->source_ip));
    memcpy(ev->prev_hash, e.prev_hash, sizeof(ev->prev_hash));
    memcpy(ev->hash, e.hash, sizeof(ev->hash));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_store_event_last(struct iotsec_store *s, int64_t *seq,
                                      uint8_t hash[IOTSEC_STORE_HASH_LEN])
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(seq);
    OUT_PARAM(hash);
    return s->ops->event_last(s, seq, hash);
}

iotsec_result iotsec_store_event_get(struct iotsec_store *s, int64_t seq,
                                     struct iotsec_store_event *out)
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_event){0};
    IOTSEC_ENSURE(seq > 0, IOTSEC_ERR_INVALID_ARG, "store: event sequence numbers start at 1");
    iotsec_result r = s->ops->event_get(s, seq, out);
    if (!iotsec_ok(r))
        iotsec_store_event_clear(out);
    return r;
}

/* A query with every field set, as backends expect it. */
static iotsec_result complete_query(const struct iotsec_store_event_query *q,
                                    struct iotsec_store_event_query *n)
{
    *n = q != NULL ? *q : (struct iotsec_store_event_query){0};
    IOTSEC_ENSURE(n->after_seq >= 0 && n->before_seq >= 0, IOTSEC_ERR_INVALID_ARG,
                  "store: event query: sequence bounds must not be negative");
    IOTSEC_GUARD(store_check_time("event query since", n->since));
    IOTSEC_GUARD(store_check_time("event query until", n->until));
    if (n->before_seq == 0)
        n->before_seq = INT64_MAX;
    if (n->until == 0)
        n->until = INT64_MAX;
    if (n->event_type == NULL)
        n->event_type = "";
    if (n->event_type[0] != '\0')
        IOTSEC_GUARD(store_check_text("event query type", n->event_type, 1,
                                      IOTSEC_STORE_EVENT_TYPE_MAX, STORE_CS_TYPE));
    if (n->device_id == NULL)
        n->device_id = "";
    IOTSEC_GUARD(store_check_text("event query device id", n->device_id, 0, IOTSEC_STORE_ID_MAX,
                                  STORE_CS_ID));
    IOTSEC_GUARD(check_severity("event query severity", n->severity, true));
    IOTSEC_GUARD(check_severity("event query min_severity", n->min_severity, true));
    return store_check_limit(n->limit, &n->limit);
}

iotsec_result iotsec_store_event_list(struct iotsec_store *s,
                                      const struct iotsec_store_event_query *q,
                                      struct iotsec_store_event_list *out)
{
    struct iotsec_store_event_query n;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_event_list){0};
    IOTSEC_GUARD(complete_query(q, &n));
    iotsec_result r = s->ops->event_list(s, &n, out);
    if (!iotsec_ok(r))
        iotsec_store_event_list_free(out);
    return r;
}

iotsec_result iotsec_store_event_count(struct iotsec_store *s,
                                       const struct iotsec_store_event_query *q, uint64_t *count)
{
    struct iotsec_store_event_query n;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(count);
    IOTSEC_GUARD(complete_query(q, &n));
    return s->ops->event_count(s, &n, count);
}

iotsec_result iotsec_store_event_foreach(struct iotsec_store *s, int64_t after_seq,
                                         iotsec_store_event_fn fn, void *ctx)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(fn != NULL, IOTSEC_ERR_INVALID_ARG, "store: event walk without a function");
    int64_t cursor = after_seq;
    for (;;) {
        struct iotsec_store_event_query q = {.after_seq = cursor, .limit = FOREACH_PAGE};
        struct iotsec_store_event_list page;
        IOTSEC_GUARD(iotsec_store_event_list(s, &q, &page));
        iotsec_result r = IOTSEC_RESULT_OK;
        for (size_t i = 0; i < page.count && iotsec_ok(r); i++) {
            r = fn(ctx, &page.items[i]);
            cursor = page.items[i].seq;
        }
        bool done = !page.more;
        iotsec_store_event_list_free(&page);
        if (!iotsec_ok(r) || done)
            return r;
    }
}

/* ---- blocklist ---- */

iotsec_result iotsec_store_block_put(struct iotsec_store *s, const struct iotsec_store_block *b,
                                     enum iotsec_store_block_mode mode)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(b != NULL, IOTSEC_ERR_INVALID_ARG, "store: no block given");
    IOTSEC_ENSURE(mode == IOTSEC_STORE_BLOCK_REPLACE || mode == IOTSEC_STORE_BLOCK_EXTEND,
                  IOTSEC_ERR_INVALID_ARG, "store: unknown block mode %d", (int)mode);
    struct iotsec_store_block c = *b;
    IOTSEC_GUARD(store_check_source("block source", b->source, c.source));
    IOTSEC_GUARD(store_check_text("block reason", b->reason, 0, IOTSEC_STORE_REASON_MAX,
                                  STORE_CS_PRINTABLE));
    IOTSEC_GUARD(store_check_time("block created_at", b->created_at));
    IOTSEC_GUARD(store_check_time("block expires_at", b->expires_at));
    IOTSEC_ENSURE(b->expires_at == 0 || b->expires_at > b->created_at, IOTSEC_ERR_INVALID_ARG,
                  "store: block of %s expires before it is created (0 means never)", c.source);
    return s->ops->block_put(s, &c, mode);
}

iotsec_result iotsec_store_block_remove(struct iotsec_store *s, const char *source)
{
    char src[IOTSEC_STORE_SOURCE_MAX + 1];
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(store_check_source("block source", source, src));
    return s->ops->block_remove(s, src);
}

iotsec_result iotsec_store_block_check(struct iotsec_store *s, const char *source, int64_t now,
                                       bool *blocked, struct iotsec_store_block *out)
{
    char src[IOTSEC_STORE_SOURCE_MAX + 1];
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(blocked);
    *blocked = false;
    if (out != NULL)
        *out = (struct iotsec_store_block){0};
    IOTSEC_GUARD(store_check_source("block source", source, src));
    IOTSEC_GUARD(store_check_time("block check time", now));
    return s->ops->block_check(s, src, now, blocked, out);
}

iotsec_result iotsec_store_block_list_active(struct iotsec_store *s, int64_t now,
                                             const struct iotsec_store_page *page,
                                             struct iotsec_store_block_list *out)
{
    struct iotsec_store_page p;
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_block_list){0};
    IOTSEC_GUARD(store_check_time("block list time", now));
    IOTSEC_GUARD(store_check_page(page, &p));
    iotsec_result r = s->ops->block_list_active(s, now, &p, out);
    if (!iotsec_ok(r))
        iotsec_store_block_list_free(out);
    return r;
}

iotsec_result iotsec_store_block_purge_expired(struct iotsec_store *s, int64_t now, size_t *removed)
{
    size_t ignored;
    IOTSEC_GUARD(usable(s));
    IOTSEC_GUARD(store_check_time("purge time", now));
    return s->ops->block_purge_expired(s, now, removed != NULL ? removed : &ignored);
}

/* ---- telemetry ---- */

struct telemetry_batch {
    struct iotsec_store_telemetry *items;
    size_t n;
};

static iotsec_result telemetry_insert_all(struct iotsec_store *s, void *ctx)
{
    struct telemetry_batch *b = ctx;
    for (size_t i = 0; i < b->n; i++)
        IOTSEC_GUARD(s->ops->telemetry_insert(s, &b->items[i]));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_store_telemetry_append(struct iotsec_store *s,
                                            struct iotsec_store_telemetry *items, size_t n)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(items != NULL && n >= 1 && n <= IOTSEC_STORE_TELEMETRY_BATCH,
                  IOTSEC_ERR_INVALID_ARG, "store: a telemetry batch holds 1 to %d records",
                  IOTSEC_STORE_TELEMETRY_BATCH);
    for (size_t i = 0; i < n; i++) {
        const struct iotsec_store_telemetry *t = &items[i];
        IOTSEC_GUARD(check_device_id(t->device_id));
        IOTSEC_GUARD(store_check_time("telemetry timestamp", t->ts));
        IOTSEC_GUARD(store_check_time("telemetry receive time", t->received_at));
        IOTSEC_ENSURE(t->body != NULL && strlen(t->body) <= IOTSEC_STORE_TELEMETRY_MAX,
                      IOTSEC_ERR_INVALID_ARG, "store: telemetry body is missing or over %d bytes",
                      IOTSEC_STORE_TELEMETRY_MAX);
        IOTSEC_GUARD(store_check_json_object("telemetry body", t->body));
    }
    struct telemetry_batch b = {items, n};
    iotsec_result r = iotsec_store_transaction(s, telemetry_insert_all, &b);
    if (!iotsec_ok(r) && iotsec_error_code() == IOTSEC_ERR_INVALID_ARG)
        iotsec_error_prefix("store: telemetry batch refused: ");
    return r;
}

iotsec_result iotsec_store_telemetry_list(struct iotsec_store *s, const char *device_id,
                                          int64_t before_seq, size_t limit,
                                          struct iotsec_store_telemetry_list *out)
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_telemetry_list){0};
    IOTSEC_GUARD(check_device_id(device_id));
    IOTSEC_ENSURE(before_seq >= 0, IOTSEC_ERR_INVALID_ARG, "store: before_seq must be >= 0");
    size_t n;
    IOTSEC_GUARD(store_check_limit(limit, &n));
    iotsec_result r =
        s->ops->telemetry_list(s, device_id, before_seq == 0 ? INT64_MAX : before_seq, n, out);
    if (!iotsec_ok(r))
        iotsec_store_telemetry_list_free(out);
    return r;
}

void iotsec_store_telemetry_list_free(struct iotsec_store_telemetry_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].body);
    free(l->items);
    *l = (struct iotsec_store_telemetry_list){0};
}

/* ---- commands ---- */

iotsec_result iotsec_store_command_insert(struct iotsec_store *s, struct iotsec_store_command *c)
{
    IOTSEC_GUARD(usable(s));
    IOTSEC_ENSURE(c != NULL, IOTSEC_ERR_INVALID_ARG, "store: no command");
    IOTSEC_GUARD(check_device_id(c->target));
    IOTSEC_GUARD(
        store_check_text("command action", c->action, 1, IOTSEC_STORE_ACTION_MAX, STORE_CS_ID));
    IOTSEC_GUARD(store_check_text("issuer", c->issued_by, 1, IOTSEC_STORE_USER_MAX, STORE_CS_USER));
    IOTSEC_GUARD(store_check_time("command time", c->created_at));
    if (c->payload != NULL) {
        IOTSEC_ENSURE(strlen(c->payload) <= IOTSEC_STORE_PAYLOAD_MAX, IOTSEC_ERR_INVALID_ARG,
                      "store: command payload is over %d bytes", IOTSEC_STORE_PAYLOAD_MAX);
        IOTSEC_GUARD(store_check_json_object("command payload", c->payload));
    }
    return s->ops->command_insert(s, c);
}

iotsec_result iotsec_store_command_list(struct iotsec_store *s, const char *target,
                                        int64_t before_seq, size_t limit,
                                        struct iotsec_store_command_list *out)
{
    IOTSEC_GUARD(usable(s));
    OUT_PARAM(out);
    *out = (struct iotsec_store_command_list){0};
    IOTSEC_GUARD(check_device_id(target));
    IOTSEC_ENSURE(before_seq >= 0, IOTSEC_ERR_INVALID_ARG, "store: before_seq must be >= 0");
    size_t n;
    IOTSEC_GUARD(store_check_limit(limit, &n));
    iotsec_result r =
        s->ops->command_list(s, target, before_seq == 0 ? INT64_MAX : before_seq, n, out);
    if (!iotsec_ok(r))
        iotsec_store_command_list_free(out);
    return r;
}

void iotsec_store_command_list_free(struct iotsec_store_command_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].payload);
    free(l->items);
    *l = (struct iotsec_store_command_list){0};
}
