/*
 * The SQLite backend of the store (include/iotsec/store.h, src/store/store_backend.h).
 *
 * Connection settings, and why:
 *   - journal_mode=WAL: readers never block the writer nor it them, which is what two
 *     processes (iotsecd and the broker plugin) sharing one file need.
 *   - synchronous=FULL: in WAL mode, NORMAL may lose the last commits on power loss
 *     (the file stays consistent but a revocation or a tamper event could vanish).
 *     FULL syncs the WAL at every commit, so a returned call is on disk. The cost is
 *     one fsync per write transaction, small next to the network round trip behind it.
 *   - A busy handler (busy_wait) of IOTSEC_STORE_BUSY_TIMEOUT_MS: a writer waits for
 *     another process's transaction instead of failing at once.
 *   - Every write that reads before it writes (the chained append, the device revocation,
 *     migrations, caller transactions) uses BEGIN IMMEDIATE: it takes the write lock
 *     first, so it waits in the busy handler instead of failing with SQLITE_BUSY when
 *     its read snapshot turns stale. Single-statement writes run in autocommit, which
 *     takes the write lock before reading anyway.
 *   - foreign_keys=ON (certificates and API keys name an existing device),
 *     secure_delete=ON (deleted password hashes and key hashes do not linger in free
 *     pages), trusted_schema=OFF and the defensive flag (a tampered file cannot make us
 *     run its functions or corrupt the schema), NOFOLLOW (no symlinked database).
 *
 * Only prepared statements with bound parameters reach SQLite: the fixed statements
 * below are prepared once, on first use, and kept for the life of the handle; the event
 * list queries are assembled from constant fragments (one per filter) and cached per
 * combination of filters, so each can use its index. Every function that uses a
 * statement resets it on the way out through IOTSEC_DEFER, whatever path it leaves by;
 * close finalizes them all.
 */
#include "store_backend.h"

#include "iotsec/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEVICE_COLS                                                                                \
    "id, model, status, cert_fingerprint, cert_serial, public_key_pem, created_at, updated_at"
#define CERT_COLS                                                                                  \
    "serial, device_id, fingerprint, not_before, not_after, issued_at, revoked_at, "               \
    "revocation_reason"
#define APIKEY_COLS                                                                                \
    "key_id, device_id, hash, created_at, last_used_at, revoked_at, rate_limit_per_min"
#define USER_COLS                                                                                  \
    "name, password_hash, totp_secret, role, created_at, updated_at, disabled, "                   \
    "must_change_password"
#define EVENT_COLS     "seq, ts, event_type, severity, device_id, source_ip, details, prev_hash, hash"
#define BLOCK_COLS     "source, reason, created_at, expires_at"
#define BLOCK_ACTIVE   "(expires_at = 0 OR expires_at > ?2)"
#define TELEMETRY_COLS "seq, device_id, ts, received_at, body"
#define COMMAND_COLS   "seq, target, action, payload, issued_by, created_at, delivered_at"

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_DEVICE_INSERT,
    ST_DEVICE_GET,
    ST_DEVICE_SET_STATUS,
    ST_DEVICE_SET_CERT,
    ST_DEVICE_SET_KEY,
    ST_DEVICE_REVOKE_CERTS,
    ST_DEVICE_REVOKE_KEYS,
    ST_DEVICE_LIST,
    ST_DEVICE_LIST_STATUS,
    ST_CERT_INSERT,
    ST_CERT_GET,
    ST_CERT_GET_BY_FP,
    ST_CERT_REVOKE,
    ST_CERT_LIST_REVOKED,
    ST_CERT_LIST_BY_DEVICE,
    ST_APIKEY_INSERT,
    ST_APIKEY_GET,
    ST_APIKEY_FIND,
    ST_APIKEY_TOUCH,
    ST_APIKEY_REVOKE,
    ST_APIKEY_LIST,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_SET_PASSWORD,
    ST_USER_SET_TOTP,
    ST_USER_SET_ROLE,
    ST_USER_SET_DISABLED,
    ST_USER_LIST,
    ST_USER_DELETE,
    ST_EVENT_LAST,
    ST_EVENT_INSERT,
    ST_EVENT_GET,
    ST_BLOCK_REPLACE,
    ST_BLOCK_EXTEND,
    ST_BLOCK_REMOVE,
    ST_BLOCK_CHECK,
    ST_BLOCK_LIST,
    ST_BLOCK_PURGE,
    ST_TELEMETRY_INSERT,
    ST_TELEMETRY_LIST,
    ST_COMMAND_INSERT,
    ST_COMMAND_LIST,
    ST__COUNT
};

static const char *const SQL[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_nested",
    [ST_RELEASE] = "RELEASE store_nested",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_nested",

    [ST_DEVICE_INSERT] = "INSERT INTO devices (" DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                         "?7, ?8)",
    [ST_DEVICE_GET] = "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1",
    [ST_DEVICE_SET_STATUS] = "UPDATE devices SET status = ?2, updated_at = ?3 WHERE id = ?1",
    [ST_DEVICE_SET_CERT] = "UPDATE devices SET cert_fingerprint = ?2, cert_serial = ?3, "
                           "updated_at = ?4 WHERE id = ?1",
    [ST_DEVICE_SET_KEY] = "UPDATE devices SET public_key_pem = ?2, updated_at = ?3 WHERE id = ?1",
    [ST_DEVICE_REVOKE_CERTS] = "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3 "
                               "WHERE device_id = ?1 AND revoked_at = 0",
    [ST_DEVICE_REVOKE_KEYS] = "UPDATE api_keys SET revoked_at = ?2 "
                              "WHERE device_id = ?1 AND revoked_at = 0",
    [ST_DEVICE_LIST] = "SELECT " DEVICE_COLS " FROM devices WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_DEVICE_LIST_STATUS] = "SELECT " DEVICE_COLS " FROM devices WHERE status = ?3 AND id > ?1 "
                              "ORDER BY id LIMIT ?2",

    [ST_CERT_INSERT] = "INSERT INTO certificates (" CERT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                       "?7, ?8)",
    [ST_CERT_GET] = "SELECT " CERT_COLS " FROM certificates WHERE serial = ?1",
    [ST_CERT_GET_BY_FP] = "SELECT " CERT_COLS " FROM certificates WHERE fingerprint = ?1",
    [ST_CERT_REVOKE] = "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3 "
                       "WHERE serial = ?1 AND revoked_at = 0",
    [ST_CERT_LIST_REVOKED] = "SELECT " CERT_COLS " FROM certificates WHERE revoked_at > 0 "
                             "AND serial > ?1 AND not_after >= ?3 ORDER BY serial LIMIT ?2",
    /* Ordered by issue time; the cursor is the serial of the last certificate seen. */
    [ST_CERT_LIST_BY_DEVICE] = "SELECT " CERT_COLS " FROM certificates WHERE device_id = ?3 "
                               "AND (?1 = '' OR (issued_at, serial) > (SELECT issued_at, serial "
                               "FROM certificates WHERE serial = ?1)) "
                               "ORDER BY issued_at, serial LIMIT ?2",

    [ST_APIKEY_INSERT] = "INSERT INTO api_keys (" APIKEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                         "?7)",
    [ST_APIKEY_GET] = "SELECT " APIKEY_COLS " FROM api_keys WHERE key_id = ?1",
    [ST_APIKEY_FIND] = "SELECT " APIKEY_COLS " FROM api_keys WHERE hash = ?1",
    [ST_APIKEY_TOUCH] = "UPDATE api_keys SET last_used_at = max(last_used_at, ?2) "
                        "WHERE key_id = ?1",
    [ST_APIKEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at = 0",
    [ST_APIKEY_LIST] = "SELECT " APIKEY_COLS " FROM api_keys WHERE device_id = ?3 AND key_id > ?1 "
                       "ORDER BY key_id LIMIT ?2",

    [ST_USER_INSERT] = "INSERT INTO users (" USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE name = ?1",
    [ST_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?2, must_change_password = ?3, "
                             "updated_at = ?4 WHERE name = ?1",
    [ST_USER_SET_TOTP] = "UPDATE users SET totp_secret = ?2, updated_at = ?3 WHERE name = ?1",
    [ST_USER_SET_ROLE] = "UPDATE users SET role = ?2, updated_at = ?3 WHERE name = ?1",
    [ST_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE name = ?1",
    [ST_USER_LIST] = "SELECT " USER_COLS " FROM users WHERE name > ?1 ORDER BY name LIMIT ?2",
    [ST_USER_DELETE] = "DELETE FROM users WHERE name = ?1",

    [ST_EVENT_LAST] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
    [ST_EVENT_INSERT] = "INSERT INTO events (" EVENT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                        "?8, ?9)",
    [ST_EVENT_GET] = "SELECT " EVENT_COLS " FROM events WHERE seq = ?1",

    [ST_BLOCK_REPLACE] = "INSERT INTO blocks (" BLOCK_COLS ") VALUES (?1, ?2, ?3, ?4) "
                         "ON CONFLICT (source) DO UPDATE SET reason = excluded.reason, "
                         "created_at = excluded.created_at, expires_at = excluded.expires_at",
    /* The existing block stays when it lasts at least as long (0 = forever). An expired
     * one always ends before a valid new one, so it is replaced. */
    [ST_BLOCK_EXTEND] = "INSERT INTO blocks (" BLOCK_COLS ") VALUES (?1, ?2, ?3, ?4) "
                        "ON CONFLICT (source) DO UPDATE SET reason = excluded.reason, "
                        "created_at = excluded.created_at, expires_at = excluded.expires_at "
                        "WHERE blocks.expires_at <> 0 AND (excluded.expires_at = 0 "
                        "OR excluded.expires_at > blocks.expires_at)",
    [ST_BLOCK_REMOVE] = "DELETE FROM blocks WHERE source = ?1",
    [ST_BLOCK_CHECK] = "SELECT " BLOCK_COLS " FROM blocks WHERE source = ?1 AND " BLOCK_ACTIVE,
    [ST_BLOCK_LIST] = "SELECT " BLOCK_COLS " FROM blocks WHERE source > ?1 AND " BLOCK_ACTIVE
                      " ORDER BY source LIMIT ?3",
    [ST_BLOCK_PURGE] = "DELETE FROM blocks WHERE expires_at <> 0 AND expires_at <= ?1",

    [ST_TELEMETRY_INSERT] = "INSERT INTO telemetry (device_id, ts, received_at, body) "
                            "VALUES (?1, ?2, ?3, ?4) RETURNING seq",
    [ST_TELEMETRY_LIST] = "SELECT " TELEMETRY_COLS " FROM telemetry WHERE device_id = ?1 AND "
                          "seq < ?2 ORDER BY seq DESC LIMIT ?3",
    [ST_COMMAND_INSERT] = "INSERT INTO commands (target, action, payload, issued_by, created_at, "
                          "delivered_at) VALUES (?1, ?2, ?3, ?4, ?5, 0) RETURNING seq",
    [ST_COMMAND_LIST] = "SELECT " COMMAND_COLS " FROM commands WHERE target = ?1 AND seq < ?2 "
                        "ORDER BY seq DESC LIMIT ?3",
};

/* Event list statements by filter combination: bit 0 type, bit 1 device, bit 2 exact
 * severity, bit 3 newest first (list only). */
#define EVENT_VARIANTS 16

struct sqlite_store {
    struct iotsec_store base; /* first: the front holds a pointer to it */
    sqlite3 *db;
    char what[160]; /* "store <path>", for messages */
    int tx_depth;
    struct timespec busy_since; /* when the current wait for the write lock began */
    unsigned busy_seed;
    sqlite3_stmt *stmts[ST__COUNT];
    sqlite3_stmt *event_list[EVENT_VARIANTS];
    sqlite3_stmt *event_count[EVENT_VARIANTS / 2];
};

static struct sqlite_store *of(struct iotsec_store *s)
{
    return (struct sqlite_store *)s;
}

/* ---- errors ---- */

iotsec_result store_sqlite_error(struct sqlite3 *db, int rc, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    const char *reason = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            IOTSEC_BAIL(IOTSEC_ERR_EXISTS, "%s: already exists (%s)", what, reason);
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            IOTSEC_BAIL(IOTSEC_ERR_NOT_FOUND, "%s: names a device that does not exist", what);
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "%s: refused by the database (%s)", what, reason);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        IOTSEC_BAIL(IOTSEC_ERR_BUSY,
                    "%s: the database is locked by another process (waited up to %d ms); try "
                    "again (%s)",
                    what, IOTSEC_STORE_BUSY_TIMEOUT_MS, reason);
    case SQLITE_NOMEM:
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "%s: out of memory", what);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "%s: the database file is corrupt or not a database (%s)",
                    what, reason);
    case SQLITE_ERROR:
        /* From our own fixed SQL this means the schema is not what the code expects. */
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "%s: the database does not match the expected schema (%s)",
                    what, reason);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        IOTSEC_BAIL(IOTSEC_ERR_PERMISSION, "%s: %s", what, reason);
    default:
        /* The extended code tells which I/O step failed (e.g. 522 = short read). */
        IOTSEC_BAIL(IOTSEC_ERR_IO, "%s: %s (SQLite code %d)", what, reason, rc);
    }
}

/* ---- statements ---- */

static void stmt_done(sqlite3_stmt **st)
{
    if (*st != NULL) {
        sqlite3_reset(*st);
        sqlite3_clear_bindings(*st);
    }
}

static void stmt_finalize(sqlite3_stmt **st)
{
    sqlite3_finalize(*st);
}

static iotsec_result prepare_cached(struct sqlite_store *s, sqlite3_stmt **slot, const char *sql,
                                    sqlite3_stmt **out)
{
    if (*slot == NULL) {
        int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK)
            return store_sqlite_error(s->db, rc, "%s: preparing a statement", s->what);
    }
    *out = *slot;
    return IOTSEC_RESULT_OK;
}

static iotsec_result stmt(struct sqlite_store *s, enum stmt_id id, sqlite3_stmt **out)
{
    return prepare_cached(s, &s->stmts[id], SQL[id], out);
}

/* Binds accumulate their first failure, so a statement's parameters read as one block
 * followed by a single check. Text and blobs are bound SQLITE_STATIC: the caller's memory
 * outlives the statement's use, which ends (reset and cleared) before the call returns. */
struct binder {
    struct sqlite_store *s;
    sqlite3_stmt *st;
    int rc;
};

static void b_text(struct binder *b, int i, const char *v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_text(b->st, i, v, -1, SQLITE_STATIC);
}

static void b_int(struct binder *b, int i, int64_t v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->st, i, v);
}

static void b_blob(struct binder *b, int i, const void *p, size_t n)
{
    if (b->rc != SQLITE_OK)
        return;
    /* A NULL pointer would bind SQL NULL; an empty secret is an empty blob. */
    b->rc = n == 0 ? sqlite3_bind_zeroblob(b->st, i, 0)
                   : sqlite3_bind_blob(b->st, i, p, (int)n, SQLITE_STATIC);
}

static iotsec_result bound(const struct binder *b)
{
    if (b->rc != SQLITE_OK)
        return store_sqlite_error(b->s->db, b->rc, "%s: binding parameters", b->s->what);
    return IOTSEC_RESULT_OK;
}

/* Steps once; *row tells whether a row came back. `fmt` names the record for messages. */
static iotsec_result step(struct sqlite_store *s, sqlite3_stmt *st, bool *row, const char *fmt, ...)
    IOTSEC_PRINTF(4, 5);
static iotsec_result step(struct sqlite_store *s, sqlite3_stmt *st, bool *row, const char *fmt, ...)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *row = rc == SQLITE_ROW;
        return IOTSEC_RESULT_OK;
    }
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return store_sqlite_error(s->db, rc, "%s", what);
}

/* Runs a statement that returns no rows; *changes (may be NULL) receives the rows it
 * changed. */
static iotsec_result run(struct sqlite_store *s, sqlite3_stmt *st, int64_t *changes,
                         const char *what)
{
    bool row;
    IOTSEC_GUARD(step(s, st, &row, "%s", what));
    if (changes != NULL)
        *changes = sqlite3_changes(s->db);
    return IOTSEC_RESULT_OK;
}

/* A statement run only for its effect, whose failure must not replace the error already
 * recorded (rollbacks on the way out of a failed operation). */
static void run_quietly(struct sqlite_store *s, enum stmt_id id)
{
    if (s->stmts[id] == NULL && sqlite3_prepare_v3(s->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT,
                                                   &s->stmts[id], NULL) != SQLITE_OK)
        return;
    sqlite3_step(s->stmts[id]);
    sqlite3_reset(s->stmts[id]);
}

/* ---- columns: what the database returns is bounded again before it is copied ---- */

static iotsec_result col_text(sqlite3_stmt *st, int i, char *dst, size_t size, const char *field)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    IOTSEC_ENSURE(n >= 0 && (size_t)n < size, IOTSEC_ERR_FORMAT,
                  "store: corrupt database: %s is %d bytes, over its limit of %zu", field, n,
                  size - 1);
    if (t != NULL && n > 0)
        memcpy(dst, t, (size_t)n);
    dst[t != NULL ? n : 0] = '\0';
    return IOTSEC_RESULT_OK;
}

/* An allocated copy, or NULL when the column is empty. */
static iotsec_result col_text_dup(sqlite3_stmt *st, int i, size_t max, char **out,
                                  const char *field)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    IOTSEC_ENSURE(n >= 0 && (size_t)n <= max, IOTSEC_ERR_FORMAT,
                  "store: corrupt database: %s is %d bytes, over its limit of %zu", field, n, max);
    *out = NULL;
    if (t == NULL || n == 0)
        return IOTSEC_RESULT_OK;
    char *copy = malloc((size_t)n + 1);
    IOTSEC_ENSURE_ALLOC(copy);
    memcpy(copy, t, (size_t)n);
    copy[n] = '\0';
    *out = copy;
    return IOTSEC_RESULT_OK;
}

static iotsec_result col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t min, size_t max,
                              size_t *len, const char *field)
{
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    IOTSEC_ENSURE(n >= 0 && (size_t)n >= min && (size_t)n <= max, IOTSEC_ERR_FORMAT,
                  "store: corrupt database: %s is %d bytes, not %zu..%zu", field, n, min, max);
    if (p != NULL && n > 0)
        memcpy(dst, p, (size_t)n);
    *len = (size_t)n;
    return IOTSEC_RESULT_OK;
}

static iotsec_result col_hash(sqlite3_stmt *st, int i, uint8_t *dst, const char *field)
{
    size_t len;
    return col_blob(st, i, dst, IOTSEC_STORE_HASH_LEN, IOTSEC_STORE_HASH_LEN, &len, field);
}

/* ---- rows ---- */

typedef iotsec_result (*row_reader)(sqlite3_stmt *st, void *item);

static iotsec_result read_device(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_device *d = item;
    char status[16];
    IOTSEC_GUARD(col_text(st, 0, d->id, sizeof(d->id), "devices.id"));
    IOTSEC_GUARD(col_text(st, 1, d->model, sizeof(d->model), "devices.model"));
    IOTSEC_GUARD(col_text(st, 2, status, sizeof(status), "devices.status"));
    IOTSEC_GUARD(col_text(st, 3, d->cert_fingerprint, sizeof(d->cert_fingerprint),
                          "devices.cert_fingerprint"));
    IOTSEC_GUARD(col_text(st, 4, d->cert_serial, sizeof(d->cert_serial), "devices.cert_serial"));
    IOTSEC_GUARD(
        col_text_dup(st, 5, IOTSEC_STORE_PEM_MAX, &d->public_key_pem, "devices.public_key_pem"));
    d->created_at = sqlite3_column_int64(st, 6);
    d->updated_at = sqlite3_column_int64(st, 7);
    IOTSEC_ENSURE(iotsec_ok(iotsec_store_device_status_parse(status, &d->status)),
                  IOTSEC_ERR_FORMAT, "store: corrupt database: device %s has status '%s'", d->id,
                  status);
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_cert(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_cert *c = item;
    IOTSEC_GUARD(col_text(st, 0, c->serial, sizeof(c->serial), "certificates.serial"));
    IOTSEC_GUARD(col_text(st, 1, c->device_id, sizeof(c->device_id), "certificates.device_id"));
    IOTSEC_GUARD(
        col_text(st, 2, c->fingerprint, sizeof(c->fingerprint), "certificates.fingerprint"));
    c->not_before = sqlite3_column_int64(st, 3);
    c->not_after = sqlite3_column_int64(st, 4);
    c->issued_at = sqlite3_column_int64(st, 5);
    c->revoked_at = sqlite3_column_int64(st, 6);
    c->revocation_reason = sqlite3_column_int(st, 7);
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_apikey(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_apikey *k = item;
    IOTSEC_GUARD(col_text(st, 0, k->key_id, sizeof(k->key_id), "api_keys.key_id"));
    IOTSEC_GUARD(col_text(st, 1, k->device_id, sizeof(k->device_id), "api_keys.device_id"));
    IOTSEC_GUARD(col_hash(st, 2, k->hash, "api_keys.hash"));
    k->created_at = sqlite3_column_int64(st, 3);
    k->last_used_at = sqlite3_column_int64(st, 4);
    k->revoked_at = sqlite3_column_int64(st, 5);
    int64_t limit = sqlite3_column_int64(st, 6);
    IOTSEC_ENSURE(limit >= 0 && limit <= UINT32_MAX, IOTSEC_ERR_FORMAT,
                  "store: corrupt database: API key %s has rate limit %lld", k->key_id,
                  (long long)limit);
    k->rate_limit_per_min = (uint32_t)limit;
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_user(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_user *u = item;
    char role[16];
    IOTSEC_GUARD(col_text(st, 0, u->name, sizeof(u->name), "users.name"));
    IOTSEC_GUARD(
        col_text(st, 1, u->password_hash, sizeof(u->password_hash), "users.password_hash"));
    IOTSEC_GUARD(col_blob(st, 2, u->totp_secret, 0, sizeof(u->totp_secret), &u->totp_secret_len,
                          "users.totp_secret"));
    IOTSEC_GUARD(col_text(st, 3, role, sizeof(role), "users.role"));
    u->created_at = sqlite3_column_int64(st, 4);
    u->updated_at = sqlite3_column_int64(st, 5);
    u->disabled = sqlite3_column_int(st, 6) != 0;
    u->must_change_password = sqlite3_column_int(st, 7) != 0;
    IOTSEC_ENSURE(iotsec_ok(iotsec_store_role_parse(role, &u->role)), IOTSEC_ERR_FORMAT,
                  "store: corrupt database: user %s has role '%s'", u->name, role);
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_event(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_event *e = item;
    e->seq = sqlite3_column_int64(st, 0);
    e->ts = sqlite3_column_int64(st, 1);
    IOTSEC_GUARD(col_text(st, 2, e->event_type, sizeof(e->event_type), "events.event_type"));
    int sev = sqlite3_column_int(st, 3);
    IOTSEC_ENSURE(sev >= IOTSEC_STORE_SEVERITY_LOW && sev <= IOTSEC_STORE_SEVERITY_CRITICAL,
                  IOTSEC_ERR_FORMAT, "store: corrupt database: event %lld has severity %d",
                  (long long)e->seq, sev);
    e->severity = (enum iotsec_store_severity)sev;
    IOTSEC_GUARD(col_text(st, 4, e->device_id, sizeof(e->device_id), "events.device_id"));
    IOTSEC_GUARD(col_text(st, 5, e->source_ip, sizeof(e->source_ip), "events.source_ip"));
    IOTSEC_GUARD(col_text_dup(st, 6, IOTSEC_STORE_DETAILS_MAX, &e->details, "events.details"));
    IOTSEC_GUARD(col_hash(st, 7, e->prev_hash, "events.prev_hash"));
    IOTSEC_GUARD(col_hash(st, 8, e->hash, "events.hash"));
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_block(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_block *b = item;
    IOTSEC_GUARD(col_text(st, 0, b->source, sizeof(b->source), "blocks.source"));
    IOTSEC_GUARD(col_text(st, 1, b->reason, sizeof(b->reason), "blocks.reason"));
    b->created_at = sqlite3_column_int64(st, 2);
    b->expires_at = sqlite3_column_int64(st, 3);
    return IOTSEC_RESULT_OK;
}

static iotsec_result read_telemetry(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_telemetry *t = item;
    t->seq = sqlite3_column_int64(st, 0);
    IOTSEC_GUARD(col_text(st, 1, t->device_id, sizeof(t->device_id), "telemetry.device_id"));
    t->ts = sqlite3_column_int64(st, 2);
    t->received_at = sqlite3_column_int64(st, 3);
    return col_text_dup(st, 4, IOTSEC_STORE_TELEMETRY_MAX, &t->body, "telemetry.body");
}

static iotsec_result read_command(sqlite3_stmt *st, void *item)
{
    struct iotsec_store_command *c = item;
    c->seq = sqlite3_column_int64(st, 0);
    IOTSEC_GUARD(col_text(st, 1, c->target, sizeof(c->target), "commands.target"));
    IOTSEC_GUARD(col_text(st, 2, c->action, sizeof(c->action), "commands.action"));
    IOTSEC_GUARD(col_text_dup(st, 3, IOTSEC_STORE_PAYLOAD_MAX, &c->payload, "commands.payload"));
    IOTSEC_GUARD(col_text(st, 4, c->issued_by, sizeof(c->issued_by), "commands.issued_by"));
    c->created_at = sqlite3_column_int64(st, 5);
    c->delivered_at = sqlite3_column_int64(st, 6);
    return IOTSEC_RESULT_OK;
}

/* Fetches the single row of a lookup into out; NOT_FOUND names the record. */
static iotsec_result fetch_one(struct sqlite_store *s, sqlite3_stmt *st, row_reader read, void *out,
                               const char *what)
{
    bool row;
    IOTSEC_GUARD(step(s, st, &row, "%s", what));
    IOTSEC_ENSURE(row, IOTSEC_ERR_NOT_FOUND, "%s: not found", what);
    return read(st, out);
}

/* Reads up to `limit` rows into a fresh array; the statement was bound with LIMIT
 * limit + 1, so a further row means there are more. The array is allocated once at its
 * final size (limit is at most IOTSEC_STORE_LIST_MAX): never reallocated, so no copy of
 * a user's secrets is left behind in freed memory. *count always covers every item
 * touched, so the caller's list_free releases whatever a failed read allocated. */
static iotsec_result collect(struct sqlite_store *s, sqlite3_stmt *st, size_t limit,
                             size_t item_size, row_reader read, void **items, size_t *count,
                             bool *more, const char *what)
{
    *items = NULL;
    *count = 0;
    *more = false;
    uint8_t *array = calloc(limit, item_size);
    IOTSEC_ENSURE_ALLOC(array);
    *items = array;
    for (;;) {
        bool row;
        IOTSEC_GUARD(step(s, st, &row, "%s", what));
        if (!row)
            return IOTSEC_RESULT_OK;
        if (*count == limit) {
            *more = true;
            return IOTSEC_RESULT_OK;
        }
        (*count)++;
        IOTSEC_GUARD(read(st, array + (*count - 1) * item_size));
    }
}

/* collect() into a typed list; the array pointer goes through a void * of its own rather
 * than a cast of &list->items, which would alias two pointer types. */
#define COLLECT(s, st, page_limit, list, reader, what)                                             \
    __extension__({                                                                                \
        void *items_ = NULL;                                                                       \
        iotsec_result r_ = collect((s), (st), (page_limit), sizeof(*(list)->items), (reader),      \
                                   &items_, &(list)->count, &(list)->more, (what));                \
        (list)->items = items_;                                                                    \
        r_;                                                                                        \
    })

/* ---- transactions ---- */

static iotsec_result exec_stmt(struct sqlite_store *s, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, id, &st));
    return run(s, st, NULL, what);
}

static iotsec_result tx_begin(struct iotsec_store *base)
{
    struct sqlite_store *s = of(base);
    if (s->tx_depth == 0)
        IOTSEC_GUARD(exec_stmt(s, ST_BEGIN, "store: starting a write transaction"));
    else
        IOTSEC_GUARD(exec_stmt(s, ST_SAVEPOINT, "store: starting a nested transaction"));
    s->tx_depth++;
    return IOTSEC_RESULT_OK;
}

static iotsec_result tx_end(struct iotsec_store *base, bool ok)
{
    struct sqlite_store *s = of(base);
    s->tx_depth--;
    if (s->tx_depth > 0) {
        if (ok)
            return exec_stmt(s, ST_RELEASE, "store: ending a nested transaction");
        run_quietly(s, ST_ROLLBACK_TO);
        run_quietly(s, ST_RELEASE);
        return IOTSEC_RESULT_OK;
    }
    if (ok) {
        iotsec_result r = exec_stmt(s, ST_COMMIT, "store: committing");
        if (iotsec_ok(r))
            return r;
        /* Some failed commits leave the transaction open; it must not outlive the call. */
        if (!sqlite3_get_autocommit(s->db))
            run_quietly(s, ST_ROLLBACK);
        return r;
    }
    if (!sqlite3_get_autocommit(s->db))
        run_quietly(s, ST_ROLLBACK);
    return IOTSEC_RESULT_OK;
}

/* Ends the transaction begun for an operation whose own result is r. */
static iotsec_result tx_finish(struct iotsec_store *base, iotsec_result r)
{
    if (!iotsec_ok(r)) {
        (void)tx_end(base, false);
        return r;
    }
    return tx_end(base, true);
}

/* ---- devices ---- */

static iotsec_result device_insert(struct iotsec_store *base, const struct iotsec_store_device *d)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_DEVICE_INSERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, d->id);
    b_text(&b, 2, d->model);
    b_text(&b, 3, iotsec_store_device_status_name(d->status));
    b_text(&b, 4, d->cert_fingerprint);
    b_text(&b, 5, d->cert_serial);
    b_text(&b, 6, d->public_key_pem != NULL ? d->public_key_pem : "");
    b_int(&b, 7, d->created_at);
    b_int(&b, 8, d->updated_at);
    IOTSEC_GUARD(bound(&b));
    bool row;
    return step(s, st, &row, "store: device %s", d->id);
}

static iotsec_result device_get(struct iotsec_store *base, const char *id,
                                struct iotsec_store_device *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_DEVICE_GET, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, id);
    IOTSEC_GUARD(bound(&b));
    char what[128];
    snprintf(what, sizeof(what), "store: device %s", id);
    return fetch_one(s, st, read_device, out, what);
}

/* Runs an UPDATE of one device; no row changed means no such device. */
static iotsec_result update_device(struct sqlite_store *s, sqlite3_stmt *st, const char *id)
{
    char what[128];
    int64_t changes;
    snprintf(what, sizeof(what), "store: device %s", id);
    IOTSEC_GUARD(run(s, st, &changes, what));
    IOTSEC_ENSURE(changes > 0, IOTSEC_ERR_NOT_FOUND, "store: device %s: not found", id);
    return IOTSEC_RESULT_OK;
}

static iotsec_result device_set_status(struct iotsec_store *base, const char *id,
                                       enum iotsec_store_device_status status, int64_t now)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_DEVICE_SET_STATUS, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, id);
    b_text(&b, 2, iotsec_store_device_status_name(status));
    b_int(&b, 3, now);
    IOTSEC_GUARD(bound(&b));
    return update_device(s, st, id);
}

static iotsec_result device_set_certificate(struct iotsec_store *base, const char *id,
                                            const char *fingerprint, const char *serial,
                                            int64_t now)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_DEVICE_SET_CERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, id);
    b_text(&b, 2, fingerprint);
    b_text(&b, 3, serial);
    b_int(&b, 4, now);
    IOTSEC_GUARD(bound(&b));
    return update_device(s, st, id);
}

static iotsec_result device_set_public_key(struct iotsec_store *base, const char *id,
                                           const char *pem, int64_t now)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_DEVICE_SET_KEY, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, id);
    b_text(&b, 2, pem);
    b_int(&b, 3, now);
    IOTSEC_GUARD(bound(&b));
    return update_device(s, st, id);
}

/* Revokes every unrevoked certificate or key of a device: `id` the statement. */
static iotsec_result revoke_all(struct sqlite_store *s, enum stmt_id id, const char *device_id,
                                int reason, int64_t now, int64_t *changes)
{
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, id, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, device_id);
    b_int(&b, 2, now);
    if (id == ST_DEVICE_REVOKE_CERTS)
        b_int(&b, 3, reason);
    IOTSEC_GUARD(bound(&b));
    return run(s, st, changes, "store: revoking a device's credentials");
}

static iotsec_result device_revoke_locked(struct iotsec_store *base, const char *id, int reason,
                                          int64_t now, size_t *certs_revoked)
{
    struct sqlite_store *s = of(base);
    int64_t certs, keys;
    IOTSEC_GUARD(device_set_status(base, id, IOTSEC_STORE_DEVICE_REVOKED, now));
    IOTSEC_GUARD(revoke_all(s, ST_DEVICE_REVOKE_CERTS, id, reason, now, &certs));
    IOTSEC_GUARD(revoke_all(s, ST_DEVICE_REVOKE_KEYS, id, reason, now, &keys));
    *certs_revoked = (size_t)certs;
    return IOTSEC_RESULT_OK;
}

static iotsec_result device_revoke(struct iotsec_store *base, const char *id, int reason,
                                   int64_t now, size_t *certs_revoked)
{
    IOTSEC_GUARD(tx_begin(base));
    return tx_finish(base, device_revoke_locked(base, id, reason, now, certs_revoked));
}

static iotsec_result device_list(struct iotsec_store *base, enum iotsec_store_device_status status,
                                 const struct iotsec_store_page *page,
                                 struct iotsec_store_device_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    bool filtered = status != IOTSEC_STORE_DEVICE_ANY;
    IOTSEC_GUARD(stmt(s, filtered ? ST_DEVICE_LIST_STATUS : ST_DEVICE_LIST, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, page->after);
    b_int(&b, 2, (int64_t)page->limit + 1);
    if (filtered)
        b_text(&b, 3, iotsec_store_device_status_name(status));
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, page->limit, out, read_device, "store: listing devices");
}

/* ---- certificates ---- */

static iotsec_result cert_insert(struct iotsec_store *base, const struct iotsec_store_cert *c)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_CERT_INSERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, c->serial);
    b_text(&b, 2, c->device_id);
    b_text(&b, 3, c->fingerprint);
    b_int(&b, 4, c->not_before);
    b_int(&b, 5, c->not_after);
    b_int(&b, 6, c->issued_at);
    b_int(&b, 7, c->revoked_at);
    b_int(&b, 8, c->revocation_reason);
    IOTSEC_GUARD(bound(&b));
    bool row;
    return step(s, st, &row, "store: certificate %s of device %s", c->serial, c->device_id);
}

static iotsec_result cert_lookup(struct iotsec_store *base, enum stmt_id id, const char *key,
                                 struct iotsec_store_cert *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, id, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, key);
    IOTSEC_GUARD(bound(&b));
    char what[128];
    snprintf(what, sizeof(what), "store: certificate %s%s",
             id == ST_CERT_GET_BY_FP ? "with fingerprint " : "", key);
    return fetch_one(s, st, read_cert, out, what);
}

static iotsec_result cert_get(struct iotsec_store *base, const char *serial,
                              struct iotsec_store_cert *out)
{
    return cert_lookup(base, ST_CERT_GET, serial, out);
}

static iotsec_result cert_get_by_fingerprint(struct iotsec_store *base, const char *fingerprint,
                                             struct iotsec_store_cert *out)
{
    return cert_lookup(base, ST_CERT_GET_BY_FP, fingerprint, out);
}

static iotsec_result cert_revoke(struct iotsec_store *base, const char *serial, int reason,
                                 int64_t now)
{
    struct sqlite_store *s = of(base);
    int64_t changes;
    {
        sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
        IOTSEC_GUARD(stmt(s, ST_CERT_REVOKE, &st));
        struct binder b = {s, st, SQLITE_OK};
        b_text(&b, 1, serial);
        b_int(&b, 2, now);
        b_int(&b, 3, reason);
        IOTSEC_GUARD(bound(&b));
        IOTSEC_GUARD(run(s, st, &changes, "store: revoking a certificate"));
    }
    if (changes > 0)
        return IOTSEC_RESULT_OK;
    /* Nothing changed: either there is no such certificate or it was revoked before
     * (certificates are never deleted, so the lookup below tells which). */
    struct iotsec_store_cert c;
    IOTSEC_GUARD(cert_get(base, serial, &c));
    IOTSEC_BAIL(IOTSEC_ERR_EXISTS, "store: certificate %s: already revoked at %lld (reason %d)",
                serial, (long long)c.revoked_at, c.revocation_reason);
}

static iotsec_result cert_list_revoked(struct iotsec_store *base, int64_t unexpired_at,
                                       const struct iotsec_store_page *page,
                                       struct iotsec_store_cert_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_CERT_LIST_REVOKED, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, page->after);
    b_int(&b, 2, (int64_t)page->limit + 1);
    b_int(&b, 3, unexpired_at);
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, page->limit, out, read_cert, "store: listing revoked certificates");
}

static iotsec_result cert_list_by_device(struct iotsec_store *base, const char *device_id,
                                         const struct iotsec_store_page *page,
                                         struct iotsec_store_cert_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_CERT_LIST_BY_DEVICE, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, page->after);
    b_int(&b, 2, (int64_t)page->limit + 1);
    b_text(&b, 3, device_id);
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, page->limit, out, read_cert, "store: listing a device's certificates");
}

/* ---- API keys ---- */

static iotsec_result apikey_insert(struct iotsec_store *base, const struct iotsec_store_apikey *k)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_APIKEY_INSERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, k->key_id);
    b_text(&b, 2, k->device_id);
    b_blob(&b, 3, k->hash, sizeof(k->hash));
    b_int(&b, 4, k->created_at);
    b_int(&b, 5, k->last_used_at);
    b_int(&b, 6, k->revoked_at);
    b_int(&b, 7, k->rate_limit_per_min);
    IOTSEC_GUARD(bound(&b));
    bool row;
    return step(s, st, &row, "store: API key %s of device %s", k->key_id, k->device_id);
}

static iotsec_result apikey_get(struct iotsec_store *base, const char *key_id,
                                struct iotsec_store_apikey *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_APIKEY_GET, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, key_id);
    IOTSEC_GUARD(bound(&b));
    char what[128];
    snprintf(what, sizeof(what), "store: API key %s", key_id);
    return fetch_one(s, st, read_apikey, out, what);
}

static iotsec_result apikey_find_by_hash(struct iotsec_store *base, const uint8_t *hash,
                                         struct iotsec_store_apikey *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_APIKEY_FIND, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_blob(&b, 1, hash, IOTSEC_STORE_HASH_LEN);
    IOTSEC_GUARD(bound(&b));
    /* The message never shows the hash: it is derived from a secret. */
    return fetch_one(s, st, read_apikey, out, "store: API key with that hash");
}

static iotsec_result apikey_update(struct sqlite_store *s, enum stmt_id id, const char *key_id,
                                   int64_t now, int64_t *changes)
{
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, id, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, key_id);
    b_int(&b, 2, now);
    IOTSEC_GUARD(bound(&b));
    char what[128];
    snprintf(what, sizeof(what), "store: API key %s", key_id);
    return run(s, st, changes, what);
}

static iotsec_result apikey_touch(struct iotsec_store *base, const char *key_id, int64_t now)
{
    int64_t changes;
    IOTSEC_GUARD(apikey_update(of(base), ST_APIKEY_TOUCH, key_id, now, &changes));
    IOTSEC_ENSURE(changes > 0, IOTSEC_ERR_NOT_FOUND, "store: API key %s: not found", key_id);
    return IOTSEC_RESULT_OK;
}

static iotsec_result apikey_revoke(struct iotsec_store *base, const char *key_id, int64_t now)
{
    int64_t changes;
    IOTSEC_GUARD(apikey_update(of(base), ST_APIKEY_REVOKE, key_id, now, &changes));
    if (changes > 0)
        return IOTSEC_RESULT_OK;
    struct iotsec_store_apikey k;
    IOTSEC_GUARD(apikey_get(base, key_id, &k));
    IOTSEC_BAIL(IOTSEC_ERR_EXISTS, "store: API key %s: already revoked at %lld", key_id,
                (long long)k.revoked_at);
}

static iotsec_result apikey_list_by_device(struct iotsec_store *base, const char *device_id,
                                           const struct iotsec_store_page *page,
                                           struct iotsec_store_apikey_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_APIKEY_LIST, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, page->after);
    b_int(&b, 2, (int64_t)page->limit + 1);
    b_text(&b, 3, device_id);
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, page->limit, out, read_apikey, "store: listing a device's API keys");
}

/* ---- operators ---- */

static iotsec_result user_insert(struct iotsec_store *base, const struct iotsec_store_user *u)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_INSERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, u->name);
    b_text(&b, 2, u->password_hash);
    b_blob(&b, 3, u->totp_secret, u->totp_secret_len);
    b_text(&b, 4, iotsec_store_role_name(u->role));
    b_int(&b, 5, u->created_at);
    b_int(&b, 6, u->updated_at);
    b_int(&b, 7, u->disabled ? 1 : 0);
    b_int(&b, 8, u->must_change_password ? 1 : 0);
    IOTSEC_GUARD(bound(&b));
    bool row;
    return step(s, st, &row, "store: user %s", u->name);
}

static iotsec_result user_get(struct iotsec_store *base, const char *name,
                              struct iotsec_store_user *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_GET, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, name);
    IOTSEC_GUARD(bound(&b));
    char what[128];
    snprintf(what, sizeof(what), "store: user %s", name);
    return fetch_one(s, st, read_user, out, what);
}

/* Runs an UPDATE or DELETE of one user; no row changed means no such user. */
static iotsec_result change_user(struct sqlite_store *s, sqlite3_stmt *st, const char *name)
{
    char what[128];
    int64_t changes;
    snprintf(what, sizeof(what), "store: user %s", name);
    IOTSEC_GUARD(run(s, st, &changes, what));
    IOTSEC_ENSURE(changes > 0, IOTSEC_ERR_NOT_FOUND, "store: user %s: not found", name);
    return IOTSEC_RESULT_OK;
}

static iotsec_result user_set_password(struct iotsec_store *base, const char *name,
                                       const char *password_hash, bool must_change, int64_t now)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_SET_PASSWORD, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, name);
    b_text(&b, 2, password_hash);
    b_int(&b, 3, must_change ? 1 : 0);
    b_int(&b, 4, now);
    IOTSEC_GUARD(bound(&b));
    return change_user(s, st, name);
}

static iotsec_result user_set_totp(struct iotsec_store *base, const char *name,
                                   const uint8_t *secret, size_t len, int64_t now)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_SET_TOTP, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, name);
    b_blob(&b, 2, secret, len);
    b_int(&b, 3, now);
    IOTSEC_GUARD(bound(&b));
    return change_user(s, st, name);
}

static iotsec_result user_set_role(struct iotsec_store *base, const char *name,
                                   enum iotsec_store_role role, int64_t now)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_SET_ROLE, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, name);
    b_text(&b, 2, iotsec_store_role_name(role));
    b_int(&b, 3, now);
    IOTSEC_GUARD(bound(&b));
    return change_user(s, st, name);
}

static iotsec_result user_set_disabled(struct iotsec_store *base, const char *name, bool disabled,
                                       int64_t now)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_SET_DISABLED, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, name);
    b_int(&b, 2, disabled ? 1 : 0);
    b_int(&b, 3, now);
    IOTSEC_GUARD(bound(&b));
    return change_user(s, st, name);
}

static iotsec_result user_list(struct iotsec_store *base, const struct iotsec_store_page *page,
                               struct iotsec_store_user_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_LIST, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, page->after);
    b_int(&b, 2, (int64_t)page->limit + 1);
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, page->limit, out, read_user, "store: listing users");
}

static iotsec_result user_delete(struct iotsec_store *base, const char *name)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_USER_DELETE, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, name);
    IOTSEC_GUARD(bound(&b));
    return change_user(s, st, name);
}

/* ---- events ---- */

static iotsec_result event_last(struct iotsec_store *base, int64_t *seq, uint8_t *hash)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_EVENT_LAST, &st));
    bool row;
    IOTSEC_GUARD(step(s, st, &row, "store: reading the last event"));
    *seq = 0;
    memset(hash, 0, IOTSEC_STORE_HASH_LEN);
    if (!row)
        return IOTSEC_RESULT_OK;
    *seq = sqlite3_column_int64(st, 0);
    return col_hash(st, 1, hash, "events.hash");
}

static iotsec_result event_insert(struct sqlite_store *s, const struct iotsec_store_event *ev)
{
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_EVENT_INSERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_int(&b, 1, ev->seq);
    b_int(&b, 2, ev->ts);
    b_text(&b, 3, ev->event_type);
    b_int(&b, 4, ev->severity);
    b_text(&b, 5, ev->device_id);
    b_text(&b, 6, ev->source_ip);
    b_text(&b, 7, ev->details);
    b_blob(&b, 8, ev->prev_hash, sizeof(ev->prev_hash));
    b_blob(&b, 9, ev->hash, sizeof(ev->hash));
    IOTSEC_GUARD(bound(&b));
    bool row;
    return step(s, st, &row, "store: event %lld", (long long)ev->seq);
}

/* Runs inside BEGIN IMMEDIATE: no other connection can write between reading the last
 * record and inserting its successor, so seq and prev_hash cannot go stale. */
static iotsec_result event_append_locked(struct iotsec_store *base, struct iotsec_store_event *ev,
                                         iotsec_store_chain_fn chain, void *ctx)
{
    int64_t last;
    IOTSEC_GUARD(event_last(base, &last, ev->prev_hash));
    IOTSEC_ENSURE(last < INT64_MAX, IOTSEC_ERR_TOO_LARGE, "store: the event log is full");
    ev->seq = last + 1;
    IOTSEC_GUARD(chain(ctx, ev));
    return event_insert(of(base), ev);
}

static iotsec_result event_append(struct iotsec_store *base, struct iotsec_store_event *ev,
                                  iotsec_store_chain_fn chain, void *ctx)
{
    IOTSEC_GUARD(tx_begin(base));
    return tx_finish(base, event_append_locked(base, ev, chain, ctx));
}

static iotsec_result event_get(struct iotsec_store *base, int64_t seq,
                               struct iotsec_store_event *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_EVENT_GET, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_int(&b, 1, seq);
    IOTSEC_GUARD(bound(&b));
    char what[64];
    snprintf(what, sizeof(what), "store: event %lld", (long long)seq);
    return fetch_one(s, st, read_event, out, what);
}

/* The statement for q's combination of filters, assembled from constant fragments only:
 * every value is a bound parameter, and a filter that is not used is not in the SQL, so
 * SQLite can pick the index that serves the filters present. */
static iotsec_result event_query_stmt(struct sqlite_store *s,
                                      const struct iotsec_store_event_query *q, bool count,
                                      sqlite3_stmt **out)
{
    unsigned mask = (q->event_type[0] != '\0' ? 1u : 0u) | (q->device_id[0] != '\0' ? 2u : 0u) |
                    (q->severity != IOTSEC_STORE_SEVERITY_ANY ? 4u : 0u);
    sqlite3_stmt **slot;
    const char *tail;
    if (count) {
        slot = &s->event_count[mask];
        tail = "";
    } else {
        mask |= q->newest_first ? 8u : 0u;
        slot = &s->event_list[mask];
        tail = q->newest_first ? " ORDER BY seq DESC LIMIT ?9" : " ORDER BY seq LIMIT ?9";
    }
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM events WHERE seq > ?1 AND seq < ?2 AND ts >= ?3 AND ts < ?4 "
             "AND severity >= ?5%s%s%s%s",
             count ? "count(*)" : EVENT_COLS, (mask & 1u) ? " AND event_type = ?6" : "",
             (mask & 2u) ? " AND device_id = ?7" : "", (mask & 4u) ? " AND severity = ?8" : "",
             tail);
    IOTSEC_GUARD(prepare_cached(s, slot, sql, out));

    struct binder b = {s, *out, SQLITE_OK};
    b_int(&b, 1, q->after_seq);
    b_int(&b, 2, q->before_seq);
    b_int(&b, 3, q->since);
    b_int(&b, 4, q->until);
    b_int(&b, 5, q->min_severity);
    if (mask & 1u)
        b_text(&b, 6, q->event_type);
    if (mask & 2u)
        b_text(&b, 7, q->device_id);
    if (mask & 4u)
        b_int(&b, 8, q->severity);
    if (!count)
        b_int(&b, 9, (int64_t)q->limit + 1);
    return bound(&b);
}

static iotsec_result event_list(struct iotsec_store *base, const struct iotsec_store_event_query *q,
                                struct iotsec_store_event_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(event_query_stmt(s, q, false, &st));
    return COLLECT(s, st, q->limit, out, read_event, "store: listing events");
}

static iotsec_result event_count(struct iotsec_store *base,
                                 const struct iotsec_store_event_query *q, uint64_t *count)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(event_query_stmt(s, q, true, &st));
    bool row;
    IOTSEC_GUARD(step(s, st, &row, "store: counting events"));
    *count = row ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    return IOTSEC_RESULT_OK;
}

/* ---- blocklist ---- */

static iotsec_result block_put(struct iotsec_store *base, const struct iotsec_store_block *blk,
                               enum iotsec_store_block_mode mode)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(
        stmt(s, mode == IOTSEC_STORE_BLOCK_EXTEND ? ST_BLOCK_EXTEND : ST_BLOCK_REPLACE, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, blk->source);
    b_text(&b, 2, blk->reason);
    b_int(&b, 3, blk->created_at);
    b_int(&b, 4, blk->expires_at);
    IOTSEC_GUARD(bound(&b));
    bool row;
    return step(s, st, &row, "store: block of %s", blk->source);
}

static iotsec_result block_remove(struct iotsec_store *base, const char *source)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_BLOCK_REMOVE, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, source);
    IOTSEC_GUARD(bound(&b));
    int64_t changes;
    IOTSEC_GUARD(run(s, st, &changes, "store: removing a block"));
    IOTSEC_ENSURE(changes > 0, IOTSEC_ERR_NOT_FOUND, "store: no block of %s", source);
    return IOTSEC_RESULT_OK;
}

static iotsec_result block_check(struct iotsec_store *base, const char *source, int64_t now,
                                 bool *blocked, struct iotsec_store_block *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_BLOCK_CHECK, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, source);
    b_int(&b, 2, now);
    IOTSEC_GUARD(bound(&b));
    bool row;
    IOTSEC_GUARD(step(s, st, &row, "store: checking the blocklist"));
    *blocked = row;
    if (row && out != NULL)
        return read_block(st, out);
    return IOTSEC_RESULT_OK;
}

static iotsec_result block_list_active(struct iotsec_store *base, int64_t now,
                                       const struct iotsec_store_page *page,
                                       struct iotsec_store_block_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_BLOCK_LIST, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, page->after);
    b_int(&b, 2, now);
    b_int(&b, 3, (int64_t)page->limit + 1);
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, page->limit, out, read_block, "store: listing blocks");
}

static iotsec_result block_purge_expired(struct iotsec_store *base, int64_t now, size_t *removed)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_BLOCK_PURGE, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_int(&b, 1, now);
    IOTSEC_GUARD(bound(&b));
    int64_t changes;
    IOTSEC_GUARD(run(s, st, &changes, "store: purging expired blocks"));
    *removed = (size_t)changes;
    return IOTSEC_RESULT_OK;
}

/* ---- waiting for another process ---- */

static int64_t ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* SQLite's own busy handler sleeps 1, 2, 5, 10, ... up to 100 ms between tries. Against a
 * process that commits in a loop, the waiter mostly wakes while the lock is held again,
 * backs off further, and can be starved for seconds. Short sleeps with jitter (50-550 us,
 * about one commit) catch the gaps between the other writer's transactions, so two busy
 * writers interleave. The wait is still bounded by IOTSEC_STORE_BUSY_TIMEOUT_MS. */
static int busy_wait(void *ctx, int count)
{
    struct sqlite_store *s = ctx;
    if (count == 0)
        clock_gettime(CLOCK_MONOTONIC, &s->busy_since);
    if (ms_since(&s->busy_since) >= IOTSEC_STORE_BUSY_TIMEOUT_MS)
        return 0;
    long us = 50 + (long)(rand_r(&s->busy_seed) % 500);
    nanosleep(&(struct timespec){.tv_nsec = us * 1000}, NULL);
    return 1;
}

/* ---- open and close ---- */

static void sqlite_close(struct iotsec_store *base)
{
    struct sqlite_store *s = of(base);
    for (size_t i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    for (size_t i = 0; i < EVENT_VARIANTS; i++)
        sqlite3_finalize(s->event_list[i]);
    for (size_t i = 0; i < EVENT_VARIANTS / 2; i++)
        sqlite3_finalize(s->event_count[i]);
    /* An open transaction (a caller that never ended one) is rolled back by close. */
    sqlite3_close_v2(s->db);
    free(s);
}

/* Creates the file with mode 0600 before SQLite sees it: SQLite would create it 0644, and
 * it gives the -wal and -shm files the mode of the database file. An existing file that
 * other users can reach is refused rather than silently changed: the operator may have
 * chosen 0660 for a group shared by iotsecd and the broker, but never o+rwx.
 *
 * An existing file is only lstat()ed, never opened here: SQLite locks with POSIX advisory
 * locks, which belong to the process, and closing ANY descriptor of the file drops every
 * lock the process holds on it. A second handle opened in a process that already had one
 * (iotsecd opens one per thread) would silently drop the first one's locks; another
 * process could then take the database for unused, delete its WAL on close, and leave
 * this process reading a stale snapshot forever. */
static iotsec_result prepare_file(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        int e = errno;
        IOTSEC_ENSURE(e == ENOENT, e == EACCES ? IOTSEC_ERR_PERMISSION : IOTSEC_ERR_IO,
                      "store %s: %s", path, strerror(e));
        /* A new file: no handle of this process can have it open yet. */
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
        } else {
            e = errno;
            IOTSEC_ENSURE(e == EEXIST,
                          e == EACCES || e == EPERM ? IOTSEC_ERR_PERMISSION : IOTSEC_ERR_IO,
                          "store %s: cannot create: %s", path, strerror(e));
        }
        IOTSEC_ENSURE(lstat(path, &st) == 0, IOTSEC_ERR_IO, "store %s: %s", path, strerror(errno));
    }
    IOTSEC_ENSURE(!S_ISLNK(st.st_mode), IOTSEC_ERR_PERMISSION,
                  "store %s: is a symbolic link; give the real path", path);
    IOTSEC_ENSURE(S_ISREG(st.st_mode), IOTSEC_ERR_FORMAT, "store %s: not a regular file", path);
    IOTSEC_ENSURE((st.st_mode & 0007) == 0, IOTSEC_ERR_PERMISSION,
                  "store %s: other users can access it (mode %04o); chmod o-rwx it (0600, or "
                  "0660 for a group shared by iotsecd and the broker)",
                  path, (unsigned)(st.st_mode & 07777));
    return IOTSEC_RESULT_OK;
}

static iotsec_result exec_const(struct sqlite_store *s, const char *sql, const char *step_name)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_error(s->db, rc, "%s: %s", s->what, step_name);
    return IOTSEC_RESULT_OK;
}

static int try_wal(struct sqlite_store *s, char *mode, size_t size)
{
    sqlite3_stmt *st IOTSEC_DEFER(stmt_finalize) = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(st, 0);
        snprintf(mode, size, "%s", m != NULL ? (const char *)m : "?");
    }
    return rc;
}

/* Switching to WAL takes an exclusive lock from a shared one. When two processes open a
 * new database at once, both hold the shared lock and both ask: SQLite fails one of them
 * at once with SQLITE_BUSY rather than calling the busy handler (waiting could deadlock).
 * That one lets go, waits a moment and tries again; by then the file is usually in WAL
 * mode already and the pragma just says so. */
static iotsec_result set_wal(struct sqlite_store *s, bool memory)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char mode[16] = "";
    int rc;
    while ((rc = try_wal(s, mode, sizeof(mode))) == SQLITE_BUSY &&
           ms_since(&start) < IOTSEC_STORE_BUSY_TIMEOUT_MS)
        nanosleep(&(struct timespec){.tv_nsec = (1 + rand_r(&s->busy_seed) % 5) * 1000000L}, NULL);
    if (rc != SQLITE_ROW)
        return store_sqlite_error(s->db, rc, "%s: switching to WAL mode", s->what);
    /* An in-memory database has no WAL; it reports "memory" and is private anyway. */
    IOTSEC_ENSURE(strcmp(mode, "wal") == 0 || memory, IOTSEC_ERR_IO,
                  "%s: cannot use WAL mode (journal mode stays '%s'); is the file on a network "
                  "file system?",
                  s->what, mode);
    return IOTSEC_RESULT_OK;
}

static iotsec_result open_db(struct sqlite_store *s, const char *path, int target)
{
    bool memory = strcmp(path, ":memory:") == 0;
    snprintf(s->what, sizeof(s->what), "store %s", path);
    if (!memory)
        IOTSEC_GUARD(prepare_file(path));

    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW;
    if (memory)
        flags |= SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_error(s->db, rc, "%s: opening", s->what);
    sqlite3_extended_result_codes(s->db, 1);
    s->busy_seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    sqlite3_busy_handler(s->db, busy_wait, s);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);

    /* Identify the file before changing anything in it: a foreign or newer database is
     * refused as it was found. */
    int version;
    IOTSEC_GUARD(store_sqlite_schema_check(s->db, s->what, &version));
    IOTSEC_GUARD(set_wal(s, memory));
    IOTSEC_GUARD(exec_const(s,
                            "PRAGMA synchronous = FULL;"
                            "PRAGMA foreign_keys = ON;"
                            "PRAGMA secure_delete = ON;"
                            /* Truncate a WAL grown by a long reader back to 64 MiB. */
                            "PRAGMA journal_size_limit = 67108864;",
                            "setting connection options"));
    return store_sqlite_migrate(s->db, s->what, target);
}

iotsec_result store_sqlite_open_at(const char *path, int target, struct iotsec_store **out)
{
    IOTSEC_ENSURE(target >= 1 && target <= IOTSEC_STORE_SCHEMA_VERSION, IOTSEC_ERR_INVALID_ARG,
                  "store: no schema version %d", target);
    struct sqlite_store *s = calloc(1, sizeof(*s));
    IOTSEC_ENSURE_ALLOC(s);
    s->base.ops = &store_sqlite_backend;
    iotsec_result r = open_db(s, path, target);
    if (!iotsec_ok(r)) {
        sqlite_close(&s->base);
        return r;
    }
    *out = &s->base;
    return IOTSEC_RESULT_OK;
}

static iotsec_result sqlite_open(const char *target, struct iotsec_store **out)
{
    return store_sqlite_open_at(target, IOTSEC_STORE_SCHEMA_VERSION, out);
}

static iotsec_result set_sync(struct iotsec_store *base, enum iotsec_store_sync mode)
{
    struct sqlite_store *s = of(base);
    IOTSEC_ENSURE(s->tx_depth == 0, IOTSEC_ERR_BUSY,
                  "store: durability cannot change inside a transaction");
    return exec_const(s,
                      mode == IOTSEC_STORE_SYNC_FULL ? "PRAGMA synchronous = FULL"
                                                     : "PRAGMA synchronous = NORMAL",
                      "setting durability");
}

/* ---- telemetry ---- */

static iotsec_result telemetry_insert(struct iotsec_store *base, struct iotsec_store_telemetry *t)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_TELEMETRY_INSERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, t->device_id);
    b_int(&b, 2, t->ts);
    b_int(&b, 3, t->received_at);
    b_text(&b, 4, t->body);
    IOTSEC_GUARD(bound(&b));
    bool row;
    IOTSEC_GUARD(step(s, st, &row, "store: telemetry of %s", t->device_id));
    IOTSEC_ENSURE(row, IOTSEC_ERR_FORMAT, "store: telemetry insert returned no seq");
    t->seq = sqlite3_column_int64(st, 0);
    return IOTSEC_RESULT_OK;
}

static iotsec_result telemetry_list(struct iotsec_store *base, const char *device_id,
                                    int64_t before_seq, size_t limit,
                                    struct iotsec_store_telemetry_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_TELEMETRY_LIST, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, device_id);
    b_int(&b, 2, before_seq);
    b_int(&b, 3, (int64_t)limit + 1);
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, limit, out, read_telemetry, "store: listing telemetry");
}

/* ---- commands ---- */

static iotsec_result command_insert(struct iotsec_store *base, struct iotsec_store_command *c)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_COMMAND_INSERT, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, c->target);
    b_text(&b, 2, c->action);
    b_text(&b, 3, c->payload != NULL ? c->payload : "{}");
    b_text(&b, 4, c->issued_by);
    b_int(&b, 5, c->created_at);
    IOTSEC_GUARD(bound(&b));
    bool row;
    IOTSEC_GUARD(step(s, st, &row, "store: command for %s", c->target));
    IOTSEC_ENSURE(row, IOTSEC_ERR_FORMAT, "store: command insert returned no seq");
    c->seq = sqlite3_column_int64(st, 0);
    return IOTSEC_RESULT_OK;
}

static iotsec_result command_list(struct iotsec_store *base, const char *target, int64_t before_seq,
                                  size_t limit, struct iotsec_store_command_list *out)
{
    struct sqlite_store *s = of(base);
    sqlite3_stmt *st IOTSEC_DEFER(stmt_done) = NULL;
    IOTSEC_GUARD(stmt(s, ST_COMMAND_LIST, &st));
    struct binder b = {s, st, SQLITE_OK};
    b_text(&b, 1, target);
    b_int(&b, 2, before_seq);
    b_int(&b, 3, (int64_t)limit + 1);
    IOTSEC_GUARD(bound(&b));
    return COLLECT(s, st, limit, out, read_command, "store: listing commands");
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .tx_begin = tx_begin,
    .tx_end = tx_end,
    .device_insert = device_insert,
    .device_get = device_get,
    .device_set_status = device_set_status,
    .device_set_certificate = device_set_certificate,
    .device_set_public_key = device_set_public_key,
    .device_revoke = device_revoke,
    .device_list = device_list,
    .cert_insert = cert_insert,
    .cert_get = cert_get,
    .cert_get_by_fingerprint = cert_get_by_fingerprint,
    .cert_revoke = cert_revoke,
    .cert_list_revoked = cert_list_revoked,
    .cert_list_by_device = cert_list_by_device,
    .apikey_insert = apikey_insert,
    .apikey_get = apikey_get,
    .apikey_find_by_hash = apikey_find_by_hash,
    .apikey_touch = apikey_touch,
    .apikey_revoke = apikey_revoke,
    .apikey_list_by_device = apikey_list_by_device,
    .user_insert = user_insert,
    .user_get = user_get,
    .user_set_password = user_set_password,
    .user_set_totp = user_set_totp,
    .user_set_role = user_set_role,
    .user_set_disabled = user_set_disabled,
    .user_list = user_list,
    .user_delete = user_delete,
    .event_append = event_append,
    .event_last = event_last,
    .event_get = event_get,
    .event_list = event_list,
    .event_count = event_count,
    .block_put = block_put,
    .block_remove = block_remove,
    .block_check = block_check,
    .block_list_active = block_list_active,
    .block_purge_expired = block_purge_expired,
    .set_sync = set_sync,
    .telemetry_insert = telemetry_insert,
    .telemetry_list = telemetry_list,
    .command_insert = command_insert,
    .command_list = command_list,
};
