/*
 * Opening the vault from any subcommand: the key material (a passphrase or a token
 * session) and the options that locate it, shared by `vault`, `ca` and `device`.
 */
#include "cli.h"

#include "iotsec/file.h"
#include "iotsec/hsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_vault_opts_from_env(struct cli_vault_opts *o)
{
    if (o->passphrase_file == NULL)
        o->passphrase_file = getenv("IOTSEC_PASSPHRASE_FILE");
    if (o->hsm_module == NULL)
        o->hsm_module = getenv("IOTSEC_PKCS11_MODULE");
    if (o->hsm_token == NULL)
        o->hsm_token = getenv("IOTSEC_HSM_TOKEN");
    if (o->hsm_pin_file == NULL)
        o->hsm_pin_file = getenv("IOTSEC_HSM_PIN_FILE");
}

bool cli_vault_option(int c, const char *arg, const char **data_dir, struct cli_vault_opts *o)
{
    switch (c) {
    case CLI_OPT_DATA:
        *data_dir = arg;
        return true;
    case CLI_OPT_VAULT:
        o->vault_path = arg;
        return true;
    case CLI_OPT_PASS:
        o->passphrase_file = arg;
        return true;
    case CLI_OPT_MODULE:
        o->hsm_module = arg;
        return true;
    case CLI_OPT_TOKEN:
        o->hsm_token = arg;
        return true;
    case CLI_OPT_PIN:
        o->hsm_pin_file = arg;
        return true;
    default:
        return false;
    }
}

iotsec_result cli_vault_opts_finish(const char **data_dir, struct cli_vault_opts *o, char *path,
                                    size_t size)
{
    *data_dir = cli_data_dir(*data_dir);
    cli_vault_opts_from_env(o);
    if (o->vault_path == NULL) {
        IOTSEC_GUARD(cli_data_path(*data_dir, IOTSEC_REGISTRY_VAULT, path, size));
        o->vault_path = path;
    }
    return IOTSEC_RESULT_OK;
}

void cli_key_material_init(struct cli_key_material *m)
{
    *m = (struct cli_key_material){0};
    iotsec_buf_init_secret(&m->passphrase);
    iotsec_buf_init_secret(&m->pin);
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

void cli_key_material_free(struct cli_key_material *m)
{
    iotsec_buf_free(&m->passphrase);
    iotsec_buf_free(&m->pin);
    iotsec_hsm_close(m->hsm);
    m->hsm = NULL;
}

iotsec_result cli_open_token(const struct cli_vault_opts *o, struct cli_key_material *m)
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

iotsec_result cli_vault_existing_key(const struct cli_vault_opts *o, struct cli_key_material *m)
{
    if (vault_wants_token(o->vault_path)) {
        IOTSEC_GUARD(cli_open_token(o, m));
        m->key = (struct iotsec_vault_key){.source = IOTSEC_VAULT_KEY_HSM, .hsm = m->hsm};
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_GUARD(read_passphrase(o->passphrase_file, false, &m->passphrase));
    m->key = (struct iotsec_vault_key){.source = IOTSEC_VAULT_KEY_PASSPHRASE,
                                       .passphrase = iotsec_buf_slice(&m->passphrase)};
    return IOTSEC_RESULT_OK;
}

/* A key for a new vault (init) or a new key (rekey). */
iotsec_result cli_vault_new_key(const struct cli_vault_opts *o, const char *pass_file,
                                const char *token_key, struct cli_key_material *m)
{
    if (token_key != NULL) {
        IOTSEC_GUARD(cli_open_token(o, m));
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
