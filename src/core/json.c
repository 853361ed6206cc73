/*
 * Strict JSON parsing, serialisation and typed getters (include/iotsec/json.h).
 *
 * The size and depth bounds are checked by a pre-scan of the raw bytes before jansson
 * runs: a document of 60 000 '[' costs one linear pass and no allocation instead of
 * jansson building a deep tree first. The same pass refuses raw NUL bytes, which jansson
 * reports confusingly ("end of file expected") when they follow a complete value.
 *
 * jansson finds every other error (syntax, UTF-8, duplicate keys, numeric overflow); we
 * rephrase its message where it names jansson internals or leaves out what an operator
 * needs (which key was duplicated), and always lead with "json: line L column C".
 */
#include "iotsec/json.h"

#include <stdio.h>
#include <string.h>

/* Bytes of untrusted text (a key) quoted in an error message. */
#define QUOTE_MAX 64
/* Room for jansson's own message text (JSON_ERROR_TEXT_LENGTH) after quote_text(). */
#define JANSSON_TEXT_MAX (JSON_ERROR_TEXT_LENGTH + 4)

/* Length of the valid UTF-8 sequence at p, or 0 (RFC 3629 section 4: no overlong forms,
 * no surrogates, nothing above U+10FFFF). */
static size_t utf8_sequence(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    }
    return n;
}

/* Copies untrusted text into a message-safe form: control characters and bytes that are
 * not valid UTF-8 become '?', so a key like "a\nlevel: ok" cannot forge a second line in
 * a log or on a terminal and the message stays a valid JSON string (servers return it in
 * error bodies; jansson's "near '...'" can end inside a character). Text longer than max
 * is cut at a character boundary and marked with "...". out must hold max + 4 bytes. */
static void quote_text(const char *s, size_t len, size_t max, char *out)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = utf8_sequence(p + i, len - i);
        if (o + (n == 0 ? 1 : n) > max)
            break;
        if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Line and column of byte offset pos, counted as jansson does (column in characters,
 * so a multi-byte UTF-8 character is one column; 1-based). */
static void position_of(struct iotsec_slice text, size_t pos, int *line, int *column)
{
    *line = 1;
    *column = 0;
    for (size_t i = 0; i <= pos && i < text.len; i++) {
        uint8_t c = text.ptr[i];
        if (c == '\n') {
            (*line)++;
            *column = 0;
        } else if ((c & 0xc0) != 0x80) {
            (*column)++;
        }
    }
}

static iotsec_result prescan(struct iotsec_slice text, size_t max_depth)
{
    size_t depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < text.len; i++) {
        uint8_t c = text.ptr[i];
        int line, column;
        if (c == '\0') {
            position_of(text, i, &line, &column);
            IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: line %d column %d: NUL byte", line, column);
        }
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                position_of(text, i, &line, &column);
                IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: line %d column %d: nesting deeper than %zu",
                            line, column, max_depth);
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return IOTSEC_RESULT_OK;
}

/* The raw text of the object key that ends just before byte `end` (jansson reports a
 * duplicate right after lexing the key). Found by scanning strings from the start, as
 * scanning backwards cannot tell an escaped quote from a closing one. */
static bool key_ending_at(struct iotsec_slice text, size_t end, struct iotsec_slice *key)
{
    bool in_string = false, escaped = false;
    size_t start = 0;
    for (size_t i = 0; i < text.len && i < end; i++) {
        uint8_t c = text.ptr[i];
        if (!in_string) {
            if (c == '"') {
                in_string = true;
                start = i + 1;
            }
            continue;
        }
        if (escaped) {
            escaped = false;
        } else if (c == '\\') {
            escaped = true;
        } else if (c == '"') {
            in_string = false;
            if (i + 1 == end) {
                *key = iotsec_slice_make(text.ptr + start, i - start);
                return true;
            }
        }
    }
    return false;
}

static iotsec_result jansson_error(struct iotsec_slice text, const json_error_t *err)
{
    char quoted[QUOTE_MAX + 4];
    struct iotsec_slice key;
    switch (json_error_code(err)) {
    case json_error_duplicate_key:
        if (err->position >= 0 && key_ending_at(text, (size_t)err->position, &key)) {
            quote_text((const char *)key.ptr, key.len, QUOTE_MAX, quoted);
            IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: line %d column %d: duplicate object key '%s'",
                        err->line, err->column, quoted);
        }
        break;
    case json_error_end_of_input_expected:
        IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: line %d column %d: unexpected data after the value",
                    err->line, err->column);
    case json_error_null_character:
        IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: line %d column %d: \\u0000 is not allowed in strings",
                    err->line, err->column);
    case json_error_out_of_memory:
        IOTSEC_BAIL(IOTSEC_ERR_NOMEM, "json: out of memory");
    default:
        break;
    }
    char text_quoted[JANSSON_TEXT_MAX];
    quote_text(err->text, strnlen(err->text, sizeof(err->text) - 1), JSON_ERROR_TEXT_LENGTH,
               text_quoted);
    IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: line %d column %d: %s", err->line, err->column,
                text_quoted);
}

iotsec_result iotsec_json_parse(struct iotsec_slice text, const struct iotsec_json_limits *limits,
                                json_t **out)
{
    size_t max_bytes = IOTSEC_JSON_DEFAULT_MAX_BYTES;
    size_t max_depth = IOTSEC_JSON_DEFAULT_MAX_DEPTH;
    if (limits != NULL && limits->max_bytes != 0)
        max_bytes = limits->max_bytes;
    if (limits != NULL && limits->max_depth != 0)
        max_depth = limits->max_depth;
    if (max_depth > IOTSEC_JSON_MAX_DEPTH)
        max_depth = IOTSEC_JSON_MAX_DEPTH;

    *out = NULL;
    IOTSEC_ENSURE(text.len <= max_bytes, IOTSEC_ERR_TOO_LARGE,
                  "json: document is %zu bytes, the limit is %zu", text.len, max_bytes);
    IOTSEC_GUARD(prescan(text, max_depth));

    json_error_t err;
    /* jansson refuses a NULL buffer as "wrong arguments"; an empty slice is just empty. */
    const char *bytes = text.len == 0 ? "" : (const char *)text.ptr;
    json_t *value = json_loadb(bytes, text.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (value == NULL)
        return jansson_error(text, &err);
    *out = value;
    return IOTSEC_RESULT_OK;
}

/* ---- serialisation ---- */

struct dump_ctx {
    struct iotsec_buf *out;
    bool failed; /* our error is already set; do not overwrite it */
};

static int dump_chunk(const char *buffer, size_t size, void *data)
{
    struct dump_ctx *ctx = data;
    if (!iotsec_ok(iotsec_buf_append(ctx->out, buffer, size))) {
        ctx->failed = true;
        return -1;
    }
    return 0;
}

iotsec_result iotsec_json_dump(const json_t *value, unsigned flags, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(value != NULL, IOTSEC_ERR_INVALID_ARG, "json: no value to encode");
    size_t jflags = JSON_COMPACT | JSON_ENCODE_ANY;
    if (flags & IOTSEC_JSON_SORT_KEYS)
        jflags |= JSON_SORT_KEYS;
    struct dump_ctx ctx = {.out = out, .failed = false};
    size_t start = out->len;
    if (json_dump_callback(value, dump_chunk, &ctx, jflags) != 0) {
        out->len = start;
        if (!ctx.failed)
            iotsec_error_set(IOTSEC_ERR_JSON, "json: value cannot be encoded");
        return IOTSEC_RESULT_ERR;
    }
    return IOTSEC_RESULT_OK;
}

/* The escape for a byte that cannot appear as itself; NULL for an invalid UTF-8 byte. */
static const char *escape_for(uint8_t c, char buf[7])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        if (c >= 0x20 && c != 0x7f)
            return "\\ufffd";
        memcpy(buf, "\\u00", 4);
        buf[4] = hex[c >> 4];
        buf[5] = hex[c & 0xf];
        buf[6] = '\0';
        return buf;
    }
}

iotsec_result iotsec_json_append_string(struct iotsec_buf *out, struct iotsec_slice s)
{
    IOTSEC_GUARD(iotsec_buf_append_u8(out, '"'));
    size_t run = 0; /* start of the bytes that go out unchanged */
    for (size_t i = 0; i < s.len;) {
        uint8_t c = s.ptr[i];
        if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\') {
            size_t n = utf8_sequence(s.ptr + i, s.len - i);
            if (n != 0) {
                i += n;
                continue;
            }
        }
        char buf[7];
        if (i > run)
            IOTSEC_GUARD(iotsec_buf_append(out, s.ptr + run, i - run));
        IOTSEC_GUARD(iotsec_buf_append_str(out, escape_for(c, buf)));
        run = ++i;
    }
    if (s.len > run)
        IOTSEC_GUARD(iotsec_buf_append(out, s.ptr + run, s.len - run));
    return iotsec_buf_append_u8(out, '"');
}

/* ---- getters ---- */

const char *iotsec_json_type_name(const json_t *value)
{
    switch (value == NULL ? JSON_NULL : json_typeof(value)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

/* Finds obj[key]. *member is NULL for an absent OPTIONAL member. */
static iotsec_result lookup(const json_t *obj, const char *key, enum iotsec_json_presence presence,
                            json_t **member)
{
    IOTSEC_ENSURE(json_is_object(obj), IOTSEC_ERR_JSON, "json: expected an object, got %s",
                  iotsec_json_type_name(obj));
    *member = json_object_get(obj, key);
    IOTSEC_ENSURE(*member != NULL || presence == IOTSEC_JSON_OPTIONAL, IOTSEC_ERR_JSON,
                  "json: missing required field '%s'", key);
    return IOTSEC_RESULT_OK;
}

static iotsec_result wrong_type(const char *key, const char *expected, const json_t *got)
{
    IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: field '%s': expected %s, got %s", key, expected,
                iotsec_json_type_name(got));
}

iotsec_result iotsec_json_get_string(const json_t *obj, const char *key,
                                     enum iotsec_json_presence presence, size_t max_len,
                                     const char **out)
{
    json_t *v;
    IOTSEC_GUARD(lookup(obj, key, presence, &v));
    if (v == NULL)
        return IOTSEC_RESULT_OK;
    if (!json_is_string(v))
        return wrong_type(key, "a string", v);
    size_t len = json_string_length(v);
    IOTSEC_ENSURE(max_len == 0 || len <= max_len, IOTSEC_ERR_JSON,
                  "json: field '%s': string is %zu bytes, the limit is %zu", key, len, max_len);
    *out = json_string_value(v);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_json_get_int(const json_t *obj, const char *key,
                                  enum iotsec_json_presence presence, int64_t min, int64_t max,
                                  int64_t *out)
{
    json_t *v;
    IOTSEC_GUARD(lookup(obj, key, presence, &v));
    if (v == NULL)
        return IOTSEC_RESULT_OK;
    if (!json_is_integer(v))
        return wrong_type(key, "an integer", v);
    int64_t x = (int64_t)json_integer_value(v);
    IOTSEC_ENSURE(x >= min && x <= max, IOTSEC_ERR_JSON,
                  "json: field '%s': %lld is out of range %lld..%lld", key, (long long)x,
                  (long long)min, (long long)max);
    *out = x;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_json_get_number(const json_t *obj, const char *key,
                                     enum iotsec_json_presence presence, double min, double max,
                                     double *out)
{
    json_t *v;
    IOTSEC_GUARD(lookup(obj, key, presence, &v));
    if (v == NULL)
        return IOTSEC_RESULT_OK;
    if (!json_is_number(v))
        return wrong_type(key, "a number", v);
    double x = json_number_value(v);
    IOTSEC_ENSURE(x >= min && x <= max, IOTSEC_ERR_JSON,
                  "json: field '%s': %g is out of range %g..%g", key, x, min, max);
    *out = x;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_json_get_bool(const json_t *obj, const char *key,
                                   enum iotsec_json_presence presence, bool *out)
{
    json_t *v;
    IOTSEC_GUARD(lookup(obj, key, presence, &v));
    if (v == NULL)
        return IOTSEC_RESULT_OK;
    if (!json_is_boolean(v))
        return wrong_type(key, "a boolean", v);
    *out = json_is_true(v);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_json_get_object(const json_t *obj, const char *key,
                                     enum iotsec_json_presence presence, json_t **out)
{
    json_t *v;
    IOTSEC_GUARD(lookup(obj, key, presence, &v));
    if (v == NULL)
        return IOTSEC_RESULT_OK;
    if (!json_is_object(v))
        return wrong_type(key, "an object", v);
    *out = v;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_json_get_array(const json_t *obj, const char *key,
                                    enum iotsec_json_presence presence, size_t max_items,
                                    json_t **out)
{
    json_t *v;
    IOTSEC_GUARD(lookup(obj, key, presence, &v));
    if (v == NULL)
        return IOTSEC_RESULT_OK;
    if (!json_is_array(v))
        return wrong_type(key, "an array", v);
    size_t n = json_array_size(v);
    IOTSEC_ENSURE(max_items == 0 || n <= max_items, IOTSEC_ERR_JSON,
                  "json: field '%s': array has %zu items, the limit is %zu", key, n, max_items);
    *out = v;
    return IOTSEC_RESULT_OK;
}

static bool is_allowed(const char *key, size_t len, const char *const *allowed)
{
    for (; *allowed != NULL; allowed++) {
        if (strlen(*allowed) == len && memcmp(*allowed, key, len) == 0)
            return true;
    }
    return false;
}

iotsec_result iotsec_json_reject_unknown(const json_t *obj, const char *const *allowed)
{
    IOTSEC_ENSURE(json_is_object(obj), IOTSEC_ERR_JSON, "json: expected an object, got %s",
                  iotsec_json_type_name(obj));
    /* jansson's iterator API takes a non-const object although iterating does not modify
     * it; the cast is confined here. Object order is document order (jansson keeps
     * insertion order), so the first unknown field in the text is the one reported. */
    json_t *o = (json_t *)(uintptr_t)obj;
    for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        if (!is_allowed(key, len, allowed)) {
            char quoted[QUOTE_MAX + 4];
            quote_text(key, len, QUOTE_MAX, quoted);
            IOTSEC_BAIL(IOTSEC_ERR_JSON, "json: unknown field '%s'", quoted);
        }
    }
    return IOTSEC_RESULT_OK;
}
