/*
 * event_tool: drives the monitor library for tests/e2e/test_events_cli.sh.
 *
 *   event_tool seed DB
 *       reports a fixed set of events through iotsec_monitor_report (times from
 *       2023-11-14T22:13:20Z, one second apart): 2 validation_failed (dev-a), 1
 *       tamper_attempt (dev-b, critical), then 5 auth_failure from 198.51.100.7 against
 *       dev-a, which the detector turns into brute_force_detected + block_added: 10
 *       records in all. Prints "seeded N".
 *   event_tool tamper DB SQL
 *       what an attacker with write access to the file does: drops the append-only
 *       triggers and runs SQL on the database directly (sqlite3 C API).
 */
#include "iotsec/monitor.h"
#include "iotsec/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#define T0 1700000000000LL

static int seed(const char *db)
{
    struct iotsec_store *s = NULL;
    struct iotsec_monitor *m = NULL;
    if (!iotsec_ok(iotsec_store_open(db, &s)) || !iotsec_ok(iotsec_monitor_new(s, NULL, &m))) {
        fprintf(stderr, "event_tool: %s\n", iotsec_error_message());
        iotsec_store_close(s);
        return 1;
    }
    struct iotsec_event evs[] = {
        {.type = IOTSEC_EVENT_VALIDATION_FAILED,
         .device_id = "dev-a",
         .details = "{\"path\":\"temperature\"}"},
        {.type = IOTSEC_EVENT_VALIDATION_FAILED, .device_id = "dev-a"},
        {.type = IOTSEC_EVENT_TAMPER_ATTEMPT,
         .device_id = "dev-b",
         .details = "{\"what\":\"boot chain\"}"},
        {.type = IOTSEC_EVENT_AUTH_FAILURE, .device_id = "dev-a", .source_ip = "198.51.100.7"},
        {.type = IOTSEC_EVENT_AUTH_FAILURE, .device_id = "dev-a", .source_ip = "198.51.100.7"},
        {.type = IOTSEC_EVENT_AUTH_FAILURE, .device_id = "dev-a", .source_ip = "198.51.100.7"},
        {.type = IOTSEC_EVENT_AUTH_FAILURE, .device_id = "dev-a", .source_ip = "198.51.100.7"},
        {.type = IOTSEC_EVENT_AUTH_FAILURE, .device_id = "dev-a", .source_ip = "198.51.100.7"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]) && rc == 0; i++) {
        evs[i].ts = T0 + (int64_t)i * 1000;
        if (!iotsec_ok(iotsec_monitor_report(m, &evs[i], NULL))) {
            fprintf(stderr, "event_tool: %s\n", iotsec_error_message());
            rc = 1;
        }
    }
    int64_t seq = 0;
    uint8_t hash[IOTSEC_STORE_HASH_LEN];
    if (rc == 0 && iotsec_ok(iotsec_store_event_last(s, &seq, hash)))
        printf("seeded %lld\n", (long long)seq);
    iotsec_monitor_free(m);
    iotsec_store_close(s);
    return rc;
}

static int tamper(const char *db, const char *sql)
{
    sqlite3 *h;
    char *err = NULL;
    int rc = sqlite3_open(db, &h);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h,
                          "DROP TRIGGER IF EXISTS events_no_update;"
                          "DROP TRIGGER IF EXISTS events_no_delete;"
                          "DROP TRIGGER IF EXISTS events_link;",
                          NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "event_tool: %s\n", err != NULL ? err : sqlite3_errmsg(h));
    sqlite3_free(err);
    sqlite3_close(h);
    return rc == SQLITE_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "seed") == 0)
        return seed(argv[2]);
    if (argc == 4 && strcmp(argv[1], "tamper") == 0)
        return tamper(argv[2], argv[3]);
    fprintf(stderr, "usage: event_tool seed DB | tamper DB SQL\n");
    return 2;
}
