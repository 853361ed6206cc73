/*
 * iotsecd: options and configuration, start-up checks, and the signal loop.
 *
 *   iotsecd [--data DIR] [--device-port N] [--api-port N] [--bind ADDR] [--threads N]
 *           [--config FILE]
 *
 * Settings come from DIR/iotsecd.conf (or --config FILE) when present, and flags override
 * them; docs/iotsecd.md lists every option. The first start makes what the data directory
 * lacks: the CA, the server certificate, the device-token secret and the first admin.
 *
 * Signals are taken by this thread alone (sigwait), never by a worker in the middle of
 * its work: SIGTERM and SIGINT drain (no new connections, requests in flight answered,
 * queued telemetry committed) and exit 0; SIGHUP reloads the server certificate and key,
 * the CA and the CRL.
 */
#include "iotsecd.h"

#include "cli.h"

#include "iotsec/bruteforce.h"
#include "iotsec/config.h"
#include "iotsec/file.h"
#include "iotsec/log.h"
#include "iotsec/registry.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: iotsecd [options]\n"
            "\n"
            "  --data DIR          data directory (default $IOTSEC_DATA, else ./var)\n"
            "  --config FILE       settings (default DIR/iotsecd.conf when it exists)\n"
            "  --bind ADDR         listen address (default 127.0.0.1)\n"
            "  --device-port N     mutual-TLS listener for devices (default 8443)\n"
            "  --api-port N        TLS listener for API keys, tokens, operators (default 8444)\n"
            "  --threads N         worker threads (default: one per core)\n"
            "\n"
            "SIGTERM drains and exits 0; SIGHUP reloads certificates and CRLs. docs/iotsecd.md.\n");
}

static const struct iotsec_config_key known_keys[] = {
    {"server", "bind"},
    {"server", "device_port"},
    {"server", "api_port"},
    {"server", "threads"},
    {"server", "access_log"},
    {"limits", "max_body_bytes"},
    {"limits", "max_header_bytes"},
    {"limits", "request_timeout_ms"},
    {"limits", "io_timeout_ms"},
    {"limits", "rate_per_minute"},
    {"limits", "auth_rate_per_minute"},
    {"limits", "max_clock_skew_sec"},
    {"monitor", "failures"},
    {"monitor", "window_sec"},
    {"monitor", "block_sec"},
    {NULL, NULL},
};

static iotsec_result read_config(const char *path, bool required, struct iotsecd_config *cfg)
{
    if (!required && !iotsec_file_exists(path))
        return IOTSEC_RESULT_OK;
    struct iotsec_config *c = NULL;
    IOTSEC_GUARD(iotsec_config_load(path, &c));
    const char *bind = NULL;
    int64_t v;
    bool flag = cfg->access_log;
    iotsec_result r = iotsec_config_check_known(c, known_keys);
#define INT_KEY(sec, key, min, max, field)                                                         \
    if (iotsec_ok(r) && iotsec_config_has(c, sec, key)) {                                          \
        r = iotsec_config_get_int(c, sec, key, min, max, &v);                                      \
        if (iotsec_ok(r))                                                                          \
            cfg->field = v;                                                                        \
    }
    INT_KEY("server", "device_port", 1, 65535, device_port)
    INT_KEY("server", "api_port", 1, 65535, api_port)
    INT_KEY("server", "threads", 0, 256, threads)
    INT_KEY("limits", "max_body_bytes", 256, IOTSEC_STORE_TELEMETRY_MAX, max_body)
    INT_KEY("limits", "max_header_bytes", 1024, 65536, max_headers)
    INT_KEY("limits", "request_timeout_ms", 100, 600000, request_timeout_ms)
    INT_KEY("limits", "io_timeout_ms", 100, 600000, io_timeout_ms)
    INT_KEY("limits", "rate_per_minute", 1, 1000000, rate_per_minute)
    INT_KEY("limits", "auth_rate_per_minute", 1, 1000000, auth_rate_per_minute)
    INT_KEY("limits", "max_clock_skew_sec", 0, 86400, max_skew_sec)
    INT_KEY("monitor", "failures", 1, IOTSEC_BRUTEFORCE_THRESHOLD_MAX, bf_threshold)
    INT_KEY("monitor", "window_sec", 1, 7 * 24 * 3600, bf_window_sec)
    INT_KEY("monitor", "block_sec", 1, 3650 * 24 * 3600, block_sec)
#undef INT_KEY
    if (iotsec_ok(r) && iotsec_config_has(c, "server", "bind")) {
        r = iotsec_config_get_string(c, "server", "bind", &bind);
        if (iotsec_ok(r))
            snprintf(cfg->bind, sizeof(cfg->bind), "%s", bind);
    }
    if (iotsec_ok(r) && iotsec_config_has(c, "server", "access_log")) {
        r = iotsec_config_get_bool(c, "server", "access_log", &flag);
        cfg->access_log = flag;
    }
    iotsec_config_free(c);
    return r;
}

static bool parse_int(const char *text, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

/* Fails early, with the file to fix, rather than at the first connection. */
static iotsec_result check_data_dir(const struct iotsecd_config *cfg)
{
    struct stat st;
    IOTSEC_ENSURE(stat(cfg->data_dir, &st) == 0 && S_ISDIR(st.st_mode), IOTSEC_ERR_NOT_FOUND,
                  "data directory %s does not exist (run `iotsec ca init`)", cfg->data_dir);
    IOTSEC_ENSURE((st.st_mode & (S_IWGRP | S_IWOTH)) == 0, IOTSEC_ERR_PERMISSION,
                  "data directory %s: group or others may write to it", cfg->data_dir);
    struct iotsec_pki_verifier *v = NULL;
    IOTSEC_GUARD(iotsec_registry_load_verifier(cfg->data_dir, &v));
    iotsec_pki_verifier_free(v);
    return IOTSEC_RESULT_OK;
}

/* First start: the CA (root and issuing intermediate, keys in the vault, which is created
 * when missing, with the passphrase of IOTSEC_PASSPHRASE_FILE or one typed on the
 * terminal) and the server certificate, when the data directory has none. An existing CA
 * is never touched. */
static iotsec_result first_start_pki(const struct iotsecd_config *cfg)
{
    char ca[IOTSECD_PATH_MAX + 16], cert[IOTSECD_PATH_MAX + 16], vault[CLI_PATH_MAX];
    snprintf(ca, sizeof(ca), "%s/%s", cfg->data_dir, IOTSEC_REGISTRY_CA_CERT);
    snprintf(cert, sizeof(cert), "%s/%s", cfg->data_dir, IOTSEC_REGISTRY_SERVER_CERT);
    struct cli_vault_opts vo = {.scrypt_log2n = 15};
    const char *dir = cfg->data_dir;
    IOTSEC_GUARD(cli_vault_opts_finish(&dir, &vo, vault, sizeof(vault)));
    if (!iotsec_file_exists(ca)) {
        struct cli_ca_create_opts create = {.data_dir = dir,
                                            .vault = vo,
                                            .name = "iotsec root CA",
                                            .days = 3650,
                                            .intermediate = true};
        IOTSEC_GUARD(cli_ca_create(&create));
        iotsec_log_info("first start: CA created", IOTSEC_LOG_STR("data", dir));
    }
    if (!iotsec_file_exists(cert)) {
        struct cli_server_cert_opts sc = {.data_dir = dir, .vault = &vo};
        char path[CLI_PATH_MAX];
        IOTSEC_GUARD(cli_ca_server_cert(&sc, path, sizeof(path)));
        iotsec_log_info("first start: server certificate created", IOTSEC_LOG_STR("file", path));
    }
    return IOTSEC_RESULT_OK;
}

/* No account exists until someone creates one: on the first start, that is the first
 * admin, with a one-time password printed once. */
static iotsec_result first_admin(struct iotsecd *server)
{
    char path[IOTSECD_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/store.db", server->cfg.data_dir);
    struct iotsec_store *store = NULL;
    IOTSEC_GUARD(iotsec_store_open(path, &store));
    iotsec_result r = iotsecd_operators_bootstrap(server, store);
    iotsec_store_close(store);
    return r;
}

static int run(struct iotsecd *server, const sigset_t *signals)
{
    struct iotsec_ratelimit_config rl = {.rate = server->cfg.rate_per_minute,
                                         .period_ms = 60000,
                                         .burst = server->cfg.rate_per_minute,
                                         .capacity = 1u << 16};
    /* Password and challenge guessing: a budget per address in front of the detector. */
    struct iotsec_ratelimit_config auth_rl = {.rate = server->cfg.auth_rate_per_minute,
                                              .period_ms = 60000,
                                              .burst = server->cfg.auth_rate_per_minute,
                                              .capacity = 1u << 16};
    bool ok = iotsec_ok(first_start_pki(&server->cfg)) && iotsec_ok(check_data_dir(&server->cfg)) &&
              iotsec_ok(iotsecd_tls_init(server)) && iotsec_ok(iotsecd_auth_init(server)) &&
              iotsec_ok(iotsecd_operators_new(server)) && iotsec_ok(first_admin(server)) &&
              iotsec_ok(iotsec_ratelimit_new(&rl, &server->ratelimit)) &&
              iotsec_ok(iotsec_ratelimit_new(&auth_rl, &server->auth_ratelimit)) &&
              iotsec_ok(iotsecd_writer_start(server)) && iotsec_ok(iotsecd_workers_start(server));
    if (!ok) {
        fprintf(stderr, "iotsecd: %s\n", iotsec_error_message());
        iotsecd_workers_stop(server);
        iotsecd_writer_stop(server->writer);
        iotsec_ratelimit_free(server->ratelimit);
        iotsec_ratelimit_free(server->auth_ratelimit);
        iotsecd_operators_free(server);
        iotsecd_auth_free(server);
        iotsecd_tls_free(server);
        return 1;
    }
    iotsec_log_info("listening", IOTSEC_LOG_STR("bind", server->cfg.bind),
                    IOTSEC_LOG_INT("devicePort", server->cfg.device_port),
                    IOTSEC_LOG_INT("apiPort", server->cfg.api_port),
                    IOTSEC_LOG_INT("threads", server->n_workers),
                    IOTSEC_LOG_STR("data", server->cfg.data_dir));
    for (;;) {
        int sig = 0;
        if (sigwait(signals, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            atomic_fetch_add(&server->reload_generation, 1);
            iotsec_log_info("reloading the CA and CRL");
            iotsecd_tls_reload(server);
            continue;
        }
        break;
    }
    iotsec_log_info("draining");
    atomic_store(&server->draining, true);
    iotsecd_workers_stop(server);
    iotsecd_writer_stop(server->writer);
    iotsec_ratelimit_free(server->ratelimit);
    iotsec_ratelimit_free(server->auth_ratelimit);
    iotsecd_operators_free(server);
    iotsecd_auth_free(server);
    iotsecd_tls_free(server);
    iotsec_log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    /* Keys are in this process's memory: no core dumps. */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    iotsec_log_set_fd(2);

    static struct iotsecd server;
    struct iotsecd_config *cfg = &server.cfg;
    *cfg = (struct iotsecd_config){.device_port = 8443,
                                   .api_port = 8444,
                                   .max_body = 16 * 1024,
                                   .max_headers = 8 * 1024,
                                   .request_timeout_ms = 10000,
                                   .io_timeout_ms = 30000,
                                   .rate_per_minute = 60,
                                   .auth_rate_per_minute = 30,
                                   .max_skew_sec = 60,
                                   .access_log = true};
    snprintf(cfg->bind, sizeof(cfg->bind), "127.0.0.1");

    enum { OPT_DATA = 1000, OPT_CONFIG, OPT_BIND, OPT_DEVICE, OPT_API, OPT_THREADS, OPT_HELP };
    static const struct option options[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"bind", required_argument, NULL, OPT_BIND},
        {"device-port", required_argument, NULL, OPT_DEVICE},
        {"api-port", required_argument, NULL, OPT_API},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    /* Exact names only (getopt would accept any unambiguous prefix). */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0')
            continue;
        size_t len = strcspn(argv[i] + 2, "=");
        bool known = false;
        for (const struct option *o = options; o->name != NULL; o++)
            known |= strlen(o->name) == len && strncmp(o->name, argv[i] + 2, len) == 0;
        if (!known) {
            fprintf(stderr, "iotsecd: unknown option '%.*s' (see --help)\n", (int)len + 2, argv[i]);
            return EXIT_USAGE;
        }
    }
    const char *data = getenv("IOTSEC_DATA"), *config = NULL, *bind = NULL;
    int device_port = 0, api_port = 0, threads = -1, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_BIND:
            bind = optarg;
            break;
        case OPT_DEVICE:
        case OPT_API:
            if (!parse_int(optarg, 1, 65535, c == OPT_DEVICE ? &device_port : &api_port)) {
                fprintf(stderr, "iotsecd: %s must be a port number (1-65535)\n",
                        c == OPT_DEVICE ? "--device-port" : "--api-port");
                return EXIT_USAGE;
            }
            break;
        case OPT_THREADS:
            if (!parse_int(optarg, 1, 256, &threads)) {
                fprintf(stderr, "iotsecd: --threads must be a number from 1 to 256\n");
                return EXIT_USAGE;
            }
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "iotsecd: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "iotsecd: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", data != NULL && *data ? data : "var");
    char default_config[IOTSECD_PATH_MAX + 16];
    snprintf(default_config, sizeof(default_config), "%s/iotsecd.conf", cfg->data_dir);
    if (!iotsec_ok(read_config(config != NULL ? config : default_config, config != NULL, cfg))) {
        fprintf(stderr, "iotsecd: %s\n", iotsec_error_message());
        return EXIT_USAGE;
    }
    if (bind != NULL)
        snprintf(cfg->bind, sizeof(cfg->bind), "%s", bind);
    if (device_port != 0)
        cfg->device_port = device_port;
    if (api_port != 0)
        cfg->api_port = api_port;
    if (threads > 0)
        cfg->threads = threads;
    if (cfg->device_port == cfg->api_port) {
        fprintf(stderr, "iotsecd: the device and API ports must differ\n");
        return EXIT_USAGE;
    }

    /* Every thread started from here inherits this mask; only sigwait sees these. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    return run(&server, &signals);
}
