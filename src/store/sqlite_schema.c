/*
 * The SQLite schema and its migrations.
 *
 * The schema version is SQLite's `PRAGMA user_version`; `PRAGMA application_id` marks the
 * file as iotsec's. MIGRATIONS is an ordered list: step N takes a database from version
 * N - 1 to N and is never edited once released (a change is a new step), so every
 * database, however old, reaches the current schema by the same path. Each step runs in
 * its own BEGIN IMMEDIATE transaction and re-reads the version inside it, so two
 * processes opening an old database at once apply each step exactly once, and a crash
 * mid-step leaves the previous version intact. A version above the newest step means a
 * newer iotsec wrote the file: it is refused untouched rather than used with a schema
 * this code does not understand.
 *
 * Constraints and triggers repeat the front's rules that the data's integrity rests on
 * (hash lengths, enumerations, the event chain's linkage, append-only events), so a
 * database written by a buggy or foreign writer cannot silently hold what the code would
 * never write. The steps are constant SQL text: no value is ever formatted into SQL.
 */
#include "store_backend.h"

#include <sqlite3.h>
#include <stdio.h>

struct migration {
    int version;
    const char *what;
    const char *sql;
};

static const struct migration MIGRATIONS[] = {
    {1, "registry: devices, certificates, API keys, operators",
     "CREATE TABLE devices ("
     "  id               TEXT PRIMARY KEY NOT NULL,"
     "  model            TEXT NOT NULL,"
     "  status           TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),"
     "  cert_fingerprint TEXT NOT NULL,"
     "  cert_serial      TEXT NOT NULL,"
     "  public_key_pem   TEXT NOT NULL,"
     "  created_at       INTEGER NOT NULL,"
     "  updated_at       INTEGER NOT NULL"
     ") WITHOUT ROWID;"
     "CREATE INDEX devices_status ON devices (status, id);"
     "CREATE TABLE certificates ("
     "  serial            TEXT PRIMARY KEY NOT NULL,"
     "  device_id         TEXT NOT NULL REFERENCES devices (id),"
     "  fingerprint       TEXT NOT NULL UNIQUE CHECK (length(fingerprint) = 64),"
     "  not_before        INTEGER NOT NULL,"
     "  not_after         INTEGER NOT NULL,"
     "  issued_at         INTEGER NOT NULL,"
     "  revoked_at        INTEGER NOT NULL,"
     "  revocation_reason INTEGER NOT NULL"
     ");"
     "CREATE INDEX certificates_device ON certificates (device_id, issued_at, serial);"
     /* Partial: a CRL is built from the few revoked rows, not a scan of all of them. */
     "CREATE INDEX certificates_revoked ON certificates (serial) WHERE revoked_at > 0;"
     "CREATE TABLE api_keys ("
     "  key_id             TEXT PRIMARY KEY NOT NULL,"
     "  device_id          TEXT NOT NULL REFERENCES devices (id),"
     "  hash               BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
     "  created_at         INTEGER NOT NULL,"
     "  last_used_at       INTEGER NOT NULL,"
     "  revoked_at         INTEGER NOT NULL,"
     "  rate_limit_per_min INTEGER NOT NULL CHECK (rate_limit_per_min >= 0)"
     ");"
     "CREATE INDEX api_keys_device ON api_keys (device_id, key_id);"
     "CREATE TABLE users ("
     "  name                 TEXT PRIMARY KEY NOT NULL,"
     "  password_hash        TEXT NOT NULL,"
     "  totp_secret          BLOB NOT NULL,"
     "  role                 TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),"
     "  created_at           INTEGER NOT NULL,"
     "  updated_at           INTEGER NOT NULL,"
     "  disabled             INTEGER NOT NULL CHECK (disabled IN (0, 1)),"
     "  must_change_password INTEGER NOT NULL CHECK (must_change_password IN (0, 1))"
     ") WITHOUT ROWID;"},

    {2, "monitoring: security event log, blocklist",
     "CREATE TABLE events ("
     "  seq        INTEGER PRIMARY KEY NOT NULL CHECK (seq > 0),"
     "  ts         INTEGER NOT NULL,"
     "  event_type TEXT NOT NULL,"
     "  severity   INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),"
     "  device_id  TEXT NOT NULL,"
     "  source_ip  TEXT NOT NULL,"
     "  details    TEXT NOT NULL,"
     "  prev_hash  BLOB NOT NULL CHECK (length(prev_hash) = 32),"
     "  hash       BLOB NOT NULL CHECK (length(hash) = 32)"
     ");"
     "CREATE INDEX events_ts ON events (ts);"
     "CREATE INDEX events_type ON events (event_type, seq);"
     "CREATE INDEX events_device ON events (device_id, seq);"
     /* The chain's shape, enforced by the database for every writer: a record is the
      * successor of the last one and names its hash. */
     "CREATE TRIGGER events_link BEFORE INSERT ON events "
     "WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events)"
     "  OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM events WHERE seq = NEW.seq - 1),"
     "       X'0000000000000000000000000000000000000000000000000000000000000000') "
     "BEGIN SELECT RAISE(ABORT, 'events: a record must follow the last one "
     "(seq + 1, prev_hash = its hash)'); END;"
     "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
     "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
     "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
     "BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
     "CREATE TABLE blocks ("
     "  source     TEXT PRIMARY KEY NOT NULL,"
     "  reason     TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL CHECK (expires_at >= 0)"
     ") WITHOUT ROWID;"
     "CREATE INDEX blocks_expiry ON blocks (expires_at) WHERE expires_at > 0;"},

    {3, "telemetry",
     "CREATE TABLE telemetry ("
     "  seq         INTEGER PRIMARY KEY NOT NULL,"
     "  device_id   TEXT NOT NULL REFERENCES devices (id),"
     "  ts          INTEGER NOT NULL,"
     "  received_at INTEGER NOT NULL,"
     "  body        TEXT NOT NULL"
     ");"
     "CREATE INDEX telemetry_device ON telemetry (device_id, seq);"},

    {4, "commands to devices",
     "CREATE TABLE commands ("
     "  seq          INTEGER PRIMARY KEY NOT NULL,"
     "  target       TEXT NOT NULL REFERENCES devices (id),"
     "  action       TEXT NOT NULL,"
     "  payload      TEXT NOT NULL,"
     "  issued_by    TEXT NOT NULL,"
     "  created_at   INTEGER NOT NULL,"
     "  delivered_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX commands_target ON commands (target, seq);"},
};

_Static_assert(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]) == IOTSEC_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

static void finalize(sqlite3_stmt **st)
{
    sqlite3_finalize(*st);
}

/* The three facts are read by one statement, so from one snapshot: read one by one, a
 * migration committed by another process in between would show tables without a version
 * and look like a foreign database. */
static iotsec_result read_identity(sqlite3 *db, const char *what, int64_t *version, int64_t *app,
                                   int64_t *objects)
{
    sqlite3_stmt *st IOTSEC_DEFER(finalize) = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT (SELECT user_version FROM pragma_user_version),"
                                " (SELECT application_id FROM pragma_application_id),"
                                " (SELECT count(*) FROM sqlite_master)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_error(db, rc, "%s: reading the schema", what);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return store_sqlite_error(db, rc, "%s: reading the schema", what);
    *version = sqlite3_column_int64(st, 0);
    *app = sqlite3_column_int64(st, 1);
    *objects = sqlite3_column_int64(st, 2);
    return IOTSEC_RESULT_OK;
}

iotsec_result store_sqlite_schema_check(struct sqlite3 *db, const char *what, int *version)
{
    int64_t v = 0, app = 0, objects = 0;
    IOTSEC_GUARD(read_identity(db, what, &v, &app, &objects));
    if (v == 0) {
        IOTSEC_ENSURE(
            objects == 0 && (app == 0 || app == STORE_SQLITE_APPLICATION_ID), IOTSEC_ERR_FORMAT,
            "%s: not an iotsec database (it has tables but no iotsec schema version)", what);
    } else {
        IOTSEC_ENSURE(app == STORE_SQLITE_APPLICATION_ID, IOTSEC_ERR_FORMAT,
                      "%s: not an iotsec database (its application_id is 0x%08llx)", what,
                      (unsigned long long)app);
        IOTSEC_ENSURE(v <= IOTSEC_STORE_SCHEMA_VERSION, IOTSEC_ERR_VERSION,
                      "%s: the database has schema version %lld, newer than the %d this iotsec "
                      "knows; it was written by a newer iotsec: upgrade, or use that version",
                      what, (long long)v, IOTSEC_STORE_SCHEMA_VERSION);
    }
    *version = (int)v;
    return IOTSEC_RESULT_OK;
}

static iotsec_result exec(sqlite3 *db, const char *what, const char *step, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sqlite_error(db, rc, "%s: %s", what, step);
    return IOTSEC_RESULT_OK;
}

static iotsec_result apply(sqlite3 *db, const char *what, const struct migration *m)
{
    int v;
    /* Another process may have applied this step while we waited for the write lock. */
    IOTSEC_GUARD(store_sqlite_schema_check(db, what, &v));
    if (v >= m->version)
        return IOTSEC_RESULT_OK;
    IOTSEC_ENSURE(v == m->version - 1, IOTSEC_ERR_FORMAT,
                  "%s: schema version %d cannot be migrated to %d in one step", what, v,
                  m->version);
    char step[160];
    snprintf(step, sizeof(step), "migrating to schema version %d (%s)", m->version, m->what);
    IOTSEC_GUARD(exec(db, what, step, m->sql));
    /* PRAGMA takes no bound parameters; both numbers are compile-time constants. */
    char pragmas[96];
    snprintf(pragmas, sizeof(pragmas), "PRAGMA application_id = %d; PRAGMA user_version = %d",
             STORE_SQLITE_APPLICATION_ID, m->version);
    return exec(db, what, step, pragmas);
}

iotsec_result store_sqlite_migrate(struct sqlite3 *db, const char *what, int target)
{
    for (size_t i = 0; i < sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]); i++) {
        const struct migration *m = &MIGRATIONS[i];
        if (m->version > target)
            break;
        int v;
        IOTSEC_GUARD(store_sqlite_schema_check(db, what, &v));
        if (v >= m->version)
            continue;
        IOTSEC_GUARD(exec(db, what, "starting a migration", "BEGIN IMMEDIATE"));
        iotsec_result r = apply(db, what, m);
        if (iotsec_ok(r))
            r = exec(db, what, "committing a migration", "COMMIT");
        if (!iotsec_ok(r)) {
            /* The step's error is the one to report; the rollback's result adds nothing. */
            if (!sqlite3_get_autocommit(db))
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
    }
    return IOTSEC_RESULT_OK;
}
