/*
 * `iotsec block`: the blocklist the servers check on every connection.
 *
 *   iotsec block list
 *   iotsec block add SOURCE [--for DURATION|permanent] [--reason TEXT]
 *   iotsec block rm SOURCE
 *
 * SOURCE is an IPv4 or IPv6 address (stored in one canonical spelling) or
 * "device:<id>". Adding and removing go through the monitor, so each change is recorded
 * in the event log (block_added / block_removed) in the same transaction. An operator's
 * block replaces any earlier one for the source, shorter or longer: the operator's word
 * is final. Without --for a block is permanent.
 */
#include "cli.h"

#include "iotsec/monitor.h"
#include "iotsec/store.h"
#include "iotsec/time.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* Pages read by `list` before it stops: a blocklist is not meant to be this long. */
#define LIST_PAGES_MAX 1000

struct block_opts {
    const char *data;
    const char *duration;
    const char *reason;
};

static void block_usage(FILE *out)
{
    fprintf(out, "usage: iotsec block <command> [options]\n"
                 "\n"
                 "  list                 blocks in force: source, until, reason\n"
                 "  add SOURCE           block an IP address or device:<id>\n"
                 "    --for DURATION     for this long: 30s, 15m, 2h, 7d, or permanent (default)\n"
                 "    --reason TEXT      why (printable ASCII, at most 255 characters)\n"
                 "  rm SOURCE            lift a block\n"
                 "\n"
                 "  --data DIR           the data directory (default $IOTSEC_DATA or ./var)\n");
}

static void store_cleanup(struct iotsec_store **s)
{
    iotsec_store_close(*s);
}

static void monitor_cleanup(struct iotsec_monitor **m)
{
    iotsec_monitor_free(*m);
}

static void list_cleanup(struct iotsec_store_block_list *l)
{
    iotsec_store_block_list_free(l);
}

static iotsec_result format_ms(int64_t ms, char out[IOTSEC_TIME_STR_MAX])
{
    struct iotsec_time t = {.sec = ms / 1000, .nsec = 0};
    return iotsec_time_format(t, IOTSEC_TIME_SECONDS, out);
}

static iotsec_result list_blocks(const struct block_opts *o)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(cli_open_store(cli_data_dir(o->data), &s));
    int64_t now = cli_now_ms();
    char after[IOTSEC_STORE_SOURCE_MAX + 1] = "";
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        struct iotsec_store_block_list l IOTSEC_DEFER(list_cleanup) = {0};
        struct iotsec_store_page pg = {.after = after, .limit = IOTSEC_STORE_LIST_MAX};
        IOTSEC_GUARD(iotsec_store_block_list_active(s, now, &pg, &l));
        for (size_t i = 0; i < l.count; i++) {
            const struct iotsec_store_block *b = &l.items[i];
            char until[IOTSEC_TIME_STR_MAX] = "permanent";
            if (b->expires_at != 0)
                IOTSEC_GUARD(format_ms(b->expires_at, until));
            printf("%-40s %-20s %s\n", b->source, until, b->reason);
        }
        if (!l.more || l.count == 0)
            return IOTSEC_RESULT_OK;
        snprintf(after, sizeof(after), "%s", l.items[l.count - 1].source);
    }
    IOTSEC_BAIL(IOTSEC_ERR_TOO_LARGE, "more than %d blocks; stopped listing",
                LIST_PAGES_MAX * IOTSEC_STORE_LIST_MAX);
}

static iotsec_result add_block(const struct block_opts *o, const char *source, int64_t duration)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    struct iotsec_monitor *m IOTSEC_DEFER(monitor_cleanup) = NULL;
    IOTSEC_GUARD(cli_open_store(cli_data_dir(o->data), &s));
    IOTSEC_GUARD(iotsec_monitor_new(s, NULL, &m));
    int64_t now = cli_now_ms();
    int64_t expires = duration == 0 ? 0 : now + duration;
    struct iotsec_store_block b;
    IOTSEC_GUARD(iotsec_monitor_block(m, source, now, expires,
                                      o->reason != NULL ? o->reason : "blocked by an operator",
                                      "cli", &b));
    char until[IOTSEC_TIME_STR_MAX] = "permanently";
    if (expires != 0)
        IOTSEC_GUARD(format_ms(expires, until));
    fprintf(stderr, "iotsec: block: %s blocked %s%s\n", b.source, expires != 0 ? "until " : "",
            until);
    return IOTSEC_RESULT_OK;
}

static iotsec_result remove_block(const struct block_opts *o, const char *source)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    struct iotsec_monitor *m IOTSEC_DEFER(monitor_cleanup) = NULL;
    IOTSEC_GUARD(cli_open_store(cli_data_dir(o->data), &s));
    IOTSEC_GUARD(iotsec_monitor_new(s, NULL, &m));
    if (!iotsec_ok(iotsec_monitor_unblock(m, source, cli_now_ms(), "cli"))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            iotsec_error_set(IOTSEC_ERR_NOT_FOUND, "no block for %s", source);
        return IOTSEC_RESULT_ERR;
    }
    fprintf(stderr, "iotsec: block: %s unblocked\n", source);
    return IOTSEC_RESULT_OK;
}

int cmd_block(int argc, char **argv)
{
    enum { OPT_DATA = 1000, OPT_FOR, OPT_REASON, OPT_HELP };
    static const struct option options[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"for", required_argument, NULL, OPT_FOR},
        {"reason", required_argument, NULL, OPT_REASON},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (cli_require_exact_options(argc, argv, options, "block") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    struct block_opts o = {0};
    int c, index = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (optarg != NULL && optarg[0] == '\0')
            return cli_usage_error("block: option '--%s' needs a value", options[index].name);
        switch (c) {
        case OPT_DATA:
            o.data = optarg;
            break;
        case OPT_FOR:
            o.duration = optarg;
            break;
        case OPT_REASON:
            o.reason = optarg;
            break;
        case OPT_HELP:
        case 'h':
            block_usage(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage_error("block: option '%s' needs a value (see --help)",
                                   argv[optind - 1]);
        default:
            if (optopt != 0)
                return cli_usage_error("block: unknown option '-%c' (see --help)", optopt);
            return cli_usage_error("block: unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("block: missing command: list, add or rm");
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    const char *source = nargs >= 1 ? argv[optind + 1] : NULL;

    if (strcmp(cmd, "list") == 0) {
        if (nargs > 0)
            return cli_usage_error("block list: unexpected argument '%s'", argv[optind + 1]);
        if (o.duration != NULL || o.reason != NULL)
            return cli_usage_error("block list: only --data applies (see --help)");
        if (!iotsec_ok(list_blocks(&o))) {
            iotsec_error_prefix("block list: ");
            return cli_fail();
        }
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "add") != 0 && strcmp(cmd, "rm") != 0)
        return cli_usage_error("block: unknown command '%s' (list, add, rm)", cmd);
    if (nargs != 1)
        return cli_usage_error("block %s: give exactly one SOURCE (an IP address or device:<id>)",
                               cmd);
    if (strcmp(cmd, "rm") == 0) {
        if (o.duration != NULL || o.reason != NULL)
            return cli_usage_error("block rm: only --data applies (see --help)");
        if (!iotsec_ok(remove_block(&o, source))) {
            iotsec_error_prefix("block rm: ");
            return cli_fail();
        }
        return CLI_EXIT_OK;
    }
    int64_t duration = 0;
    if (o.duration != NULL &&
        !iotsec_ok(iotsec_monitor_duration_parse(iotsec_slice_from_str(o.duration), &duration)))
        return cli_usage_error("block add: --for: %s", iotsec_error_message());
    if (!iotsec_ok(add_block(&o, source, duration))) {
        iotsec_error_prefix("block add: ");
        return cli_fail();
    }
    return CLI_EXIT_OK;
}
