/*
 * `iotsec device`: a device's life in the registry.
 *
 *   iotsec device issue --id ID [--csr FILE] [--model M] [--days N] [--out DIR] [--renew]
 *   iotsec device revoke ID [--reason R]
 *   iotsec device disable ID | enable ID
 *   iotsec device list [--status S] | show ID
 *   iotsec device verify --cert FILE [--at TIME]
 *
 * Every change is one store transaction, and a change of state writes a fresh CRL at
 * once, so the registry and DIR/ca.crl agree when the command returns. `verify` makes the
 * check the servers make (chain, validity, EKU, CRL, registry) on a certificate file.
 */
#include "cli.h"

#include "iotsec/event.h"
#include "iotsec/eventlog.h"
#include "iotsec/file.h"
#include "iotsec/store.h"
#include "iotsec/time.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CSR_MAX ((size_t)64 * 1024)

struct device_opts {
    const char *data_dir;
    struct cli_vault_opts vault;
    const char *id;
    const char *csr;
    const char *model;
    const char *out_dir;
    const char *cert;
    const char *at;
    const char *status;
    const char *reason;
    uint32_t days;
    bool renew;
};

static void device_usage(FILE *out)
{
    fprintf(out,
            "usage: iotsec device <action> [options]\n"
            "\n"
            "  issue --id ID        enrol a device and issue its client certificate; without\n"
            "                       --csr a key pair is made for it (needs --out)\n"
            "  revoke ID            revoke the device, its certificates and API keys (final)\n"
            "  disable ID           refuse the device until it is enabled again\n"
            "  enable ID            accept a disabled device again\n"
            "  list                 devices, one per line\n"
            "  show ID              one device and its certificates\n"
            "  verify --cert FILE   check a certificate as the servers do\n"
            "\n"
            "options:\n"
            "  --data DIR           data directory (default $IOTSEC_DATA, else ./var)\n"
            "  --csr FILE           issue: the device's PKCS#10 request (PEM)\n"
            "  --model M            issue: the device model, recorded in the registry\n"
            "  --days N             issue: certificate validity in days (default 365)\n"
            "  --out DIR            issue: write ID.crt (and ID.key, mode 0600) there;\n"
            "                       without it the certificate goes to stdout\n"
            "  --renew              issue: new certificate for an enrolled, active device; the\n"
            "                       old one is revoked (superseded)\n"
            "  --reason R           revoke: unspecified (default), key-compromise,\n"
            "                       ca-compromise, affiliation-changed, superseded,\n"
            "                       cessation-of-operation, privilege-withdrawn\n"
            "  --status S           list: only active, disabled or revoked devices\n"
            "  --cert FILE          verify: the device's certificate (and chain), PEM or DER\n"
            "  --at TIME            verify: check at this RFC 3339 time instead of now\n"
            "  --vault FILE, --passphrase-file FILE, --hsm-module PATH, --token LABEL,\n"
            "  --pin-file FILE      where the CA key is, as for `iotsec ca`\n");
}

/* ---- issue ---- */

struct issue_files {
    char cert_path[CLI_PATH_MAX];
    char key_path[CLI_PATH_MAX];
    const struct iotsec_key *key; /* NULL with a CSR */
    bool written;
};

static iotsec_result write_issued(void *ctx, struct iotsec_slice cert_pem,
                                  const struct iotsec_pki_issued *info)
{
    (void)info;
    struct issue_files *f = ctx;
    if (f->cert_path[0] == '\0')
        return IOTSEC_RESULT_OK;
    f->written = true;
    if (f->key != NULL)
        IOTSEC_GUARD(iotsec_key_save_private_pem(f->key, f->key_path));
    return iotsec_file_write_atomic(f->cert_path, cert_pem, 0644);
}

static iotsec_result plan_files(const struct device_opts *o, struct issue_files *f)
{
    if (o->out_dir == NULL)
        return IOTSEC_RESULT_OK;
    char name[IOTSEC_PKI_DEVICE_ID_MAX + 8];
    snprintf(name, sizeof(name), "%s.crt", o->id);
    IOTSEC_GUARD(cli_data_path(o->out_dir, name, f->cert_path, sizeof(f->cert_path)));
    snprintf(name, sizeof(name), "%s.key", o->id);
    IOTSEC_GUARD(cli_data_path(o->out_dir, name, f->key_path, sizeof(f->key_path)));
    if (o->renew)
        return IOTSEC_RESULT_OK;
    IOTSEC_ENSURE(!iotsec_file_exists(f->cert_path), IOTSEC_ERR_EXISTS,
                  "device issue: %s exists; not overwriting it", f->cert_path);
    IOTSEC_ENSURE(o->csr != NULL || !iotsec_file_exists(f->key_path), IOTSEC_ERR_EXISTS,
                  "device issue: %s exists; not overwriting it", f->key_path);
    return IOTSEC_RESULT_OK;
}

static void print_issued(const char *id, const struct iotsec_pki_issued *info)
{
    struct tm tm;
    char until[32];
    gmtime_r(&info->not_after, &tm);
    strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "iotsec: device %s: certificate serial %s, sha256 %s, valid until %s\n", id,
            info->serial, info->fingerprint, until);
}

static int do_issue(const struct device_opts *o)
{
    if (o->id == NULL)
        return cli_usage_error("device issue: --id ID is required");
    if (!iotsec_pki_device_id_valid(o->id))
        return cli_usage_error("device issue: --id must be 1 to 64 characters of [A-Za-z0-9_-]");
    if (o->csr == NULL && o->out_dir == NULL)
        return cli_usage_error("device issue: without --csr a key is made, so --out DIR is "
                               "required (keys never go to stdout)");

    struct iotsec_buf csr, cert;
    iotsec_buf_init(&csr);
    iotsec_buf_init(&cert);
    struct iotsec_key *key = NULL;
    struct iotsec_store *store = NULL;
    struct cli_ca ca = {0};
    struct issue_files files = {0};
    struct iotsec_pki_issued info;
    time_t now = time(NULL);

    bool ok = iotsec_ok(plan_files(o, &files)) &&
              (o->csr != NULL ? iotsec_ok(iotsec_file_read(o->csr, CSR_MAX, &csr))
                              : iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &key))) &&
              iotsec_ok(cli_open_store(o->data_dir, &store)) &&
              iotsec_ok(cli_ca_open(o->data_dir, &o->vault, false, &ca));
    if (ok) {
        files.key = key;
        struct iotsec_registry_enrolment e = {
            .device_id = o->id,
            .model = o->model,
            .validity_days = o->days,
            .now = now,
            .csr_pem = iotsec_buf_slice(&csr),
            .public_key = key,
            .renew = o->renew,
            .on_issued = write_issued,
            .on_issued_ctx = &files,
        };
        ok = iotsec_ok(iotsec_registry_enrol(store, cli_ca_issuer(&ca), &e, &cert, &info));
        if (!ok && files.written && !o->renew) {
            /* Recorded nothing: take back what was written for it. */
            unlink(files.cert_path);
            if (key != NULL)
                unlink(files.key_path);
        }
    }
    /* A renewal put the old certificate on the CRL: publish it now. */
    if (ok && o->renew)
        ok = iotsec_ok(cli_ca_write_crls(&ca, store, now, CLI_CRL_NEXT_UPDATE_DAYS,
                                         CLI_ROOT_CRL_NEXT_UPDATE_DAYS));
    if (ok && o->out_dir == NULL && fwrite(cert.ptr, 1, cert.len, stdout) != cert.len) {
        iotsec_error_set(IOTSEC_ERR_IO, "device issue: cannot write the certificate to stdout");
        ok = false;
    }
    cli_ca_close(&ca);
    iotsec_store_close(store);
    iotsec_key_free(key);
    iotsec_buf_free(&csr);
    iotsec_buf_free(&cert);
    if (!ok)
        return cli_fail();
    print_issued(o->id, &info);
    return CLI_EXIT_OK;
}

/* ---- revoke, disable, enable ---- */

static const struct {
    const char *name;
    enum iotsec_pki_crl_reason reason;
} reasons[] = {
    {"unspecified", IOTSEC_PKI_REASON_UNSPECIFIED},
    {"key-compromise", IOTSEC_PKI_REASON_KEY_COMPROMISE},
    {"ca-compromise", IOTSEC_PKI_REASON_CA_COMPROMISE},
    {"affiliation-changed", IOTSEC_PKI_REASON_AFFILIATION_CHANGED},
    {"superseded", IOTSEC_PKI_REASON_SUPERSEDED},
    {"cessation-of-operation", IOTSEC_PKI_REASON_CESSATION_OF_OPERATION},
    {"privilege-withdrawn", IOTSEC_PKI_REASON_PRIVILEGE_WITHDRAWN},
};

static bool parse_reason(const char *name, enum iotsec_pki_crl_reason *out)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcmp(name, reasons[i].name) == 0) {
            *out = reasons[i].reason;
            return true;
        }
    }
    return false;
}

/* The change and its security event commit together: the log never misses a revocation
 * that happened, nor records one that did not. */
struct change {
    const char *device_id;
    const char *action;
    enum iotsec_pki_crl_reason reason;
    const char *reason_name;
    time_t now;
    size_t certs;
};

static iotsec_result change_in_tx(struct iotsec_store *s, void *ctx)
{
    struct change *c = ctx;
    bool revoke = strcmp(c->action, "revoke") == 0;
    if (revoke)
        IOTSEC_GUARD(iotsec_registry_revoke(s, c->device_id, c->reason, c->now, &c->certs));
    else
        IOTSEC_GUARD(
            iotsec_registry_set_enabled(s, c->device_id, strcmp(c->action, "enable") == 0, c->now));
    /* Enabling has no event type of its own: it is the lifting of a disable, which the
     * log already holds. */
    if (strcmp(c->action, "enable") == 0)
        return IOTSEC_RESULT_OK;
    char details[160];
    if (revoke)
        snprintf(details, sizeof(details),
                 "{\"actor\":\"cli\",\"reason\":\"%s\",\"certificatesRevoked\":%zu}",
                 c->reason_name, c->certs);
    else
        snprintf(details, sizeof(details), "{\"actor\":\"cli\"}");
    struct iotsec_event ev = {
        .ts = (int64_t)c->now * 1000,
        .type = revoke ? IOTSEC_EVENT_DEVICE_REVOKED : IOTSEC_EVENT_DEVICE_DISABLED,
        .device_id = c->device_id,
        .details = details,
    };
    struct iotsec_store_event rec = {0};
    IOTSEC_GUARD(iotsec_event_to_record(&ev, &rec)); /* rec borrows ev's details */
    return iotsec_eventlog_append(s, &rec);
}

static int do_change(const struct device_opts *o, const char *action)
{
    enum iotsec_pki_crl_reason reason = IOTSEC_PKI_REASON_UNSPECIFIED;
    if (o->reason != NULL && !parse_reason(o->reason, &reason))
        return cli_usage_error("device revoke: unknown --reason '%s' (see --help)", o->reason);
    if (!iotsec_pki_device_id_valid(o->id))
        return cli_usage_error("device %s: '%s' is not a device id ([A-Za-z0-9_-]{1,64})", action,
                               o->id);
    struct iotsec_store *store = NULL;
    struct cli_ca ca = {0};
    time_t now = time(NULL);
    size_t certs = 0;
    /* The CA is opened first: a change is not made when its CRL cannot be written. */
    bool ok = iotsec_ok(cli_open_store(o->data_dir, &store)) &&
              iotsec_ok(cli_ca_open(o->data_dir, &o->vault, false, &ca));
    struct change change = {.device_id = o->id,
                            .action = action,
                            .reason = reason,
                            .reason_name = o->reason != NULL ? o->reason : "unspecified",
                            .now = now};
    if (ok)
        ok = iotsec_ok(iotsec_store_transaction(store, change_in_tx, &change));
    certs = change.certs;
    if (ok)
        ok = iotsec_ok(cli_ca_write_crls(&ca, store, now, CLI_CRL_NEXT_UPDATE_DAYS,
                                         CLI_ROOT_CRL_NEXT_UPDATE_DAYS));
    cli_ca_close(&ca);
    iotsec_store_close(store);
    if (!ok)
        return cli_fail();
    if (strcmp(action, "revoke") == 0)
        fprintf(stderr, "iotsec: device %s revoked (%zu certificate%s); CRL updated\n", o->id,
                certs, certs == 1 ? "" : "s");
    else
        fprintf(stderr, "iotsec: device %s %sd; CRL updated\n", o->id, action);
    return CLI_EXIT_OK;
}

/* ---- list, show ---- */

static void print_time_ms(int64_t ms)
{
    char text[IOTSEC_TIME_STR_MAX];
    struct iotsec_time t = {.sec = ms / 1000, .nsec = 0};
    if (ms == 0 || !iotsec_ok(iotsec_time_format(t, IOTSEC_TIME_SECONDS, text)))
        snprintf(text, sizeof(text), "-");
    fputs(text, stdout);
}

static int do_list(const struct device_opts *o)
{
    enum iotsec_store_device_status status = IOTSEC_STORE_DEVICE_ANY;
    if (o->status != NULL && !iotsec_ok(iotsec_store_device_status_parse(o->status, &status)))
        return cli_usage_error("device list: --status: %s", iotsec_error_message());
    struct iotsec_store *store = NULL;
    if (!iotsec_ok(cli_open_store(o->data_dir, &store)))
        return cli_fail();
    char after[IOTSEC_STORE_ID_MAX + 1] = "";
    bool ok = true, more = true;
    while (ok && more) {
        struct iotsec_store_device_list list = {0};
        struct iotsec_store_page page = {.after = after, .limit = IOTSEC_STORE_LIST_MAX};
        ok = iotsec_ok(iotsec_store_device_list(store, status, &page, &list));
        for (size_t i = 0; ok && i < list.count; i++) {
            const struct iotsec_store_device *d = &list.items[i];
            printf("%-24s %-8s %-16s %.16s  ", d->id, iotsec_store_device_status_name(d->status),
                   d->model[0] != '\0' ? d->model : "-",
                   d->cert_fingerprint[0] != '\0' ? d->cert_fingerprint : "-");
            print_time_ms(d->updated_at);
            putchar('\n');
        }
        more = ok && list.more && list.count > 0;
        if (more)
            snprintf(after, sizeof(after), "%s", list.items[list.count - 1].id);
        iotsec_store_device_list_free(&list);
    }
    iotsec_store_close(store);
    if (ok && fflush(stdout) != 0)
        ok = false, iotsec_error_set(IOTSEC_ERR_IO, "device list: cannot write to stdout");
    return ok ? CLI_EXIT_OK : cli_fail();
}

static int do_show(const struct device_opts *o)
{
    struct iotsec_store *store = NULL;
    struct iotsec_store_device d = {0};
    struct iotsec_store_cert_list certs = {0};
    bool ok = iotsec_ok(cli_open_store(o->data_dir, &store)) &&
              iotsec_ok(iotsec_store_device_get(store, o->id, &d)) &&
              iotsec_ok(iotsec_store_cert_list_by_device(store, o->id, NULL, &certs));
    if (ok) {
        printf("id          %s\nstatus      %s\nmodel       %s\nfingerprint %s\nserial      "
               "%s\npublic key  %s\ncreated     ",
               d.id, iotsec_store_device_status_name(d.status), d.model,
               d.cert_fingerprint[0] != '\0' ? d.cert_fingerprint : "-",
               d.cert_serial[0] != '\0' ? d.cert_serial : "-",
               d.public_key_pem != NULL && d.public_key_pem[0] != '\0' ? "yes" : "no");
        print_time_ms(d.created_at);
        printf("\nupdated     ");
        print_time_ms(d.updated_at);
        printf("\ncertificates:\n");
        for (size_t i = 0; i < certs.count; i++) {
            const struct iotsec_store_cert *c = &certs.items[i];
            printf("  %s  issued ", c->serial);
            print_time_ms(c->issued_at);
            printf("  until ");
            print_time_ms(c->not_after);
            if (c->revoked_at != 0) {
                printf("  revoked ");
                print_time_ms(c->revoked_at);
            }
            putchar('\n');
        }
    }
    iotsec_store_cert_list_free(&certs);
    iotsec_store_device_clear(&d);
    iotsec_store_close(store);
    return ok ? CLI_EXIT_OK : cli_fail();
}

/* ---- verify ---- */

static int do_verify(const struct device_opts *o)
{
    if (o->cert == NULL)
        return cli_usage_error("device verify: --cert FILE is required");
    time_t at = time(NULL);
    if (o->at != NULL) {
        struct iotsec_time t;
        if (!iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(o->at), &t)))
            return cli_usage_error("device verify: --at: %s", iotsec_error_message());
        at = (time_t)t.sec;
    }
    struct iotsec_buf chain;
    iotsec_buf_init(&chain);
    struct iotsec_pki_verifier *v = NULL;
    struct iotsec_store *store = NULL;
    struct iotsec_pki_peer peer;
    enum iotsec_registry_refusal why = IOTSEC_REGISTRY_ACCEPTED;
    bool ok = iotsec_ok(iotsec_file_read(o->cert, IOTSEC_PKI_CHAIN_MAX, &chain)) &&
              iotsec_ok(iotsec_registry_load_verifier(o->data_dir, &v)) &&
              iotsec_ok(cli_open_store(o->data_dir, &store));
    bool setup = ok;
    if (ok)
        ok = iotsec_ok(
            iotsec_registry_verify_client(v, store, iotsec_buf_slice(&chain), at, &peer, &why));
    iotsec_store_close(store);
    iotsec_pki_verifier_free(v);
    iotsec_buf_free(&chain);
    if (!ok && setup) {
        fprintf(stderr, "iotsec: refused (%s): %s\n", iotsec_registry_refusal_name(why),
                iotsec_error_message());
        return CLI_EXIT_FAIL;
    }
    if (!ok)
        return cli_fail();
    printf("accepted: device %s, sha256 %s, serial %s\n", peer.device_id, peer.fingerprint,
           peer.serial);
    return CLI_EXIT_OK;
}

/* ---- options ---- */

static const char *const takes_id[] = {"revoke", "disable", "enable", "show", NULL};

static bool action_takes_id(const char *action)
{
    for (const char *const *a = takes_id; *a != NULL; a++)
        if (strcmp(*a, action) == 0)
            return true;
    return false;
}

int cmd_device(int argc, char **argv)
{
    enum {
        OPT_ID = 1000,
        OPT_CSR,
        OPT_MODEL,
        OPT_DAYS,
        OPT_OUT,
        OPT_RENEW,
        OPT_REASON,
        OPT_STATUS,
        OPT_CERT,
        OPT_AT,
        OPT_HELP
    };
    static const struct option options[] = {
        CLI_VAULT_OPTIONS,
        {"id", required_argument, NULL, OPT_ID},
        {"csr", required_argument, NULL, OPT_CSR},
        {"model", required_argument, NULL, OPT_MODEL},
        {"days", required_argument, NULL, OPT_DAYS},
        {"out", required_argument, NULL, OPT_OUT},
        {"renew", no_argument, NULL, OPT_RENEW},
        {"reason", required_argument, NULL, OPT_REASON},
        {"status", required_argument, NULL, OPT_STATUS},
        {"cert", required_argument, NULL, OPT_CERT},
        {"at", required_argument, NULL, OPT_AT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    if (cli_require_exact_options(argc, argv, options, "device") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    struct device_opts o = {.vault = {.scrypt_log2n = 15}, .days = 365};
    int c, index = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (optarg != NULL && optarg[0] == '\0')
            return cli_usage_error("device: option '--%s' needs a value", options[index].name);
        if (cli_vault_option(c, optarg, &o.data_dir, &o.vault))
            continue;
        switch (c) {
        case OPT_ID:
            o.id = optarg;
            break;
        case OPT_CSR:
            o.csr = optarg;
            break;
        case OPT_MODEL:
            o.model = optarg;
            break;
        case OPT_DAYS:
            if (!cli_parse_u32(optarg, 1, IOTSEC_PKI_VALIDITY_DAYS_MAX, &o.days))
                return cli_usage_error("device: --days must be a number from 1 to %d",
                                       IOTSEC_PKI_VALIDITY_DAYS_MAX);
            break;
        case OPT_OUT:
            o.out_dir = optarg;
            break;
        case OPT_RENEW:
            o.renew = true;
            break;
        case OPT_REASON:
            o.reason = optarg;
            break;
        case OPT_STATUS:
            o.status = optarg;
            break;
        case OPT_CERT:
            o.cert = optarg;
            break;
        case OPT_AT:
            o.at = optarg;
            break;
        case 'h':
        case OPT_HELP:
            device_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("device: unknown or incomplete option '%s' (see --help)",
                                   argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("device: which action? issue, revoke, disable, enable, list, "
                               "show or verify (see --help)");
    const char *action = argv[optind++];
    if (action_takes_id(action)) {
        if (optind >= argc)
            return cli_usage_error("device %s: which device? (device %s ID)", action, action);
        o.id = argv[optind++];
    }
    if (optind < argc)
        return cli_usage_error("device %s: unexpected argument '%s'", action, argv[optind]);
    if (o.reason != NULL && strcmp(action, "revoke") != 0)
        return cli_usage_error("device %s: --reason belongs to revoke", action);

    o.data_dir = cli_data_dir(o.data_dir);
    cli_vault_opts_from_env(&o.vault);
    char vault_path[CLI_PATH_MAX];
    if (o.vault.vault_path == NULL) {
        if (!iotsec_ok(
                cli_data_path(o.data_dir, IOTSEC_REGISTRY_VAULT, vault_path, sizeof(vault_path))))
            return cli_fail();
        o.vault.vault_path = vault_path;
    }
    if (strcmp(action, "issue") == 0)
        return do_issue(&o);
    if (strcmp(action, "revoke") == 0 || strcmp(action, "disable") == 0 ||
        strcmp(action, "enable") == 0)
        return do_change(&o, action);
    if (strcmp(action, "list") == 0)
        return do_list(&o);
    if (strcmp(action, "show") == 0)
        return do_show(&o);
    if (strcmp(action, "verify") == 0)
        return do_verify(&o);
    return cli_usage_error("device: unknown action '%s' (see --help)", action);
}
