/*
 * Unit tests for the monitor and its sinks: auth failures feeding the detector, the
 * brute_force_detected event and the block it causes (found in any spelling of the
 * address, gone when it expires, never shortening an operator's block), distributed
 * guessing against one device, operator blocks recorded in the log, several threads
 * reporting at once (the chain stays whole), the JSON lines file, and RFC 5424 syslog
 * checked byte for byte on a UDP socket and a unix datagram socket this test binds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "iotsec/event.h"
#include "iotsec/eventlog.h"
#include "iotsec/monitor.h"
#include "iotsec/sink.h"
#include "iotsec/store.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20.000Z */

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if (!iotsec_ok(expr))                                                                      \
            fail_msg("%s failed: %s", #expr, iotsec_error_message());                              \
    } while (0)

struct fixture {
    char dir[64];
    char path[128];
    struct iotsec_store *s;
    struct iotsec_monitor *m;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/iotsec-monitor-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    OK(iotsec_store_open(f->path, &f->s));
    struct iotsec_monitor_config c = {.block_ms = 600000};
    OK(iotsec_monitor_new(f->s, &c, &f->m));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    iotsec_monitor_free(f->m);
    iotsec_store_close(f->s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct iotsec_monitor_outcome auth_failure(struct iotsec_monitor *m, const char *dev,
                                                  const char *ip, int64_t t)
{
    struct iotsec_event ev = {.ts = t,
                              .type = IOTSEC_EVENT_AUTH_FAILURE,
                              .device_id = dev,
                              .source_ip = ip,
                              .details = "{\"reason\":\"bad signature\"}"};
    struct iotsec_monitor_outcome oc;
    OK(iotsec_monitor_report(m, &ev, &oc));
    return oc;
}

static uint64_t count_type(struct iotsec_store *s, const char *type)
{
    struct iotsec_store_event_query q = {.event_type = type};
    uint64_t n;
    OK(iotsec_store_event_count(s, &q, &n));
    return n;
}

static void assert_chain_intact(struct iotsec_store *s, uint64_t records)
{
    struct iotsec_eventlog_verify_result res;
    OK(iotsec_eventlog_verify(s, NULL, NULL, NULL, &res));
    assert_int_equal(res.problems, 0);
    assert_int_equal(res.records, records);
}

static bool blocked(struct iotsec_monitor *m, const char *ip, const char *dev, int64_t now)
{
    bool b;
    OK(iotsec_monitor_is_blocked(m, ip, dev, now, &b, NULL));
    return b;
}

static void five_failures_detect_and_block_the_source(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 4; i++) {
        struct iotsec_monitor_outcome oc = auth_failure(f->m, "dev-1", "198.51.100.7", T0 + i);
        assert_int_equal(oc.seq, i + 1);
        assert_false(oc.brute_force_detected || oc.source_blocked);
    }
    assert_false(blocked(f->m, "198.51.100.7", NULL, T0 + 4));
    /* The fifth arrives in another spelling of the same address. */
    struct iotsec_monitor_outcome oc = auth_failure(f->m, "dev-1", "::ffff:198.51.100.7", T0 + 4);
    assert_true(oc.brute_force_detected);
    assert_true(oc.source_blocked);
    assert_false(oc.device_blocked);
    assert_true(blocked(f->m, "198.51.100.7", NULL, T0 + 5));
    assert_true(blocked(f->m, "::FFFF:198.51.100.7", NULL, T0 + 5));
    assert_false(blocked(f->m, "198.51.100.8", "dev-1", T0 + 5));
    /* The block lasts block_ms from the detection. */
    assert_true(blocked(f->m, "198.51.100.7", NULL, T0 + 4 + 600000 - 1));
    assert_false(blocked(f->m, "198.51.100.7", NULL, T0 + 4 + 600000));

    assert_int_equal(count_type(f->s, "auth_failure"), 5);
    assert_int_equal(count_type(f->s, "brute_force_detected"), 1);
    assert_int_equal(count_type(f->s, "block_added"), 1);
    struct iotsec_store_event e;
    OK(iotsec_store_event_get(f->s, 6, &e));
    assert_string_equal(e.event_type, "brute_force_detected");
    assert_int_equal(e.severity, IOTSEC_STORE_SEVERITY_HIGH);
    assert_string_equal(e.source_ip, "198.51.100.7");
    assert_string_equal(e.device_id, "dev-1");
    assert_non_null(strstr(e.details, "\"triggerSeq\":5"));
    assert_non_null(strstr(e.details, "\"key\":\"device and source\""));
    iotsec_store_event_clear(&e);
    assert_chain_intact(f->s, 7);
    struct iotsec_monitor_stats st;
    iotsec_monitor_get_stats(f->m, &st);
    assert_int_equal(st.reported, 5);
    assert_int_equal(st.detections, 1);
    assert_int_equal(st.blocks, 1);
}

static void distributed_guessing_blocks_each_later_source(void **state)
{
    struct fixture *f = *state;
    char ip[32];
    for (int i = 0; i < 5; i++) {
        snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
        auth_failure(f->m, "dev-9", ip, T0 + i);
    }
    /* The fifth address tripped the device key and was blocked; the first four, one
     * attempt each, were not. */
    assert_true(blocked(f->m, "192.0.2.5", NULL, T0 + 10));
    assert_false(blocked(f->m, "192.0.2.1", NULL, T0 + 10));
    /* While the device is under attack, any address failing against it is blocked at its
     * first failure. */
    struct iotsec_monitor_outcome oc = auth_failure(f->m, "dev-9", "192.0.2.77", T0 + 20);
    assert_false(oc.brute_force_detected);
    assert_true(oc.source_blocked);
    assert_true(blocked(f->m, "192.0.2.77", NULL, T0 + 21));
    /* The device itself is not blocked unless configured: an attacker must not be able
     * to lock a real device out. */
    assert_false(blocked(f->m, NULL, "dev-9", T0 + 21));
}

static void device_block_when_configured(void **state)
{
    struct fixture *f = *state;
    iotsec_monitor_free(f->m);
    struct iotsec_monitor_config c = {.block_device = true,
                                      .bruteforce = {.threshold = 3, .window_ms = 1000}};
    OK(iotsec_monitor_new(f->s, &c, &f->m));
    auth_failure(f->m, "dev-2", NULL, T0);
    auth_failure(f->m, "dev-2", NULL, T0 + 1);
    struct iotsec_monitor_outcome oc = auth_failure(f->m, "dev-2", NULL, T0 + 2);
    assert_true(oc.brute_force_detected);
    assert_true(oc.device_blocked);
    assert_false(oc.source_blocked);
    assert_true(blocked(f->m, NULL, "dev-2", T0 + 3));
    /* The default block time applies: 15 minutes. */
    assert_false(blocked(f->m, NULL, "dev-2", T0 + 2 + IOTSEC_MONITOR_DEFAULT_BLOCK_MS));
}

static void detector_never_shortens_an_operator_block(void **state)
{
    struct fixture *f = *state;
    OK(iotsec_monitor_block(f->m, "198.51.100.7", T0, 0, "known bad", "test", NULL));
    assert_int_equal(count_type(f->s, "block_added"), 1);
    for (int i = 0; i < 5; i++)
        auth_failure(f->m, NULL, "198.51.100.7", T0 + i);
    /* Detected, but the permanent block stays permanent and no second block is logged. */
    assert_int_equal(count_type(f->s, "brute_force_detected"), 1);
    assert_int_equal(count_type(f->s, "block_added"), 1);
    assert_true(blocked(f->m, "198.51.100.7", NULL, T0 + 86400000LL * 365));
}

static void operator_block_and_unblock_are_logged(void **state)
{
    struct fixture *f = *state;
    struct iotsec_store_block b;
    OK(iotsec_monitor_block(f->m, "2001:DB8::1", T0, T0 + 3600000, "scanner", "cli", &b));
    assert_string_equal(b.source, "2001:db8::1");
    OK(iotsec_monitor_block(f->m, "device:dev-3", T0, 0, "stolen", "cli", NULL));
    assert_true(blocked(f->m, "2001:db8:0::1", NULL, T0 + 1));
    assert_true(blocked(f->m, "10.1.1.1", "dev-3", T0 + 1));
    struct iotsec_store_event e;
    OK(iotsec_store_event_get(f->s, 1, &e));
    assert_string_equal(e.event_type, "block_added");
    assert_string_equal(e.source_ip, "2001:db8::1");
    assert_string_equal(e.details, "{\"source\":\"2001:db8::1\",\"expiresAt\":"
                                   "\"2023-11-14T23:13:20.000Z\",\"reason\":\"scanner\","
                                   "\"by\":\"cli\"}");
    iotsec_store_event_clear(&e);
    OK(iotsec_store_event_get(f->s, 2, &e));
    assert_string_equal(e.device_id, "dev-3");
    assert_string_equal(e.source_ip, "");
    iotsec_store_event_clear(&e);
    OK(iotsec_monitor_unblock(f->m, "device:dev-3", T0 + 2, "cli"));
    assert_false(blocked(f->m, NULL, "dev-3", T0 + 3));
    assert_false(iotsec_ok(iotsec_monitor_unblock(f->m, "device:dev-3", T0 + 4, "cli")));
    assert_int_equal(iotsec_error_code(), IOTSEC_ERR_NOT_FOUND);
    /* A bad source changes nothing: neither a block nor an event. */
    assert_false(iotsec_ok(iotsec_monitor_block(f->m, "not-an-ip", T0, 0, "x", "cli", NULL)));
    assert_int_equal(count_type(f->s, "block_removed"), 1);
    assert_chain_intact(f->s, 3);
}

struct reporter {
    struct iotsec_monitor *m;
    int id;
    bool ok;
};

#define REPORTERS  4
#define PER_REPORT 40

static void *report_many(void *arg)
{
    struct reporter *r = arg;
    char ip[32];
    for (int i = 0; i < PER_REPORT; i++) {
        snprintf(ip, sizeof(ip), "10.9.%d.%d", r->id, i);
        struct iotsec_event ev = {.ts = T0 + i,
                                  .type = i % 2 ? IOTSEC_EVENT_AUTH_FAILURE
                                                : IOTSEC_EVENT_VALIDATION_FAILED,
                                  .source_ip = ip};
        if (!iotsec_ok(iotsec_monitor_report(r->m, &ev, NULL)))
            return NULL;
    }
    r->ok = true;
    return r;
}

static void threads_reporting_at_once_keep_the_chain(void **state)
{
    struct fixture *f = *state;
    pthread_t t[REPORTERS];
    struct reporter r[REPORTERS];
    for (int i = 0; i < REPORTERS; i++) {
        r[i] = (struct reporter){.m = f->m, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, report_many, &r[i]), 0);
    }
    for (int i = 0; i < REPORTERS; i++) {
        pthread_join(t[i], NULL);
        assert_true(r[i].ok);
    }
    assert_chain_intact(f->s, REPORTERS * PER_REPORT);
    int64_t seq;
    uint8_t h[32];
    OK(iotsec_store_event_last(f->s, &seq, h));
    assert_int_equal(seq, REPORTERS * PER_REPORT);
}

static void file_sink_writes_one_json_line_per_event(void **state)
{
    struct fixture *f = *state;
    char path[192];
    snprintf(path, sizeof(path), "%s/events.jsonl", f->dir);
    struct iotsec_sink *sink;
    OK(iotsec_sink_file_open(path, &sink));
    OK(iotsec_monitor_add_sink(f->m, sink));
    struct iotsec_event tamper = {.ts = T0,
                                  .type = IOTSEC_EVENT_TAMPER_ATTEMPT,
                                  .device_id = "dev-1",
                                  .details = "{\"what\":\"line\\nbreak\"}"};
    OK(iotsec_monitor_report(f->m, &tamper, NULL));
    for (int i = 0; i < 5; i++)
        auth_failure(f->m, NULL, "10.0.0.5", T0 + 1 + i);
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char line[4096];
    int n = 0;
    const char *want_types[] = {"tamper_attempt",       "auth_failure", "auth_failure",
                                "auth_failure",         "auth_failure", "auth_failure",
                                "brute_force_detected", "block_added"};
    while (fgets(line, sizeof(line), in) != NULL) {
        assert_true(n < 8);
        size_t len = strlen(line);
        assert_int_equal(line[len - 1], '\n');
        struct iotsec_store_event e;
        OK(iotsec_event_record_from_json(iotsec_slice_make(line, len - 1), &e));
        assert_string_equal(e.event_type, want_types[n]);
        iotsec_store_event_clear(&e);
        n++;
    }
    fclose(in);
    assert_int_equal(n, 8);
    /* The first line exactly: the DESIGN.md form. */
    in = fopen(path, "r");
    assert_non_null(fgets(line, sizeof(line), in));
    fclose(in);
    assert_string_equal(line, "{\"timestamp\":\"2023-11-14T22:13:20.000Z\",\"eventType\":"
                              "\"tamper_attempt\",\"severity\":\"critical\",\"deviceId\":"
                              "\"dev-1\",\"sourceIp\":null,\"details\":{\"what\":"
                              "\"line\\nbreak\"}}\n");
    /* A symbolic link is refused. */
    char link[200];
    snprintf(link, sizeof(link), "%s/link.jsonl", f->dir);
    assert_int_equal(symlink(path, link), 0);
    assert_false(iotsec_ok(iotsec_sink_file_open(link, &sink)));
}

static int bind_udp(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static size_t receive(int fd, char *buf, size_t size)
{
    ssize_t n = recv(fd, buf, size - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    return (size_t)n;
}

static void syslog_sink_sends_rfc5424_over_udp(void **state)
{
    struct fixture *f = *state;
    uint16_t port;
    int fd = bind_udp(&port);
    struct iotsec_syslog_config c = {.udp_port = port, .hostname = "gw-1"};
    struct iotsec_sink *sink;
    OK(iotsec_sink_syslog_open(&c, &sink));
    OK(iotsec_monitor_add_sink(f->m, sink));

    struct iotsec_event tamper = {
        .ts = T0 + 5, .type = IOTSEC_EVENT_TAMPER_ATTEMPT, .device_id = "dev-1"};
    OK(iotsec_monitor_report(f->m, &tamper, NULL));
    char msg[9000], want[1024];
    receive(fd, msg, sizeof(msg));
    /* PRI 81 = authpriv (10) * 8 + alert (1): a critical event is an alert. */
    snprintf(want, sizeof(want),
             "<81>1 2023-11-14T22:13:20.005Z gw-1 iotsec %ld tamper_attempt "
             "[iotsec@32473 seq=\"1\" severity=\"critical\"] "
             "{\"timestamp\":\"2023-11-14T22:13:20.005Z\",\"eventType\":\"tamper_attempt\","
             "\"severity\":\"critical\",\"deviceId\":\"dev-1\",\"sourceIp\":null,\"details\":{}}",
             (long)getpid());
    assert_string_equal(msg, want);

    struct iotsec_event low = {
        .ts = T0 + 6, .type = IOTSEC_EVENT_RATE_LIMITED, .source_ip = "10.0.0.1"};
    OK(iotsec_monitor_report(f->m, &low, NULL));
    receive(fd, msg, sizeof(msg));
    assert_memory_equal(msg, "<85>1 2023-11-14T22:13:20.006Z gw-1 iotsec ", 43); /* notice */
    struct iotsec_event high = {.ts = T0 + 7, .type = IOTSEC_EVENT_FIRMWARE_REJECTED};
    OK(iotsec_monitor_report(f->m, &high, NULL));
    receive(fd, msg, sizeof(msg));
    assert_memory_equal(msg, "<83>1 ", 6); /* err */
    close(fd);
}

static void syslog_message_too_long_loses_details_only(void **state)
{
    (void)state;
    struct iotsec_syslog_config c = {
        .udp_port = 514, .max_datagram = 480, .facility = 4, .app_name = "iotsecd"};
    struct iotsec_store_event e = {.seq = 9, .ts = T0, .severity = IOTSEC_STORE_SEVERITY_MEDIUM};
    strcpy(e.event_type, "auth_failure");
    char details[1200];
    snprintf(details, sizeof(details), "{\"pad\":\"%0900d\"}", 0);
    e.details = details;
    struct iotsec_buf b = {0};
    OK(iotsec_sink_syslog_format(&c, &e, 42, &b));
    OK(iotsec_buf_terminate(&b));
    assert_true(b.len <= 480);
    assert_string_equal(
        (char *)b.ptr, "<36>1 2023-11-14T22:13:20.000Z - iotsecd 42 auth_failure "
                       "[iotsec@32473 seq=\"9\" severity=\"medium\"] "
                       "{\"timestamp\":\"2023-11-14T22:13:20.000Z\",\"eventType\":\"auth_failure\","
                       "\"severity\":\"medium\",\"deviceId\":null,\"sourceIp\":null,"
                       "\"details\":{\"truncated\":true}}");
    iotsec_buf_free(&b);
    /* Bad configurations are refused before any socket is made. */
    struct iotsec_sink *sink;
    struct iotsec_syslog_config bad[] = {
        {0},
        {.udp_port = 514, .udp_host = "localhost"},
        {.udp_port = 514, .facility = 24},
        {.udp_port = 514, .hostname = "has space"},
        {.udp_port = 514, .max_datagram = 100},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (iotsec_ok(iotsec_sink_syslog_open(&bad[i], &sink)))
            fail_msg("syslog config %zu accepted", i);
        assert_int_equal(iotsec_error_code(), IOTSEC_ERR_CONFIG);
    }
}

static void syslog_sink_sends_to_a_unix_socket(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/log.sock", f->dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct iotsec_syslog_config c = {.unix_path = a.sun_path};
    struct iotsec_sink *sink;
    OK(iotsec_sink_syslog_open(&c, &sink));
    OK(iotsec_monitor_add_sink(f->m, sink));
    auth_failure(f->m, "dev-1", "10.0.0.1", T0);
    char msg[9000];
    receive(fd, msg, sizeof(msg));
    /* authpriv * 8 + warning (4): auth_failure is medium. */
    assert_memory_equal(msg, "<84>1 2023-11-14T22:13:20.000Z - iotsec ", 40);
    assert_non_null(strstr(msg, " auth_failure [iotsec@32473 seq=\"1\" severity=\"medium\"] {"));
    close(fd);
    /* The collector goes away: the report still succeeds (the event is in the log) and
     * the failure is counted. */
    unlink(a.sun_path);
    struct iotsec_monitor_outcome oc = auth_failure(f->m, "dev-1", "10.0.0.1", T0 + 1);
    assert_int_equal(oc.sink_failures, 1);
    struct iotsec_monitor_stats st;
    iotsec_monitor_get_stats(f->m, &st);
    assert_int_equal(st.sink_failures, 1);
    assert_non_null(strstr(st.last_sink_error, "syslog"));
    assert_chain_intact(f->s, 2);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(five_failures_detect_and_block_the_source),
        T(distributed_guessing_blocks_each_later_source),
        T(device_block_when_configured),
        T(detector_never_shortens_an_operator_block),
        T(operator_block_and_unblock_are_logged),
        T(threads_reporting_at_once_keep_the_chain),
        T(file_sink_writes_one_json_line_per_event),
        T(syslog_sink_sends_rfc5424_over_udp),
        cmocka_unit_test(syslog_message_too_long_loses_details_only),
        T(syslog_sink_sends_to_a_unix_socket),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
