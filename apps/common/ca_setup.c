/*
 * Making a CA and the servers' certificate in a data directory: shared by `iotsec ca init`,
 * `iotsec ca server-cert` and iotsecd's first start.
 */
#include "cli.h"

#include "iotsec/file.h"
#include "iotsec/hsm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define ROOT_KEY_ENTRY    "ca-root.key"
#define ISSUING_KEY_ENTRY "ca-issuing.key"

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
static iotsec_result make_root_key(const struct cli_ca_create_opts *o, struct ca_init *c)
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

static iotsec_result make_certificates(const struct cli_ca_create_opts *o, struct ca_init *c,
                                       time_t now)
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
static iotsec_result store_keys(const struct cli_ca_create_opts *o, struct ca_init *c)
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

static iotsec_result write_ca_files(const struct cli_ca_create_opts *o, struct ca_init *c,
                                    time_t now)
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

iotsec_result cli_ca_create(const struct cli_ca_create_opts *o)
{
    struct ca_init c = {0};
    cli_key_material_init(&c.km);
    iotsec_buf_init(&c.root_pem);
    iotsec_buf_init(&c.issuing_pem);
    iotsec_buf_init_secret(&c.root_key_pem);
    iotsec_buf_init_secret(&c.issuing_key_pem);
    time_t now = time(NULL);
    iotsec_result r = cli_data_prepare(o->data_dir);
    if (iotsec_ok(r))
        r = refuse_existing_ca(o->data_dir);
    if (iotsec_ok(r))
        r = make_root_key(o, &c);
    if (iotsec_ok(r))
        r = make_certificates(o, &c, now);
    if (iotsec_ok(r))
        r = store_keys(o, &c);
    if (iotsec_ok(r))
        r = write_ca_files(o, &c, now);
    ca_init_free(&c);
    return r;
}

/* The server's key is a file of mode 0600 beside the certificate: the servers load it at
 * every start and on SIGHUP without asking for the vault passphrase. */
iotsec_result cli_ca_server_cert(const struct cli_server_cert_opts *o, char *cert_path, size_t size)
{
    static const char *const default_dns[] = {"localhost"};
    static const char *const default_ips[] = {"127.0.0.1", "::1"};
    bool named = o->n_dns + o->n_ips > 0;
    struct iotsec_pki_server_params params = {
        .dns_names = named ? o->dns : default_dns,
        .dns_count = named ? o->n_dns : 1,
        .ip_addresses = named ? o->ips : default_ips,
        .ip_count = named ? o->n_ips : 2,
        .validity_days = o->days != 0 ? o->days : 365,
        .now = time(NULL),
    };
    struct cli_ca ca = {0};
    struct iotsec_key *key = NULL;
    struct iotsec_buf pem;
    iotsec_buf_init(&pem);
    char key_path[CLI_PATH_MAX];
    iotsec_result r = cli_data_path(o->data_dir, IOTSEC_REGISTRY_SERVER_CERT, cert_path, size);
    if (iotsec_ok(r))
        r = cli_data_path(o->data_dir, IOTSEC_REGISTRY_SERVER_KEY, key_path, sizeof(key_path));
    if (iotsec_ok(r))
        r = cli_ca_open(o->data_dir, o->vault, false, &ca);
    if (iotsec_ok(r))
        r = iotsec_key_generate(IOTSEC_KEY_EC_P256, &key);
    if (iotsec_ok(r))
        r = iotsec_pki_issue_server(cli_ca_issuer(&ca), &params, key, &pem, NULL);
    /* With an intermediate, the server sends it too, so clients need only ca.crt. */
    if (iotsec_ok(r) && ca.issuing != NULL)
        r = iotsec_pki_ca_cert_pem(ca.issuing, &pem);
    if (iotsec_ok(r))
        r = iotsec_key_save_private_pem(key, key_path);
    if (iotsec_ok(r))
        r = iotsec_file_write_atomic(cert_path, iotsec_buf_slice(&pem), 0644);
    cli_ca_close(&ca);
    iotsec_key_free(key);
    iotsec_buf_free(&pem);
    return r;
}
