/*
 * `iotsec vault`: the operator's door to the encrypted secret store.
 *
 *   iotsec vault init | put NAME | get NAME | list | rm NAME | rekey
 *
 * Values travel through stdin and stdout only. The key is a passphrase (from
 * --passphrase-file, the file named by IOTSEC_PASSPHRASE_FILE, or a prompt on the
 * terminal) or an AES key in a PKCS#11 token (--hsm-module, --token, --pin-file,
 * --hsm-key). Every failure leaves the vault file exactly as it was.
 */
#include "cli.h"

#include "iotsec/file.h"
#include "iotsec/vault.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void vault_usage(FILE *out)
{
    fprintf(out,
            "usage: iotsec vault <init|put NAME|get NAME|list|rm NAME|rekey> [options]\n"
            "\n"
            "  init         create a new, empty vault (never overwrites one)\n"
            "  put NAME     store the bytes read from stdin under NAME\n"
            "  get NAME     write the secret NAME to stdout, byte for byte\n"
            "  list         the names, one per line\n"
            "  rm NAME      remove NAME\n"
            "  rekey        new data key and new passphrase or token key\n"
            "\n"
            "options:\n"
            "  --data DIR                data directory (default $IOTSEC_DATA, else ./var)\n"
            "  --vault FILE              vault file (default DIR/vault)\n"
            "  --passphrase-file FILE    passphrase (mode 0600); default $IOTSEC_PASSPHRASE_FILE,\n"
            "                            else a prompt on the terminal\n"
            "  --scrypt-log2n N          scrypt cost for init/rekey, N >= 15 (default 15)\n"
            "  --new-passphrase-file F   rekey: the new passphrase\n"
            "  --hsm-module PATH         PKCS#11 module (default $IOTSEC_PKCS11_MODULE)\n"
            "  --token LABEL             token label (default $IOTSEC_HSM_TOKEN)\n"
            "  --pin-file FILE           user PIN (mode 0600; default $IOTSEC_HSM_PIN_FILE)\n"
            "  --hsm-key LABEL           init: protect the vault with this AES key in the token\n"
            "  --new-hsm-key LABEL       rekey: move the vault to this AES key in the token\n");
}

/* init creates the data directory (0700) when the vault goes in the default place. */
static iotsec_result ensure_parent_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return IOTSEC_RESULT_OK;
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        IOTSEC_BAIL(IOTSEC_ERR_IO, "vault: cannot create directory %s: %s", dir, strerror(errno));
    return IOTSEC_RESULT_OK;
}

static int do_init(const struct cli_vault_opts *o)
{
    struct cli_key_material m;
    cli_key_material_init(&m);
    struct iotsec_vault *v = NULL;
    bool ok = iotsec_ok(cli_vault_new_key(o, o->passphrase_file, o->hsm_key, &m)) &&
              iotsec_ok(ensure_parent_dir(o->vault_path)) &&
              iotsec_ok(iotsec_vault_create(o->vault_path, &m.key, &v));
    iotsec_vault_close(v);
    cli_key_material_free(&m);
    if (!ok)
        return cli_fail();
    fprintf(stderr, "iotsec: vault %s created\n", o->vault_path);
    return CLI_EXIT_OK;
}

static int do_rekey(const struct cli_vault_opts *o)
{
    struct cli_key_material old, fresh;
    cli_key_material_init(&old);
    cli_key_material_init(&fresh);
    struct iotsec_vault *v = NULL;

    bool ok = iotsec_ok(cli_vault_existing_key(o, &old)) &&
              iotsec_ok(iotsec_vault_open(o->vault_path, &old.key, IOTSEC_VAULT_WRITE, &v));
    if (ok) {
        /* Both keys may live in the same token: share the session. */
        fresh.hsm = old.hsm;
        ok = iotsec_ok(cli_vault_new_key(o, o->new_passphrase_file, o->new_hsm_key, &fresh)) &&
             iotsec_ok(iotsec_vault_rekey(v, &fresh.key));
        if (fresh.hsm == old.hsm)
            fresh.hsm = NULL;
    }
    iotsec_vault_close(v);
    cli_key_material_free(&fresh);
    cli_key_material_free(&old);
    if (!ok)
        return cli_fail();
    fprintf(stderr, "iotsec: vault %s has a new key\n", o->vault_path);
    return CLI_EXIT_OK;
}

static int do_entry_command(const char *cmd, const char *name, const struct cli_vault_opts *o)
{
    bool writes = strcmp(cmd, "put") == 0 || strcmp(cmd, "rm") == 0;
    struct cli_key_material m;
    cli_key_material_init(&m);
    struct iotsec_buf value;
    iotsec_buf_init_secret(&value);
    struct iotsec_vault *v = NULL;

    /* put reads the value before touching the vault: a failed read changes nothing. */
    bool ok =
        (name == NULL || iotsec_ok(iotsec_vault_check_name(name))) &&
        (strcmp(cmd, "put") != 0 || iotsec_ok(cli_read_stdin(IOTSEC_VAULT_VALUE_MAX, &value))) &&
        iotsec_ok(cli_vault_existing_key(o, &m)) &&
        iotsec_ok(iotsec_vault_open(o->vault_path, &m.key,
                                    writes ? IOTSEC_VAULT_WRITE : IOTSEC_VAULT_READ, &v));
    if (ok && strcmp(cmd, "put") == 0) {
        ok = iotsec_ok(iotsec_vault_put(v, name, iotsec_buf_slice(&value))) &&
             iotsec_ok(iotsec_vault_save(v));
    } else if (ok && strcmp(cmd, "rm") == 0) {
        ok = iotsec_ok(iotsec_vault_remove(v, name)) && iotsec_ok(iotsec_vault_save(v));
    } else if (ok && strcmp(cmd, "get") == 0) {
        ok = iotsec_ok(iotsec_vault_get(v, name, &value));
        if (ok && fwrite(value.ptr, 1, value.len, stdout) != value.len)
            ok = false, iotsec_error_set(IOTSEC_ERR_IO, "vault: cannot write to stdout");
    } else if (ok) {
        for (size_t i = 0; i < iotsec_vault_count(v); i++)
            printf("%s\n", iotsec_vault_name_at(v, i));
    }
    iotsec_vault_close(v);
    iotsec_buf_free(&value);
    cli_key_material_free(&m);
    if (ok && fflush(stdout) != 0) {
        iotsec_error_set(IOTSEC_ERR_IO, "vault: cannot write to stdout");
        ok = false;
    }
    return ok ? CLI_EXIT_OK : cli_fail();
}

int cmd_vault(int argc, char **argv)
{
    enum {
        OPT_VAULT = 1000,
        OPT_PASS,
        OPT_NEW_PASS,
        OPT_MODULE,
        OPT_TOKEN,
        OPT_PIN,
        OPT_KEY,
        OPT_NEW_KEY,
        OPT_LOG2N,
        OPT_DATA,
        OPT_HELP
    };
    static const struct option options[] = {
        {"vault", required_argument, NULL, OPT_VAULT},
        {"data", required_argument, NULL, OPT_DATA},
        {"passphrase-file", required_argument, NULL, OPT_PASS},
        {"new-passphrase-file", required_argument, NULL, OPT_NEW_PASS},
        {"hsm-module", required_argument, NULL, OPT_MODULE},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"pin-file", required_argument, NULL, OPT_PIN},
        {"hsm-key", required_argument, NULL, OPT_KEY},
        {"new-hsm-key", required_argument, NULL, OPT_NEW_KEY},
        {"scrypt-log2n", required_argument, NULL, OPT_LOG2N},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct cli_vault_opts o = {.scrypt_log2n = 15};
    int c;
    if (cli_require_exact_options(argc, argv, options, "vault") != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case OPT_VAULT:
            o.vault_path = optarg;
            break;
        case OPT_DATA:
            o.data_dir = optarg;
            break;
        case OPT_PASS:
            o.passphrase_file = optarg;
            break;
        case OPT_NEW_PASS:
            o.new_passphrase_file = optarg;
            break;
        case OPT_MODULE:
            o.hsm_module = optarg;
            break;
        case OPT_TOKEN:
            o.hsm_token = optarg;
            break;
        case OPT_PIN:
            o.hsm_pin_file = optarg;
            break;
        case OPT_KEY:
            o.hsm_key = optarg;
            break;
        case OPT_NEW_KEY:
            o.new_hsm_key = optarg;
            break;
        case OPT_LOG2N: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 15 || n > 22)
                return cli_usage_error("vault: --scrypt-log2n must be a number from 15 to 22");
            o.scrypt_log2n = (int)n;
            break;
        }
        case OPT_HELP:
            vault_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("vault: unknown or incomplete option '%s' (see --help)",
                                   argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("vault: missing command: init, put, get, list, rm or rekey");
    const char *cmd = argv[optind++];
    bool takes_name = strcmp(cmd, "put") == 0 || strcmp(cmd, "get") == 0 || strcmp(cmd, "rm") == 0;
    bool known = takes_name || strcmp(cmd, "init") == 0 || strcmp(cmd, "list") == 0 ||
                 strcmp(cmd, "rekey") == 0;
    if (!known)
        return cli_usage_error("vault: unknown command '%s' (init, put, get, list, rm, rekey)",
                               cmd);
    const char *name = NULL;
    if (takes_name) {
        if (optind >= argc)
            return cli_usage_error("vault %s: missing NAME", cmd);
        name = argv[optind++];
    }
    if (optind < argc)
        return cli_usage_error("vault %s: unexpected argument '%s'", cmd, argv[optind]);
    if (strcmp(cmd, "rekey") == 0 && o.new_hsm_key == NULL && o.new_passphrase_file == NULL &&
        !isatty(STDIN_FILENO))
        return cli_usage_error("vault rekey: give --new-passphrase-file or --new-hsm-key");

    cli_vault_opts_from_env(&o);
    if (o.vault_path == NULL) {
        if (!iotsec_ok(cli_data_path(cli_data_dir(o.data_dir), "vault", o.default_path,
                                     sizeof(o.default_path))))
            return cli_fail();
        o.vault_path = o.default_path;
    }

    if (strcmp(cmd, "init") == 0)
        return do_init(&o);
    if (strcmp(cmd, "rekey") == 0)
        return do_rekey(&o);
    return do_entry_command(cmd, name, &o);
}
