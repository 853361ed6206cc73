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

#define ROOT_KEY_ENTRY    "ca-root.key"
#define ISSUING_KEY_ENTRY "ca-issuing.key"

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

/* The material init gathers in memory before writing anything. */
struct ca_init {
    struct cli_key_material km;
    struct iotsec_key *root_key, *issuing_key;
    struct iotsec_registry_token_signer token;
    struct iotsec_pki_signer root_signer;
    struct iotsec_buf root_pem, issuing_pem, root_key_pem, issuing_key_pem;
    struct iotsec_pki_ca *root, *issuing;
    char root_ref[256];
};

static void ca_init_free(struct ca_init *c)
{
    iotsec_pki_ca_free(c->issuing);
    iotsec_pki_ca_free(c->root);
    iotsec_key_free(c->root_key);
    iotsec_key_free(c->issuing_key);
    if (c->token.public_key != NULL)
        iotsec_registry_token_signer_clear(&c->token);
    iotsec_buf_free(&c->root_pem);
    iotsec_buf_free(&c->issuing_pem);
    iotsec_buf_free(&c->root_key_pem);
    iotsec_buf_free(&c->issuing_key_pem);
    cli_key_material_free(&c->km);
}

static iotsec_result refuse_existing_ca(const char *dir)
{
    static const char *const files[] = {IOTSEC_REGISTRY_CA_CERT, IOTSEC_REGISTRY_CA_CONFIG};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[CLI_PATH_MAX];
        IOTSEC_GUARD(cli_data_path(dir, files[i], path, sizeof(path)));
        IOTSEC_ENSURE(!iotsec_file_exists(path), IOTSEC_ERR_EXISTS,
                      "ca init: %s exists: this data directory already has a CA, and a CA is "
                      "never overwritten",
                      path);
    }
    return IOTSEC_RESULT_OK;
}

/* The root's key: made in the token, or in memory for the vault. */
static iotsec_result make_root_key(const struct ca_opts *o, struct ca_init *c)
{
    if (o->hsm_label != NULL) {
        IOTSEC_GUARD(cli_open_token(&o->vault, &c->km));
        IOTSEC_GUARD(iotsec_hsm_keygen_ec(c->km.hsm, o->hsm_label));
        IOTSEC_GUARD(iotsec_registry_token_signer_init(&c->token, c->km.hsm, o->hsm_label));
        c->root_signer = c->token.signer;
        snprintf(c->root_ref, sizeof(c->root_ref), "pkcs11:%s", o->hsm_label);
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_GUARD(iotsec_key_generate(IOTSEC_KEY_EC_P256, &c->root_key));
    IOTSEC_GUARD(iotsec_key_private_to_pem(c->root_key, &c->root_key_pem));
    iotsec_pki_signer_from_key(c->root_key, &c->root_signer);
    snprintf(c->root_ref, sizeof(c->root_ref), "vault:%s", ROOT_KEY_ENTRY);
    return IOTSEC_RESULT_OK;
}

static iotsec_result make_certificates(const struct ca_opts *o, struct ca_init *c, time_t now)
{
    struct iotsec_pki_ca_params root = {
        .common_name = o->name, .validity_days = o->days, .now = now};
    IOTSEC_GUARD(iotsec_pki_ca_create_root(&c->root_signer, &root, &c->root_pem));
    IOTSEC_GUARD(iotsec_pki_ca_open(iotsec_buf_slice(&c->root_pem), &c->root_signer, &c->root));
    if (!o->intermediate)
        return IOTSEC_RESULT_OK;
    IOTSEC_GUARD(iotsec_key_generate(IOTSEC_KEY_EC_P256, &c->issuing_key));
    IOTSEC_GUARD(iotsec_key_private_to_pem(c->issuing_key, &c->issuing_key_pem));
    char cn[80];
    snprintf(cn, sizeof(cn), "%.50s issuing", o->name);
    struct iotsec_pki_ca_params inter = {
        .common_name = cn, .validity_days = o->days < 1825 ? o->days : 1825, .now = now};
    IOTSEC_GUARD(
        iotsec_pki_ca_create_intermediate(c->root, c->issuing_key, &inter, &c->issuing_pem));
    return IOTSEC_RESULT_OK;
}

/* Keys kept in the vault go there first: if that fails, no CA file exists yet. The vault
 * is created (passphrase) when the data directory has none. */
static iotsec_result store_keys(const struct ca_opts *o, struct ca_init *c)
{
    if (c->root_key_pem.len == 0 && c->issuing_key_pem.len == 0)
        return IOTSEC_RESULT_OK;
    struct iotsec_vault *v = NULL;
    if (iotsec_file_exists(o->vault.vault_path)) {
        IOTSEC_GUARD(cli_vault_existing_key(&o->vault, &c->km));
        IOTSEC_GUARD(iotsec_vault_open(o->vault.vault_path, &c->km.key, IOTSEC_VAULT_WRITE, &v));
    } else {
        IOTSEC_GUARD(cli_vault_new_key(&o->vault, o->vault.passphrase_file, NULL, &c->km));
        IOTSEC_GUARD(iotsec_vault_create(o->vault.vault_path, &c->km.key, &v));
    }
    iotsec_result r = IOTSEC_RESULT_OK;
    if (c->root_key_pem.len > 0)
        r = iotsec_vault_put(v, ROOT_KEY_ENTRY, iotsec_buf_slice(&c->root_key_pem));
    if (iotsec_ok(r) && c->issuing_key_pem.len > 0)
        r = iotsec_vault_put(v, ISSUING_KEY_ENTRY, iotsec_buf_slice(&c->issuing_key_pem));
    if (iotsec_ok(r))
        r = iotsec_vault_save(v);
    iotsec_vault_close(v);
    return r;
}

static iotsec_result write_file(const char *dir, const char *name, const struct iotsec_buf *data)
{
    char path[CLI_PATH_MAX];
    IOTSEC_GUARD(cli_data_path(dir, name, path, sizeof(path)));
    return iotsec_file_write_atomic(path, iotsec_buf_slice(data), 0644);
}

static iotsec_result write_ca_files(const struct ca_opts *o, struct ca_init *c, time_t now)
{
    const char *dir = o->data_dir;
    struct iotsec_pki_signer issuing_signer;
    if (o->intermediate) {
        iotsec_pki_signer_from_key(c->issuing_key, &issuing_signer);
        IOTSEC_GUARD(
            iotsec_pki_ca_open(iotsec_buf_slice(&c->issuing_pem), &issuing_signer, &c->issuing));
    }
    struct cli_ca view = {.root = c->root, .issuing = c->issuing};
    snprintf(view.dir, sizeof(view.dir), "%s", dir);
    IOTSEC_GUARD(cli_ca_write_crls(&view, NULL, now, CLI_CRL_NEXT_UPDATE_DAYS,
                                   CLI_ROOT_CRL_NEXT_UPDATE_DAYS));
    if (o->intermediate)
        IOTSEC_GUARD(write_file(dir, IOTSEC_REGISTRY_ISSUING_CERT, &c->issuing_pem));
    IOTSEC_GUARD(
        cli_ca_write_config(dir, c->root_ref, o->intermediate ? "vault:" ISSUING_KEY_ENTRY : NULL));
    /* Last: ca.crt is what says "this directory has a CA". */
    return write_file(dir, IOTSEC_REGISTRY_CA_CERT, &c->root_pem);
}

static int do_init(const struct ca_opts *o)
{
    struct ca_init c = {0};
    cli_key_material_init(&c.km);
    iotsec_buf_init(&c.root_pem);
    iotsec_buf_init(&c.issuing_pem);
    iotsec_buf_init_secret(&c.root_key_pem);
    iotsec_buf_init_secret(&c.issuing_key_pem);
    time_t now = time(NULL);
    bool ok = iotsec_ok(cli_data_prepare(o->data_dir)) &&
              iotsec_ok(refuse_existing_ca(o->data_dir)) && iotsec_ok(make_root_key(o, &c)) &&
              iotsec_ok(make_certificates(o, &c, now)) && iotsec_ok(store_keys(o, &c)) &&
              iotsec_ok(write_ca_files(o, &c, now));
    ca_init_free(&c);
    if (!ok)
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

/* The server's key is a file of mode 0600 beside the certificate: the servers load it at
 * every start and on SIGHUP without asking for the vault passphrase. */
static int do_server_cert(const struct ca_opts *o)
{
    static const char *const default_dns[] = {"localhost"};
    static const char *const default_ips[] = {"127.0.0.1", "::1"};
    struct iotsec_pki_server_params params = {
        .dns_names = o->n_dns + o->n_ips > 0 ? o->dns : default_dns,
        .dns_count = o->n_dns + o->n_ips > 0 ? o->n_dns : 1,
        .ip_addresses = o->n_dns + o->n_ips > 0 ? o->ips : default_ips,
        .ip_count = o->n_dns + o->n_ips > 0 ? o->n_ips : 2,
        .validity_days = o->days_given ? o->days : 365,
        .now = time(NULL),
    };
    struct cli_ca ca;
    struct iotsec_key *key = NULL;
    struct iotsec_buf pem;
    iotsec_buf_init(&pem);
    char cert_path[CLI_PATH_MAX], key_path[CLI_PATH_MAX];
    bool ok = iotsec_ok(cli_data_path(o->data_dir, IOTSEC_REGISTRY_SERVER_CERT, cert_path,
                                      sizeof(cert_path))) &&
              iotsec_ok(cli_data_path(o->data_dir, IOTSEC_REGISTRY_SERVER_KEY, key_path,
                                      sizeof(key_path))) &&
              iotsec_ok(cli_ca_open(o->data_dir, &o->vault, false, &ca)) &&
              iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &key)) &&
              iotsec_ok(iotsec_pki_issue_server(cli_ca_issuer(&ca), &params, key, &pem, NULL));
    /* With an intermediate, the server sends it too, so clients need only ca.crt. */
    if (ok && ca.issuing != NULL)
        ok = iotsec_ok(iotsec_pki_ca_cert_pem(ca.issuing, &pem));
    if (ok)
        ok = iotsec_ok(iotsec_key_save_private_pem(key, key_path)) &&
             iotsec_ok(iotsec_file_write_atomic(cert_path, iotsec_buf_slice(&pem), 0644));
    cli_ca_close(&ca);
    iotsec_key_free(key);
    iotsec_buf_free(&pem);
    if (!ok)
        return cli_fail();
    fprintf(stderr, "iotsec: server certificate written to %s (key %s)\n", cert_path, key_path);
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
