/*
 * The contract between the store's front (store.c) and its backends (sqlite.c, later
 * postgres.c). Private to src/store/ and its tests.
 *
 * The front validates and canonicalises every argument before a backend sees it, so a
 * backend may rely on: strings within their bounds and character sets, hex in lowercase,
 * addresses canonical, enums in range, times >= 0, list limits in 1..IOTSEC_STORE_LIST_MAX,
 * page cursors non-NULL ("" for the first page). A backend's job is storage only: map
 * each operation to its database, keep the semantics documented in iotsec/store.h
 * (EXISTS/NOT_FOUND, once-only revocation, the atomic chained append), and name the
 * record in its error messages.
 *
 * A backend's handle embeds `struct iotsec_store` as its first member, so the front can
 * dispatch through `ops` without knowing the backend's own type.
 */
#ifndef IOTSEC_STORE_BACKEND_H
#define IOTSEC_STORE_BACKEND_H

#include "iotsec/store.h"

struct store_backend;

struct iotsec_store {
    const struct store_backend *ops;
    /* Set while an event-chain callback runs: the store refuses calls then, since the
     * callback runs inside a write transaction it must not disturb. */
    bool in_chain_callback;
};

struct store_backend {
    const char *name;
    /* target is the URL without its scheme. */
    iotsec_result (*open)(const char *target, struct iotsec_store **out);
    void (*close)(struct iotsec_store *s);
    iotsec_result (*set_sync)(struct iotsec_store *s, enum iotsec_store_sync mode);

    /* Write transactions; they nest (the inner ones are savepoints). end() commits when
     * ok, else rolls back, and returns the commit's result. */
    iotsec_result (*tx_begin)(struct iotsec_store *s);
    iotsec_result (*tx_end)(struct iotsec_store *s, bool ok);

    iotsec_result (*device_insert)(struct iotsec_store *s, const struct iotsec_store_device *d);
    iotsec_result (*device_get)(struct iotsec_store *s, const char *id,
                                struct iotsec_store_device *out);
    iotsec_result (*device_set_status)(struct iotsec_store *s, const char *id,
                                       enum iotsec_store_device_status status, int64_t now);
    iotsec_result (*device_set_certificate)(struct iotsec_store *s, const char *id,
                                            const char *fingerprint, const char *serial,
                                            int64_t now);
    iotsec_result (*device_set_public_key)(struct iotsec_store *s, const char *id, const char *pem,
                                           int64_t now);
    iotsec_result (*device_revoke)(struct iotsec_store *s, const char *id, int reason, int64_t now,
                                   size_t *certs_revoked);
    iotsec_result (*device_list)(struct iotsec_store *s, enum iotsec_store_device_status status,
                                 const struct iotsec_store_page *page,
                                 struct iotsec_store_device_list *out);

    iotsec_result (*cert_insert)(struct iotsec_store *s, const struct iotsec_store_cert *c);
    iotsec_result (*cert_get)(struct iotsec_store *s, const char *serial,
                              struct iotsec_store_cert *out);
    iotsec_result (*cert_get_by_fingerprint)(struct iotsec_store *s, const char *fingerprint,
                                             struct iotsec_store_cert *out);
    iotsec_result (*cert_revoke)(struct iotsec_store *s, const char *serial, int reason,
                                 int64_t now);
    iotsec_result (*cert_list_revoked)(struct iotsec_store *s, int64_t unexpired_at,
                                       const struct iotsec_store_page *page,
                                       struct iotsec_store_cert_list *out);
    iotsec_result (*cert_list_by_device)(struct iotsec_store *s, const char *device_id,
                                         const struct iotsec_store_page *page,
                                         struct iotsec_store_cert_list *out);

    iotsec_result (*apikey_insert)(struct iotsec_store *s, const struct iotsec_store_apikey *k);
    iotsec_result (*apikey_get)(struct iotsec_store *s, const char *key_id,
                                struct iotsec_store_apikey *out);
    iotsec_result (*apikey_find_by_hash)(struct iotsec_store *s, const uint8_t *hash,
                                         struct iotsec_store_apikey *out);
    iotsec_result (*apikey_touch)(struct iotsec_store *s, const char *key_id, int64_t now);
    iotsec_result (*apikey_revoke)(struct iotsec_store *s, const char *key_id, int64_t now);
    iotsec_result (*apikey_list_by_device)(struct iotsec_store *s, const char *device_id,
                                           const struct iotsec_store_page *page,
                                           struct iotsec_store_apikey_list *out);

    iotsec_result (*user_insert)(struct iotsec_store *s, const struct iotsec_store_user *u);
    iotsec_result (*user_get)(struct iotsec_store *s, const char *name,
                              struct iotsec_store_user *out);
    iotsec_result (*user_set_password)(struct iotsec_store *s, const char *name,
                                       const char *password_hash, bool must_change, int64_t now);
    iotsec_result (*user_set_totp)(struct iotsec_store *s, const char *name, const uint8_t *secret,
                                   size_t len, int64_t now);
    iotsec_result (*user_set_role)(struct iotsec_store *s, const char *name,
                                   enum iotsec_store_role role, int64_t now);
    iotsec_result (*user_set_disabled)(struct iotsec_store *s, const char *name, bool disabled,
                                       int64_t now);
    iotsec_result (*user_list)(struct iotsec_store *s, const struct iotsec_store_page *page,
                               struct iotsec_store_user_list *out);
    iotsec_result (*user_delete)(struct iotsec_store *s, const char *name);

    /* ev is validated; the backend fills seq and prev_hash, calls chain, inserts. */
    iotsec_result (*event_append)(struct iotsec_store *s, struct iotsec_store_event *ev,
                                  iotsec_store_chain_fn chain, void *ctx);
    iotsec_result (*event_last)(struct iotsec_store *s, int64_t *seq, uint8_t *hash);
    iotsec_result (*event_get)(struct iotsec_store *s, int64_t seq, struct iotsec_store_event *out);
    /* q is complete: limit set, strings "" when unused, before_seq INT64_MAX when unused. */
    iotsec_result (*event_list)(struct iotsec_store *s, const struct iotsec_store_event_query *q,
                                struct iotsec_store_event_list *out);
    iotsec_result (*event_count)(struct iotsec_store *s, const struct iotsec_store_event_query *q,
                                 uint64_t *count);

    iotsec_result (*block_put)(struct iotsec_store *s, const struct iotsec_store_block *b,
                               enum iotsec_store_block_mode mode);
    iotsec_result (*block_remove)(struct iotsec_store *s, const char *source);
    iotsec_result (*block_check)(struct iotsec_store *s, const char *source, int64_t now,
                                 bool *blocked, struct iotsec_store_block *out);
    iotsec_result (*block_list_active)(struct iotsec_store *s, int64_t now,
                                       const struct iotsec_store_page *page,
                                       struct iotsec_store_block_list *out);
    iotsec_result (*block_purge_expired)(struct iotsec_store *s, int64_t now, size_t *removed);

    /* items are validated; the front opens the transaction around the whole batch. */
    iotsec_result (*telemetry_insert)(struct iotsec_store *s, struct iotsec_store_telemetry *t);
    iotsec_result (*telemetry_list)(struct iotsec_store *s, const char *device_id,
                                    int64_t before_seq, size_t limit,
                                    struct iotsec_store_telemetry_list *out);
    iotsec_result (*command_insert)(struct iotsec_store *s, struct iotsec_store_command *c);
    iotsec_result (*command_list)(struct iotsec_store *s, const char *target, int64_t before_seq,
                                  size_t limit, struct iotsec_store_command_list *out);
};

extern const struct store_backend store_sqlite_backend;

/* ---- SQLite schema (sqlite_schema.c) ---- */
struct sqlite3;
/* The application_id stamped into every iotsec database ("IOTS"), so that opening some
 * other program's SQLite file is refused instead of migrated. */
#define STORE_SQLITE_APPLICATION_ID 0x494f5453
/* Reads the schema version; refuses a foreign database (IOTSEC_ERR_FORMAT) and one newer
 * than this code (IOTSEC_ERR_VERSION). `what` names the database in messages. */
iotsec_result store_sqlite_schema_check(struct sqlite3 *db, const char *what, int *version);
/* Brings db to schema version `target` (<= IOTSEC_STORE_SCHEMA_VERSION), one step per
 * transaction, after the same checks. */
iotsec_result store_sqlite_migrate(struct sqlite3 *db, const char *what, int target);
/* Records SQLite's failure rc as an iotsec error: "<what>: <reason>", with the code
 * mapped (constraint on a unique key: EXISTS; on a reference: NOT_FOUND; locked: BUSY;
 * corrupt or not a database: FORMAT; ...). Returns IOTSEC_RESULT_ERR. */
iotsec_result store_sqlite_error(struct sqlite3 *db, int rc, const char *fmt, ...)
    IOTSEC_PRINTF(3, 4);
/* For tests of migrations: opens like iotsec_store_open("sqlite:PATH") but migrates only
 * up to `target`. */
iotsec_result store_sqlite_open_at(const char *path, int target, struct iotsec_store **out);

#endif
