/*
 * Logging as JSON lines, one record per line:
 *
 *   {"ts":"2026-11-25T07:14:28.123Z","level":"info","msg":"listening","port":8443}
 *
 * so that operators' tools (jq, Loki, Elastic) read it without a custom parser, and so
 * that a value holding quotes, newlines or invalid UTF-8 (a device id sent by an attacker)
 * can never break a line or forge a field: every string is escaped, invalid UTF-8 becomes
 * U+FFFD.
 *
 * For the apps only: library modules never log, they return errors. The sink is a file
 * descriptor (default 2, stderr) and the least severe level written is configurable
 * (default info). Each record is written with one write(2) under a mutex, so lines from
 * several threads never interleave. Never pass a secret as a field.
 *
 *   iotsec_log_info("listening", IOTSEC_LOG_STR("addr", addr), IOTSEC_LOG_INT("port", 8443));
 *   iotsec_log_warn("device blocked", IOTSEC_LOG_STR("deviceId", id),
 *                   IOTSEC_LOG_BOOL("permanent", false));
 *
 * The keys "ts", "level" and "msg" are always first; a field that repeats one of them, or
 * an earlier field, is dropped, so a caller's field can never replace the level.
 */
#ifndef IOTSEC_LOG_H
#define IOTSEC_LOG_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <stdbool.h>
#include <stdint.h>

enum iotsec_log_level {
    IOTSEC_LOG_DEBUG,
    IOTSEC_LOG_INFO,
    IOTSEC_LOG_WARN,
    IOTSEC_LOG_ERROR,
};

enum iotsec_log_field_type {
    IOTSEC_LOG_FIELD_END, /* terminates a field list (key NULL) */
    IOTSEC_LOG_FIELD_STR, /* a NULL str is written as null */
    IOTSEC_LOG_FIELD_INT,
    IOTSEC_LOG_FIELD_BOOL,
};

struct iotsec_log_field {
    const char *key;
    enum iotsec_log_field_type type;
    union {
        const char *str;
        int64_t num;
        bool flag;
    };
};

#define IOTSEC_LOG_STR(k, v)                                                                       \
    {                                                                                              \
        .key = (k), .type = IOTSEC_LOG_FIELD_STR, .str = (v)                                       \
    }
#define IOTSEC_LOG_INT(k, v)                                                                       \
    {                                                                                              \
        .key = (k), .type = IOTSEC_LOG_FIELD_INT, .num = (v)                                       \
    }
#define IOTSEC_LOG_BOOL(k, v)                                                                      \
    {                                                                                              \
        .key = (k), .type = IOTSEC_LOG_FIELD_BOOL, .flag = (v)                                     \
    }
#define IOTSEC_LOG_END                                                                             \
    {                                                                                              \
        .key = NULL, .type = IOTSEC_LOG_FIELD_END                                                  \
    }

/* Where records go. The descriptor is not closed by the logger. */
void iotsec_log_set_fd(int fd);
void iotsec_log_set_level(enum iotsec_log_level level);
/* Whether a record at this level would be written (to skip building costly fields). */
bool iotsec_log_enabled(enum iotsec_log_level level);

/* "debug", "info", "warn" or "error" (any case), as written in config files; anything
 * else is IOTSEC_ERR_CONFIG. */
IOTSEC_MUST_CHECK iotsec_result iotsec_log_level_parse(const char *name,
                                                       enum iotsec_log_level *out);
const char *iotsec_log_level_name(enum iotsec_log_level level);

/* Writes one record. fields is ended by IOTSEC_LOG_END (the macros below add it) and may
 * be NULL. Logging never fails visibly: a record that cannot be written is lost. */
void iotsec_log_write(enum iotsec_log_level level, const char *msg,
                      const struct iotsec_log_field *fields);

/* For a writer that batches records (iotsecd's access log): appends one record, exactly
 * as iotsec_log_write would write it, to out (nothing on failure). The caller checks
 * iotsec_log_enabled first. */
IOTSEC_MUST_CHECK iotsec_result iotsec_log_format(enum iotsec_log_level level, const char *msg,
                                                  const struct iotsec_log_field *fields,
                                                  struct iotsec_buf *out);
/* Writes whole records made by iotsec_log_format to the sink in one write(2) under the
 * logger's mutex, so they never interleave with other threads' records. */
void iotsec_log_write_records(const uint8_t *records, size_t len);

#define IOTSEC_LOG_FIELDS_(...)                                                                    \
    ((const struct iotsec_log_field[]){__VA_ARGS__ __VA_OPT__(, ) IOTSEC_LOG_END})
#define iotsec_log_debug(msg, ...)                                                                 \
    iotsec_log_write(IOTSEC_LOG_DEBUG, (msg), IOTSEC_LOG_FIELDS_(__VA_ARGS__))
#define iotsec_log_info(msg, ...)                                                                  \
    iotsec_log_write(IOTSEC_LOG_INFO, (msg), IOTSEC_LOG_FIELDS_(__VA_ARGS__))
#define iotsec_log_warn(msg, ...)                                                                  \
    iotsec_log_write(IOTSEC_LOG_WARN, (msg), IOTSEC_LOG_FIELDS_(__VA_ARGS__))
#define iotsec_log_error(msg, ...)                                                                 \
    iotsec_log_write(IOTSEC_LOG_ERROR, (msg), IOTSEC_LOG_FIELDS_(__VA_ARGS__))

#endif
