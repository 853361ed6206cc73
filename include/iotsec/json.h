/*
 * Strict JSON over jansson, and typed getters that name the field in every error.
 *
 * Every JSON document iotsec reads comes from someone it does not trust (a device, an
 * operator's client, a file on disk), so iotsec_json_parse() is strict:
 * - duplicate object keys are rejected: two parsers that pick different copies of a key
 *   ("first wins" vs "last wins") are a known way to smuggle a value past a check;
 * - trailing bytes after the value are rejected;
 * - the size and the nesting depth are bounded before jansson sees the input, so a hostile
 *   document costs one linear scan (jansson's own depth limit is a fixed 2048);
 * - NUL bytes, "\u0000", unpaired surrogates and invalid UTF-8 are rejected, so every
 *   string is a valid NUL-free C string;
 * - integers beyond int64 and reals beyond double are rejected, never rounded.
 * Any JSON value may be the top level; the getters below refuse a non-object.
 *
 * Errors are IOTSEC_ERR_JSON with a position ("json: line 1 column 12: duplicate object
 * key 'a'"), or IOTSEC_ERR_TOO_LARGE for a document over the size limit.
 *
 * Getters (iotsec_json_get_*) read one member of an object. Each takes a presence rule:
 * a REQUIRED member that is absent is an error; an OPTIONAL member that is absent leaves
 * *out untouched (so the caller presets a default) and is not an error. A present member
 * of the wrong type, or out of range, is always an error, and JSON null counts as the
 * wrong type: strict schemas treat "field": null as a mistake, not as absence. Messages
 * name the field: "json: field 'temperature': 120 is out of range -50..100".
 *
 * Values returned through pointers (strings, objects, arrays) are borrowed: they live as
 * long as the parsed document they came from.
 */
#ifndef IOTSEC_JSON_H
#define IOTSEC_JSON_H

#include "iotsec/buf.h"
#include "iotsec/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOTSEC_JSON_DEFAULT_MAX_BYTES ((size_t)64 * 1024)
#define IOTSEC_JSON_DEFAULT_MAX_DEPTH 16
/* jansson refuses deeper documents on its own; a larger max_depth is clamped to this. */
#define IOTSEC_JSON_MAX_DEPTH 2048

/* A zero field means "the default"; pass NULL for all defaults. Depth counts nested
 * arrays and objects: a scalar has depth 0, {"a":1} depth 1, {"a":[1]} depth 2. */
struct iotsec_json_limits {
    size_t max_bytes;
    size_t max_depth;
};

/* Parses text into *out, a new reference the caller releases with json_decref(). */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_parse(struct iotsec_slice text,
                                                  const struct iotsec_json_limits *limits,
                                                  json_t **out);

/* Serialisation flags. Output is always compact (no spaces, no newlines). */
enum {
    IOTSEC_JSON_SORT_KEYS = 1 << 0, /* object keys in byte order, for canonical output;
                                       otherwise insertion (= document) order */
};

/* Appends the encoding of value (any JSON value) to out. Fails with out's own limit
 * (IOTSEC_ERR_TOO_LARGE) when it does not fit. */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_dump(const json_t *value, unsigned flags,
                                                 struct iotsec_buf *out);

/* Appends s as a JSON string literal, quotes included, for writers that build JSON by
 * hand (log lines). '"', '\\', control characters and DEL are escaped, and every byte that
 * is not part of valid UTF-8 becomes U+FFFD, so any bytes at all give valid JSON that
 * cannot end the string or the line early. */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_append_string(struct iotsec_buf *out,
                                                          struct iotsec_slice s);

enum iotsec_json_presence {
    IOTSEC_JSON_REQUIRED,
    IOTSEC_JSON_OPTIONAL,
};

/* A string of at most max_len bytes (UTF-8; 0 means no limit beyond the document's). */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_get_string(const json_t *obj, const char *key,
                                                       enum iotsec_json_presence presence,
                                                       size_t max_len, const char **out);

/* An integer in min..max. 5.0 is a real, not an integer, and is refused. */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_get_int(const json_t *obj, const char *key,
                                                    enum iotsec_json_presence presence, int64_t min,
                                                    int64_t max, int64_t *out);

/* Any number (integer or real) in min..max. */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_get_number(const json_t *obj, const char *key,
                                                       enum iotsec_json_presence presence,
                                                       double min, double max, double *out);

/* true or false only: no 0/1, no "true". */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_get_bool(const json_t *obj, const char *key,
                                                     enum iotsec_json_presence presence, bool *out);

IOTSEC_MUST_CHECK iotsec_result iotsec_json_get_object(const json_t *obj, const char *key,
                                                       enum iotsec_json_presence presence,
                                                       json_t **out);

/* An array of at most max_items elements (0 means no limit). */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_get_array(const json_t *obj, const char *key,
                                                      enum iotsec_json_presence presence,
                                                      size_t max_items, json_t **out);

/* Fails if obj is not an object or has a member whose name is not in allowed (a
 * NULL-terminated list): "json: unknown field 'temprature'". Strict schemas call this so
 * that a misspelt optional field is an error rather than silently ignored. */
IOTSEC_MUST_CHECK iotsec_result iotsec_json_reject_unknown(const json_t *obj,
                                                           const char *const *allowed);

/* "object", "array", "string", "integer", "real", "boolean" or "null". */
const char *iotsec_json_type_name(const json_t *value);

#endif
