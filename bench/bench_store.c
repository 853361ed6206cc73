/*
 * bench_store [DIR]: the store's two hot paths against bare SQLite, same run, same
 * settings (WAL, synchronous=FULL), same file system:
 *
 *  1. event append (durable, hash-chained): iotsec_store_event_append, which validates the
 *     record, parses its JSON details, reads the last record, computes a SHA-256 chain
 *     hash and inserts under BEGIN IMMEDIATE with the linkage trigger. Reference: one
 *     prepared INSERT of the same row per transaction into a table without constraints.
 *     The ratio is what checks and chaining cost over the fsync every commit pays anyway.
 *  2. blocklist lookup: iotsec_store_block_check on a 10,000-entry blocklist, against the
 *     same prepared SELECT on a bare table. The ratio is the cost of the front (source
 *     canonicalisation, dispatch) per lookup.
 *
 * Bounded by count and time.
 */
#include "iotsec/buf.h"
#include "iotsec/crypto.h"
#include "iotsec/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SECONDS 2.0
#define MAX_APPENDS 20000
#define MAX_LOOKUPS 2000000
#define BLOCKS      10000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, iotsec_error_message());
    exit(1);
}

static void die_sql(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static iotsec_result chain(void *ctx, struct iotsec_store_event *ev)
{
    (void)ctx;
    uint8_t in[IOTSEC_STORE_HASH_LEN + 8], hash[IOTSEC_SHA256_LEN];
    memcpy(in, ev->prev_hash, IOTSEC_STORE_HASH_LEN);
    memcpy(in + IOTSEC_STORE_HASH_LEN, &ev->seq, 8);
    IOTSEC_GUARD(iotsec_sha256(iotsec_slice_make(in, sizeof(in)), hash));
    memcpy(ev->hash, hash, sizeof(ev->hash));
    return IOTSEC_RESULT_OK;
}

static void ip_of(int i, char *out, size_t n)
{
    snprintf(out, n, "10.%d.%d.%d", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
}

int main(int argc, char **argv)
{
    char dir[256], path[300], ref_path[300];
    snprintf(dir, sizeof(dir), "%s/bench-store-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store.db", dir);
    snprintf(ref_path, sizeof(ref_path), "%s/reference.db", dir);

    struct iotsec_store *s;
    if (!iotsec_ok(iotsec_store_open(path, &s)))
        die("open");
    char details[] = "{\"reason\":\"bad signature\",\"attempt\":3}";

    int appends = 0;
    double start = now();
    while (appends < MAX_APPENDS && now() - start < MAX_SECONDS) {
        struct iotsec_store_event e = {.ts = 1700000000000LL + appends,
                                       .severity = IOTSEC_STORE_SEVERITY_MEDIUM,
                                       .details = details};
        snprintf(e.event_type, sizeof(e.event_type), "auth_failure");
        snprintf(e.device_id, sizeof(e.device_id), "device-%04d", appends % 1000);
        snprintf(e.source_ip, sizeof(e.source_ip), "192.0.2.%d", appends % 250);
        if (!iotsec_ok(iotsec_store_event_append(s, &e, chain, NULL)))
            die("append");
        appends++;
    }
    double append_rate = appends / (now() - start);

    for (int i = 0; i < BLOCKS; i++) {
        struct iotsec_store_block b = {.reason = "bench", .created_at = 1, .expires_at = 0};
        ip_of(i, b.source, sizeof(b.source));
        if (!iotsec_ok(iotsec_store_block_put(s, &b, IOTSEC_STORE_BLOCK_REPLACE)))
            die("block put");
    }
    int lookups = 0, hits = 0;
    start = now();
    while (lookups < MAX_LOOKUPS && now() - start < MAX_SECONDS) {
        char ip[32];
        bool blocked;
        ip_of(lookups % (2 * BLOCKS), ip, sizeof(ip));
        if (!iotsec_ok(iotsec_store_block_check(s, ip, 1000, &blocked, NULL)))
            die("block check");
        hits += blocked;
        lookups++;
    }
    double lookup_rate = lookups / (now() - start);
    iotsec_store_close(s);

    /* ---- the same work on bare SQLite ---- */
    sqlite3 *db;
    sqlite3_stmt *ins, *sel;
    if (sqlite3_open(ref_path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                     "PRAGMA secure_delete = ON; PRAGMA journal_size_limit = 67108864;"
                     "CREATE TABLE events (seq INTEGER PRIMARY KEY, ts, event_type, severity, "
                     "device_id, source_ip, details, prev_hash, hash);"
                     "CREATE TABLE blocks (source TEXT PRIMARY KEY, reason, created_at, "
                     "expires_at) WITHOUT ROWID;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", -1,
                           &ins, NULL) != SQLITE_OK)
        die_sql(db, "reference setup");
    uint8_t hash[32] = {0};
    int ref_appends = 0;
    start = now();
    while (ref_appends < MAX_APPENDS && now() - start < MAX_SECONDS) {
        char device[32], ip[32];
        snprintf(device, sizeof(device), "device-%04d", ref_appends % 1000);
        snprintf(ip, sizeof(ip), "192.0.2.%d", ref_appends % 250);
        sqlite3_bind_int64(ins, 1, ref_appends + 1);
        sqlite3_bind_int64(ins, 2, 1700000000000LL + ref_appends);
        sqlite3_bind_text(ins, 3, "auth_failure", -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 4, 2);
        sqlite3_bind_text(ins, 5, device, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 6, ip, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 7, details, -1, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 8, hash, 32, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 9, hash, 32, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die_sql(db, "reference insert");
        sqlite3_reset(ins);
        ref_appends++;
    }
    double ref_append_rate = ref_appends / (now() - start);

    sqlite3_stmt *put;
    if (sqlite3_prepare_v2(db, "INSERT INTO blocks VALUES (?1, 'bench', 1, 0)", -1, &put, NULL) !=
        SQLITE_OK)
        die_sql(db, "reference block insert");
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < BLOCKS; i++) {
        char ip[32];
        ip_of(i, ip, sizeof(ip));
        sqlite3_bind_text(put, 1, ip, -1, SQLITE_STATIC);
        if (sqlite3_step(put) != SQLITE_DONE)
            die_sql(db, "reference block insert");
        sqlite3_reset(put);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(put);
    /* The store's 10,000 separate commits were checkpointed into the file along the way;
     * the reference's single commit would otherwise be read from the WAL. */
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(db,
                           "SELECT source, reason, created_at, expires_at FROM blocks "
                           "WHERE source = ?1 AND (expires_at = 0 OR expires_at > ?2)",
                           -1, &sel, NULL) != SQLITE_OK)
        die_sql(db, "reference select");
    int ref_lookups = 0, ref_hits = 0;
    start = now();
    while (ref_lookups < MAX_LOOKUPS && now() - start < MAX_SECONDS) {
        char ip[32];
        ip_of(ref_lookups % (2 * BLOCKS), ip, sizeof(ip));
        sqlite3_bind_text(sel, 1, ip, -1, SQLITE_STATIC);
        sqlite3_bind_int64(sel, 2, 1000);
        ref_hits += sqlite3_step(sel) == SQLITE_ROW;
        sqlite3_reset(sel);
        ref_lookups++;
    }
    double ref_lookup_rate = ref_lookups / (now() - start);
    sqlite3_finalize(ins);
    sqlite3_finalize(sel);
    sqlite3_close(db);
    if (hits == 0 || ref_hits == 0)
        die("lookups found nothing");

    printf("store event append (durable, chained): %.0f ops/s; bare SQLite insert, same "
           "settings: %.0f ops/s; ratio %.2f\n",
           append_rate, ref_append_rate, append_rate / ref_append_rate);
    printf("store block check (%d blocks, half hits): %.0f ops/s; bare SQLite select: %.0f "
           "ops/s; ratio %.2f\n",
           BLOCKS, lookup_rate, ref_lookup_rate, lookup_rate / ref_lookup_rate);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
