/*
 * Bounds, character sets and canonical forms for everything that enters the store.
 *
 * Checked once, in the front, so that every backend stores the same thing and no value
 * reaches SQL unbounded. Messages show at most a short, sanitised prefix of a bad value:
 * an id from a device may be hostile, and control characters must not reach a log line
 * through our error text.
 */
#include "store_check.h"

#include "iotsec/json.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* A bad value as it appears in messages: at most 32 characters, non-printables as '?'. */
struct shown {
    char text[40];
};

static struct shown show(const char *v)
{
    struct shown s;
    size_t n = 0;
    for (; v[n] != '\0' && n < 32; n++)
        s.text[n] = (v[n] >= 0x20 && v[n] < 0x7f) ? v[n] : '?';
    if (v[n] != '\0') {
        memcpy(s.text + n, "...", 3);
        n += 3;
    }
    s.text[n] = '\0';
    return s;
}

static bool in_charset(unsigned char c, enum store_charset cs)
{
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    switch (cs) {
    case STORE_CS_ID:
        return alnum || c == '_' || c == '-';
    case STORE_CS_USER:
        return alnum || c == '_' || c == '-' || c == '.' || c == '@';
    case STORE_CS_TYPE:
        return alnum || c == '_' || c == '-' || c == '.';
    case STORE_CS_PRINTABLE:
        return c >= 0x20 && c < 0x7f;
    case STORE_CS_TOKEN:
        return c > 0x20 && c < 0x7f;
    case STORE_CS_PEM:
        return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r';
    }
    return false;
}

static const char *charset_rule(enum store_charset cs)
{
    switch (cs) {
    case STORE_CS_ID:
        return "A-Z a-z 0-9 _ -";
    case STORE_CS_USER:
        return "A-Z a-z 0-9 _ . @ -";
    case STORE_CS_TYPE:
        return "A-Z a-z 0-9 _ . -";
    case STORE_CS_PRINTABLE:
        return "printable ASCII";
    case STORE_CS_TOKEN:
        return "printable ASCII without spaces";
    case STORE_CS_PEM:
        return "printable ASCII and line breaks";
    }
    return "?";
}

iotsec_result store_check_text(const char *field, const char *v, size_t min, size_t max,
                               enum store_charset cs)
{
    IOTSEC_ENSURE(v != NULL, IOTSEC_ERR_INVALID_ARG, "store: %s is missing", field);
    /* strnlen: a caller's unterminated array or a huge string is never scanned past max. */
    size_t len = strnlen(v, max + 1);
    IOTSEC_ENSURE(len <= max, IOTSEC_ERR_INVALID_ARG,
                  "store: %s '%s' is longer than %zu characters", field, show(v).text, max);
    IOTSEC_ENSURE(len > 0 || min == 0, IOTSEC_ERR_INVALID_ARG, "store: %s is empty", field);
    IOTSEC_ENSURE(len >= min, IOTSEC_ERR_INVALID_ARG,
                  "store: %s '%s' is shorter than %zu characters", field, show(v).text, min);
    for (size_t i = 0; i < len; i++)
        IOTSEC_ENSURE(in_charset((unsigned char)v[i], cs), IOTSEC_ERR_INVALID_ARG,
                      "store: %s '%s' has a character outside %s at position %zu", field,
                      show(v).text, charset_rule(cs), i);
    return IOTSEC_RESULT_OK;
}

iotsec_result store_check_hex(const char *field, const char *v, size_t min, size_t max,
                              bool may_be_empty, char *out)
{
    IOTSEC_ENSURE(v != NULL, IOTSEC_ERR_INVALID_ARG, "store: %s is missing", field);
    size_t len = strnlen(v, max + 1);
    if (len == 0 && may_be_empty) {
        out[0] = '\0';
        return IOTSEC_RESULT_OK;
    }
    char want[48];
    if (min == max)
        snprintf(want, sizeof(want), "%zu", min);
    else
        snprintf(want, sizeof(want), "%zu to %zu", min, max);
    IOTSEC_ENSURE(len >= min && len <= max, IOTSEC_ERR_INVALID_ARG,
                  "store: %s '%s' must be %s hex digits", field, show(v).text, want);
    /* Lowercase, so that "0A1B" and "0a1b" are one serial and one fingerprint. */
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        IOTSEC_ENSURE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'), IOTSEC_ERR_INVALID_ARG,
                      "store: %s '%s' has a non-hex character at position %zu", field, show(v).text,
                      i);
        out[i] = c;
    }
    out[len] = '\0';
    return IOTSEC_RESULT_OK;
}

iotsec_result store_check_ip(const char *field, const char *v, bool may_be_empty, char *out)
{
    IOTSEC_ENSURE(v != NULL, IOTSEC_ERR_INVALID_ARG, "store: %s is missing", field);
    size_t len = strnlen(v, IOTSEC_STORE_IP_MAX + 1);
    if (len == 0 && may_be_empty) {
        out[0] = '\0';
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_ENSURE(len > 0 && len <= IOTSEC_STORE_IP_MAX, IOTSEC_ERR_INVALID_ARG,
                  "store: %s '%s' is not an IP address", field, show(v).text);
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, v, &v4) == 1) {
        inet_ntop(AF_INET, &v4, out, IOTSEC_STORE_IP_MAX + 1);
        return IOTSEC_RESULT_OK;
    }
    /* Zone ids ("fe80::1%eth0") are refused by inet_pton: they name a local interface,
     * not a source, and would give one address many spellings. */
    IOTSEC_ENSURE(inet_pton(AF_INET6, v, &v6) == 1, IOTSEC_ERR_INVALID_ARG,
                  "store: %s '%s' is not an IPv4 or IPv6 address", field, show(v).text);
    /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are the IPv4 peer. */
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
        inet_ntop(AF_INET, &v4, out, IOTSEC_STORE_IP_MAX + 1);
        return IOTSEC_RESULT_OK;
    }
    inet_ntop(AF_INET6, &v6, out, IOTSEC_STORE_IP_MAX + 1);
    return IOTSEC_RESULT_OK;
}

iotsec_result store_check_source(const char *field, const char *v, char *out)
{
    static const char prefix[] = "device:";
    IOTSEC_ENSURE(v != NULL, IOTSEC_ERR_INVALID_ARG, "store: %s is missing", field);
    if (strncmp(v, prefix, sizeof(prefix) - 1) == 0) {
        const char *id = v + sizeof(prefix) - 1;
        IOTSEC_GUARD(
            store_check_text("blocked device id", id, 1, IOTSEC_STORE_ID_MAX, STORE_CS_ID));
        snprintf(out, IOTSEC_STORE_SOURCE_MAX + 1, "%s%s", prefix, id);
        return IOTSEC_RESULT_OK;
    }
    iotsec_result r = store_check_ip(field, v, false, out);
    if (!iotsec_ok(r))
        iotsec_error_set(IOTSEC_ERR_INVALID_ARG,
                         "store: %s '%s' must be an IP address or \"device:<id>\"", field,
                         show(v).text);
    return r;
}

iotsec_result store_check_json_object(const char *field, const char *v)
{
    IOTSEC_ENSURE(v != NULL, IOTSEC_ERR_INVALID_ARG, "store: %s is missing", field);
    size_t len = strnlen(v, IOTSEC_STORE_DETAILS_MAX + 1);
    IOTSEC_ENSURE(len <= IOTSEC_STORE_DETAILS_MAX, IOTSEC_ERR_INVALID_ARG,
                  "store: %s is longer than %d bytes", field, IOTSEC_STORE_DETAILS_MAX);
    /* The platform's strict parser: what the store accepts, every later reader of the
     * log can parse the same way (no duplicate keys, no NULs, bounded depth). */
    json_t *j = NULL;
    struct iotsec_json_limits limits = {.max_bytes = IOTSEC_STORE_DETAILS_MAX};
    if (!iotsec_ok(iotsec_json_parse(iotsec_slice_make(v, len), &limits, &j))) {
        char why[256];
        snprintf(why, sizeof(why), "%s", iotsec_error_message());
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "store: %s is not valid JSON: %s", field, why);
    }
    bool object = json_is_object(j);
    json_decref(j);
    IOTSEC_ENSURE(object, IOTSEC_ERR_INVALID_ARG, "store: %s must be a JSON object", field);
    return IOTSEC_RESULT_OK;
}

iotsec_result store_check_time(const char *field, int64_t t)
{
    IOTSEC_ENSURE(t >= 0, IOTSEC_ERR_INVALID_ARG,
                  "store: %s is %lld; times are milliseconds since 1970 and not negative", field,
                  (long long)t);
    return IOTSEC_RESULT_OK;
}

iotsec_result store_check_crl_reason(int reason)
{
    IOTSEC_ENSURE(reason >= 0 && reason <= 10 && reason != 7 && reason != 8, IOTSEC_ERR_INVALID_ARG,
                  "store: revocation reason %d is not an RFC 5280 CRLReason iotsec uses "
                  "(0-6, 9, 10)",
                  reason);
    return IOTSEC_RESULT_OK;
}

iotsec_result store_check_limit(size_t limit, size_t *out)
{
    IOTSEC_ENSURE(limit <= IOTSEC_STORE_LIST_MAX, IOTSEC_ERR_INVALID_ARG,
                  "store: list limit %zu is over the maximum of %d", limit, IOTSEC_STORE_LIST_MAX);
    *out = limit == 0 ? IOTSEC_STORE_LIST_DEFAULT : limit;
    return IOTSEC_RESULT_OK;
}

iotsec_result store_check_page(const struct iotsec_store_page *page, struct iotsec_store_page *out)
{
    *out = (struct iotsec_store_page){.after = "", .limit = IOTSEC_STORE_LIST_DEFAULT};
    if (page == NULL)
        return IOTSEC_RESULT_OK;
    if (page->after != NULL && page->after[0] != '\0') {
        /* A cursor is only compared with keys, never interpreted; bound it like a key. */
        IOTSEC_GUARD(store_check_text("list cursor", page->after, 1, IOTSEC_STORE_SOURCE_MAX,
                                      STORE_CS_TOKEN));
        out->after = page->after;
    }
    return store_check_limit(page->limit, &out->limit);
}
