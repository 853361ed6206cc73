/*
 * INI configuration files (libinih), read strictly.
 *
 *   ; /etc/iotsec/iotsecd.conf
 *   [server]
 *   port = 8443
 *   [log]
 *   level = info
 *
 * A typo in an operator's config must be an error, not a silent default. So: a key given
 * twice is an error; a syntax error is reported with its line; when the caller lists the
 * keys it knows (iotsec_config_check_known), any other "section.key" is an error; and a
 * present value that does not parse or is out of range is an error, never replaced by the
 * default. Every message names where: "iotsecd.conf:12: server.port: 70000 is out of
 * range 1..65535". All errors are IOTSEC_ERR_CONFIG unless reading the file fails.
 *
 * The dialect is libinih's, narrowed:
 * - "key = value" or "key: value"; whitespace around keys and values is trimmed; keys
 *   and sections are case-sensitive; keys before the first [section] belong to the
 *   section "" and are named without a dot;
 * - comments are lines starting with ';' or '#', and " ;" (whitespace, then ';') starts
 *   a comment at the end of a line; '#' inside a value is part of the value;
 * - lines are at most 197 bytes and section names at most 49 (libinih's limits, which it
 *   enforces by silently cutting; we refuse instead);
 * - indented lines are refused: libinih reads them as a continuation of the previous
 *   value, which turns an innocently indented "key = value" into part of another value;
 * - at most IOTSEC_CONFIG_MAX_BYTES and IOTSEC_CONFIG_MAX_KEYS; NUL bytes are refused.
 *
 * Getters take the default in *out: callers write the default into their settings
 * struct, then let the getter overwrite it when the key is present:
 *
 *     int64_t port = 8443;
 *     IOTSEC_GUARD(iotsec_config_get_int(cfg, "server", "port", 1, 65535, &port));
 *
 * Strings returned are borrowed from cfg and live until iotsec_config_free().
 */
#ifndef IOTSEC_CONFIG_H
#define IOTSEC_CONFIG_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <stdbool.h>
#include <stdint.h>

#define IOTSEC_CONFIG_MAX_BYTES ((size_t)256 * 1024)
#define IOTSEC_CONFIG_MAX_KEYS  1024

struct iotsec_config; /* opaque */

/* Reads and parses a file (a regular file, not a symbolic link: see iotsec_file_read). */
IOTSEC_MUST_CHECK iotsec_result iotsec_config_load(const char *path, struct iotsec_config **out);

/* Parses text already in memory; name stands for the file in messages. */
IOTSEC_MUST_CHECK iotsec_result iotsec_config_parse(struct iotsec_slice text, const char *name,
                                                    struct iotsec_config **out);

void iotsec_config_free(struct iotsec_config *cfg);

/* One key the caller understands. Lists end with {NULL, NULL}. */
struct iotsec_config_key {
    const char *section; /* "" for keys before the first section */
    const char *key;
};

/* Fails on the first key in the file (in file order) that is not in known:
 * "iotsecd.conf:7: unknown key 'server.prot'". */
IOTSEC_MUST_CHECK iotsec_result iotsec_config_check_known(const struct iotsec_config *cfg,
                                                          const struct iotsec_config_key *known);

bool iotsec_config_has(const struct iotsec_config *cfg, const char *section, const char *key);

/* Fails when the key is absent: "iotsecd.conf: missing required key vault.path". */
IOTSEC_MUST_CHECK iotsec_result iotsec_config_require(const struct iotsec_config *cfg,
                                                      const char *section, const char *key);

/* The raw value (possibly empty). */
IOTSEC_MUST_CHECK iotsec_result iotsec_config_get_string(const struct iotsec_config *cfg,
                                                         const char *section, const char *key,
                                                         const char **out);

/* A decimal integer ("-5", "8443"; no "0x", no "1e3", no spaces) in min..max. */
IOTSEC_MUST_CHECK iotsec_result iotsec_config_get_int(const struct iotsec_config *cfg,
                                                      const char *section, const char *key,
                                                      int64_t min, int64_t max, int64_t *out);

/* true/false, yes/no, on/off, 1/0, in any case. */
IOTSEC_MUST_CHECK iotsec_result iotsec_config_get_bool(const struct iotsec_config *cfg,
                                                       const char *section, const char *key,
                                                       bool *out);

/* For values the caller checks itself: prefixes the current error with where the key was
 * set ("iotsecd.conf:4: log.level: "), or with the file name if it is absent. */
void iotsec_config_error_prefix(const struct iotsec_config *cfg, const char *section,
                                const char *key);

#endif
