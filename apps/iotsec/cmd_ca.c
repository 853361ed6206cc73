/*
 * `iotsec ca`: the platform's own certificate authority.
 *
 *   iotsec ca init [--intermediate] [--hsm LABEL] [--name CN] [--days N]
 *   iotsec ca crl  [--next-update-days N]
 *   iotsec ca show
 *   iotsec ca server-cert [--dns NAME]... [--ip ADDR]... [--days N]
 *
 * init makes a root CA (EC P-256) whose key goes into the vault or, with --hsm, is made
 * inside a PKCS#11 token and never leaves it; with --intermediate, a second CA signed by
 * the root does the daily issuing and its key goes into the vault. A CA is never
 * overwritten: init refuses a data directory that already has one. docs/device-lifecycle.md
 * has the files it writes.
 */
#include "cli.h"

#include "iotsec/file.h"
#include "iotsec/hsm.h"
#include "iotsec/store.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct ca_opts {
    const char *data_dir;
    struct cli_vault_opts vault;
    const char *hsm_label;
    const char *name;
    uint32_t days;
    uint32_t next_update_days;
    bool intermediate;
    const char *dns[IOTSEC_PKI_SERVER_NAMES_MAX];
    size_t n_dns;
    const char *ips[IOTSEC_PKI_SERVER_NAMES_MAX];
    size_t n_ips;
    bool days_given;
};

static void ca_usage(FILE *out)
{
    fprintf(out,
            "usage: iotsec ca <init|crl|show> [options]\n"
            "\n"
            "  init         create the root CA (and with --intermediate an issuing CA);\n"
            "               never overwrites an existing CA\n"
            "  crl          write a fresh CRL now (run it at least every %d days)\n"
            "  show         the CA certificates and where their keys are\n"
            "  server-cert  a TLS server certificate for iotsecd and the broker:\n"
            "               DIR/server.crt (with the issuing CA) and DIR/server.key (0600)\n"
            "\n"
            "options:\n"
            "  --data DIR                data directory (default $IOTSEC_DATA, else ./var)\n"
            "  --name CN                 init: root CA name (default \"iotsec root CA\")\n"
            "  --days N                  init: root validity in days (default 3650)\n"
            "  --intermediate            init: an issuing CA, signed by the root, signs devices\n"
            "  --hsm LABEL               init: make the root key in the token as LABEL\n"
            "  --next-update-days N      crl: the CRL's lifetime (default %d)\n"
            "  --dns NAME, --ip ADDR     server-cert: names in the SAN, repeatable (default\n"
            "                            localhost, 127.0.0.1 and ::1); --days default 365\n"
            "  --vault FILE              vault file (default DIR/vault)\n"
            "  --passphrase-file FILE    vault passphrase (mode 0600; default\n"
            "                            $IOTSEC_PASSPHRASE_FILE, else a prompt)\n"
            "  --hsm-module PATH         PKCS#11 module (default $IOTSEC_PKCS11_MODULE)\n"
            "  --token LABEL             token label (default $IOTSEC_HSM_TOKEN)\n"
            "  --pin-file FILE           user PIN (mode 0600; default $IOTSEC_HSM_PIN_FILE)\n",
            CLI_CRL_NEXT_UPDATE_DAYS, CLI_CRL_NEXT_UPDATE_DAYS);
}

static int do_init(const struct ca_opts *o)
{
    struct cli_ca_create_opts create = {.data_dir = o->data_dir,
                                        .vault = o->vault,
                                        .hsm_label = o->hsm_label,
                                        .name = o->name,
                                        .days = o->days,
                                        .intermediate = o->intermediate};
    if (!iotsec_ok(cli_ca_create(&create)))
        return cli_fail();
    fprintf(stderr, "iotsec: CA created in %s (%s%s)\n", o->data_dir,
            o->hsm_label != NULL ? "root key in the token" : "root key in the vault",
            o->intermediate ? ", issuing key in the vault" : "");
    return CLI_EXIT_OK;
}

static int do_crl(const struct ca_opts *o)
{
    struct cli_ca ca;
    struct iotsec_store *store = NULL;
    bool ok = iotsec_ok(cli_ca_open(o->data_dir, &o->vault, true, &ca)) &&
              iotsec_ok(cli_open_store(o->data_dir, &store)) &&
              iotsec_ok(cli_ca_write_crls(&ca, store, time(NULL), o->next_update_days,
                                          CLI_ROOT_CRL_NEXT_UPDATE_DAYS));
    iotsec_store_close(store);
    cli_ca_close(&ca);
    if (!ok)
        return cli_fail();
    fprintf(stderr, "iotsec: CRL written to %s/%s\n", o->data_dir, IOTSEC_REGISTRY_CRL);
    return CLI_EXIT_OK;
}

static int show_cert(const char *dir, const char *name)
{
    char path[CLI_PATH_MAX];
    struct iotsec_buf pem;
    iotsec_buf_init(&pem);
    struct iotsec_pki_peer info;
    bool ok = iotsec_ok(cli_data_path(dir, name, path, sizeof(path))) &&
              iotsec_ok(iotsec_file_read(path, IOTSEC_PKI_CERT_DER_MAX * 2, &pem)) &&
              iotsec_ok(iotsec_pki_cert_describe(iotsec_buf_slice(&pem), &info));
    iotsec_buf_free(&pem);
    if (!ok)
        return cli_fail();
    struct tm tm;
    char until[32];
    gmtime_r(&info.not_after, &tm);
    strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-16s serial %s  sha256 %s  until %s\n", name, info.serial, info.fingerprint, until);
    return CLI_EXIT_OK;
}

static int do_show(const struct ca_opts *o)
{
    char path[CLI_PATH_MAX];
    /* Reads only public files: no key is opened. */
    int rc = show_cert(o->data_dir, IOTSEC_REGISTRY_CA_CERT);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (!iotsec_ok(cli_data_path(o->data_dir, IOTSEC_REGISTRY_ISSUING_CERT, path, sizeof(path))))
        return cli_fail();
    if (iotsec_file_exists(path) &&
        (rc = show_cert(o->data_dir, IOTSEC_REGISTRY_ISSUING_CERT)) != 0)
        return rc;
    return CLI_EXIT_OK;
}

static int do_server_cert(const struct ca_opts *o)
{
    struct cli_server_cert_opts sc = {.data_dir = o->data_dir,
                                      .vault = &o->vault,
                                      .dns = o->dns,
                                      .n_dns = o->n_dns,
                                      .ips = o->ips,
                                      .n_ips = o->n_ips,
                                      .days = o->days_given ? o->days : 0};
    char cert_path[CLI_PATH_MAX];
    if (!iotsec_ok(cli_ca_server_cert(&sc, cert_path, sizeof(cert_path))))
        return cli_fail();
    fprintf(stderr, "iotsec: server certificate written to %s (key beside it, mode 0600)\n",
            cert_path);
    return CLI_EXIT_OK;
}

int cmd_ca(int argc, char **argv)
{
    enum {
        OPT_HSM = 1000,
        OPT_NAME,
        OPT_DAYS,
        OPT_INTERMEDIATE,
        OPT_NEXT_UPDATE,
        OPT_DNS,
        OPT_IP,
        OPT_HELP
    };
    static const struct option options[] = {
        CLI_VAULT_OPTIONS,
        {"hsm", required_argument, NULL, OPT_HSM},
        {"name", required_argument, NULL, OPT_NAME},
        {"days", required_argument, NULL, OPT_DAYS},
        {"intermediate", no_argument, NULL, OPT_INTERMEDIATE},
        {"next-update-days", required_argument, NULL, OPT_NEXT_UPDATE},
        {"dns", required_argument, NULL, OPT_DNS},
        {"ip", required_argument, NULL, OPT_IP},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (cli_require_exact_options(argc, argv, options, "ca") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    struct ca_opts o = {.vault = {.scrypt_log2n = 15},
                        .name = "iotsec root CA",
                        .days = 3650,
                        .next_update_days = CLI_CRL_NEXT_UPDATE_DAYS};
    int c, index = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (optarg != NULL && optarg[0] == '\0')
            return cli_usage_error("ca: option '--%s' needs a value", options[index].name);
        if (cli_vault_option(c, optarg, &o.data_dir, &o.vault))
            continue;
        switch (c) {
        case OPT_HSM:
            o.hsm_label = optarg;
            break;
        case OPT_NAME:
            o.name = optarg;
            break;
        case OPT_DAYS:
            if (!cli_parse_u32(optarg, 1, IOTSEC_PKI_VALIDITY_DAYS_MAX, &o.days))
                return cli_usage_error("ca: --days must be a number from 1 to %d",
                                       IOTSEC_PKI_VALIDITY_DAYS_MAX);
            o.days_given = true;
            break;
        case OPT_DNS:
        case OPT_IP:
            if (o.n_dns + o.n_ips >= IOTSEC_PKI_SERVER_NAMES_MAX)
                return cli_usage_error("ca: at most %d names", IOTSEC_PKI_SERVER_NAMES_MAX);
            if (c == OPT_DNS)
                o.dns[o.n_dns++] = optarg;
            else
                o.ips[o.n_ips++] = optarg;
            break;
        case OPT_INTERMEDIATE:
            o.intermediate = true;
            break;
        case OPT_NEXT_UPDATE:
            if (!cli_parse_u32(optarg, 1, 366, &o.next_update_days))
                return cli_usage_error("ca: --next-update-days must be a number from 1 to 366");
            break;
        case 'h':
        case OPT_HELP:
            ca_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("ca: unknown or incomplete option '%s' (see --help)",
                                   argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("ca: which action? init, crl, show or server-cert (see --help)");
    const char *action = argv[optind++];
    if (optind < argc)
        return cli_usage_error("ca %s: unexpected argument '%s'", action, argv[optind]);

    o.data_dir = cli_data_dir(o.data_dir);
    cli_vault_opts_from_env(&o.vault);
    char vault_path[CLI_PATH_MAX];
    if (o.vault.vault_path == NULL) {
        if (!iotsec_ok(
                cli_data_path(o.data_dir, IOTSEC_REGISTRY_VAULT, vault_path, sizeof(vault_path))))
            return cli_fail();
        o.vault.vault_path = vault_path;
    }
    if (strcmp(action, "init") == 0)
        return do_init(&o);
    if (strcmp(action, "crl") == 0)
        return do_crl(&o);
    if (strcmp(action, "show") == 0)
        return do_show(&o);
    if (strcmp(action, "server-cert") == 0)
        return do_server_cert(&o);
    return cli_usage_error("ca: unknown action '%s': init, crl, show or server-cert", action);
}
