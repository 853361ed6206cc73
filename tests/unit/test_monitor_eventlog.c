/*
 * Unit tests for the event model and the hash-chained event log: the hash covers every
 * field, verify passes an intact log and names the record for each kind of tampering
 * done straight to the SQLite file (edit, delete, swap, truncate, recompute a hash, a
 * value the store cannot read), the JSON form round-trips and its parser is strict, and
 * block durations parse exactly.
 *
 * Tampering goes through the sqlite3 C API, as an attacker with write access to the
 * file would: first dropping the append-only triggers, which only stop honest mistakes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotsec/event.h"
#include "iotsec/eventlog.h"
#include "iotsec/monitor.h"
#include "iotsec/store.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */

struct fixture {
    char dir[64];
    char path[128];
    struct iotsec_store *s;
};

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            fail_msg("%s failed: %s", #expr, iotsec_error_message());                              \
    } while (0)

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotsec-evlog-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    OK(iotsec_store_open(f->path, &f->s));
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

/* Appends n events of varied types, devices and addresses, seq 1..n. */
static void fill(struct iotsec_store *s, int n)
{
    for (int i = 0; i < n; i++) {
        char details[64];
        snprintf(details, sizeof(details), "{\"attempt\":%d}", i + 1);
        struct iotsec_event ev = {.ts = T0 + i * 1000,
                                  .type = i % 3 == 0 ? IOTSEC_EVENT_AUTH_FAILURE
                                                     : IOTSEC_EVENT_RATE_LIMITED,
                                  .device_id = i % 2 ? "dev-1" : "dev-2",
                                  .source_ip = "198.51.100.7",
                                  .details = details};
        struct iotsec_store_event rec;
        OK(iotsec_event_to_record(&ev, &rec));
        OK(iotsec_eventlog_append(s, &rec));
        assert_int_equal(rec.seq, i + 1);
    }
}

/* Runs SQL on the database file behind the store's back. */
static void tamper(const struct fixture *f, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db,
                          "DROP TRIGGER IF EXISTS events_no_update;"
                          "DROP TRIGGER IF EXISTS events_no_delete;"
                          "DROP TRIGGER IF EXISTS events_link;",
                          NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("tamper '%s': %s", sql, err != NULL ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
}

struct collected {
    struct iotsec_eventlog_problem p[32];
    size_t n;
};

static bool collect(void *ctx, const struct iotsec_eventlog_problem *p)
{
    struct collected *c = ctx;
    if (c->n < 32)
        c->p[c->n++] = *p;
    return true;
}

static void verify(struct fixture *f, const struct iotsec_eventlog_head *head, struct collected *c,
                   struct iotsec_eventlog_verify_result *res)
{
    memset(c, 0, sizeof(*c));
    /* A fresh handle: the tampering happened outside this process's view. */
    iotsec_store_close(f->s);
    OK(iotsec_store_open(f->path, &f->s));
    OK(iotsec_eventlog_verify(f->s, head, collect, c, res));
}

static void chain_hash_covers_every_field(void **state)
{
    (void)state;
    struct iotsec_store_event a = {.seq = 7, .ts = T0, .severity = IOTSEC_STORE_SEVERITY_HIGH};
    strcpy(a.event_type, "auth_failure");
    strcpy(a.device_id, "dev-1");
    strcpy(a.source_ip, "10.0.0.1");
    a.details = (char *)(uintptr_t) "{\"x\":1}";
    uint8_t base[32], h[32];
    OK(iotsec_eventlog_hash(&a, base));
    struct iotsec_store_event b;
#define CHANGED(mutation)                                                                          \
    do {                                                                                           \
        b = a;                                                                                     \
        mutation;                                                                                  \
        OK(iotsec_eventlog_hash(&b, h));                                                           \
        if (memcmp(h, base, 32) == 0)                                                              \
            fail_msg("hash unchanged by %s", #mutation);                                           \
    } while (0)
    CHANGED(b.seq = 8);
    CHANGED(b.ts = T0 + 1);
    CHANGED(b.severity = IOTSEC_STORE_SEVERITY_LOW);
    CHANGED(b.event_type[0] = 'b');
    CHANGED(b.device_id[4] = '2');
    CHANGED(b.source_ip[7] = '2');
    CHANGED(b.details = (char *)(uintptr_t) "{\"x\":2}");
    CHANGED(b.prev_hash[31] = 1);
    /* Length prefixes: moving a character from one field to the next changes the hash. */
    CHANGED((strcpy(b.device_id, "dev-"), strcpy(b.source_ip, "110.0.0.1")));
    /* NULL details hash as "{}", the store's stored form. */
    b = a;
    b.details = NULL;
    OK(iotsec_eventlog_hash(&b, base));
    b.details = (char *)(uintptr_t) "{}";
    OK(iotsec_eventlog_hash(&b, h));
    assert_memory_equal(h, base, 32);
#undef CHANGED
}

static void verify_passes_intact_log_and_reports_head(void **state)
{
    struct fixture *f = *state;
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.records, 0);
    assert_int_equal(res.problems, 0);
    fill(f->s, 12);
    verify(f, NULL, &c, &res);
    assert_int_equal(res.records, 12);
    assert_int_equal(res.problems, 0);
    assert_int_equal(res.last_seq, 12);
    int64_t seq;
    uint8_t hash[32];
    OK(iotsec_store_event_last(f->s, &seq, hash));
    assert_memory_equal(res.last_hash, hash, 32);
    /* The stored hash is exactly our function of the stored record. */
    struct iotsec_store_event e;
    OK(iotsec_store_event_get(f->s, 5, &e));
    uint8_t h[32];
    OK(iotsec_eventlog_hash(&e, h));
    assert_memory_equal(h, e.hash, 32);
    iotsec_store_event_clear(&e);
    /* With the head it reported, verify still passes. */
    struct iotsec_eventlog_head head = {.seq = 12};
    memcpy(head.hash, hash, 32);
    verify(f, &head, &c, &res);
    assert_int_equal(res.problems, 0);
}

static void verify_names_edited_record(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 10);
    tamper(f, "UPDATE events SET details = '{\"attempt\":99}' WHERE seq = 4");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.records, 10);
    assert_int_equal(res.problems, 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_EDITED);
    assert_int_equal(c.p[0].seq, 4);
    assert_string_equal(c.p[0].message, "record 4 was edited: its contents do not match its hash");
    assert_int_equal(res.first.seq, 4);
}

static void verify_names_edited_severity_and_address(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 6);
    tamper(f, "UPDATE events SET severity = 4 WHERE seq = 2;"
              "UPDATE events SET source_ip = '203.0.113.1' WHERE seq = 5");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.problems, 2);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_EDITED);
    assert_int_equal(c.p[0].seq, 2);
    assert_int_equal(c.p[1].kind, IOTSEC_EVENTLOG_EDITED);
    assert_int_equal(c.p[1].seq, 5);
}

static void verify_names_deleted_records(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 10);
    tamper(f, "DELETE FROM events WHERE seq = 5");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.records, 9);
    assert_int_equal(res.problems, 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_MISSING);
    assert_int_equal(c.p[0].seq, 5);
    assert_string_equal(c.p[0].message, "record 5 is missing (deleted)");

    tamper(f, "DELETE FROM events WHERE seq IN (7, 8)");
    verify(f, NULL, &c, &res);
    assert_int_equal(res.problems, 2);
    assert_int_equal(c.p[1].kind, IOTSEC_EVENTLOG_MISSING);
    assert_int_equal(c.p[1].seq, 7);
    assert_int_equal(c.p[1].other_seq, 8);
    assert_string_equal(c.p[1].message, "records 7 to 8 are missing (deleted)");
}

static void verify_names_deleted_first_record(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 3);
    tamper(f, "DELETE FROM events WHERE seq = 1");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.problems, 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_MISSING);
    assert_int_equal(c.p[0].seq, 1);
}

static void verify_names_swapped_records(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 8);
    /* Records 3 and 6 trade places (their whole rows, hashes included). */
    tamper(f, "UPDATE events SET seq = 1000 WHERE seq = 3;"
              "UPDATE events SET seq = 3 WHERE seq = 6;"
              "UPDATE events SET seq = 6 WHERE seq = 1000");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.records, 8);
    assert_int_equal(res.problems, 4);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_MOVED);
    assert_int_equal(c.p[0].seq, 3);
    assert_int_equal(c.p[0].other_seq, 6);
    assert_string_equal(c.p[0].message,
                        "record 3 was moved: it was written as record 6 (reordered or renumbered)");
    assert_int_equal(c.p[1].kind, IOTSEC_EVENTLOG_UNLINKED);
    assert_int_equal(c.p[1].seq, 4);
    assert_int_equal(c.p[2].kind, IOTSEC_EVENTLOG_MOVED);
    assert_int_equal(c.p[2].seq, 6);
    assert_int_equal(c.p[2].other_seq, 3);
    assert_int_equal(c.p[3].kind, IOTSEC_EVENTLOG_UNLINKED);
    assert_int_equal(c.p[3].seq, 7);
}

static void verify_names_swapped_contents(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 6);
    /* Only the visible fields trade places; seq, hashes stay. */
    tamper(f, "CREATE TEMP TABLE t AS SELECT * FROM events WHERE seq IN (2, 5);"
              "UPDATE events SET details = (SELECT details FROM t WHERE seq = 5),"
              "  device_id = (SELECT device_id FROM t WHERE seq = 5) WHERE seq = 2;"
              "UPDATE events SET details = (SELECT details FROM t WHERE seq = 2),"
              "  device_id = (SELECT device_id FROM t WHERE seq = 2) WHERE seq = 5;");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.problems, 2);
    assert_int_equal(c.p[0].seq, 2);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_EDITED);
    assert_int_equal(c.p[1].seq, 5);
}

static void verify_names_delete_hidden_by_renumbering(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 6);
    tamper(f, "DELETE FROM events WHERE seq = 3;"
              "UPDATE events SET seq = seq - 1 WHERE seq > 3");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_true(res.problems >= 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_MOVED);
    assert_int_equal(c.p[0].seq, 3);
    assert_int_equal(c.p[0].other_seq, 4);
}

static void verify_catches_recomputed_hash_at_next_link(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 5);
    /* The attacker edits record 3 and stores a correct hash for the new contents. */
    tamper(f, "UPDATE events SET details = '{\"attempt\":0}' WHERE seq = 3");
    struct iotsec_store_event e;
    iotsec_store_close(f->s);
    OK(iotsec_store_open(f->path, &f->s));
    OK(iotsec_store_event_get(f->s, 3, &e));
    uint8_t h[32];
    OK(iotsec_eventlog_hash(&e, h));
    iotsec_store_event_clear(&e);
    char sql[200] = "UPDATE events SET hash = X'";
    for (int i = 0; i < 32; i++)
        snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "%02x", h[i]);
    strcat(sql, "' WHERE seq = 3");
    tamper(f, sql);
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.problems, 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_UNLINKED);
    assert_int_equal(c.p[0].seq, 4);
}

static void verify_sees_truncation_only_with_a_head(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 9);
    struct iotsec_eventlog_head head;
    OK(iotsec_store_event_last(f->s, &head.seq, head.hash));
    tamper(f, "DELETE FROM events WHERE seq > 7");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.problems, 0); /* a shorter chain is still a chain */
    assert_int_equal(res.last_seq, 7);
    verify(f, &head, &c, &res);
    assert_int_equal(res.problems, 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_HEAD);
    assert_int_equal(c.p[0].seq, 9);
    assert_string_equal(c.p[0].message, "the log ends at record 7 but the saved head is record 9: "
                                        "records were deleted from the end");
    /* A head whose hash does not match what is there now. */
    struct iotsec_eventlog_head wrong = {.seq = 5};
    verify(f, &wrong, &c, &res);
    assert_int_equal(res.problems, 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_HEAD);
    assert_int_equal(c.p[0].seq, 5);
}

static void verify_steps_over_unreadable_record(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 6);
    /* A type longer than the store's bound: the store refuses to read it. */
    tamper(f, "UPDATE events SET event_type = printf('%.100c', 'x') WHERE seq = 4");
    struct collected c;
    struct iotsec_eventlog_verify_result res;
    verify(f, NULL, &c, &res);
    assert_int_equal(res.records, 6);
    assert_int_equal(res.problems, 1);
    assert_int_equal(c.p[0].kind, IOTSEC_EVENTLOG_UNREADABLE);
    assert_int_equal(c.p[0].seq, 4);
    assert_int_equal(res.last_seq, 6);
}

static bool stop_at_first(void *ctx, const struct iotsec_eventlog_problem *p)
{
    (void)p;
    (*(int *)ctx)++;
    return false;
}

static void verify_callback_can_stop_the_walk(void **state)
{
    struct fixture *f = *state;
    fill(f->s, 6);
    tamper(f, "UPDATE events SET details = '{}' WHERE seq IN (2, 4)");
    iotsec_store_close(f->s);
    OK(iotsec_store_open(f->path, &f->s));
    int calls = 0;
    struct iotsec_eventlog_verify_result res;
    OK(iotsec_eventlog_verify(f->s, NULL, stop_at_first, &calls, &res));
    assert_int_equal(calls, 1);
    assert_int_equal(res.problems, 1);
    assert_int_equal(res.first.seq, 2);
}

static void head_text_round_trips_and_is_strict(void **state)
{
    (void)state;
    struct iotsec_eventlog_head h = {.seq = 42};
    for (int i = 0; i < 32; i++)
        h.hash[i] = (uint8_t)(i * 7);
    char text[IOTSEC_EVENTLOG_HEAD_STR_MAX];
    iotsec_eventlog_head_format(&h, text);
    assert_int_equal(strlen(text), 3 + 64);
    struct iotsec_eventlog_head back;
    OK(iotsec_eventlog_head_parse(text, &back));
    assert_int_equal(back.seq, 42);
    assert_memory_equal(back.hash, h.hash, 32);
    const char *bad[] = {
        "",
        "42",
        "0:"
        "00",
        "-1:00",
        "42:",
        "42:zz",
        "x:00",
        "42:0000000000000000000000000000000000000000000000000000000000000000 ",
        "42:00000000000000000000000000000000000000000000000000000000000000",
        "99999999999999999999:0000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (iotsec_ok(iotsec_eventlog_head_parse(bad[i], &back)))
            fail_msg("head '%s' accepted", bad[i]);
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    }
}

static void event_json_round_trips(void **state)
{
    (void)state;
    struct iotsec_store_event rec = {
        .seq = 3, .ts = T0 + 123, .severity = IOTSEC_STORE_SEVERITY_CRITICAL};
    strcpy(rec.event_type, "tamper_attempt");
    strcpy(rec.device_id, "dev-1");
    rec.details = (char *)(uintptr_t) "{\"what\":\"caf\xc3\xa9 \\\"x\\\"\",\"n\":[1,2]}";
    struct iotsec_buf b = {0};
    OK(iotsec_event_record_to_json(&rec, &b));
    OK(iotsec_buf_terminate(&b));
    assert_string_equal(
        (char *)b.ptr,
        "{\"timestamp\":\"2023-11-14T22:13:20.123Z\",\"eventType\":\"tamper_attempt\","
        "\"severity\":\"critical\",\"deviceId\":\"dev-1\",\"sourceIp\":null,"
        "\"details\":{\"what\":\"caf\\u00E9 \\\"x\\\"\",\"n\":[1,2]}}");
    struct iotsec_store_event back;
    OK(iotsec_event_record_from_json(iotsec_buf_slice(&b), &back));
    assert_int_equal(back.ts, rec.ts);
    assert_string_equal(back.event_type, "tamper_attempt");
    assert_int_equal(back.severity, IOTSEC_STORE_SEVERITY_CRITICAL);
    assert_string_equal(back.device_id, "dev-1");
    assert_string_equal(back.source_ip, "");
    assert_string_equal(back.details, "{\"what\":\"caf\xc3\xa9 \\\"x\\\"\",\"n\":[1,2]}");
    iotsec_store_event_clear(&back);
    iotsec_buf_free(&b);
}

static void event_json_parser_is_strict(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        iotsec_err code;
        const char *needle;
    } cases[] = {
        {"{\"timestamp\":\"2023-11-14T22:13:20Z\",\"eventType\":\"auth_failure\","
         "\"severity\":\"low\",\"extra\":1}",
         IOTSEC_ERR_JSON, "unknown field 'extra'"},
        {"{\"timestamp\":\"2023-11-14T22:13:20Z\",\"eventType\":\"auth_fail\",\"severity\":"
         "\"low\"}",
         IOTSEC_ERR_INVALID_ARG, "unknown type 'auth_fail'"},
        {"{\"timestamp\":\"2023-11-14T22:13:20Z\",\"eventType\":\"auth_failure\","
         "\"severity\":\"severe\"}",
         IOTSEC_ERR_INVALID_ARG, "severity"},
        {"{\"timestamp\":\"2023-11-14 22:13:20Z\",\"eventType\":\"auth_failure\","
         "\"severity\":\"low\"}",
         IOTSEC_ERR_TIME, NULL},
        {"{\"timestamp\":\"2023-11-14T22:13:20Z\",\"eventType\":\"auth_failure\","
         "\"severity\":\"low\",\"severity\":\"high\"}",
         IOTSEC_ERR_JSON, "duplicate"},
        {"{\"timestamp\":\"2023-11-14T22:13:20Z\",\"eventType\":\"auth_failure\","
         "\"severity\":\"low\",\"details\":[1]}",
         IOTSEC_ERR_JSON, "details"},
        {"{\"eventType\":\"auth_failure\",\"severity\":\"low\"}", IOTSEC_ERR_JSON, "timestamp"},
        {"[]", IOTSEC_ERR_JSON, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct iotsec_store_event rec;
        if (iotsec_ok(iotsec_event_record_from_json(iotsec_slice_from_str(cases[i].text), &rec)))
            fail_msg("accepted: %s", cases[i].text);
        if (iotsec_error_code() != cases[i].code)
            fail_msg("case %zu: code %d (%s)", i, (int)iotsec_error_code(), iotsec_error_message());
        if (cases[i].needle != NULL && strstr(iotsec_error_message(), cases[i].needle) == NULL)
            fail_msg("case %zu: message '%s' lacks '%s'", i, iotsec_error_message(),
                     cases[i].needle);
    }
}

static void event_types_round_trip_with_default_severities(void **state)
{
    (void)state;
    for (int t = IOTSEC_EVENT_TYPE_FIRST; t <= IOTSEC_EVENT_TYPE_LAST; t++) {
        const char *name = iotsec_event_type_name((enum iotsec_event_type)t);
        assert_non_null(name);
        enum iotsec_event_type back;
        OK(iotsec_event_type_parse(name, &back));
        assert_int_equal(back, t);
    }
    assert_null(iotsec_event_type_name((enum iotsec_event_type)0));
    assert_int_equal(iotsec_event_default_severity(IOTSEC_EVENT_TAMPER_ATTEMPT),
                     IOTSEC_STORE_SEVERITY_CRITICAL);
    assert_int_equal(iotsec_event_default_severity(IOTSEC_EVENT_BRUTE_FORCE_DETECTED),
                     IOTSEC_STORE_SEVERITY_HIGH);
    struct iotsec_event ev = {.ts = T0, .type = IOTSEC_EVENT_AUTH_FAILURE};
    struct iotsec_store_event rec;
    OK(iotsec_event_to_record(&ev, &rec));
    assert_int_equal(rec.severity, IOTSEC_STORE_SEVERITY_MEDIUM);
    ev.type = (enum iotsec_event_type)99;
    assert_false(iotsec_ok(iotsec_event_to_record(&ev, &rec)));
}

static void durations_parse_exactly(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"30s", 30000},    {"15m", 900000},  {"2h", 7200000},
        {"7d", 604800000}, {"permanent", 0}, {"3650d", 3650LL * 86400000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -1;
        OK(iotsec_monitor_duration_parse(iotsec_slice_from_str(good[i].text), &ms));
        assert_int_equal(ms, good[i].ms);
    }
    const char *bad[] = {"",
                         "m",
                         "15",
                         "0m",
                         "-5m",
                         "+5m",
                         "1.5h",
                         "15 m",
                         " 15m",
                         "15M",
                         "1h30m",
                         "3651d",
                         "999999999999999d",
                         "Permanent",
                         "forever",
                         "15mm"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms;
        if (iotsec_ok(iotsec_monitor_duration_parse(iotsec_slice_from_str(bad[i]), &ms)))
            fail_msg("duration '%s' accepted", bad[i]);
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_INVALID_ARG);
    }
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_hash_covers_every_field),
        T(verify_passes_intact_log_and_reports_head),
        T(verify_names_edited_record),
        T(verify_names_edited_severity_and_address),
        T(verify_names_deleted_records),
        T(verify_names_deleted_first_record),
        T(verify_names_swapped_records),
        T(verify_names_swapped_contents),
        T(verify_names_delete_hidden_by_renumbering),
        T(verify_catches_recomputed_hash_at_next_link),
        T(verify_sees_truncation_only_with_a_head),
        T(verify_steps_over_unreadable_record),
        T(verify_callback_can_stop_the_walk),
        cmocka_unit_test(head_text_round_trips_and_is_strict),
        cmocka_unit_test(event_json_round_trips),
        cmocka_unit_test(event_json_parser_is_strict),
        cmocka_unit_test(event_types_round_trip_with_default_severities),
        cmocka_unit_test(durations_parse_exactly),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
