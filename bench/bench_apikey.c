/*
 * bench_apikey [DIR]: API-key checks per second on one core, against the bare primitive
 * measured in the same run on the same database file.
 *
 * The store holds 10,000 keys of 1,000 active devices (SQLite, WAL, in DIR or /tmp). Keys
 * are presented in a scrambled order that visits every key. Each key's last_used_at is
 * set to the start of the run, so no check writes (the steady state: a key writes at
 * most once a minute, see apikey.h); the per-key limit is the highest allowed, so
 * nothing is rate limited and every check does the whole work.
 *
 *  1. valid keys: iotsec_apikey_authenticate = strict format check, SHA-256, the
 *     indexed lookup by hash (store API), constant-time compare, revocation, the
 *     device's status (a second indexed lookup), the GCRA limiter.
 *     Reference A, the bare primitive: SHA-256 of the key and the same SELECT by hash
 *     through one raw prepared statement. Reference B adds the device SELECT after the
 *     first statement has finished, which is the database work the store API does (two
 *     autocommit reads, each its own WAL read transaction), so the ratio to B is the
 *     overhead of our checks and of the store's layer. The run also shows B with both
 *     SELECTs in one read transaction: what a joined lookup in the store would save.
 *  2. unknown keys (a guessing flood): format, SHA-256, one lookup that finds nothing.
 *     Reference: SHA-256 and the raw SELECT, finding nothing.
 *
 * Bounded by count and time.
 */
#include "iotsec/apikey.h"
#include "iotsec/crypto.h"
#include "iotsec/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYS      10000
#define DEVICES   1000
#define ROUNDS    10
#define SLICE_SEC 0.15   /* per measurement per round: 1.5 s each in all */
#define MAX_OPS   100000 /* per slice */
#define T_START   ((int64_t)1764000000000)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_apikey: %s: %s\n", what, iotsec_error_message());
    exit(1);
}

static void die_sql(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bench_apikey: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static char (*keys)[IOTSEC_APIKEY_LEN + 1];
static char (*unknown)[IOTSEC_APIKEY_LEN + 1];

static iotsec_result populate(struct iotsec_store *s, void *ctx)
{
    (void)ctx;
    for (int d = 0; d < DEVICES; d++) {
        struct iotsec_store_device dev = {
            .status = IOTSEC_STORE_DEVICE_ACTIVE, .created_at = T_START, .updated_at = T_START};
        snprintf(dev.id, sizeof(dev.id), "device-%04d", d);
        IOTSEC_GUARD(iotsec_store_device_insert(s, &dev));
    }
    for (int i = 0; i < KEYS; i++) {
        struct iotsec_apikey_secret k;
        IOTSEC_GUARD(iotsec_apikey_generate(&k));
        struct iotsec_store_apikey rec = {.created_at = T_START,
                                          .last_used_at = T_START,
                                          .rate_limit_per_min = IOTSEC_APIKEY_RATE_MAX};
        snprintf(rec.key_id, sizeof(rec.key_id), "%s", k.key_id);
        snprintf(rec.device_id, sizeof(rec.device_id), "device-%04d", i % DEVICES);
        memcpy(rec.hash, k.hash, sizeof(rec.hash));
        IOTSEC_GUARD(iotsec_store_apikey_insert(s, &rec));
        memcpy(keys[i], k.key, sizeof(keys[i]));
        iotsec_apikey_secret_wipe(&k);
        IOTSEC_GUARD(iotsec_apikey_generate(&k));
        memcpy(unknown[i], k.key, sizeof(unknown[i]));
    }
    return IOTSEC_RESULT_OK;
}

/* Visits every key once per KEYS operations, in an order unrelated to insertion
 * (7919 is prime, so coprime with KEYS). */
static int pick(int i)
{
    return (int)(((long long)i * 7919) % KEYS);
}

static double run_ours(struct iotsec_apikey_auth *auth, struct iotsec_store *s,
                       char (*set)[IOTSEC_APIKEY_LEN + 1], bool expect_ok, int *ops)
{
    int n = 0;
    double start = now();
    while (n < MAX_OPS && now() - start < SLICE_SEC) {
        for (int j = 0; j < 256; j++, n++) {
            struct iotsec_apikey_identity id;
            int64_t t = T_START + 1 + (int64_t)((now() - start) * 1000);
            bool ok = iotsec_ok(iotsec_apikey_authenticate(
                auth, s, iotsec_slice_make(set[pick(n)], IOTSEC_APIKEY_LEN), t, &id));
            if (ok != expect_ok || id.touched)
                die(expect_ok ? "a valid key was refused" : "an unknown key was accepted");
        }
    }
    *ops += n;
    return now() - start;
}

enum bare_mode {
    KEY_ONLY,        /* SHA-256 + the SELECT by hash */
    KEY_THEN_DEVICE, /* + the device SELECT after the first has finished, as the store does */
    KEY_WITH_DEVICE, /* + the device SELECT while the first is still open: one read txn */
};

static double run_bare(sqlite3 *db, sqlite3_stmt *key_sel, sqlite3_stmt *dev_sel,
                       char (*set)[IOTSEC_APIKEY_LEN + 1], bool expect_row, enum bare_mode mode,
                       int *ops)
{
    int n = 0;
    double start = now();
    while (n < MAX_OPS && now() - start < SLICE_SEC) {
        for (int j = 0; j < 256; j++, n++) {
            uint8_t hash[IOTSEC_SHA256_LEN];
            char device[IOTSEC_STORE_ID_MAX + 1] = "";
            if (!iotsec_ok(iotsec_sha256(iotsec_slice_make(set[pick(n)], IOTSEC_APIKEY_LEN), hash)))
                die("sha256");
            sqlite3_bind_blob(key_sel, 1, hash, sizeof(hash), SQLITE_STATIC);
            int rc = sqlite3_step(key_sel);
            if ((rc == SQLITE_ROW) != expect_row)
                die_sql(db, "reference key select");
            if (rc == SQLITE_ROW)
                snprintf(device, sizeof(device), "%s",
                         (const char *)sqlite3_column_text(key_sel, 1));
            if (mode == KEY_THEN_DEVICE)
                sqlite3_reset(key_sel);
            if (rc == SQLITE_ROW && mode != KEY_ONLY) {
                sqlite3_bind_text(dev_sel, 1, device, -1, SQLITE_STATIC);
                if (sqlite3_step(dev_sel) != SQLITE_ROW)
                    die_sql(db, "reference device select");
                sqlite3_reset(dev_sel);
            }
            sqlite3_reset(key_sel);
        }
    }
    *ops += n;
    return now() - start;
}

int main(int argc, char **argv)
{
    char dir[256], path[300];
    snprintf(dir, sizeof(dir), "%s/bench-apikey-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store.db", dir);
    keys = calloc(KEYS, sizeof(*keys));
    unknown = calloc(KEYS, sizeof(*unknown));
    if (keys == NULL || unknown == NULL)
        return 1;

    struct iotsec_store *s;
    struct iotsec_apikey_auth *auth;
    struct iotsec_apikey_auth_config cfg = {.keys_per_limiter = 2 * KEYS};
    if (!iotsec_ok(iotsec_store_open(path, &s)) ||
        !iotsec_ok(iotsec_store_transaction(s, populate, NULL)) ||
        !iotsec_ok(iotsec_apikey_auth_new(&cfg, &auth)))
        die("setup");

    sqlite3 *db;
    sqlite3_stmt *key_sel, *dev_sel;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT key_id, device_id, hash, created_at, last_used_at, "
                           "revoked_at, rate_limit_per_min FROM api_keys WHERE hash = ?1",
                           -1, &key_sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT * FROM devices WHERE id = ?1", -1, &dev_sel, NULL) !=
            SQLITE_OK)
        die_sql(db, "reference setup");

    /* Warm both paths' caches the same way before measuring either. */
    int warm = 0;
    (void)run_bare(db, key_sel, dev_sel, keys, true, KEY_THEN_DEVICE, &warm);
    /* The measurements take turns in short slices, so that load from elsewhere on the
     * machine falls on all of them alike and the ratios stay meaningful. */
    enum { OURS, REF_A, REF_B, REF_C, MISS, REF_MISS, RUNS };
    int ops[RUNS] = {0};
    double secs[RUNS] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        secs[OURS] += run_ours(auth, s, keys, true, &ops[OURS]);
        secs[REF_A] += run_bare(db, key_sel, NULL, keys, true, KEY_ONLY, &ops[REF_A]);
        secs[REF_B] += run_bare(db, key_sel, dev_sel, keys, true, KEY_THEN_DEVICE, &ops[REF_B]);
        secs[REF_C] += run_bare(db, key_sel, dev_sel, keys, true, KEY_WITH_DEVICE, &ops[REF_C]);
        secs[MISS] += run_ours(auth, s, unknown, false, &ops[MISS]);
        secs[REF_MISS] += run_bare(db, key_sel, NULL, unknown, false, KEY_ONLY, &ops[REF_MISS]);
    }
    double rate[RUNS];
    for (int i = 0; i < RUNS; i++)
        rate[i] = ops[i] / secs[i];
    double ours = rate[OURS], ref_a = rate[REF_A], ref_b = rate[REF_B], ref_c = rate[REF_C];
    double miss = rate[MISS], ref_miss = rate[REF_MISS];
    int n_ours = ops[OURS];

    sqlite3_finalize(key_sel);
    sqlite3_finalize(dev_sel);
    sqlite3_close(db);
    iotsec_apikey_auth_free(auth);
    iotsec_store_close(s);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_apikey: could not remove %s\n", dir);
    iotsec_wipe(keys, KEYS * sizeof(*keys));
    free(keys);
    free(unknown);

    printf("apikey authenticate, valid keys (%d keys, %d devices): %.0f checks/s (%d checks)\n",
           KEYS, DEVICES, ours, n_ours);
    printf("  bare primitive A, SHA-256 + raw SELECT by hash: %.0f/s; ratio %.2f\n", ref_a,
           ours / ref_a);
    printf("  bare primitive B, A + raw SELECT of the device after it: %.0f/s; ratio %.2f\n", ref_b,
           ours / ref_b);
    printf("  (B in one read transaction instead of two: %.0f/s; ratio %.2f)\n", ref_c,
           ours / ref_c);
    printf("apikey authenticate, unknown keys: %.0f checks/s; bare SHA-256 + SELECT miss: "
           "%.0f/s; ratio %.2f\n",
           miss, ref_miss, miss / ref_miss);
    return 0;
}
