/*
 * Shared by the apps (apps/common, compiled into each): the CLI's subcommands and
 * iotsecd's first start use the same data directory, vault and CA code.
 *
 * Each subcommand is one file (cmd_<name>.c) exporting `int cmd_<name>(int argc, char
 * **argv)` where argv[0] is the subcommand name. It returns the process exit status:
 * 0 success, 1 the operation failed (bad input, wrong key, ...), 2 usage error.
 * Errors are printed as exactly one line on stderr: "iotsec: <what>: <why>".
 *
 * Secrets (passphrases, PINs, values) never come from argv: only from files named in
 * argv or the environment, from stdin, or from a prompt on /dev/tty.
 */
#ifndef IOTSEC_CLI_H
#define IOTSEC_CLI_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/pki.h"
#include "iotsec/registry.h"
#include "iotsec/vault.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

/* The data directory when neither --data nor IOTSEC_DATA names one. */
#define CLI_DEFAULT_DATA_DIR "var"
#define CLI_PATH_MAX         4096

/* Secrets read from files or prompts are at most this long. */
#define CLI_SECRET_MAX 4096

int cmd_vault(int argc, char **argv);
int cmd_hsm(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_device(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_block(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_apikey(int argc, char **argv);

/* Prints "iotsec: <the current iotsec error message>" and returns CLI_EXIT_FAIL. */
int cli_fail(void);
/* Prints "iotsec: <formatted message>" and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* getopt_long accepts any unambiguous abbreviation ("--pass" for "--passphrase-file"), so
 * a mistyped option can silently become another one. Call this before getopt_long: it
 * returns CLI_EXIT_OK when every "--name" in argv is exactly one of options, or prints a
 * usage error naming the first one that is not and returns CLI_EXIT_USAGE. */
struct option;
int cli_require_exact_options(int argc, char **argv, const struct option *options,
                              const char *command);

/* A decimal number in min..max, digits only (no sign, no spaces, no 0x). */
bool cli_parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out);

/* Reads a secret from a private file (mode 0600 or stricter): one trailing newline is
 * dropped, an empty secret is refused. `what` names it in errors ("passphrase file"). */
IOTSEC_MUST_CHECK iotsec_result cli_read_secret_file(const char *path, const char *what,
                                                     struct iotsec_buf *secret);
/* Prompts on /dev/tty with echo off. With no terminal it fails with IOTSEC_ERR_NOT_FOUND,
 * so callers can say which option would have provided the secret. */
IOTSEC_MUST_CHECK iotsec_result cli_prompt_secret(const char *prompt, struct iotsec_buf *secret);
/* Reads all of stdin (at most max bytes) into a secret buffer. */
IOTSEC_MUST_CHECK iotsec_result cli_read_stdin(size_t max, struct iotsec_buf *out);

/* ---- the data directory (cli_data.c) ----
 * Every command takes --data DIR: the vault (DIR/vault), CA certificate (DIR/ca.crt),
 * CRL (DIR/ca.crl) and store (DIR/store.db). */
struct iotsec_store;
/* option if given, else $IOTSEC_DATA, else CLI_DEFAULT_DATA_DIR. */
const char *cli_data_dir(const char *option);
/* out = "DIR/name"; IOTSEC_ERR_TOO_LARGE when it does not fit. */
IOTSEC_MUST_CHECK iotsec_result cli_data_path(const char *dir, const char *name, char *out,
                                              size_t size);
/* Creates DIR (mode 0700) when missing; refuses a non-directory or one that group or
 * others may write. */
IOTSEC_MUST_CHECK iotsec_result cli_data_prepare(const char *dir);
/* cli_data_prepare, then opens (creating) the store DIR/store.db. */
IOTSEC_MUST_CHECK iotsec_result cli_open_store(const char *dir, struct iotsec_store **out);
/* Wall-clock Unix milliseconds, the time the CLI passes to the store. */
int64_t cli_now_ms(void);

/* ---- the vault from any subcommand (cli_vault.c) ---- */
struct cli_vault_opts {
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

/* The options of every command that reaches the vault or the CA key: put
 * CLI_VAULT_OPTIONS in the command's option table, and let cli_vault_option() take the
 * codes it knows before the command's own switch. */
enum {
    CLI_OPT_DATA = 900,
    CLI_OPT_VAULT,
    CLI_OPT_PASS,
    CLI_OPT_MODULE,
    CLI_OPT_TOKEN,
    CLI_OPT_PIN,
};
#define CLI_VAULT_OPTIONS                                                                          \
    {"data", required_argument, NULL, CLI_OPT_DATA},                                               \
        {"vault", required_argument, NULL, CLI_OPT_VAULT},                                         \
        {"passphrase-file", required_argument, NULL, CLI_OPT_PASS},                                \
        {"hsm-module", required_argument, NULL, CLI_OPT_MODULE},                                   \
        {"token", required_argument, NULL, CLI_OPT_TOKEN},                                         \
    {                                                                                              \
        "pin-file", required_argument, NULL, CLI_OPT_PIN                                           \
    }
/* True when c is one of CLI_VAULT_OPTIONS; its value is then stored. */
bool cli_vault_option(int c, const char *arg, const char **data_dir, struct cli_vault_opts *o);
/* After parsing: *data_dir resolved (cli_data_dir), unset key options from the
 * environment, and the vault path DIR/vault (in path) unless --vault gave one. */
IOTSEC_MUST_CHECK iotsec_result cli_vault_opts_finish(const char **data_dir,
                                                      struct cli_vault_opts *o, char *path,
                                                      size_t size);

/* Fills the unset key options from IOTSEC_PASSPHRASE_FILE, IOTSEC_PKCS11_MODULE,
 * IOTSEC_HSM_TOKEN and IOTSEC_HSM_PIN_FILE. */
void cli_vault_opts_from_env(struct cli_vault_opts *o);

/* Everything needed to open (or create) the vault: kept together so it is freed together. */
struct cli_key_material {
    struct iotsec_buf passphrase;
    struct iotsec_buf pin;
    struct iotsec_hsm *hsm;
    struct iotsec_vault_key key;
};
void cli_key_material_init(struct cli_key_material *m);
void cli_key_material_free(struct cli_key_material *m);
/* Opens the token named by o (module, label, PIN file) once; later calls reuse it. */
IOTSEC_MUST_CHECK iotsec_result cli_open_token(const struct cli_vault_opts *o,
                                               struct cli_key_material *m);
/* The key of the existing vault at o->vault_path: its header says passphrase or token. */
IOTSEC_MUST_CHECK iotsec_result cli_vault_existing_key(const struct cli_vault_opts *o,
                                                       struct cli_key_material *m);
/* A key for a new vault or a rekey: the AES key token_key in the token, else a new
 * passphrase from pass_file (asked twice on a terminal). */
IOTSEC_MUST_CHECK iotsec_result cli_vault_new_key(const struct cli_vault_opts *o,
                                                  const char *pass_file, const char *token_key,
                                                  struct cli_key_material *m);

/* ---- the CA of a data directory (cli_ca.c) ---- */
#define CLI_CRL_NEXT_UPDATE_DAYS      7  /* ca.crl: refresh with `iotsec ca crl` */
#define CLI_ROOT_CRL_NEXT_UPDATE_DAYS 90 /* ca-root.crl, with an intermediate */

struct cli_ca {
    char dir[CLI_PATH_MAX];
    const struct cli_vault_opts *vault_opts;
    char root_key_ref[256];    /* "vault:NAME" or "pkcs11:LABEL" */
    char issuing_key_ref[256]; /* "" without an intermediate */
    struct cli_key_material km;
    struct iotsec_vault *vault;
    struct iotsec_key *root_key, *issuing_key;
    struct iotsec_registry_token_signer root_token, issuing_token;
    struct iotsec_pki_signer root_signer, issuing_signer;
    struct iotsec_pki_ca *root;    /* NULL when not needed and an intermediate issues */
    struct iotsec_pki_ca *issuing; /* NULL without an intermediate */
};

/* Opens the CA of DIR (ca.json, ca.crt, ca-issuing.crt and their keys). need_root opens
 * the root's key even when an intermediate does the issuing. */
IOTSEC_MUST_CHECK iotsec_result cli_ca_open(const char *dir,
                                            const struct cli_vault_opts *vault_opts, bool need_root,
                                            struct cli_ca *ca);
/* The CA that signs device certificates and ca.crl. */
const struct iotsec_pki_ca *cli_ca_issuer(const struct cli_ca *ca);
void cli_ca_close(struct cli_ca *ca);
/* Writes DIR/ca.json. issuing_ref may be NULL. */
IOTSEC_MUST_CHECK iotsec_result cli_ca_write_config(const char *dir, const char *root_ref,
                                                    const char *issuing_ref);
/* Writes a fresh DIR/ca.crl from the store's revocations (store NULL: an empty CRL), and
 * DIR/ca-root.crl too when the root is open and an intermediate exists. */
IOTSEC_MUST_CHECK iotsec_result cli_ca_write_crls(const struct cli_ca *ca,
                                                  struct iotsec_store *store, time_t now,
                                                  uint32_t next_update_days,
                                                  uint32_t root_next_update_days);

/* ---- making a CA and the servers' certificate (ca_setup.c) ---- */
struct cli_ca_create_opts {
    const char *data_dir;
    struct cli_vault_opts vault; /* where the vault is and how to open or create it */
    const char *hsm_label;       /* NULL: the root key in the vault; else made in the token */
    const char *name;            /* the root's CN */
    uint32_t days;               /* the root's validity */
    bool intermediate;           /* an issuing CA (key in the vault) signs devices */
};
/* `iotsec ca init`: refuses a directory that has a CA; keys first, ca.crt last. */
IOTSEC_MUST_CHECK iotsec_result cli_ca_create(const struct cli_ca_create_opts *o);

struct cli_server_cert_opts {
    const char *data_dir;
    const struct cli_vault_opts *vault;
    const char *const *dns; /* both empty: localhost, 127.0.0.1 and ::1 */
    size_t n_dns;
    const char *const *ips;
    size_t n_ips;
    uint32_t days; /* 0: 365 */
};
/* DIR/server.crt (with the issuing CA) and DIR/server.key (0600); cert_path receives the
 * certificate's path. */
IOTSEC_MUST_CHECK iotsec_result cli_ca_server_cert(const struct cli_server_cert_opts *o,
                                                   char *cert_path, size_t size);

#endif
