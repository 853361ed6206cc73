/*
 * `iotsec events`: read and check the security event log.
 *
 *   iotsec events list [--since RFC3339] [--type T] [--severity S] [--device ID]
 *                      [--limit N] [--json]
 *   iotsec events verify [--head SEQ:HASH]
 *
 * `list` shows the newest N matching events (default 100, at most 1000), oldest first,
 * as columns or, with --json, as one DESIGN.md event object per line. `verify` walks the
 * whole hash chain: exit 0 and the head ("SEQ:HASH", worth saving elsewhere) when it is
 * intact, exit 1 naming the first bad record otherwise, with every problem on stdout.
 */
#include "cli.h"

#include "iotsec/event.h"
#include "iotsec/eventlog.h"
#include "iotsec/store.h"
#include "iotsec/time.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Problems printed by verify; the count still covers all of them. */
#define VERIFY_PRINT_MAX 1000

struct events_opts {
    const char *data;
    const char *since;
    const char *type;
    const char *severity;
    const char *device;
    const char *limit;
    const char *head;
    bool json;
};

static void events_usage(FILE *out)
{
    fprintf(out, "usage: iotsec events <command> [options]\n"
                 "\n"
                 "  list      the newest matching events, oldest first\n"
                 "    --since RFC3339   only events at or after this time\n"
                 "    --type T          only this type (auth_failure, brute_force_detected, ...)\n"
                 "    --severity S      only this severity (low, medium, high, critical)\n"
                 "    --device ID       only events about this device\n"
                 "    --limit N         at most N events (1..1000, default 100)\n"
                 "    --json            one JSON object per line\n"
                 "  verify    check the hash chain: exit 0 when intact, 1 naming the first bad\n"
                 "            record (every problem is listed on stdout)\n"
                 "    --head SEQ:HASH   also check that the log still has this record, as printed\n"
                 "                      by an earlier verify (catches deletions at the end)\n"
                 "\n"
                 "  --data DIR          the data directory (default $IOTSEC_DATA or ./var)\n");
}

static void store_cleanup(struct iotsec_store **s)
{
    iotsec_store_close(*s);
}

static void list_cleanup(struct iotsec_store_event_list *l)
{
    iotsec_store_event_list_free(l);
}

static void buf_cleanup(struct iotsec_buf *b)
{
    iotsec_buf_free(b);
}

/* Details as ASCII-only JSON with DEL shown as '?', so that nothing in an event can
 * drive the operator's terminal. */
static void print_details(const char *text)
{
    json_t *d = json_loads(text != NULL ? text : "{}", JSON_REJECT_DUPLICATES, NULL);
    char *s = d != NULL ? json_dumps(d, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (s == NULL) {
        fputs("(unparsable details)", stdout);
    } else {
        for (char *p = s; *p != '\0'; p++)
            putchar(*p == 0x7f ? '?' : *p);
    }
    free(s);
    json_decref(d);
}

static iotsec_result print_event(const struct iotsec_store_event *e, bool json,
                                 struct iotsec_buf *line)
{
    if (json) {
        iotsec_buf_reset(line);
        IOTSEC_GUARD(iotsec_event_record_to_json(e, line));
        printf("%.*s\n", (int)line->len, (const char *)line->ptr);
        return IOTSEC_RESULT_OK;
    }
    char ts[IOTSEC_TIME_STR_MAX];
    struct iotsec_time t = {.sec = e->ts / 1000, .nsec = (uint32_t)(e->ts % 1000) * 1000000u};
    IOTSEC_GUARD(iotsec_time_format(t, IOTSEC_TIME_MILLIS, ts));
    printf("%-6lld %s %-8s %-22s %-20s %-15s ", (long long)e->seq, ts,
           iotsec_store_severity_name(e->severity), e->event_type,
           e->device_id[0] != '\0' ? e->device_id : "-",
           e->source_ip[0] != '\0' ? e->source_ip : "-");
    print_details(e->details);
    putchar('\n');
    return IOTSEC_RESULT_OK;
}

static int do_list(const struct events_opts *o)
{
    struct iotsec_store_event_query q = {.newest_first = true, .limit = 100};
    enum iotsec_event_type type;
    if (o->since != NULL) {
        struct iotsec_time t;
        if (!iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(o->since), &t)))
            return cli_usage_error("events list: --since: %s", iotsec_error_message());
        if (t.sec < 0)
            return cli_usage_error("events list: --since: before 1970");
        q.since = t.sec * 1000 + t.nsec / 1000000;
    }
    if (o->type != NULL) {
        if (!iotsec_ok(iotsec_event_type_parse(o->type, &type)))
            return cli_usage_error("events list: --type: %s", iotsec_error_message());
        q.event_type = o->type;
    }
    if (o->severity != NULL && !iotsec_ok(iotsec_store_severity_parse(o->severity, &q.severity)))
        return cli_usage_error("events list: --severity: %s", iotsec_error_message());
    q.device_id = o->device;
    if (o->limit != NULL) {
        char *end;
        long n = strtol(o->limit, &end, 10);
        if (*end != '\0' || o->limit[0] < '0' || o->limit[0] > '9' || n < 1 ||
            n > IOTSEC_STORE_LIST_MAX)
            return cli_usage_error("events list: --limit must be a number from 1 to %d, not '%s'",
                                   IOTSEC_STORE_LIST_MAX, o->limit);
        q.limit = (size_t)n;
    }

    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    struct iotsec_store_event_list l IOTSEC_DEFER(list_cleanup) = {0};
    struct iotsec_buf line IOTSEC_DEFER(buf_cleanup) = {0};
    if (!iotsec_ok(cli_open_store(cli_data_dir(o->data), &s)) ||
        !iotsec_ok(iotsec_store_event_list(s, &q, &l))) {
        iotsec_error_prefix("events list: ");
        return cli_fail();
    }
    for (size_t i = l.count; i > 0; i--) {
        if (!iotsec_ok(print_event(&l.items[i - 1], o->json, &line))) {
            iotsec_error_prefix("events list: ");
            return cli_fail();
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "iotsec: events list: cannot write to stdout\n");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

static bool print_problem(void *ctx, const struct iotsec_eventlog_problem *p)
{
    unsigned *printed = ctx;
    if (*printed < VERIFY_PRINT_MAX) {
        printf("%s\n", p->message);
        (*printed)++;
    }
    return true;
}

static int do_verify(const struct events_opts *o)
{
    struct iotsec_eventlog_head head;
    if (o->head != NULL && !iotsec_ok(iotsec_eventlog_head_parse(o->head, &head)))
        return cli_usage_error("events verify: --head: %s", iotsec_error_message());
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    struct iotsec_eventlog_verify_result res;
    unsigned printed = 0;
    if (!iotsec_ok(cli_open_store(cli_data_dir(o->data), &s)) ||
        !iotsec_ok(iotsec_eventlog_verify(s, o->head != NULL ? &head : NULL, print_problem,
                                          &printed, &res))) {
        iotsec_error_prefix("events verify: ");
        return cli_fail();
    }
    if (res.problems > 0) {
        if (res.problems > printed)
            printf("(%llu more problems not shown)\n",
                   (unsigned long long)(res.problems - printed));
        fflush(stdout);
        fprintf(stderr, "iotsec: events verify: %s (%llu problem%s in all)\n", res.first.message,
                (unsigned long long)res.problems, res.problems == 1 ? "" : "s");
        return CLI_EXIT_FAIL;
    }
    if (res.records == 0) {
        printf("event log is empty\n");
        return CLI_EXIT_OK;
    }
    struct iotsec_eventlog_head last = {.seq = res.last_seq};
    memcpy(last.hash, res.last_hash, sizeof(last.hash));
    char text[IOTSEC_EVENTLOG_HEAD_STR_MAX];
    iotsec_eventlog_head_format(&last, text);
    printf("event log intact: %llu records, head %s\n", (unsigned long long)res.records, text);
    return CLI_EXIT_OK;
}

int cmd_events(int argc, char **argv)
{
    enum {
        OPT_DATA = 1000,
        OPT_SINCE,
        OPT_TYPE,
        OPT_SEVERITY,
        OPT_DEVICE,
        OPT_LIMIT,
        OPT_JSON,
        OPT_HEAD,
        OPT_HELP
    };
    static const struct option options[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"since", required_argument, NULL, OPT_SINCE},
        {"type", required_argument, NULL, OPT_TYPE},
        {"severity", required_argument, NULL, OPT_SEVERITY},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"head", required_argument, NULL, OPT_HEAD},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (cli_require_exact_options(argc, argv, options, "events") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    struct events_opts o = {0};
    int c, index = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (optarg != NULL && optarg[0] == '\0')
            return cli_usage_error("events: option '--%s' needs a value", options[index].name);
        switch (c) {
        case OPT_DATA:
            o.data = optarg;
            break;
        case OPT_SINCE:
            o.since = optarg;
            break;
        case OPT_TYPE:
            o.type = optarg;
            break;
        case OPT_SEVERITY:
            o.severity = optarg;
            break;
        case OPT_DEVICE:
            o.device = optarg;
            break;
        case OPT_LIMIT:
            o.limit = optarg;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_HEAD:
            o.head = optarg;
            break;
        case OPT_HELP:
        case 'h':
            events_usage(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage_error("events: option '%s' needs a value (see --help)",
                                   argv[optind - 1]);
        default:
            if (optopt != 0)
                return cli_usage_error("events: unknown option '-%c' (see --help)", optopt);
            return cli_usage_error("events: unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("events: missing command: list or verify");
    const char *cmd = argv[optind];
    if (optind + 1 < argc)
        return cli_usage_error("events %s: unexpected argument '%s'", cmd, argv[optind + 1]);
    bool list_opts = o.since || o.type || o.severity || o.device || o.limit || o.json;
    if (strcmp(cmd, "list") == 0) {
        if (o.head != NULL)
            return cli_usage_error("events list: --head does not apply (see --help)");
        return do_list(&o);
    }
    if (strcmp(cmd, "verify") == 0) {
        if (list_opts)
            return cli_usage_error("events verify: only --head and --data apply (see --help)");
        return do_verify(&o);
    }
    return cli_usage_error("events: unknown command '%s' (list, verify)", cmd);
}
