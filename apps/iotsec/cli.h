/*
 * The iotsec operator CLI: shared pieces of the subcommands.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
