/*
 * `iotsec apikey`: API keys of devices (docs/device-auth.md).
 *
 *   iotsec apikey create --device ID [--rate-limit N]   the key on stdout, once
 *   iotsec apikey list --device ID                      ids, times, state; never a key
 *   iotsec apikey revoke KEYID                          effective for the next request
 *
 * all with --data DIR. The key is printed once and exists nowhere else: the store keeps
 * only its hash. Its id and a reminder go to stderr, so `iotsec apikey create ... >file`
 * captures exactly the key.
 */
#include "cli.h"

#include "iotsec/apikey.h"
#include "iotsec/store.h"
#include "iotsec/time.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A device has few keys; this only bounds the listing loop. */
#define LIST_PAGES_MAX 1000

struct apikey_opts {
    const char *data;
    const char *device;
    const char *rate;
};

static void apikey_usage(FILE *out)
{
    fprintf(out,
            "usage: iotsec apikey <command> [options]\n"
            "\n"
            "  create --device ID [--rate-limit N]  make a key for device ID and print it\n"
            "                                       once on stdout (its id goes to stderr);\n"
            "                                       N requests per minute, 1..%u (default:\n"
            "                                       the platform's, %d)\n"
            "  list --device ID                     the device's keys: id, created, last\n"
            "                                       used, state, rate limit\n"
            "  revoke KEYID                         revoke a key; the next request with it\n"
            "                                       is refused\n"
            "\n"
            "options:\n"
            "  --data DIR   data directory (default $IOTSEC_DATA, else ./%s)\n",
            IOTSEC_APIKEY_RATE_MAX, IOTSEC_APIKEY_DEFAULT_RATE_PER_MIN, CLI_DEFAULT_DATA_DIR);
}

static void store_cleanup(struct iotsec_store **s)
{
    iotsec_store_close(*s);
}

static void secret_cleanup(struct iotsec_apikey_secret *k)
{
    iotsec_apikey_secret_wipe(k);
}

static void list_cleanup(struct iotsec_store_apikey_list *l)
{
    iotsec_store_apikey_list_free(l);
}

static int parse_rate(const char *text, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < 1 ||
        v > IOTSEC_APIKEY_RATE_MAX)
        return cli_usage_error("apikey create: --rate-limit must be a number 1..%u, not '%s'",
                               IOTSEC_APIKEY_RATE_MAX, text);
    *out = (uint32_t)v;
    return CLI_EXIT_OK;
}

static iotsec_result do_create(const struct apikey_opts *o, uint32_t rate)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    struct iotsec_apikey_secret key IOTSEC_DEFER(secret_cleanup) = {0};
    IOTSEC_GUARD(cli_open_store(cli_data_dir(o->data), &s));
    if (!iotsec_ok(iotsec_apikey_create(s, o->device, rate, cli_now_ms(), &key))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            iotsec_error_set(IOTSEC_ERR_NOT_FOUND, "apikey: no device '%s'", o->device);
        return IOTSEC_RESULT_ERR;
    }
    IOTSEC_ENSURE(printf("%s\n", key.key) > 0 && fflush(stdout) == 0, IOTSEC_ERR_IO,
                  "apikey: cannot write the key to stdout; key %s was stored: revoke it",
                  key.key_id);
    fprintf(stderr, "iotsec: apikey: created key %s for device %s; it is shown only this once\n",
            key.key_id, o->device);
    return IOTSEC_RESULT_OK;
}

static void format_time(int64_t ms, char *out, size_t size)
{
    char text[IOTSEC_TIME_STR_MAX];
    struct iotsec_time t = {.sec = ms / 1000, .nsec = 0};
    if (ms == 0 || !iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_SECONDS, text)))
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%s", text);
}

static iotsec_result do_list(const struct apikey_opts *o)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(cli_open_store(cli_data_dir(o->data), &s));
    /* An unknown device is an error, not an empty list: a typo should not look like
     * "this device has no keys". */
    struct iotsec_store_device dev = {0};
    if (!iotsec_ok(iotsec_store_device_get(s, o->device, &dev))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            iotsec_error_set(IOTSEC_ERR_NOT_FOUND, "apikey: no device '%s'", o->device);
        return IOTSEC_RESULT_ERR;
    }
    iotsec_store_device_clear(&dev);

    printf("%-19s  %-20s  %-20s  %-28s  %s\n", "KEY ID", "CREATED", "LAST USED", "STATE",
           "RATE/MIN");
    char after[IOTSEC_STORE_ID_MAX + 1] = "";
    for (int page_no = 0; page_no < LIST_PAGES_MAX; page_no++) {
        struct iotsec_store_apikey_list l IOTSEC_DEFER(list_cleanup) = {0};
        struct iotsec_store_page page = {.after = after, .limit = IOTSEC_STORE_LIST_MAX};
        IOTSEC_GUARD(iotsec_store_apikey_list_by_device(s, o->device, &page, &l));
        for (size_t i = 0; i < l.count; i++) {
            const struct iotsec_store_apikey *k = &l.items[i];
            char created[IOTSEC_TIME_STR_MAX], used[IOTSEC_TIME_STR_MAX],
                revoked[IOTSEC_TIME_STR_MAX], state[IOTSEC_TIME_STR_MAX + 8], rate[16];
            format_time(k->created_at, created, sizeof(created));
            format_time(k->last_used_at, used, sizeof(used));
            format_time(k->revoked_at, revoked, sizeof(revoked));
            if (k->revoked_at != 0)
                snprintf(state, sizeof(state), "revoked %s", revoked);
            else
                snprintf(state, sizeof(state), "active");
            if (k->rate_limit_per_min != 0)
                snprintf(rate, sizeof(rate), "%u", k->rate_limit_per_min);
            else
                snprintf(rate, sizeof(rate), "default");
            printf("%-19s  %-20s  %-20s  %-28s  %s\n", k->key_id, created, used, state, rate);
        }
        if (!l.more || l.count == 0)
            return IOTSEC_RESULT_OK;
        snprintf(after, sizeof(after), "%s", l.items[l.count - 1].key_id);
    }
    IOTSEC_BAIL(IOTSEC_ERR_TOO_LARGE, "apikey: device %s has more than %d pages of keys", o->device,
                LIST_PAGES_MAX);
}

static iotsec_result do_revoke(const struct apikey_opts *o, const char *key_id)
{
    struct iotsec_store *s IOTSEC_DEFER(store_cleanup) = NULL;
    IOTSEC_GUARD(cli_open_store(cli_data_dir(o->data), &s));
    if (!iotsec_ok(iotsec_store_apikey_revoke(s, key_id, cli_now_ms()))) {
        iotsec_err code = iotsec_error_code();
        if (code == IOTSEC_ERR_NOT_FOUND)
            iotsec_error_set(code, "apikey: no key '%s'", key_id);
        else if (code == IOTSEC_ERR_EXISTS)
            iotsec_error_set(code, "apikey: key %s is already revoked", key_id);
        return IOTSEC_RESULT_ERR;
    }
    fprintf(stderr, "iotsec: apikey: key %s revoked\n", key_id);
    return IOTSEC_RESULT_OK;
}

int cmd_apikey(int argc, char **argv)
{
    enum { OPT_DATA = 1000, OPT_DEVICE, OPT_RATE, OPT_HELP };
    static const struct option options[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"rate-limit", required_argument, NULL, OPT_RATE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (cli_require_exact_options(argc, argv, options, "apikey") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    struct apikey_opts o = {0};
    int c, index = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (optarg != NULL && optarg[0] == '\0')
            return cli_usage_error("apikey: option '--%s' needs a value", options[index].name);
        switch (c) {
        case OPT_DATA:
            o.data = optarg;
            break;
        case OPT_DEVICE:
            o.device = optarg;
            break;
        case OPT_RATE:
            o.rate = optarg;
            break;
        case OPT_HELP:
        case 'h':
            apikey_usage(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage_error("apikey: option '%s' needs a value (see --help)",
                                   argv[optind - 1]);
        default:
            if (optopt != 0)
                return cli_usage_error("apikey: unknown option '-%c' (see --help)", optopt);
            return cli_usage_error("apikey: unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("apikey: missing command: create, list or revoke");
    const char *cmd = argv[optind];
    int rest = argc - optind - 1;
    iotsec_result r;
    if (strcmp(cmd, "create") == 0 || strcmp(cmd, "list") == 0) {
        if (o.device == NULL)
            return cli_usage_error("apikey %s: missing --device", cmd);
        if (rest > 0)
            return cli_usage_error("apikey %s: unexpected argument '%s'", cmd, argv[optind + 1]);
        if (cmd[0] == 'l' && o.rate != NULL)
            return cli_usage_error("apikey list: --rate-limit does not apply (see --help)");
        if (cmd[0] == 'l') {
            r = do_list(&o);
        } else {
            uint32_t rate = 0;
            if (o.rate != NULL && parse_rate(o.rate, &rate) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            r = do_create(&o, rate);
        }
    } else if (strcmp(cmd, "revoke") == 0) {
        if (o.device != NULL || o.rate != NULL)
            return cli_usage_error("apikey revoke: %s does not apply (see --help)",
                                   o.device != NULL ? "--device" : "--rate-limit");
        if (rest != 1)
            return cli_usage_error("apikey revoke: give exactly one key id");
        /* A pasted key would now be in argv and shell history: say so, do not look it up. */
        if (strncmp(argv[optind + 1], IOTSEC_APIKEY_PREFIX, IOTSEC_APIKEY_PREFIX_LEN) == 0)
            return cli_usage_error("apikey revoke: that is a key, not a key id (see apikey "
                                   "list); treat the key as exposed and revoke it by its id");
        r = do_revoke(&o, argv[optind + 1]);
    } else {
        return cli_usage_error("apikey: unknown command '%s' (create, list, revoke)", cmd);
    }
    return iotsec_ok(r) ? CLI_EXIT_OK : cli_fail();
}
