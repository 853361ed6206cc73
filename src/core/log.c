/*
 * JSON-lines logging (include/iotsec/log.h).
 *
 * The line is built by hand rather than through a jansson object: jansson refuses a
 * string that is not valid UTF-8 (json_string() returns NULL), and the values most worth
 * logging (an id or address from a misbehaving client) are exactly the ones that may not
 * be. iotsec_json_append_string() turns invalid sequences into U+FFFD and escapes
 * everything below U+0020, '"', '\\' and DEL, so the record is still written and a value
 * can neither end the line nor the string it is in.
 *
 * Values and the number of fields are capped, so one record is bounded (under 2 MiB even
 * when every value is at its cap) and goes out in a single write(2) under a mutex.
 */
#include "iotsec/log.h"

#include "iotsec/buf.h"
#include "iotsec/json.h"
#include "iotsec/time.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_VALUE_MAX  4096 /* input bytes of one string kept; the rest becomes "..." */
#define LOG_KEY_MAX    128
#define LOG_FIELDS_MAX 64

static atomic_int log_fd = 2;
static atomic_int log_min = IOTSEC_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
    [IOTSEC_LOG_DEBUG] = "debug",
    [IOTSEC_LOG_INFO] = "info",
    [IOTSEC_LOG_WARN] = "warn",
    [IOTSEC_LOG_ERROR] = "error",
};

void iotsec_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void iotsec_log_set_level(enum iotsec_log_level level)
{
    atomic_store(&log_min, (int)level);
}

bool iotsec_log_enabled(enum iotsec_log_level level)
{
    return (int)level >= atomic_load(&log_min);
}

const char *iotsec_log_level_name(enum iotsec_log_level level)
{
    if ((unsigned)level > IOTSEC_LOG_ERROR)
        return "unknown";
    return level_names[level];
}

iotsec_result iotsec_log_level_parse(const char *name, enum iotsec_log_level *out)
{
    IOTSEC_ENSURE(name != NULL, IOTSEC_ERR_CONFIG, "log: no level given");
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum iotsec_log_level)i;
            return IOTSEC_RESULT_OK;
        }
    }
    IOTSEC_BAIL(IOTSEC_ERR_CONFIG,
                "log: unknown level '%.32s' (expected debug, info, warn or error)", name);
}

/* Appends s as a JSON string, keeping at most max bytes: a longer value is cut at a
 * character boundary and ends in "...", so one huge value cannot make a huge line. */
static iotsec_result append_string(struct iotsec_buf *b, const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return iotsec_json_append_string(b, iotsec_slice_make(s, len));
    size_t n = max;
    while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
        n--;
    IOTSEC_GUARD(iotsec_json_append_string(b, iotsec_slice_make(s, n)));
    b->len--; /* reopen the string to mark the cut inside it */
    return iotsec_buf_append_str(b, "...\"");
}

static bool key_taken(const char *key, const struct iotsec_log_field *fields, size_t before)
{
    if (strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "msg") == 0)
        return true;
    for (size_t i = 0; i < before; i++) {
        if (strcmp(fields[i].key, key) == 0)
            return true;
    }
    return false;
}

static iotsec_result append_field(struct iotsec_buf *b, const struct iotsec_log_field *f)
{
    char num[32];
    IOTSEC_GUARD(iotsec_buf_append_u8(b, ','));
    IOTSEC_GUARD(append_string(b, f->key, LOG_KEY_MAX));
    IOTSEC_GUARD(iotsec_buf_append_u8(b, ':'));
    switch (f->type) {
    case IOTSEC_LOG_FIELD_STR:
        if (f->str == NULL)
            return iotsec_buf_append_str(b, "null");
        return append_string(b, f->str, LOG_VALUE_MAX);
    case IOTSEC_LOG_FIELD_INT:
        snprintf(num, sizeof(num), "%" PRId64, f->num);
        return iotsec_buf_append_str(b, num);
    case IOTSEC_LOG_FIELD_BOOL:
        return iotsec_buf_append_str(b, f->flag ? "true" : "false");
    default:
        return iotsec_buf_append_str(b, "null");
    }
}

static iotsec_result build_record(struct iotsec_buf *b, enum iotsec_log_level level,
                                  const char *msg, const struct iotsec_log_field *fields)
{
    char ts[IOTSEC_TIME_STR_MAX];
    if (!iotsec_ok(iotsec_time_format(iotsec_time_now(), IOTSEC_TIME_MILLIS, ts)))
        ts[0] = '\0';
    IOTSEC_GUARD(iotsec_buf_append_str(b, "{\"ts\":"));
    IOTSEC_GUARD(append_string(b, ts, sizeof(ts)));
    IOTSEC_GUARD(iotsec_buf_append_str(b, ",\"level\":"));
    IOTSEC_GUARD(append_string(b, iotsec_log_level_name(level), LOG_KEY_MAX));
    IOTSEC_GUARD(iotsec_buf_append_str(b, ",\"msg\":"));
    IOTSEC_GUARD(append_string(b, msg == NULL ? "" : msg, LOG_VALUE_MAX));
    for (size_t i = 0; fields != NULL && i < LOG_FIELDS_MAX && fields[i].key != NULL; i++) {
        if (!key_taken(fields[i].key, fields, i))
            IOTSEC_GUARD(append_field(b, &fields[i]));
    }
    return iotsec_buf_append_str(b, "}\n");
}

static void write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

iotsec_result iotsec_log_format(enum iotsec_log_level level, const char *msg,
                                const struct iotsec_log_field *fields, struct iotsec_buf *out)
{
    size_t before = out->len;
    iotsec_result r = build_record(out, level, msg, fields);
    if (!iotsec_ok(r))
        out->len = before; /* never half a record */
    return r;
}

void iotsec_log_write_records(const uint8_t *records, size_t len)
{
    if (len == 0)
        return;
    pthread_mutex_lock(&log_lock);
    write_all(atomic_load(&log_fd), records, len);
    pthread_mutex_unlock(&log_lock);
}

void iotsec_log_write(enum iotsec_log_level level, const char *msg,
                      const struct iotsec_log_field *fields)
{
    if (!iotsec_log_enabled(level))
        return;
    /* Logging must not disturb the error a caller is about to report. */
    iotsec_err saved_code = iotsec_error_code();
    char saved_message[512];
    snprintf(saved_message, sizeof(saved_message), "%s", iotsec_error_message());

    struct iotsec_buf b;
    iotsec_buf_init(&b);
    if (iotsec_ok(build_record(&b, level, msg, fields))) {
        pthread_mutex_lock(&log_lock);
        write_all(atomic_load(&log_fd), b.ptr, b.len);
        pthread_mutex_unlock(&log_lock);
    }
    iotsec_buf_free(&b);
    iotsec_error_set(saved_code, "%s", saved_message);
}
