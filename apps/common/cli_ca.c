/*
 * The CA of a data directory, opened for `ca` and `device` commands.
 *
 * DIR/ca.json (no secret) says where the keys are: "vault:NAME" for an entry of the vault,
 * "pkcs11:LABEL" for an EC key in the token named by --module/--token/--pin-file (or the
 * IOTSEC_PKCS11_MODULE / IOTSEC_HSM_TOKEN / IOTSEC_HSM_PIN_FILE environment). With an
 * intermediate, day-to-day issuing needs only the intermediate's key, so the root's key
 * (often in a token kept offline) is opened only when a command needs it.
 */
#include "cli.h"

#include "iotsec/file.h"
#include "iotsec/json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define CA_CONFIG_MAX ((size_t)4096)

static iotsec_result read_config(const char *dir, struct cli_ca *ca)
{
    char path[CLI_PATH_MAX];
    IOTSEC_GUARD(cli_data_path(dir, IOTSEC_REGISTRY_CA_CONFIG, path, sizeof(path)));
    struct iotsec_buf text;
    iotsec_buf_init(&text);
    json_t *doc = NULL;
    iotsec_result r = iotsec_file_read(path, CA_CONFIG_MAX, &text);
    if (!iotsec_ok(r) && iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
        iotsec_error_set(IOTSEC_ERR_NOT_FOUND, "ca: %s is missing: run `iotsec ca init` first",
                         path);
    if (iotsec_ok(r))
        r = iotsec_json_parse(iotsec_buf_slice(&text), NULL, &doc);
    static const char *const fields[] = {"version", "rootKey", "issuingKey", NULL};
    int64_t version = 0;
    const char *root = NULL, *issuing = NULL;
    if (iotsec_ok(r))
        r = iotsec_json_reject_unknown(doc, fields);
    if (iotsec_ok(r))
        r = iotsec_json_get_int(doc, "version", IOTSEC_JSON_REQUIRED, 1, 1, &version);
    if (iotsec_ok(r))
        r = iotsec_json_get_string(doc, "rootKey", IOTSEC_JSON_REQUIRED, 200, &root);
    if (iotsec_ok(r))
        r = iotsec_json_get_string(doc, "issuingKey", IOTSEC_JSON_OPTIONAL, 200, &issuing);
    if (iotsec_ok(r)) {
        snprintf(ca->root_key_ref, sizeof(ca->root_key_ref), "%s", root);
        snprintf(ca->issuing_key_ref, sizeof(ca->issuing_key_ref), "%s",
                 issuing != NULL ? issuing : "");
    } else {
        iotsec_error_prefix("ca: %s: ", path);
    }
    json_decref(doc);
    iotsec_buf_free(&text);
    return r;
}

iotsec_result cli_ca_write_config(const char *dir, const char *root_ref, const char *issuing_ref)
{
    char path[CLI_PATH_MAX];
    IOTSEC_GUARD(cli_data_path(dir, IOTSEC_REGISTRY_CA_CONFIG, path, sizeof(path)));
    json_t *doc = json_pack("{s:i,s:s}", "version", 1, "rootKey", root_ref);
    IOTSEC_ENSURE_ALLOC(doc);
    if (issuing_ref != NULL &&
        json_object_set_new(doc, "issuingKey", json_string(issuing_ref)) != 0) {
        json_decref(doc);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "ca: out of memory");
    }
    struct iotsec_buf text;
    iotsec_buf_init(&text);
    iotsec_result r = iotsec_json_dump(doc, IOTSEC_JSON_SORT_KEYS, &text);
    if (iotsec_ok(r))
        r = iotsec_buf_append_str(&text, "\n");
    if (iotsec_ok(r))
        r = iotsec_file_write_atomic(path, iotsec_buf_slice(&text), 0600);
    iotsec_buf_free(&text);
    json_decref(doc);
    return r;
}

static iotsec_result open_vault(struct cli_ca *ca)
{
    if (ca->vault != NULL)
        return IOTSEC_RESULT_OK;
    IOTSEC_GUARD(cli_vault_existing_key(ca->vault_opts, &ca->km));
    return iotsec_vault_open(ca->vault_opts->vault_path, &ca->km.key, IOTSEC_VAULT_READ,
                             &ca->vault);
}

/* Loads the key named by ref ("vault:NAME" or "pkcs11:LABEL") into a signer. */
static iotsec_result open_signer(struct cli_ca *ca, const char *ref, struct iotsec_key **key,
                                 struct iotsec_registry_token_signer *token,
                                 struct iotsec_pki_signer *out)
{
    if (strncmp(ref, "vault:", 6) == 0) {
        IOTSEC_GUARD(open_vault(ca));
        struct iotsec_buf pem;
        iotsec_buf_init_secret(&pem);
        iotsec_result r = iotsec_vault_get(ca->vault, ref + 6, &pem);
        if (iotsec_ok(r))
            r = iotsec_key_from_pem(iotsec_buf_slice(&pem), key);
        iotsec_buf_free(&pem);
        if (!iotsec_ok(r))
            iotsec_error_prefix("ca: key %s: ", ref);
        IOTSEC_GUARD(r);
        iotsec_pki_signer_from_key(*key, out);
        return IOTSEC_RESULT_OK;
    }
    if (strncmp(ref, "pkcs11:", 7) == 0) {
        IOTSEC_GUARD(cli_open_token(ca->vault_opts, &ca->km));
        IOTSEC_GUARD(iotsec_registry_token_signer_init(token, ca->km.hsm, ref + 7));
        *out = token->signer;
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_BAIL(IOTSEC_ERR_CONFIG, "ca: key location '%s' is neither vault:NAME nor pkcs11:LABEL",
                ref);
}

static iotsec_result open_ca_file(const char *dir, const char *name,
                                  const struct iotsec_pki_signer *signer,
                                  struct iotsec_pki_ca **out)
{
    char path[CLI_PATH_MAX];
    IOTSEC_GUARD(cli_data_path(dir, name, path, sizeof(path)));
    struct iotsec_buf pem;
    iotsec_buf_init(&pem);
    iotsec_result r = iotsec_file_read(path, IOTSEC_PKI_CERT_DER_MAX * 2, &pem);
    if (iotsec_ok(r))
        r = iotsec_pki_ca_open(iotsec_buf_slice(&pem), signer, out);
    if (!iotsec_ok(r))
        iotsec_error_prefix("ca: %s: ", path);
    iotsec_buf_free(&pem);
    return r;
}

iotsec_result cli_ca_open(const char *dir, const struct cli_vault_opts *vault_opts, bool need_root,
                          struct cli_ca *ca)
{
    *ca = (struct cli_ca){.vault_opts = vault_opts};
    cli_key_material_init(&ca->km);
    snprintf(ca->dir, sizeof(ca->dir), "%s", dir);
    IOTSEC_GUARD(read_config(dir, ca));
    bool has_issuing = ca->issuing_key_ref[0] != '\0';
    if (need_root || !has_issuing) {
        IOTSEC_GUARD(
            open_signer(ca, ca->root_key_ref, &ca->root_key, &ca->root_token, &ca->root_signer));
        IOTSEC_GUARD(open_ca_file(dir, IOTSEC_REGISTRY_CA_CERT, &ca->root_signer, &ca->root));
    }
    if (has_issuing) {
        IOTSEC_GUARD(open_signer(ca, ca->issuing_key_ref, &ca->issuing_key, &ca->issuing_token,
                                 &ca->issuing_signer));
        IOTSEC_GUARD(
            open_ca_file(dir, IOTSEC_REGISTRY_ISSUING_CERT, &ca->issuing_signer, &ca->issuing));
    }
    return IOTSEC_RESULT_OK;
}

const struct iotsec_pki_ca *cli_ca_issuer(const struct cli_ca *ca)
{
    return ca->issuing != NULL ? ca->issuing : ca->root;
}

void cli_ca_close(struct cli_ca *ca)
{
    iotsec_pki_ca_free(ca->issuing);
    iotsec_pki_ca_free(ca->root);
    iotsec_key_free(ca->issuing_key);
    iotsec_key_free(ca->root_key);
    if (ca->root_token.public_key != NULL)
        iotsec_registry_token_signer_clear(&ca->root_token);
    if (ca->issuing_token.public_key != NULL)
        iotsec_registry_token_signer_clear(&ca->issuing_token);
    iotsec_vault_close(ca->vault);
    cli_key_material_free(&ca->km);
    *ca = (struct cli_ca){0};
}

/* The next CRL number: above the current file's, and at least the time in seconds, so
 * that numbers still grow if the file is lost. */
static uint64_t next_crl_number(const char *path, time_t now)
{
    uint64_t number = (uint64_t)now;
    struct iotsec_buf old;
    iotsec_buf_init(&old);
    uint64_t previous = 0;
    if (iotsec_ok(iotsec_file_read(path, IOTSEC_PKI_CRL_MAX, &old)) &&
        iotsec_ok(iotsec_pki_crl_number(iotsec_buf_slice(&old), &previous)) && previous >= number &&
        previous < UINT64_MAX)
        number = previous + 1;
    iotsec_error_clear();
    iotsec_buf_free(&old);
    return number;
}

static iotsec_result write_crl(const char *path, const struct iotsec_pki_ca *issuer,
                               struct iotsec_store *store, time_t now, uint32_t next_update_days)
{
    struct iotsec_pki_crl_params params = {
        .crl_number = next_crl_number(path, now),
        .this_update = now,
        .next_update_seconds = next_update_days * 86400u,
    };
    struct iotsec_buf pem;
    iotsec_buf_init(&pem);
    iotsec_result r = store != NULL ? iotsec_registry_build_crl(store, issuer, &params, &pem)
                                    : iotsec_pki_crl_build(issuer, &params, NULL, 0, &pem);
    if (iotsec_ok(r))
        r = iotsec_file_write_atomic(path, iotsec_buf_slice(&pem), 0644);
    if (!iotsec_ok(r))
        iotsec_error_prefix("ca: CRL %s: ", path);
    iotsec_buf_free(&pem);
    return r;
}

iotsec_result cli_ca_write_crls(const struct cli_ca *ca, struct iotsec_store *store, time_t now,
                                uint32_t next_update_days, uint32_t root_next_update_days)
{
    char path[CLI_PATH_MAX];
    IOTSEC_GUARD(cli_data_path(ca->dir, IOTSEC_REGISTRY_CRL, path, sizeof(path)));
    IOTSEC_GUARD(write_crl(path, cli_ca_issuer(ca), store, now, next_update_days));
    if (ca->issuing != NULL && ca->root != NULL) {
        /* The root has issued nothing but the intermediate, which is not revoked. */
        IOTSEC_GUARD(cli_data_path(ca->dir, IOTSEC_REGISTRY_ROOT_CRL, path, sizeof(path)));
        IOTSEC_GUARD(write_crl(path, ca->root, NULL, now, root_next_update_days));
    }
    return IOTSEC_RESULT_OK;
}
