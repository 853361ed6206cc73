/*
 * Unit tests for the store: every entity's operations and error codes, the event log's
 * chain, filters and paging, the blocklist's expiry and canonical sources, migrations,
 * the file's mode, and two processes writing the same database at once.
 *
 * Each test gets a fresh database in its own mkdtemp directory. Times are fixed numbers:
 * the store reads no clock, so none is needed here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iotsec/buf.h"
#include "iotsec/crypto.h"
#include "iotsec/store.h"
#include "store/store_backend.h"

#define T0         1700000000000LL /* 2023-11-14, in ms */
#define FP_A       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define FP_C       "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define FP_A_UPPER "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

struct fixture {
    char dir[64];
    char path[128];
    char url[160];
    struct iotsec_store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotsec-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    iotsec_store_close(f->s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            fail_msg("%s failed: %s", #expr, iotsec_error_message());                              \
    } while (0)

/* The call fails with the code, and its message contains `needle` (may be NULL). */
#define FAILS(expr, code, needle)                                                                  \
    do {                                                                                           \
        if (iotsec_ok(expr))                                                                       \
            fail_msg("%s succeeded, expected %s", #expr, #code);                                   \
        if (iotsec_error_code() != (code))                                                         \
            fail_msg("%s: code %d, expected %s: %s", #expr, (int)iotsec_error_code(), #code,       \
                     iotsec_error_message());                                                      \
        expect_message(#expr, (needle));                                                           \
    } while (0)

static void expect_message(const char *expr, const char *needle)
{
    if (needle != NULL && strstr(iotsec_error_message(), needle) == NULL)
        fail_msg("%s: message '%s' lacks '%s'", expr, iotsec_error_message(), needle);
}

static struct iotsec_store *open_store(struct fixture *f)
{
    OK(iotsec_store_open(f->url, &f->s));
    return f->s;
}

static struct iotsec_store_device device(const char *id)
{
    struct iotsec_store_device d = {
        .status = IOTSEC_STORE_DEVICE_ACTIVE, .created_at = T0, .updated_at = T0};
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.model, sizeof(d.model), "TH-Sensor v2");
    return d;
}

static struct iotsec_store_cert cert(const char *serial, const char *device_id, const char *fp,
                                     int64_t issued)
{
    struct iotsec_store_cert c = {
        .not_before = issued, .not_after = issued + 86400000LL * 365, .issued_at = issued};
    snprintf(c.serial, sizeof(c.serial), "%s", serial);
    snprintf(c.device_id, sizeof(c.device_id), "%s", device_id);
    snprintf(c.fingerprint, sizeof(c.fingerprint), "%s", fp);
    return c;
}

/* The test's chain: SHA-256 over prev_hash and every field, in a fixed order. */
static iotsec_result test_chain(void *ctx, struct iotsec_store_event *ev)
{
    (void)ctx;
    struct iotsec_buf b = {0};
    iotsec_result r = IOTSEC_RESULT_OK;
    if (iotsec_ok(r))
        r = iotsec_buf_append(&b, ev->prev_hash, sizeof(ev->prev_hash));
    if (iotsec_ok(r))
        r = iotsec_buf_append_u64(&b, (uint64_t)ev->seq);
    if (iotsec_ok(r))
        r = iotsec_buf_append_u64(&b, (uint64_t)ev->ts);
    if (iotsec_ok(r))
        r = iotsec_buf_append(&b, ev->event_type, strlen(ev->event_type) + 1);
    if (iotsec_ok(r))
        r = iotsec_buf_append_u8(&b, (uint8_t)ev->severity);
    if (iotsec_ok(r))
        r = iotsec_buf_append(&b, ev->device_id, strlen(ev->device_id) + 1);
    if (iotsec_ok(r))
        r = iotsec_buf_append(&b, ev->source_ip, strlen(ev->source_ip) + 1);
    if (iotsec_ok(r))
        r = iotsec_buf_append_str(&b, ev->details != NULL ? ev->details : "{}");
    uint8_t hash[IOTSEC_SHA256_LEN];
    if (iotsec_ok(r))
        r = iotsec_sha256(iotsec_buf_slice(&b), hash);
    if (iotsec_ok(r))
        memcpy(ev->hash, hash, sizeof(ev->hash));
    iotsec_buf_free(&b);
    return r;
}

static struct iotsec_store_event event(const char *type, enum iotsec_store_severity sev,
                                       const char *device_id, int64_t ts)
{
    struct iotsec_store_event e = {.ts = ts, .severity = sev};
    snprintf(e.event_type, sizeof(e.event_type), "%s", type);
    snprintf(e.device_id, sizeof(e.device_id), "%s", device_id);
    return e;
}

static int64_t append(struct iotsec_store *s, const char *type, enum iotsec_store_severity sev,
                      const char *device_id, int64_t ts)
{
    struct iotsec_store_event e = event(type, sev, device_id, ts);
    OK(iotsec_store_event_append(s, &e, test_chain, NULL));
    return e.seq;
}

/* ---- opening, the file, migrations ---- */

static void store_creates_private_file_in_wal_mode(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    assert_string_equal(iotsec_store_backend_name(s), "sqlite");
    struct iotsec_store_device d = device("dev-1");
    OK(iotsec_store_device_insert(s, &d));

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void store_open_rejects_bad_urls_and_files(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = NULL;
    FAILS(iotsec_store_open("postgres://user:secret@db/iotsec", &s), IOTSEC_ERR_CONFIG,
          "PostgreSQL backend is not part of this build");
    assert_null(strstr(iotsec_error_message(), "secret"));
    FAILS(iotsec_store_open("mysql://db/x", &s), IOTSEC_ERR_CONFIG, "unknown URL scheme");
    FAILS(iotsec_store_open("sqlite:", &s), IOTSEC_ERR_CONFIG, "names no database");
    assert_null(s);

    char link[200];
    snprintf(link, sizeof(link), "%s/link.db", f->dir);
    assert_int_equal(symlink(f->path, link), 0);
    FAILS(iotsec_store_open(link, &s), IOTSEC_ERR_PERMISSION, "symbolic link");

    char open_path[200];
    snprintf(open_path, sizeof(open_path), "%s/open.db", f->dir);
    FILE *fp = fopen(open_path, "w");
    fclose(fp);
    assert_int_equal(chmod(open_path, 0644), 0);
    FAILS(iotsec_store_open(open_path, &s), IOTSEC_ERR_PERMISSION, "mode 0644");

    char text_path[200];
    snprintf(text_path, sizeof(text_path), "%s/text.db", f->dir);
    fp = fopen(text_path, "w");
    fputs("this is not a database, but it is long enough to have a header of 100 bytes: "
          "................................................................\n",
          fp);
    fclose(fp);
    assert_int_equal(chmod(text_path, 0600), 0);
    FAILS(iotsec_store_open(text_path, &s), IOTSEC_ERR_FORMAT, "not a database");
    assert_null(s);

    /* "sqlite:///abs" and a plain path are the same database. */
    char url3[200];
    snprintf(url3, sizeof(url3), "sqlite://%s", f->path);
    OK(iotsec_store_open(url3, &s));
    iotsec_store_close(s);
    OK(iotsec_store_open(f->path, &s));
    iotsec_store_close(s);
}

static void store_memory_database_is_private_and_complete(void **state)
{
    (void)state;
    struct iotsec_store *a, *b;
    OK(iotsec_store_open("sqlite::memory:", &a));
    OK(iotsec_store_open("sqlite::memory:", &b));
    struct iotsec_store_device d = device("dev-1");
    OK(iotsec_store_device_insert(a, &d));
    OK(iotsec_store_device_insert(b, &d)); /* b is another database */
    assert_int_equal(append(a, "boot", IOTSEC_STORE_SEVERITY_LOW, "dev-1", T0), 1);
    iotsec_store_close(a);
    iotsec_store_close(b);
}

static int64_t user_version(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

static void store_migrates_step_by_step_and_keeps_data(void **state)
{
    struct fixture *f = *state;
    /* A database left at version 1 by an older build: registry only. */
    struct iotsec_store *old;
    OK(store_sqlite_open_at(f->path, 1, &old));
    struct iotsec_store_device d = device("old-device");
    OK(iotsec_store_device_insert(old, &d));
    struct iotsec_store_event e = event("auth_failure", IOTSEC_STORE_SEVERITY_LOW, "", T0);
    FAILS(iotsec_store_event_append(old, &e, test_chain, NULL), IOTSEC_ERR_FORMAT,
          "no such table: events");
    iotsec_store_close(old);
    assert_int_equal(user_version(f->path), 1);

    /* Opening with this build applies step 2 and keeps what was there. */
    struct iotsec_store *s = open_store(f);
    assert_int_equal(user_version(f->path), IOTSEC_STORE_SCHEMA_VERSION);
    struct iotsec_store_device got;
    OK(iotsec_store_device_get(s, "old-device", &got));
    iotsec_store_device_clear(&got);
    assert_int_equal(append(s, "auth_failure", IOTSEC_STORE_SEVERITY_LOW, "", T0), 1);
    iotsec_store_close(s);
    f->s = NULL;

    /* A second open has nothing to do. */
    s = open_store(f);
    assert_int_equal(user_version(f->path), IOTSEC_STORE_SCHEMA_VERSION);
    uint64_t n;
    OK(iotsec_store_event_count(s, NULL, &n));
    assert_int_equal(n, 1);
}

static void store_refuses_newer_schema_untouched(void **state)
{
    struct fixture *f = *state;
    iotsec_store_close(open_store(f));
    f->s = NULL;
    exec_sql(f->path, "PRAGMA user_version = 7");
    struct iotsec_store *s = NULL;
    char want[256];
    snprintf(want, sizeof(want),
             "store %s: the database has schema version 7, newer than the %d this iotsec knows",
             f->path, IOTSEC_STORE_SCHEMA_VERSION);
    FAILS(iotsec_store_open(f->url, &s), IOTSEC_ERR_VERSION, want);
    assert_null(s);
    assert_int_equal(user_version(f->path), 7);
}

static void store_refuses_foreign_database(void **state)
{
    struct fixture *f = *state;
    int fd = creat(f->path, 0600);
    assert_true(fd >= 0);
    close(fd);
    exec_sql(f->path, "CREATE TABLE notes (body TEXT)");
    struct iotsec_store *s = NULL;
    FAILS(iotsec_store_open(f->url, &s), IOTSEC_ERR_FORMAT, "not an iotsec database");
    exec_sql(f->path, "PRAGMA user_version = 1");
    FAILS(iotsec_store_open(f->url, &s), IOTSEC_ERR_FORMAT, "application_id");
}

/* ---- devices ---- */

static void device_insert_get_update_and_errors(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_device d = device("dev-1");
    char pem[] = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
    d.public_key_pem = pem;
    OK(iotsec_store_device_insert(s, &d));
    FAILS(iotsec_store_device_insert(s, &d), IOTSEC_ERR_EXISTS,
          "store: device dev-1: already exists");

    struct iotsec_store_device got;
    OK(iotsec_store_device_get(s, "dev-1", &got));
    assert_string_equal(got.id, "dev-1");
    assert_string_equal(got.model, "TH-Sensor v2");
    assert_int_equal(got.status, IOTSEC_STORE_DEVICE_ACTIVE);
    assert_string_equal(got.cert_fingerprint, "");
    assert_string_equal(got.public_key_pem, d.public_key_pem);
    assert_int_equal(got.created_at, T0);
    iotsec_store_device_clear(&got);
    assert_null(got.public_key_pem);

    FAILS(iotsec_store_device_get(s, "dev-2", &got), IOTSEC_ERR_NOT_FOUND,
          "store: device dev-2: not found");
    FAILS(iotsec_store_device_set_status(s, "dev-2", IOTSEC_STORE_DEVICE_DISABLED, T0),
          IOTSEC_ERR_NOT_FOUND, "dev-2");

    OK(iotsec_store_device_set_status(s, "dev-1", IOTSEC_STORE_DEVICE_DISABLED, T0 + 1));
    /* Hex arrives in either case and is stored in one. */
    OK(iotsec_store_device_set_certificate(s, "dev-1", FP_A_UPPER, "0A1B", T0 + 2));
    OK(iotsec_store_device_set_public_key(s, "dev-1", NULL, T0 + 3));
    OK(iotsec_store_device_get(s, "dev-1", &got));
    assert_int_equal(got.status, IOTSEC_STORE_DEVICE_DISABLED);
    assert_string_equal(got.cert_fingerprint, FP_A);
    assert_string_equal(got.cert_serial, "0a1b");
    assert_null(got.public_key_pem);
    assert_int_equal(got.updated_at, T0 + 3);
    iotsec_store_device_clear(&got);

    FAILS(iotsec_store_device_set_certificate(s, "dev-1", FP_A, "", T0), IOTSEC_ERR_INVALID_ARG,
          "both its fingerprint and its serial");
    FAILS(iotsec_store_device_set_certificate(s, "dev-1", "abc", "01", T0), IOTSEC_ERR_INVALID_ARG,
          "device certificate fingerprint 'abc' must be 64 hex digits");
    FAILS(iotsec_store_device_set_status(s, "dev-1", (enum iotsec_store_device_status)9, T0),
          IOTSEC_ERR_INVALID_ARG, "device status 9");
    FAILS(iotsec_store_device_set_status(s, "dev-1", IOTSEC_STORE_DEVICE_ACTIVE, -5),
          IOTSEC_ERR_INVALID_ARG, "update time is -5");
}

/* Values never become SQL: a quote in an id is refused by the id's rule, before any SQL. */
static void device_id_with_quote_is_rejected_by_validation(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    const char *bad[] = {"dev'1", "x'; DROP TABLE devices; --", "", "dev 1", "dév", "a\nb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct iotsec_store_device d = device(bad[i]);
        FAILS(iotsec_store_device_insert(s, &d), IOTSEC_ERR_INVALID_ARG, "store: device id");
    }
    FAILS(iotsec_store_device_get(s, "dev'1", &(struct iotsec_store_device){0}),
          IOTSEC_ERR_INVALID_ARG, "'dev'1' has a character outside A-Z a-z 0-9 _ - at position 3");
    char long_id[IOTSEC_STORE_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    FAILS(iotsec_store_device_get(s, long_id, &(struct iotsec_store_device){0}),
          IOTSEC_ERR_INVALID_ARG, "longer than 64 characters");
    long_id[IOTSEC_STORE_ID_MAX] = '\0';
    struct iotsec_store_device d = device(long_id);
    OK(iotsec_store_device_insert(s, &d));

    struct iotsec_store_device_list l;
    OK(iotsec_store_device_list(s, IOTSEC_STORE_DEVICE_ANY, NULL, &l));
    assert_int_equal(l.count, 1);
    iotsec_store_device_list_free(&l);
}

static void device_list_filters_by_status_and_pages(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof(id), "dev-%02d", i);
        struct iotsec_store_device d = device(id);
        if (i % 5 == 0)
            d.status = IOTSEC_STORE_DEVICE_DISABLED;
        OK(iotsec_store_device_insert(s, &d));
    }
    struct iotsec_store_device_list l;
    struct iotsec_store_page page = {.limit = 10};
    char after[IOTSEC_STORE_ID_MAX + 1] = "";
    int seen = 0;
    for (int round = 0;; round++) {
        page.after = after;
        OK(iotsec_store_device_list(s, IOTSEC_STORE_DEVICE_ANY, &page, &l));
        for (size_t i = 0; i < l.count; i++) {
            char want[16];
            snprintf(want, sizeof(want), "dev-%02d", seen++);
            assert_string_equal(l.items[i].id, want);
        }
        assert_int_equal(l.more, round < 2);
        bool more = l.more;
        snprintf(after, sizeof(after), "%s", l.items[l.count - 1].id);
        iotsec_store_device_list_free(&l);
        if (!more)
            break;
    }
    assert_int_equal(seen, 25);

    OK(iotsec_store_device_list(s, IOTSEC_STORE_DEVICE_DISABLED, NULL, &l));
    assert_int_equal(l.count, 5);
    assert_false(l.more);
    assert_string_equal(l.items[4].id, "dev-20");
    iotsec_store_device_list_free(&l);

    FAILS(iotsec_store_device_list(s, IOTSEC_STORE_DEVICE_ANY,
                                   &(struct iotsec_store_page){.limit = 1001}, &l),
          IOTSEC_ERR_INVALID_ARG, "list limit 1001 is over the maximum of 1000");
}

/* ---- certificates ---- */

static void cert_insert_get_revoke_once(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_cert c = cert("01", "dev-1", FP_A, T0);
    FAILS(iotsec_store_cert_insert(s, &c), IOTSEC_ERR_NOT_FOUND,
          "names a device that does not exist");
    struct iotsec_store_device d = device("dev-1");
    OK(iotsec_store_device_insert(s, &d));
    OK(iotsec_store_cert_insert(s, &c));
    struct iotsec_store_cert same_serial = cert("01", "dev-1", FP_C, T0);
    FAILS(iotsec_store_cert_insert(s, &same_serial), IOTSEC_ERR_EXISTS,
          "store: certificate 01 of device dev-1: already exists");
    assert_non_null(strstr(iotsec_error_message(), "certificates.serial"));
    struct iotsec_store_cert c2 = cert("02", "dev-1", FP_A, T0);
    FAILS(iotsec_store_cert_insert(s, &c2), IOTSEC_ERR_EXISTS, "certificates.fingerprint");

    struct iotsec_store_cert got;
    OK(iotsec_store_cert_get(s, "01", &got));
    assert_string_equal(got.device_id, "dev-1");
    assert_string_equal(got.fingerprint, FP_A);
    assert_int_equal(got.revoked_at, 0);
    OK(iotsec_store_cert_get_by_fingerprint(s, FP_A_UPPER, &got));
    assert_string_equal(got.serial, "01");
    FAILS(iotsec_store_cert_get(s, "ff", &got), IOTSEC_ERR_NOT_FOUND, "certificate ff");

    OK(iotsec_store_cert_revoke(s, "01", IOTSEC_STORE_CRL_KEY_COMPROMISE, T0 + 10));
    FAILS(iotsec_store_cert_revoke(s, "01", IOTSEC_STORE_CRL_SUPERSEDED, T0 + 20),
          IOTSEC_ERR_EXISTS, "already revoked");
    OK(iotsec_store_cert_get(s, "01", &got));
    assert_int_equal(got.revoked_at, T0 + 10);
    assert_int_equal(got.revocation_reason, IOTSEC_STORE_CRL_KEY_COMPROMISE);
    FAILS(iotsec_store_cert_revoke(s, "ff", 0, T0), IOTSEC_ERR_NOT_FOUND, "certificate ff");
    FAILS(iotsec_store_cert_revoke(s, "01", 7, T0), IOTSEC_ERR_INVALID_ARG, "revocation reason 7");
    FAILS(iotsec_store_cert_get(s, "0x1", &got), IOTSEC_ERR_INVALID_ARG, "non-hex character");
}

static void cert_lists_revoked_for_crl_and_by_device(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_device d = device("dev-1");
    OK(iotsec_store_device_insert(s, &d));
    d = device("dev-2");
    OK(iotsec_store_device_insert(s, &d));
    for (int i = 0; i < 12; i++) {
        char serial[8], fp[65];
        snprintf(serial, sizeof(serial), "%02x", i);
        snprintf(fp, sizeof(fp), "%064x", i);
        struct iotsec_store_cert c = cert(serial, i < 8 ? "dev-1" : "dev-2", fp, T0 + 100 - i);
        if (i == 3) /* expired long ago */
            c.not_after = T0 + 200;
        OK(iotsec_store_cert_insert(s, &c));
        if (i % 2 == 1)
            OK(iotsec_store_cert_revoke(s, serial, IOTSEC_STORE_CRL_SUPERSEDED, T0 + 1000));
    }
    struct iotsec_store_cert_list l;
    OK(iotsec_store_cert_list_revoked(s, 0, &(struct iotsec_store_page){.limit = 4}, &l));
    assert_int_equal(l.count, 4);
    assert_true(l.more);
    assert_string_equal(l.items[0].serial, "01");
    assert_string_equal(l.items[3].serial, "07");
    iotsec_store_cert_list_free(&l);
    OK(iotsec_store_cert_list_revoked(s, 0, &(struct iotsec_store_page){.after = "07"}, &l));
    assert_int_equal(l.count, 2);
    assert_false(l.more);
    assert_string_equal(l.items[1].serial, "0b");
    iotsec_store_cert_list_free(&l);
    /* Certificates expired before the CRL's time may be left out. */
    OK(iotsec_store_cert_list_revoked(s, T0 + 1000, NULL, &l));
    assert_int_equal(l.count, 5);
    for (size_t i = 0; i < l.count; i++)
        assert_string_not_equal(l.items[i].serial, "03");
    iotsec_store_cert_list_free(&l);

    /* A device's certificates in issue order (serial 07 was issued first). */
    OK(iotsec_store_cert_list_by_device(s, "dev-1", &(struct iotsec_store_page){.limit = 3}, &l));
    assert_int_equal(l.count, 3);
    assert_true(l.more);
    assert_string_equal(l.items[0].serial, "07");
    assert_string_equal(l.items[2].serial, "05");
    iotsec_store_cert_list_free(&l);
    OK(iotsec_store_cert_list_by_device(s, "dev-1", &(struct iotsec_store_page){.after = "05"},
                                        &l));
    assert_int_equal(l.count, 5);
    assert_string_equal(l.items[4].serial, "00");
    iotsec_store_cert_list_free(&l);
}

static void device_revoke_revokes_certificates_and_keys_together(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_device d = device("dev-1");
    OK(iotsec_store_device_insert(s, &d));
    struct iotsec_store_cert c = cert("01", "dev-1", FP_A, T0);
    OK(iotsec_store_cert_insert(s, &c));
    c = cert("02", "dev-1", FP_B, T0 + 1);
    OK(iotsec_store_cert_insert(s, &c));
    OK(iotsec_store_cert_revoke(s, "01", IOTSEC_STORE_CRL_SUPERSEDED, T0 + 2));
    struct iotsec_store_apikey k = {.key_id = "k1", .device_id = "dev-1", .created_at = T0};
    memset(k.hash, 1, sizeof(k.hash));
    OK(iotsec_store_apikey_insert(s, &k));

    size_t n = 99;
    OK(iotsec_store_device_revoke(s, "dev-1", IOTSEC_STORE_CRL_KEY_COMPROMISE, T0 + 50, &n));
    assert_int_equal(n, 1);
    struct iotsec_store_device got;
    OK(iotsec_store_device_get(s, "dev-1", &got));
    assert_int_equal(got.status, IOTSEC_STORE_DEVICE_REVOKED);
    iotsec_store_device_clear(&got);
    struct iotsec_store_cert gc;
    OK(iotsec_store_cert_get(s, "01", &gc));
    assert_int_equal(gc.revoked_at, T0 + 2); /* the earlier revocation keeps its date */
    assert_int_equal(gc.revocation_reason, IOTSEC_STORE_CRL_SUPERSEDED);
    OK(iotsec_store_cert_get(s, "02", &gc));
    assert_int_equal(gc.revoked_at, T0 + 50);
    assert_int_equal(gc.revocation_reason, IOTSEC_STORE_CRL_KEY_COMPROMISE);
    struct iotsec_store_apikey gk;
    OK(iotsec_store_apikey_get(s, "k1", &gk));
    assert_int_equal(gk.revoked_at, T0 + 50);
    FAILS(iotsec_store_device_revoke(s, "nobody", 0, T0, NULL), IOTSEC_ERR_NOT_FOUND, "nobody");
}

/* ---- API keys ---- */

static void apikey_insert_lookup_touch_revoke(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_device d = device("dev-1");
    OK(iotsec_store_device_insert(s, &d));
    for (int i = 0; i < 5; i++) {
        struct iotsec_store_apikey k = {
            .device_id = "dev-1", .created_at = T0 + i, .rate_limit_per_min = 60u * (unsigned)i};
        snprintf(k.key_id, sizeof(k.key_id), "key%d", i);
        memset(k.hash, 0x10 + i, sizeof(k.hash));
        OK(iotsec_store_apikey_insert(s, &k));
    }
    struct iotsec_store_apikey k = {.key_id = "key0", .device_id = "dev-1"};
    FAILS(iotsec_store_apikey_insert(s, &k), IOTSEC_ERR_EXISTS, "api_keys.key_id");
    snprintf(k.key_id, sizeof(k.key_id), "other");
    memset(k.hash, 0x12, sizeof(k.hash));
    FAILS(iotsec_store_apikey_insert(s, &k), IOTSEC_ERR_EXISTS, "api_keys.hash");
    snprintf(k.device_id, sizeof(k.device_id), "ghost");
    memset(k.hash, 0x77, sizeof(k.hash));
    FAILS(iotsec_store_apikey_insert(s, &k), IOTSEC_ERR_NOT_FOUND, "does not exist");

    uint8_t hash[32];
    memset(hash, 0x13, sizeof(hash));
    struct iotsec_store_apikey got;
    OK(iotsec_store_apikey_find_by_hash(s, hash, &got));
    assert_string_equal(got.key_id, "key3");
    assert_int_equal(got.rate_limit_per_min, 180);
    assert_int_equal(got.last_used_at, 0);
    memset(hash, 0x99, sizeof(hash));
    FAILS(iotsec_store_apikey_find_by_hash(s, hash, &got), IOTSEC_ERR_NOT_FOUND, "API key");

    OK(iotsec_store_apikey_touch(s, "key3", T0 + 100));
    OK(iotsec_store_apikey_touch(s, "key3", T0 + 50)); /* never moves backwards */
    OK(iotsec_store_apikey_get(s, "key3", &got));
    assert_int_equal(got.last_used_at, T0 + 100);
    FAILS(iotsec_store_apikey_touch(s, "nokey", T0), IOTSEC_ERR_NOT_FOUND, "nokey");

    OK(iotsec_store_apikey_revoke(s, "key3", T0 + 200));
    FAILS(iotsec_store_apikey_revoke(s, "key3", T0 + 300), IOTSEC_ERR_EXISTS, "already revoked");
    memset(hash, 0x13, sizeof(hash));
    OK(iotsec_store_apikey_find_by_hash(s, hash, &got));
    assert_int_equal(got.revoked_at, T0 + 200);

    struct iotsec_store_apikey_list l;
    OK(iotsec_store_apikey_list_by_device(s, "dev-1", &(struct iotsec_store_page){.limit = 3}, &l));
    assert_int_equal(l.count, 3);
    assert_true(l.more);
    assert_string_equal(l.items[2].key_id, "key2");
    iotsec_store_apikey_list_free(&l);
    OK(iotsec_store_apikey_list_by_device(s, "dev-1", &(struct iotsec_store_page){.after = "key2"},
                                          &l));
    assert_int_equal(l.count, 2);
    assert_false(l.more);
    iotsec_store_apikey_list_free(&l);
}

/* ---- operators ---- */

static void user_crud_and_secrets(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    const char *names[] = {"alice", "bob@example.org", "carol.ops"};
    for (int i = 0; i < 3; i++) {
        struct iotsec_store_user u = {.role = IOTSEC_STORE_ROLE_VIEWER,
                                      .created_at = T0,
                                      .updated_at = T0,
                                      .must_change_password = true};
        snprintf(u.name, sizeof(u.name), "%s", names[i]);
        snprintf(u.password_hash, sizeof(u.password_hash),
                 "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g%d", i);
        OK(iotsec_store_user_insert(s, &u));
        FAILS(iotsec_store_user_insert(s, &u), IOTSEC_ERR_EXISTS, "users.name");
    }
    struct iotsec_store_user u;
    OK(iotsec_store_user_get(s, "alice", &u));
    assert_int_equal(u.role, IOTSEC_STORE_ROLE_VIEWER);
    assert_true(u.must_change_password);
    assert_false(u.disabled);
    assert_int_equal(u.totp_secret_len, 0);
    assert_string_equal(u.password_hash, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g0");

    const uint8_t secret[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 12, 13, 14, 15, 16, 17, 18, 19};
    OK(iotsec_store_user_set_password(s, "alice", "$argon2id$new", false, T0 + 1));
    OK(iotsec_store_user_set_totp(s, "alice", secret, sizeof(secret), T0 + 2));
    OK(iotsec_store_user_set_role(s, "alice", IOTSEC_STORE_ROLE_ADMIN, T0 + 3));
    OK(iotsec_store_user_set_disabled(s, "alice", true, T0 + 4));
    iotsec_store_user_clear(&u);
    OK(iotsec_store_user_get(s, "alice", &u));
    assert_string_equal(u.password_hash, "$argon2id$new");
    assert_false(u.must_change_password);
    assert_int_equal(u.totp_secret_len, sizeof(secret));
    assert_memory_equal(u.totp_secret, secret, sizeof(secret));
    assert_int_equal(u.role, IOTSEC_STORE_ROLE_ADMIN);
    assert_true(u.disabled);
    assert_int_equal(u.updated_at, T0 + 4);
    iotsec_store_user_clear(&u);
    assert_int_equal(u.totp_secret[0], 0);
    assert_int_equal(u.password_hash[0], '\0');

    OK(iotsec_store_user_set_totp(s, "alice", NULL, 0, T0 + 5));
    OK(iotsec_store_user_get(s, "alice", &u));
    assert_int_equal(u.totp_secret_len, 0);
    iotsec_store_user_clear(&u);

    struct iotsec_store_user_list l;
    OK(iotsec_store_user_list(s, NULL, &l));
    assert_int_equal(l.count, 3);
    assert_string_equal(l.items[1].name, "bob@example.org");
    iotsec_store_user_list_free(&l);

    OK(iotsec_store_user_delete(s, "bob@example.org"));
    FAILS(iotsec_store_user_delete(s, "bob@example.org"), IOTSEC_ERR_NOT_FOUND, "not found");
    FAILS(iotsec_store_user_get(s, "bob@example.org", &u), IOTSEC_ERR_NOT_FOUND, "user");
    FAILS(iotsec_store_user_set_role(s, "ghost", IOTSEC_STORE_ROLE_ADMIN, T0), IOTSEC_ERR_NOT_FOUND,
          "ghost");
    FAILS(iotsec_store_user_set_password(s, "alice", "has space", false, T0),
          IOTSEC_ERR_INVALID_ARG, "password hash");
    uint8_t big[IOTSEC_STORE_TOTP_SECRET_MAX + 1] = {0};
    FAILS(iotsec_store_user_set_totp(s, "alice", big, sizeof(big), T0), IOTSEC_ERR_INVALID_ARG,
          "TOTP secret is 129 bytes");
    FAILS(iotsec_store_user_set_role(s, "alice", (enum iotsec_store_role)0, T0),
          IOTSEC_ERR_INVALID_ARG, "role 0");
}

/* ---- events ---- */

static void event_append_numbers_and_links_records(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    int64_t seq;
    uint8_t last[32], zero[32] = {0};
    OK(iotsec_store_event_last(s, &seq, last));
    assert_int_equal(seq, 0);
    assert_memory_equal(last, zero, 32);

    uint8_t prev[32] = {0};
    for (int i = 1; i <= 5; i++) {
        struct iotsec_store_event e =
            event("auth_failure", IOTSEC_STORE_SEVERITY_MEDIUM, "dev-1", T0 + i);
        snprintf(e.source_ip, sizeof(e.source_ip), "::FFFF:192.0.2.%d", i);
        OK(iotsec_store_event_append(s, &e, test_chain, NULL));
        assert_int_equal(e.seq, i);
        assert_memory_equal(e.prev_hash, prev, 32);
        char want_ip[32];
        snprintf(want_ip, sizeof(want_ip), "192.0.2.%d", i);
        assert_string_equal(e.source_ip, want_ip); /* the IPv4-mapped form, canonical */
        memcpy(prev, e.hash, 32);
    }
    OK(iotsec_store_event_last(s, &seq, last));
    assert_int_equal(seq, 5);
    assert_memory_equal(last, prev, 32);

    struct iotsec_store_event got;
    OK(iotsec_store_event_get(s, 3, &got));
    assert_int_equal(got.seq, 3);
    assert_int_equal(got.ts, T0 + 3);
    assert_string_equal(got.source_ip, "192.0.2.3");
    assert_string_equal(got.details, "{}");
    uint8_t stored[32];
    memcpy(stored, got.hash, 32);
    memset(got.hash, 0, 32);
    OK(test_chain(NULL, &got));
    assert_memory_equal(got.hash, stored, 32);
    iotsec_store_event_clear(&got);
    FAILS(iotsec_store_event_get(s, 6, &got), IOTSEC_ERR_NOT_FOUND, "event 6");
}

static void event_details_with_quotes_round_trip(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    char details[] = "{\"msg\":\"it's \\\"quoted\\\"'); DROP TABLE events; --\","
                     "\"path\":\"/api/x?a='1'\",\"n\":[1,2,{\"k\":null}]}";
    struct iotsec_store_event e = event("input_rejected", IOTSEC_STORE_SEVERITY_LOW, "", T0);
    e.details = details;
    OK(iotsec_store_event_append(s, &e, test_chain, NULL));
    struct iotsec_store_event got;
    OK(iotsec_store_event_get(s, e.seq, &got));
    assert_string_equal(got.details, details);
    iotsec_store_event_clear(&got);

    const char *bad[] = {"not json",          "[1,2]",
                         "{\"a\":1,\"a\":2}", "{\"a\":1} trailing",
                         "{\"a\":\"\xff\"}",  "{\"a\":\"\\u0000\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char copy[64];
        snprintf(copy, sizeof(copy), "%s", bad[i]);
        e.details = copy;
        FAILS(iotsec_store_event_append(s, &e, test_chain, NULL), IOTSEC_ERR_INVALID_ARG,
              "store: event details");
    }
    e.details = NULL;
    snprintf(e.source_ip, sizeof(e.source_ip), "fe80::1%%eth0");
    FAILS(iotsec_store_event_append(s, &e, test_chain, NULL), IOTSEC_ERR_INVALID_ARG,
          "event source ip");
    uint64_t n;
    OK(iotsec_store_event_count(s, NULL, &n));
    assert_int_equal(n, 1);
}

static void event_list_filters_orders_and_pages(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    /* 40 events: types alternate, severities cycle 1..4, devices a/b/c, 1 s apart. */
    const char *types[] = {"auth_failure", "rate_limited"};
    const char *devices[] = {"dev-a", "dev-b", "dev-c"};
    for (int i = 0; i < 40; i++)
        append(s, types[i % 2], (enum iotsec_store_severity)(1 + i % 4), devices[i % 3],
               T0 + 1000LL * i);

    struct iotsec_store_event_list l;
    uint64_t n;
    struct iotsec_store_event_query q = {.event_type = "rate_limited"};
    OK(iotsec_store_event_list(s, &q, &l));
    assert_int_equal(l.count, 20);
    for (size_t i = 0; i < l.count; i++) {
        assert_string_equal(l.items[i].event_type, "rate_limited");
        assert_true(i == 0 || l.items[i].seq > l.items[i - 1].seq);
    }
    iotsec_store_event_list_free(&l);

    q = (struct iotsec_store_event_query){.device_id = "dev-b",
                                          .min_severity = IOTSEC_STORE_SEVERITY_HIGH};
    OK(iotsec_store_event_list(s, &q, &l));
    for (size_t i = 0; i < l.count; i++) {
        assert_string_equal(l.items[i].device_id, "dev-b");
        assert_true(l.items[i].severity >= IOTSEC_STORE_SEVERITY_HIGH);
    }
    OK(iotsec_store_event_count(s, &q, &n));
    assert_int_equal(n, l.count);
    assert_int_equal(n, 6); /* dev-b is i = 1 mod 3; high or critical is i = 2, 3 mod 4 */
    iotsec_store_event_list_free(&l);

    q = (struct iotsec_store_event_query){.severity = IOTSEC_STORE_SEVERITY_CRITICAL};
    OK(iotsec_store_event_count(s, &q, &n));
    assert_int_equal(n, 10);

    /* Time window [T0 + 10 s, T0 + 20 s). */
    q = (struct iotsec_store_event_query){.since = T0 + 10000, .until = T0 + 20000};
    OK(iotsec_store_event_list(s, &q, &l));
    assert_int_equal(l.count, 10);
    assert_int_equal(l.items[0].seq, 11);
    iotsec_store_event_list_free(&l);

    /* Newest first, paged by before_seq. */
    q = (struct iotsec_store_event_query){.newest_first = true, .limit = 15};
    int64_t expect = 40;
    for (int page = 0; page < 3; page++) {
        OK(iotsec_store_event_list(s, &q, &l));
        for (size_t i = 0; i < l.count; i++)
            assert_int_equal(l.items[i].seq, expect--);
        assert_int_equal(l.more, page < 2);
        q.before_seq = l.items[l.count - 1].seq;
        iotsec_store_event_list_free(&l);
    }
    assert_int_equal(expect, 0);

    /* Oldest first, paged by after_seq, combined with a type filter. */
    q = (struct iotsec_store_event_query){.event_type = "auth_failure", .limit = 7};
    int total = 0;
    for (;;) {
        OK(iotsec_store_event_list(s, &q, &l));
        total += (int)l.count;
        bool more = l.more;
        if (l.count > 0)
            q.after_seq = l.items[l.count - 1].seq;
        iotsec_store_event_list_free(&l);
        if (!more)
            break;
    }
    assert_int_equal(total, 20);

    FAILS(iotsec_store_event_list(s, &(struct iotsec_store_event_query){.event_type = "a b"}, &l),
          IOTSEC_ERR_INVALID_ARG, "event query type");
    FAILS(iotsec_store_event_list(s, &(struct iotsec_store_event_query){.min_severity = 5}, &l),
          IOTSEC_ERR_INVALID_ARG, "min_severity 5");
}

struct walk {
    int64_t next;
    uint8_t prev[32];
    int stop_at;
};

static iotsec_result verify_step(void *ctx, const struct iotsec_store_event *ev)
{
    struct walk *w = ctx;
    if (ev->seq != w->next)
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "expected seq %lld, got %lld", (long long)w->next,
                    (long long)ev->seq);
    if (memcmp(ev->prev_hash, w->prev, 32) != 0)
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "event %lld does not link", (long long)ev->seq);
    struct iotsec_store_event copy = *ev;
    IOTSEC_GUARD(test_chain(NULL, &copy));
    if (memcmp(copy.hash, ev->hash, 32) != 0)
        IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "event %lld hash mismatch", (long long)ev->seq);
    memcpy(w->prev, ev->hash, 32);
    w->next++;
    if (w->stop_at != 0 && ev->seq == w->stop_at)
        IOTSEC_BAIL(IOTSEC_ERR_AUTH, "stopped at %lld", (long long)ev->seq);
    return IOTSEC_RESULT_OK;
}

static void event_foreach_walks_everything_in_order(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    for (int i = 0; i < 600; i++) /* more than two internal pages */
        append(s, "tick", IOTSEC_STORE_SEVERITY_LOW, "", T0 + i);
    struct walk w = {.next = 1};
    OK(iotsec_store_event_foreach(s, 0, verify_step, &w));
    assert_int_equal(w.next, 601);

    w = (struct walk){.next = 1, .stop_at = 300};
    FAILS(iotsec_store_event_foreach(s, 0, verify_step, &w), IOTSEC_ERR_AUTH, "stopped at 300");
    assert_int_equal(w.next, 301);
}

static iotsec_result failing_chain(void *ctx, struct iotsec_store_event *ev)
{
    (void)ev;
    struct iotsec_store *s = ctx;
    /* Calling the store from inside the append's transaction is refused... */
    struct iotsec_store_device d;
    if (iotsec_ok(iotsec_store_device_get(s, "dev-1", &d)))
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "re-entry was allowed");
    if (iotsec_error_code() != IOTSEC_ERR_BUSY)
        return IOTSEC_RESULT_ERR;
    /* ...and this chain function then fails the append. */
    IOTSEC_BAIL(IOTSEC_ERR_CRYPTO, "chain function failed");
}

static void event_chain_failure_appends_nothing(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    append(s, "first", IOTSEC_STORE_SEVERITY_LOW, "", T0);
    struct iotsec_store_event e = event("second", IOTSEC_STORE_SEVERITY_LOW, "", T0 + 1);
    FAILS(iotsec_store_event_append(s, &e, failing_chain, s), IOTSEC_ERR_CRYPTO,
          "chain function failed");
    /* The sequence number was not consumed and the store works again. */
    assert_int_equal(append(s, "second", IOTSEC_STORE_SEVERITY_LOW, "", T0 + 1), 2);
    FAILS(iotsec_store_event_append(s, &e, NULL, NULL), IOTSEC_ERR_INVALID_ARG, "chain function");
}

/* Defence in depth: a writer that bypasses the store still cannot edit, delete or fork. */
static void event_log_is_append_only_in_the_database(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    append(s, "a", IOTSEC_STORE_SEVERITY_LOW, "", T0);
    append(s, "b", IOTSEC_STORE_SEVERITY_LOW, "", T0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    const char *attacks[] = {
        "UPDATE events SET details = '{\"x\":1}' WHERE seq = 1",
        "DELETE FROM events WHERE seq = 2",
        /* a gap */
        "INSERT INTO events VALUES (4, 0, 't', 1, '', '', '{}', zeroblob(32), zeroblob(32))",
        /* a fork: seq 3 that does not name record 2's hash */
        "INSERT INTO events VALUES (3, 0, 't', 1, '', '', '{}', zeroblob(32), zeroblob(32))",
    };
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        int rc = sqlite3_exec(db, attacks[i], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            fail_msg("the database accepted: %s", attacks[i]);
    }
    sqlite3_close(db);
    uint64_t n;
    OK(iotsec_store_event_count(s, NULL, &n));
    assert_int_equal(n, 2);
}

/* ---- blocklist ---- */

static void block_expiry_and_canonical_sources(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_block b = {.source = "2001:DB8:0:0::1",
                                   .reason = "brute force: 5 failures in 300 s",
                                   .created_at = T0,
                                   .expires_at = T0 + 900000};
    OK(iotsec_store_block_put(s, &b, IOTSEC_STORE_BLOCK_EXTEND));
    b = (struct iotsec_store_block){.source = "::ffff:198.51.100.7", .created_at = T0};
    OK(iotsec_store_block_put(s, &b, IOTSEC_STORE_BLOCK_REPLACE));
    b = (struct iotsec_store_block){
        .source = "device:dev-9", .created_at = T0, .expires_at = T0 + 60000};
    OK(iotsec_store_block_put(s, &b, IOTSEC_STORE_BLOCK_REPLACE));

    bool blocked;
    struct iotsec_store_block got;
    OK(iotsec_store_block_check(s, "2001:db8::1", T0 + 1, &blocked, &got));
    assert_true(blocked);
    assert_string_equal(got.source, "2001:db8::1");
    assert_int_equal(got.expires_at, T0 + 900000);
    OK(iotsec_store_block_check(s, "198.51.100.7", T0 + 1, &blocked, NULL));
    assert_true(blocked); /* stored from its IPv4-mapped spelling, never expires */
    OK(iotsec_store_block_check(s, "198.51.100.7", T0 + 86400000LL * 3650, &blocked, NULL));
    assert_true(blocked);
    OK(iotsec_store_block_check(s, "2001:db8::1", T0 + 900000, &blocked, NULL));
    assert_false(blocked); /* expired exactly at expires_at */
    OK(iotsec_store_block_check(s, "192.0.2.1", T0, &blocked, NULL));
    assert_false(blocked);
    OK(iotsec_store_block_check(s, "device:dev-9", T0 + 59999, &blocked, NULL));
    assert_true(blocked);

    FAILS(iotsec_store_block_check(s, "10.0.0.1; DROP", T0, &blocked, NULL), IOTSEC_ERR_INVALID_ARG,
          "must be an IP address or \"device:<id>\"");
    FAILS(iotsec_store_block_check(s, "device:a'b", T0, &blocked, NULL), IOTSEC_ERR_INVALID_ARG,
          "blocked device id");
    b = (struct iotsec_store_block){.source = "10.0.0.1", .created_at = T0, .expires_at = T0};
    FAILS(iotsec_store_block_put(s, &b, IOTSEC_STORE_BLOCK_REPLACE), IOTSEC_ERR_INVALID_ARG,
          "expires before it is created");

    struct iotsec_store_block_list l;
    OK(iotsec_store_block_list_active(s, T0 + 70000, NULL, &l));
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[0].source, "198.51.100.7");
    assert_string_equal(l.items[1].source, "2001:db8::1");
    iotsec_store_block_list_free(&l);

    size_t removed;
    OK(iotsec_store_block_purge_expired(s, T0 + 70000, &removed));
    assert_int_equal(removed, 1);
    OK(iotsec_store_block_remove(s, "::ffff:198.51.100.7"));
    FAILS(iotsec_store_block_remove(s, "198.51.100.7"), IOTSEC_ERR_NOT_FOUND, "no block of");
    OK(iotsec_store_block_list_active(s, T0, NULL, &l));
    assert_int_equal(l.count, 1);
    iotsec_store_block_list_free(&l);
}

static void block_extend_never_shortens_replace_does(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_block perm = {
        .source = "203.0.113.5", .reason = "operator", .created_at = T0};
    OK(iotsec_store_block_put(s, &perm, IOTSEC_STORE_BLOCK_REPLACE));
    struct iotsec_store_block temp = {.source = "203.0.113.5",
                                      .reason = "detector",
                                      .created_at = T0 + 5,
                                      .expires_at = T0 + 1000};
    OK(iotsec_store_block_put(s, &temp, IOTSEC_STORE_BLOCK_EXTEND));
    bool blocked;
    struct iotsec_store_block got;
    OK(iotsec_store_block_check(s, "203.0.113.5", T0 + 5000, &blocked, &got));
    assert_true(blocked);
    assert_string_equal(got.reason, "operator");
    assert_int_equal(got.expires_at, 0);

    OK(iotsec_store_block_put(s, &temp, IOTSEC_STORE_BLOCK_REPLACE));
    OK(iotsec_store_block_check(s, "203.0.113.5", T0 + 5000, &blocked, &got));
    assert_false(blocked);
    /* A longer block extends a shorter one; an expired one is simply replaced. */
    temp.expires_at = T0 + 9000;
    OK(iotsec_store_block_put(s, &temp, IOTSEC_STORE_BLOCK_EXTEND));
    temp.expires_at = T0 + 2000;
    OK(iotsec_store_block_put(s, &temp, IOTSEC_STORE_BLOCK_EXTEND));
    OK(iotsec_store_block_check(s, "203.0.113.5", T0 + 5000, &blocked, &got));
    assert_true(blocked);
    assert_int_equal(got.expires_at, T0 + 9000);
}

/* ---- transactions ---- */

struct enrol {
    const char *id;
    const char *fp;
    bool fail_at_end;
};

static iotsec_result enrol_device(struct iotsec_store *s, void *ctx)
{
    const struct enrol *e = ctx;
    struct iotsec_store_device d = device(e->id);
    IOTSEC_GUARD(iotsec_store_device_insert(s, &d));
    struct iotsec_store_cert c = cert("c0ffee", e->id, e->fp, T0);
    snprintf(c.serial, sizeof(c.serial), "%s", e->fp + 50);
    IOTSEC_GUARD(iotsec_store_cert_insert(s, &c));
    IOTSEC_GUARD(iotsec_store_device_set_certificate(s, e->id, e->fp, c.serial, T0));
    IOTSEC_ENSURE(!e->fail_at_end, IOTSEC_ERR_CRYPTO, "signing failed");
    return IOTSEC_RESULT_OK;
}

static iotsec_result enrol_two_inner_fails(struct iotsec_store *s, void *ctx)
{
    (void)ctx;
    struct enrol ok = {.id = "outer", .fp = FP_B};
    struct enrol bad = {.id = "inner", .fp = FP_C, .fail_at_end = true};
    IOTSEC_GUARD(enrol_device(s, &ok));
    /* A nested transaction that fails rolls back only itself. */
    if (iotsec_ok(iotsec_store_transaction(s, enrol_device, &bad)))
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "inner transaction should have failed");
    return IOTSEC_RESULT_OK;
}

static void transaction_commits_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct enrol bad = {.id = "dev-1", .fp = FP_A, .fail_at_end = true};
    FAILS(iotsec_store_transaction(s, enrol_device, &bad), IOTSEC_ERR_CRYPTO, "signing failed");
    struct iotsec_store_device d;
    FAILS(iotsec_store_device_get(s, "dev-1", &d), IOTSEC_ERR_NOT_FOUND, NULL);
    struct iotsec_store_cert c;
    FAILS(iotsec_store_cert_get_by_fingerprint(s, FP_A, &c), IOTSEC_ERR_NOT_FOUND, NULL);

    struct enrol good = {.id = "dev-1", .fp = FP_A};
    OK(iotsec_store_transaction(s, enrol_device, &good));
    OK(iotsec_store_device_get(s, "dev-1", &d));
    assert_string_equal(d.cert_fingerprint, FP_A);
    iotsec_store_device_clear(&d);

    OK(iotsec_store_transaction(s, enrol_two_inner_fails, NULL));
    OK(iotsec_store_device_get(s, "outer", &d));
    iotsec_store_device_clear(&d);
    FAILS(iotsec_store_device_get(s, "inner", &d), IOTSEC_ERR_NOT_FOUND, NULL);
}

/* ---- two processes ---- */

#define WRITER_EVENTS  500
#define WRITER_DEVICES 100

/* One writer process: interleaves appends and device inserts into the shared file. */
static int writer(const char *url, int k)
{
    struct iotsec_store *s;
    if (!iotsec_ok(iotsec_store_open(url, &s))) {
        fprintf(stderr, "writer %d: %s\n", k, iotsec_error_message());
        return 1;
    }
    char device_id[32], details[64];
    snprintf(device_id, sizeof(device_id), "writer-%d", k);
    for (int i = 0; i < WRITER_EVENTS; i++) {
        struct iotsec_store_event e =
            event("concurrency_test", IOTSEC_STORE_SEVERITY_LOW, device_id, T0 + i);
        snprintf(details, sizeof(details), "{\"writer\":%d,\"i\":%d}", k, i);
        e.details = details;
        iotsec_result r = iotsec_store_event_append(s, &e, test_chain, NULL);
        if (iotsec_ok(r) && i % (WRITER_EVENTS / WRITER_DEVICES) == 0) {
            char id[32];
            snprintf(id, sizeof(id), "w%d-dev-%03d", k, i / (WRITER_EVENTS / WRITER_DEVICES));
            struct iotsec_store_device d = device(id);
            r = iotsec_store_device_insert(s, &d);
        }
        if (!iotsec_ok(r)) {
            fprintf(stderr, "writer %d at %d: %s\n", k, i, iotsec_error_message());
            iotsec_store_close(s);
            return 1;
        }
    }
    iotsec_store_close(s);
    return 0;
}

static void store_two_processes_write_without_gaps_or_forks(void **state)
{
    struct fixture *f = *state;
    /* Both children open the not-yet-existing file at the same moment, so creation,
     * WAL switch and migration race too. A pipe is the starting gun: closing its write
     * end releases both readers at once. */
    int gun[2];
    assert_int_equal(pipe(gun), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            close(gun[1]);
            char c;
            while (read(gun[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(writer(f->url, k));
        }
    }
    close(gun[0]);
    close(gun[1]);
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }

    struct iotsec_store *s = open_store(f);
    uint64_t n;
    OK(iotsec_store_event_count(s, NULL, &n));
    assert_int_equal(n, 2 * WRITER_EVENTS);
    /* 1..1000, each linked to its predecessor and hashing correctly. */
    struct walk w = {.next = 1};
    OK(iotsec_store_event_foreach(s, 0, verify_step, &w));
    assert_int_equal(w.next, 2 * WRITER_EVENTS + 1);
    for (int k = 0; k < 2; k++) {
        char id[16];
        snprintf(id, sizeof(id), "writer-%d", k);
        OK(iotsec_store_event_count(s, &(struct iotsec_store_event_query){.device_id = id}, &n));
        assert_int_equal(n, WRITER_EVENTS);
    }
    struct iotsec_store_event_list l;
    OK(iotsec_store_event_list(s, &(struct iotsec_store_event_query){.limit = 1000}, &l));
    int switches = 0;
    for (size_t i = 1; i < l.count; i++)
        switches += strcmp(l.items[i].device_id, l.items[i - 1].device_id) != 0;
    iotsec_store_event_list_free(&l);
    /* Both really ran at the same time (a writer starved until the other finished would
     * show a single switch). */
    assert_true(switches >= 2);

    struct iotsec_store_device_list dl;
    struct iotsec_store_page page = {.limit = 1000};
    OK(iotsec_store_device_list(s, IOTSEC_STORE_DEVICE_ANY, &page, &dl));
    assert_int_equal(dl.count, 2 * WRITER_DEVICES);
    assert_false(dl.more);
    assert_string_equal(dl.items[0].id, "w0-dev-000");
    assert_string_equal(dl.items[2 * WRITER_DEVICES - 1].id, "w1-dev-099");
    iotsec_store_device_list_free(&dl);
}

/* Several processes opening a database that does not exist yet all succeed: creation,
 * the switch to WAL and the migrations race, and each must see either nothing or a whole
 * migration step, never tables without a version. Repeated, since a race is a chance. */
static void store_first_opens_race_safely(void **state)
{
    struct fixture *f = *state;
    for (int round = 0; round < 8; round++) {
        char url[200];
        snprintf(url, sizeof(url), "sqlite:%s/race-%d.db", f->dir, round);
        int gun[2];
        assert_int_equal(pipe(gun), 0);
        pid_t kids[4];
        for (int k = 0; k < 4; k++) {
            kids[k] = fork();
            assert_true(kids[k] >= 0);
            if (kids[k] == 0) {
                close(gun[1]);
                char c;
                while (read(gun[0], &c, 1) < 0 && errno == EINTR)
                    ;
                struct iotsec_store *s;
                if (!iotsec_ok(iotsec_store_open(url, &s))) {
                    fprintf(stderr, "open %d: %s\n", k, iotsec_error_message());
                    _exit(1);
                }
                char id[16];
                snprintf(id, sizeof(id), "racer-%d", k);
                struct iotsec_store_device d = device(id);
                int rc = iotsec_ok(iotsec_store_device_insert(s, &d)) ? 0 : 1;
                iotsec_store_close(s);
                _exit(rc);
            }
        }
        close(gun[0]);
        close(gun[1]);
        for (int k = 0; k < 4; k++) {
            int status;
            assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        struct iotsec_store *s;
        OK(iotsec_store_open(url, &s));
        struct iotsec_store_device_list l;
        OK(iotsec_store_device_list(s, IOTSEC_STORE_DEVICE_ANY, NULL, &l));
        assert_int_equal(l.count, 4);
        iotsec_store_device_list_free(&l);
        iotsec_store_close(s);
    }
}

/* ---- names ---- */

static void enum_names_round_trip(void **state)
{
    (void)state;
    enum iotsec_store_severity sev;
    OK(iotsec_store_severity_parse("critical", &sev));
    assert_int_equal(sev, IOTSEC_STORE_SEVERITY_CRITICAL);
    assert_string_equal(iotsec_store_severity_name(IOTSEC_STORE_SEVERITY_LOW), "low");
    assert_null(iotsec_store_severity_name((enum iotsec_store_severity)5));
    enum iotsec_store_role role;
    FAILS(iotsec_store_role_parse("root", &role), IOTSEC_ERR_INVALID_ARG,
          "expected one of admin, operator, viewer");
    enum iotsec_store_device_status st;
    OK(iotsec_store_device_status_parse("revoked", &st));
    assert_string_equal(iotsec_store_device_status_name(st), "revoked");
}

static void commands_are_recorded_per_device(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_device d = device("th-9");
    OK(iotsec_store_device_insert(s, &d));
    char payload[] = "{\"confirm\":true}";
    struct iotsec_store_command c = {.payload = payload, .created_at = T0};
    snprintf(c.target, sizeof(c.target), "th-9");
    snprintf(c.action, sizeof(c.action), "reset");
    snprintf(c.issued_by, sizeof(c.issued_by), "alice");
    OK(iotsec_store_command_insert(s, &c));
    int64_t first = c.seq;
    c.payload = NULL;
    snprintf(c.action, sizeof(c.action), "restart");
    OK(iotsec_store_command_insert(s, &c));
    assert_true(c.seq > first);
    snprintf(c.target, sizeof(c.target), "ghost");
    FAILS(iotsec_store_command_insert(s, &c), IOTSEC_ERR_NOT_FOUND, "does not exist");
    snprintf(c.target, sizeof(c.target), "th-9");
    char not_object[] = "[1]";
    c.payload = not_object;
    FAILS(iotsec_store_command_insert(s, &c), IOTSEC_ERR_INVALID_ARG, "command payload");
    struct iotsec_store_command_list l = {0};
    OK(iotsec_store_command_list(s, "th-9", 0, 10, &l));
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[0].action, "restart"); /* newest first */
    assert_string_equal(l.items[0].payload, "{}");
    assert_string_equal(l.items[1].payload, payload);
    assert_string_equal(l.items[1].issued_by, "alice");
    assert_int_equal(l.items[1].delivered_at, 0);
    iotsec_store_command_list_free(&l);
}

static struct iotsec_store_telemetry telemetry(const char *device_id, int64_t ts, char *body)
{
    struct iotsec_store_telemetry t = {.ts = ts, .received_at = ts + 5, .body = body};
    snprintf(t.device_id, sizeof(t.device_id), "%s", device_id);
    return t;
}

static void telemetry_group_commit_is_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store *s = open_store(f);
    struct iotsec_store_device d = device("th-1");
    OK(iotsec_store_device_insert(s, &d));
    char body[] = "{\"device_id\":\"th-1\",\"temperature\":21.5}";
    struct iotsec_store_telemetry batch[3] = {telemetry("th-1", T0, body),
                                              telemetry("th-1", T0 + 1, body),
                                              telemetry("th-1", T0 + 2, body)};
    OK(iotsec_store_telemetry_append(s, batch, 3));
    assert_true(batch[0].seq < batch[1].seq && batch[1].seq < batch[2].seq);

    /* One record for an unknown device: the whole batch is refused. */
    struct iotsec_store_telemetry bad[2] = {telemetry("th-1", T0 + 3, body),
                                            telemetry("ghost", T0 + 3, body)};
    FAILS(iotsec_store_telemetry_append(s, bad, 2), IOTSEC_ERR_NOT_FOUND, "does not exist");
    char not_object[] = "[1,2]";
    struct iotsec_store_telemetry arr = telemetry("th-1", T0, not_object);
    FAILS(iotsec_store_telemetry_append(s, &arr, 1), IOTSEC_ERR_INVALID_ARG, "telemetry body");
    FAILS(iotsec_store_telemetry_append(s, batch, 0), IOTSEC_ERR_INVALID_ARG, "1 to");
    FAILS(iotsec_store_telemetry_append(s, batch, IOTSEC_STORE_TELEMETRY_BATCH + 1),
          IOTSEC_ERR_INVALID_ARG, "1 to");

    struct iotsec_store_telemetry_list l = {0};
    OK(iotsec_store_telemetry_list(s, "th-1", 0, 2, &l));
    assert_int_equal(l.count, 2);
    assert_true(l.more);
    assert_int_equal(l.items[0].seq, batch[2].seq); /* newest first */
    assert_int_equal(l.items[0].ts, T0 + 2);
    assert_int_equal(l.items[0].received_at, T0 + 7);
    assert_string_equal(l.items[0].body, body);
    int64_t next = l.items[1].seq;
    iotsec_store_telemetry_list_free(&l);
    OK(iotsec_store_telemetry_list(s, "th-1", next, 10, &l));
    assert_int_equal(l.count, 1);
    assert_false(l.more);
    iotsec_store_telemetry_list_free(&l);
    FAILS(iotsec_store_telemetry_list(s, "th 1", 0, 10, &l), IOTSEC_ERR_INVALID_ARG, "device id");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(store_creates_private_file_in_wal_mode),
        T(store_open_rejects_bad_urls_and_files),
        cmocka_unit_test(store_memory_database_is_private_and_complete),
        T(store_migrates_step_by_step_and_keeps_data),
        T(store_refuses_newer_schema_untouched),
        T(store_refuses_foreign_database),
        T(device_insert_get_update_and_errors),
        T(device_id_with_quote_is_rejected_by_validation),
        T(device_list_filters_by_status_and_pages),
        T(cert_insert_get_revoke_once),
        T(cert_lists_revoked_for_crl_and_by_device),
        T(device_revoke_revokes_certificates_and_keys_together),
        T(apikey_insert_lookup_touch_revoke),
        T(user_crud_and_secrets),
        T(event_append_numbers_and_links_records),
        T(event_details_with_quotes_round_trip),
        T(event_list_filters_orders_and_pages),
        T(event_foreach_walks_everything_in_order),
        T(event_chain_failure_appends_nothing),
        T(event_log_is_append_only_in_the_database),
        T(block_expiry_and_canonical_sources),
        T(block_extend_never_shortens_replace_does),
        T(transaction_commits_all_or_nothing),
        T(telemetry_group_commit_is_all_or_nothing),
        T(commands_are_recorded_per_device),
        T(store_two_processes_write_without_gaps_or_forks),
        T(store_first_opens_race_safely),
        cmocka_unit_test(enum_names_round_trip),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
