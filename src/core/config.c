/*
 * Strict INI configuration over libinih (include/iotsec/config.h).
 *
 * libinih is driven through ini_parse_stream() with our own line reader rather than
 * ini_parse_string(), because libinih's own readers hide three hazards the reader can
 * refuse up front, each with its line number:
 * - a line longer than libinih's buffer is split, and its tail is parsed as a new line
 *   (a long comment could end in "admin = true");
 * - a section name longer than 49 bytes is silently cut short;
 * - an indented line continues the previous value, so "  port = 1" inside a section
 *   becomes part of the previous key's value instead of an error.
 * libinih does not report line numbers to the handler in this build, so the reader
 * counts lines; the handler runs right after the reader returns its line.
 *
 * The table is a flat array searched linearly: configs hold tens of keys, and the key
 * limit keeps the duplicate check bounded even for a hostile file.
 */
#include "iotsec/config.h"

#include "iotsec/file.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libinih's fixed section buffer is 50 bytes including the NUL. */
#define SECTION_NAME_MAX 49
/* Bytes of an operator's text echoed in a message. */
#define QUOTE_MAX 48

struct config_entry {
    char *section;
    char *key;
    char *value;
    unsigned line;
};

struct iotsec_config {
    char *name;
    struct config_entry *entries;
    size_t count;
    size_t cap;
};

struct parse_state {
    struct iotsec_config *cfg;
    struct iotsec_slice rest;
    unsigned line;
    unsigned error_line; /* 0 while no error is recorded */
};

/* Control characters in an operator's text would garble the terminal or log line that
 * shows the message; long text is cut. out needs QUOTE_MAX + 4 bytes. */
static void quote(const char *s, char *out)
{
    size_t n = 0;
    for (; s[n] != '\0' && n < QUOTE_MAX; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[n] != '\0') {
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* "section.key", or "key" for the section "". */
static void qualified(const char *section, const char *key, char *out, size_t size)
{
    char qs[QUOTE_MAX + 4], qk[QUOTE_MAX + 4];
    quote(section, qs);
    quote(key, qk);
    snprintf(out, size, "%s%s%s", qs, section[0] != '\0' ? "." : "", qk);
}

static const struct config_entry *find(const struct iotsec_config *cfg, const char *section,
                                       const char *key)
{
    for (size_t i = 0; i < cfg->count; i++) {
        const struct config_entry *e = &cfg->entries[i];
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* ---- parsing ---- */

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

/* Refuses what libinih would misread (see the top of the file). Sets the error. */
static iotsec_result check_line(const struct parse_state *st, struct iotsec_slice line,
                                size_t max_content)
{
    const char *name = st->cfg->name;
    size_t content = line.len;
    if (content > 0 && line.ptr[content - 1] == '\n')
        content--;
    if (content > 0 && line.ptr[content - 1] == '\r')
        content--;
    IOTSEC_ENSURE(content <= max_content, IOTSEC_ERR_CONFIG, "%s:%u: line is longer than %zu bytes",
                  name, st->line, max_content);
    IOTSEC_ENSURE(memchr(line.ptr, '\0', line.len) == NULL, IOTSEC_ERR_CONFIG,
                  "%s:%u: NUL byte in line", name, st->line);

    size_t i = 0;
    while (i < line.len && is_blank(line.ptr[i]))
        i++;
    bool comment_or_blank = i == line.len || line.ptr[i] == ';' || line.ptr[i] == '#';
    IOTSEC_ENSURE(i == 0 || comment_or_blank, IOTSEC_ERR_CONFIG,
                  "%s:%u: indented line (indentation would make it part of the previous "
                  "value; remove it)",
                  name, st->line);
    /* Without a ']' libinih reports a syntax error itself. */
    const uint8_t *close =
        i < line.len && line.ptr[i] == '[' ? memchr(line.ptr + i, ']', line.len - i) : NULL;
    IOTSEC_ENSURE(close == NULL || (size_t)(close - (line.ptr + i)) - 1 <= SECTION_NAME_MAX,
                  IOTSEC_ERR_CONFIG, "%s:%u: section name is longer than %d bytes", name, st->line,
                  SECTION_NAME_MAX);
    return IOTSEC_RESULT_OK;
}

/* libinih's reader callback: one whole line per call, NULL at the end or on a refusal
 * (which stops libinih at once). */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    if (st->error_line != 0 || st->rest.len == 0 || num < 4)
        return NULL;
    const uint8_t *nl = memchr(st->rest.ptr, '\n', st->rest.len);
    size_t len = nl != NULL ? (size_t)(nl - st->rest.ptr) + 1 : st->rest.len;
    struct iotsec_slice line = iotsec_slice_make(st->rest.ptr, len);
    st->line++;
    /* libinih needs room for the line, "\r\n" and a NUL (ini.h, INI_MAX_LINE). */
    if (!iotsec_ok(check_line(st, line, (size_t)num - 3))) {
        st->error_line = st->line;
        return NULL;
    }
    memcpy(str, line.ptr, len);
    str[len] = '\0';
    st->rest.ptr += len;
    st->rest.len -= len;
    return str;
}

static iotsec_result add_entry(struct parse_state *st, const char *section, const char *key,
                               const char *value)
{
    struct iotsec_config *cfg = st->cfg;
    char where[2 * QUOTE_MAX + 16];
    qualified(section, key, where, sizeof(where));
    IOTSEC_ENSURE(key[0] != '\0', IOTSEC_ERR_CONFIG, "%s:%u: empty key name", cfg->name, st->line);
    const struct config_entry *first = find(cfg, section, key);
    IOTSEC_ENSURE(first == NULL, IOTSEC_ERR_CONFIG,
                  "%s:%u: %s: duplicate key (first set on line %u)", cfg->name, st->line, where,
                  first != NULL ? first->line : 0);
    IOTSEC_ENSURE(cfg->count < IOTSEC_CONFIG_MAX_KEYS, IOTSEC_ERR_CONFIG,
                  "%s:%u: more than %d keys", cfg->name, st->line, IOTSEC_CONFIG_MAX_KEYS);

    if (cfg->count == cfg->cap) {
        size_t cap = cfg->cap == 0 ? 16 : cfg->cap * 2;
        struct config_entry *grown = realloc(cfg->entries, cap * sizeof(*grown));
        IOTSEC_ENSURE_ALLOC(grown);
        cfg->entries = grown;
        cfg->cap = cap;
    }
    struct config_entry e = {
        .section = strdup(section),
        .key = strdup(key),
        .value = strdup(value),
        .line = st->line,
    };
    if (e.section == NULL || e.key == NULL || e.value == NULL) {
        free(e.section);
        free(e.key);
        free(e.value);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "config: out of memory");
    }
    cfg->entries[cfg->count++] = e;
    return IOTSEC_RESULT_OK;
}

/* libinih's handler: nonzero to go on. libinih keeps parsing after an error to find the
 * first error line, so only the first failure is recorded. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    if (st->error_line != 0)
        return 0;
    if (name == NULL || value == NULL)
        return 1; /* a section start, in builds that report them */
    if (!iotsec_ok(add_entry(st, section, name, value))) {
        st->error_line = st->line;
        return 0;
    }
    return 1;
}

iotsec_result iotsec_config_parse(struct iotsec_slice text, const char *name,
                                  struct iotsec_config **out)
{
    *out = NULL;
    IOTSEC_ENSURE(text.len <= IOTSEC_CONFIG_MAX_BYTES, IOTSEC_ERR_TOO_LARGE,
                  "%s: config is %zu bytes, the limit is %zu", name, text.len,
                  IOTSEC_CONFIG_MAX_BYTES);
    struct iotsec_config *cfg = calloc(1, sizeof(*cfg));
    IOTSEC_ENSURE_ALLOC(cfg);
    cfg->name = strdup(name);
    if (cfg->name == NULL) {
        free(cfg);
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "config: out of memory");
    }

    struct parse_state st = {.cfg = cfg, .rest = text};
    int rc = ini_parse_stream(read_line, &st, on_pair, &st);
    /* Report whichever problem comes first in the file: libinih's syntax error (its
     * return value is the line) or ours. */
    if (rc > 0 && (st.error_line == 0 || (unsigned)rc < st.error_line)) {
        iotsec_error_set(IOTSEC_ERR_CONFIG,
                         "%s:%d: syntax error (expected [section], key = value, or a comment)",
                         cfg->name, rc);
    } else if (rc < 0 && st.error_line == 0) {
        iotsec_error_set(IOTSEC_ERR_NOMEM, "%s: out of memory while parsing", cfg->name);
    }
    if (rc != 0 || st.error_line != 0) {
        iotsec_config_free(cfg);
        return IOTSEC_RESULT_ERR;
    }
    *out = cfg;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_config_load(const char *path, struct iotsec_config **out)
{
    struct iotsec_buf text;
    iotsec_buf_init(&text);
    *out = NULL;
    iotsec_result r = iotsec_file_read(path, IOTSEC_CONFIG_MAX_BYTES, &text);
    if (iotsec_ok(r))
        r = iotsec_config_parse(iotsec_buf_slice(&text), path, out);
    iotsec_buf_free(&text);
    return r;
}

void iotsec_config_free(struct iotsec_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->count; i++) {
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    free(cfg->name);
    free(cfg);
}

/* ---- queries ---- */

static bool is_known(const struct config_entry *e, const struct iotsec_config_key *known)
{
    for (; known->key != NULL; known++) {
        if (strcmp(known->section, e->section) == 0 && strcmp(known->key, e->key) == 0)
            return true;
    }
    return false;
}

iotsec_result iotsec_config_check_known(const struct iotsec_config *cfg,
                                        const struct iotsec_config_key *known)
{
    for (size_t i = 0; i < cfg->count; i++) {
        const struct config_entry *e = &cfg->entries[i];
        if (!is_known(e, known)) {
            char where[2 * QUOTE_MAX + 16];
            qualified(e->section, e->key, where, sizeof(where));
            IOTSEC_BAIL(IOTSEC_ERR_CONFIG, "%s:%u: unknown key '%s'", cfg->name, e->line, where);
        }
    }
    return IOTSEC_RESULT_OK;
}

bool iotsec_config_has(const struct iotsec_config *cfg, const char *section, const char *key)
{
    return find(cfg, section, key) != NULL;
}

iotsec_result iotsec_config_require(const struct iotsec_config *cfg, const char *section,
                                    const char *key)
{
    if (find(cfg, section, key) != NULL)
        return IOTSEC_RESULT_OK;
    char where[2 * QUOTE_MAX + 16];
    qualified(section, key, where, sizeof(where));
    IOTSEC_BAIL(IOTSEC_ERR_CONFIG, "%s: missing required key %s", cfg->name, where);
}

void iotsec_config_error_prefix(const struct iotsec_config *cfg, const char *section,
                                const char *key)
{
    char where[2 * QUOTE_MAX + 16];
    qualified(section, key, where, sizeof(where));
    const struct config_entry *e = find(cfg, section, key);
    if (e != NULL)
        iotsec_error_prefix("%s:%u: %s: ", cfg->name, e->line, where);
    else
        iotsec_error_prefix("%s: %s: ", cfg->name, where);
}

iotsec_result iotsec_config_get_string(const struct iotsec_config *cfg, const char *section,
                                       const char *key, const char **out)
{
    const struct config_entry *e = find(cfg, section, key);
    if (e != NULL)
        *out = e->value;
    return IOTSEC_RESULT_OK;
}

/* Decimal only: "010" is ten here, where strtoll with base 0 would read eight. */
static bool parse_decimal(const char *s, int64_t *out)
{
    bool negative = *s == '-';
    if (negative)
        s++;
    if (*s == '\0')
        return false;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = negative ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

iotsec_result iotsec_config_get_int(const struct iotsec_config *cfg, const char *section,
                                    const char *key, int64_t min, int64_t max, int64_t *out)
{
    const struct config_entry *e = find(cfg, section, key);
    if (e == NULL)
        return IOTSEC_RESULT_OK;
    char where[2 * QUOTE_MAX + 16], value[QUOTE_MAX + 4];
    qualified(section, key, where, sizeof(where));
    quote(e->value, value);
    int64_t v;
    IOTSEC_ENSURE(parse_decimal(e->value, &v), IOTSEC_ERR_CONFIG,
                  "%s:%u: %s: expected a decimal integer, got '%s'", cfg->name, e->line, where,
                  value);
    IOTSEC_ENSURE(v >= min && v <= max, IOTSEC_ERR_CONFIG,
                  "%s:%u: %s: %lld is out of range %lld..%lld", cfg->name, e->line, where,
                  (long long)v, (long long)min, (long long)max);
    *out = v;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_config_get_bool(const struct iotsec_config *cfg, const char *section,
                                     const char *key, bool *out)
{
    static const char *const truthy[] = {"true", "yes", "on", "1"};
    static const char *const falsy[] = {"false", "no", "off", "0"};
    const struct config_entry *e = find(cfg, section, key);
    if (e == NULL)
        return IOTSEC_RESULT_OK;
    for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
        if (strcasecmp(e->value, truthy[i]) == 0) {
            *out = true;
            return IOTSEC_RESULT_OK;
        }
        if (strcasecmp(e->value, falsy[i]) == 0) {
            *out = false;
            return IOTSEC_RESULT_OK;
        }
    }
    char where[2 * QUOTE_MAX + 16], value[QUOTE_MAX + 4];
    qualified(section, key, where, sizeof(where));
    quote(e->value, value);
    IOTSEC_BAIL(IOTSEC_ERR_CONFIG,
                "%s:%u: %s: expected true/false, yes/no, on/off or 1/0, got '%s'", cfg->name,
                e->line, where, value);
}
