/*
 * Fuzzes the strict JSON parser (iotsec_json_parse) with the default limits, the ones
 * every device-facing endpoint uses.
 *
 * Invariants beyond "no crash":
 * - a refusal is IOTSEC_ERR_JSON or IOTSEC_ERR_TOO_LARGE with a message free of control
 *   characters (messages reach terminals and logs) and valid as UTF-8 (servers return it
 *   in a JSON error body);
 * - an accepted document serialises (compact, in document order and with sorted keys),
 *   the serialisation parses again to an equal value, and serialising that value gives
 *   the same bytes. The re-parse gets a size limit of the serialisation's own length,
 *   because serialising can grow a document ("1e5" becomes "100000.0");
 * - the escaper behind log lines turns the raw input into a string that parses back.
 */
#include "iotsec/json.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(void)
{
    iotsec_err code = iotsec_error_code();
    if (code != IOTSEC_ERR_JSON && code != IOTSEC_ERR_TOO_LARGE)
        abort();
    const char *m = iotsec_error_message();
    for (const char *p = m; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    }
    /* Servers put the message in a JSON error body: it must be a valid JSON string. */
    json_t *s = json_string(m);
    if (s == NULL)
        abort();
    json_decref(s);
}

static void check_round_trip(const json_t *first, unsigned flags)
{
    struct iotsec_buf once = {0}, twice = {0};
    if (!iotsec_ok(iotsec_json_dump(first, flags, &once)))
        abort();
    struct iotsec_json_limits limits = {.max_bytes = once.len};
    json_t *second = NULL;
    if (!iotsec_ok(iotsec_json_parse(iotsec_buf_slice(&once), &limits, &second)))
        abort();
    if (!json_equal(first, second))
        abort();
    if (!iotsec_ok(iotsec_json_dump(second, flags, &twice)))
        abort();
    if (!iotsec_slice_equal(iotsec_buf_slice(&once), iotsec_buf_slice(&twice)))
        abort();
    json_decref(second);
    iotsec_buf_free(&once);
    iotsec_buf_free(&twice);
}

/* Runs every getter over every member, for coverage of the type and range checks. */
static void exercise_getters(const json_t *obj)
{
    static const char *const allowed[] = {"a", "b", "device_id", NULL};
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)(uintptr_t)obj, key, member)
    {
        const char *s;
        int64_t i;
        double d;
        bool b;
        json_t *o;
        int ok = 0;
        ok += iotsec_ok(iotsec_json_get_string(obj, key, IOTSEC_JSON_REQUIRED, 8, &s));
        ok += iotsec_ok(iotsec_json_get_int(obj, key, IOTSEC_JSON_REQUIRED, -50, 100, &i));
        ok += iotsec_ok(iotsec_json_get_number(obj, key, IOTSEC_JSON_REQUIRED, -1e3, 1e3, &d));
        ok += iotsec_ok(iotsec_json_get_bool(obj, key, IOTSEC_JSON_REQUIRED, &b));
        ok += iotsec_ok(iotsec_json_get_object(obj, key, IOTSEC_JSON_REQUIRED, &o));
        ok += iotsec_ok(iotsec_json_get_array(obj, key, IOTSEC_JSON_REQUIRED, 4, &o));
        /* An integer in range is also a number in range; nothing is two other things. */
        if (ok > 2)
            abort();
    }
    (void)iotsec_json_reject_unknown(obj, allowed);
}

/* The hand-written escaper (used for log lines) must turn any bytes into a JSON string
 * our own strict parser accepts, and keep valid UTF-8 unchanged. Bytes from the first NUL
 * on are left out: the escaper writes NUL as \u0000, which the parser rightly refuses. */
static void check_escaper(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t len = nul != NULL ? (size_t)(nul - data) : size;
    struct iotsec_buf out = {0};
    if (!iotsec_ok(iotsec_json_append_string(&out, iotsec_slice_make(data, len))))
        abort();
    struct iotsec_json_limits limits = {.max_bytes = out.len};
    json_t *decoded = NULL;
    if (!iotsec_ok(iotsec_json_parse(iotsec_buf_slice(&out), &limits, &decoded)))
        abort();
    json_t *original = json_stringn((const char *)data, len);
    if (original != NULL && !json_equal(original, decoded))
        abort();
    json_decref(original);
    json_decref(decoded);
    iotsec_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_escaper(data, size);
    json_t *first = NULL;
    if (!iotsec_ok(iotsec_json_parse(iotsec_slice_make(data, size), NULL, &first))) {
        if (first != NULL)
            abort();
        check_message();
        return 0;
    }
    check_round_trip(first, 0);
    check_round_trip(first, IOTSEC_JSON_SORT_KEYS);
    if (json_is_object(first))
        exercise_getters(first);
    json_decref(first);
    return 0;
}
