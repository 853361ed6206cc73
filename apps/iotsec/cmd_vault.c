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

struct vault_opts {
    const char *vault_path;
    const char *data_dir;
    const char *passphrase_file;
    const char *new_passphrase_file;
    const char *hsm_module;
    const char *hsm_token;
    const char *hsm_pin_file;
    const char *hsm_key;
    const char *new_hsm_key;
    int scrypt_log2n;
    char default_path[4096];
};

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

static const char *env_or(const char *value, const char *env)
{
    return value != NULL ? value : getenv(env);
}

/* The passphrase for opening, or for a new vault (asked twice on a terminal). */
static iotsec_result read_passphrase(const char *file, bool confirm, struct iotsec_buf *pass)
{
    if (file != NULL)
        return cli_read_secret_file(file, "passphrase file", pass);
    const char *prompt = confirm ? "New vault passphrase: " : "Vault passphrase: ";
    if (!iotsec_ok(cli_prompt_secret(prompt, pass))) {
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            iotsec_error_set(IOTSEC_ERR_INVALID_ARG,
                             "vault: no passphrase: give --passphrase-file or set "
                             "IOTSEC_PASSPHRASE_FILE");
        return IOTSEC_RESULT_ERR;
    }
    if (!confirm)
        return IOTSEC_RESULT_OK;
    struct iotsec_buf again;
    iotsec_buf_init_secret(&again);
    iotsec_result r = cli_prompt_secret("Repeat the passphrase: ", &again);
    bool same =
        iotsec_ok(r) && iotsec_slice_equal(iotsec_buf_slice(pass), iotsec_buf_slice(&again));
    iotsec_buf_free(&again);
    IOTSEC_GUARD(r);
    IOTSEC_ENSURE(same, IOTSEC_ERR_INVALID_ARG, "vault: the passphrases do not match");
    return IOTSEC_RESULT_OK;
}

/* Everything needed to open (or create) the vault: kept together so it is freed together. */
struct key_material {
    struct iotsec_buf passphrase;
    struct iotsec_buf pin;
    struct iotsec_hsm *hsm;
    struct iotsec_vault_key key;
};

static void key_material_free(struct key_material *m)
{
    iotsec_buf_free(&m->passphrase);
    iotsec_buf_free(&m->pin);
    iotsec_hsm_close(m->hsm);
    m->hsm = NULL;
}

static iotsec_result open_token(const struct vault_opts *o, struct key_material *m)
{
    if (m->hsm != NULL)
        return IOTSEC_RESULT_OK;
    IOTSEC_ENSURE(o->hsm_module != NULL, IOTSEC_ERR_INVALID_ARG,
                  "vault: token key needs --hsm-module (or IOTSEC_PKCS11_MODULE)");
    IOTSEC_ENSURE(o->hsm_token != NULL, IOTSEC_ERR_INVALID_ARG,
                  "vault: token key needs --token (or IOTSEC_HSM_TOKEN)");
    IOTSEC_ENSURE(o->hsm_pin_file != NULL, IOTSEC_ERR_INVALID_ARG,
                  "vault: token key needs --pin-file (or IOTSEC_HSM_PIN_FILE)");
    IOTSEC_GUARD(cli_read_secret_file(o->hsm_pin_file, "PIN file", &m->pin));
    return iotsec_hsm_open(o->hsm_module, o->hsm_token, iotsec_buf_slice(&m->pin), &m->hsm);
}

/* The key of an existing vault: its header says whether it wants a passphrase or a token,
 * so the operator never has to say which. When the file cannot be read or parsed, the
 * passphrase path is taken and iotsec_vault_open reports what is wrong with the file. */
static bool vault_wants_token(const char *path)
{
    struct iotsec_buf file = {0};
    struct iotsec_vault_header h;
    bool token = iotsec_ok(iotsec_file_read(path, IOTSEC_VAULT_FILE_MAX, &file)) &&
                 iotsec_ok(iotsec_vault_parse_header(iotsec_buf_slice(&file), &h)) &&
                 h.source == IOTSEC_VAULT_KEY_HSM;
    iotsec_buf_free(&file);
    iotsec_error_clear();
    return token;
}

static iotsec_result existing_key(const struct vault_opts *o, struct key_material *m)
{
    if (vault_wants_token(o->vault_path)) {
        IOTSEC_GUARD(open_token(o, m));
        m->key = (struct iotsec_vault_key){.source = IOTSEC_VAULT_KEY_HSM, .hsm = m->hsm};
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_GUARD(read_passphrase(o->passphrase_file, false, &m->passphrase));
    m->key = (struct iotsec_vault_key){.source = IOTSEC_VAULT_KEY_PASSPHRASE,
                                       .passphrase = iotsec_buf_slice(&m->passphrase)};
    return IOTSEC_RESULT_OK;
}

/* A key for a new vault (init) or a new key (rekey). */
static iotsec_result new_key(const struct vault_opts *o, const char *pass_file,
                             const char *token_key, struct key_material *m)
{
    if (token_key != NULL) {
        IOTSEC_GUARD(open_token(o, m));
        m->key = (struct iotsec_vault_key){
            .source = IOTSEC_VAULT_KEY_HSM, .hsm = m->hsm, .hsm_key_label = token_key};
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_GUARD(read_passphrase(pass_file, true, &m->passphrase));
    m->key = (struct iotsec_vault_key){
        .source = IOTSEC_VAULT_KEY_PASSPHRASE,
        .passphrase = iotsec_buf_slice(&m->passphrase),
        .scrypt = {.log2_n = (uint8_t)o->scrypt_log2n, .r = 8, .p = 1},
    };
    return IOTSEC_RESULT_OK;
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

static int do_init(const struct vault_opts *o)
{
    struct key_material m = {0};
    iotsec_buf_init_secret(&m.passphrase);
    iotsec_buf_init_secret(&m.pin);
    struct iotsec_vault *v = NULL;
    bool ok = iotsec_ok(new_key(o, o->passphrase_file, o->hsm_key, &m)) &&
              iotsec_ok(ensure_parent_dir(o->vault_path)) &&
              iotsec_ok(iotsec_vault_create(o->vault_path, &m.key, &v));
    iotsec_vault_close(v);
    key_material_free(&m);
    if (!ok)
        return cli_fail();
    fprintf(stderr, "iotsec: vault %s created\n", o->vault_path);
    return CLI_EXIT_OK;
}

static int do_rekey(const struct vault_opts *o)
{
    struct key_material old = {0}, fresh = {0};
    iotsec_buf_init_secret(&old.passphrase);
    iotsec_buf_init_secret(&old.pin);
    iotsec_buf_init_secret(&fresh.passphrase);
    iotsec_buf_init_secret(&fresh.pin);
    struct iotsec_vault *v = NULL;

    bool ok = iotsec_ok(existing_key(o, &old)) &&
              iotsec_ok(iotsec_vault_open(o->vault_path, &old.key, IOTSEC_VAULT_WRITE, &v));
    if (ok) {
        /* Both keys may live in the same token: share the session. */
        fresh.hsm = old.hsm;
        ok = iotsec_ok(new_key(o, o->new_passphrase_file, o->new_hsm_key, &fresh)) &&
             iotsec_ok(iotsec_vault_rekey(v, &fresh.key));
        if (fresh.hsm == old.hsm)
            fresh.hsm = NULL;
    }
    iotsec_vault_close(v);
    key_material_free(&fresh);
    key_material_free(&old);
    if (!ok)
        return cli_fail();
    fprintf(stderr, "iotsec: vault %s has a new key\n", o->vault_path);
    return CLI_EXIT_OK;
}

static int do_entry_command(const char *cmd, const char *name, const struct vault_opts *o)
{
    bool writes = strcmp(cmd, "put") == 0 || strcmp(cmd, "rm") == 0;
    struct key_material m = {0};
    iotsec_buf_init_secret(&m.passphrase);
    iotsec_buf_init_secret(&m.pin);
    struct iotsec_buf value;
    iotsec_buf_init_secret(&value);
    struct iotsec_vault *v = NULL;

    /* put reads the value before touching the vault: a failed read changes nothing. */
    bool ok =
        (name == NULL || iotsec_ok(iotsec_vault_check_name(name))) &&
        (strcmp(cmd, "put") != 0 || iotsec_ok(cli_read_stdin(IOTSEC_VAULT_VALUE_MAX, &value))) &&
        iotsec_ok(existing_key(o, &m)) &&
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
    key_material_free(&m);
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
    struct vault_opts o = {.scrypt_log2n = 15};
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

    o.passphrase_file = env_or(o.passphrase_file, "IOTSEC_PASSPHRASE_FILE");
    o.hsm_module = env_or(o.hsm_module, "IOTSEC_PKCS11_MODULE");
    o.hsm_token = env_or(o.hsm_token, "IOTSEC_HSM_TOKEN");
    o.hsm_pin_file = env_or(o.hsm_pin_file, "IOTSEC_HSM_PIN_FILE");
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
