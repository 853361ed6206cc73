/*
 * Argument checks for the store's front (store_check.c). Private to src/store/.
 *
 * They live in the front, not in a backend, so that every backend receives the same
 * bounded, canonical input and no string reaches SQL before its length and characters
 * are known. Each failure is IOTSEC_ERR_INVALID_ARG with a message naming the field,
 * showing (a sanitised prefix of) the value, and stating the rule.
 */
#ifndef IOTSEC_STORE_CHECK_H
#define IOTSEC_STORE_CHECK_H

#include "iotsec/store.h"

enum store_charset {
    STORE_CS_ID,        /* [A-Za-z0-9_-]: device ids, key ids */
    STORE_CS_USER,      /* [A-Za-z0-9_.@-]: operator names */
    STORE_CS_TYPE,      /* [A-Za-z0-9_.-]: event types */
    STORE_CS_PRINTABLE, /* ASCII 0x20-0x7e: models, reasons */
    STORE_CS_TOKEN,     /* ASCII 0x21-0x7e: password hashes, list cursors */
    STORE_CS_PEM,       /* printable ASCII, CR and LF */
};

/* v must be non-NULL, min..max characters long, every one in the charset. */
iotsec_result store_check_text(const char *field, const char *v, size_t min, size_t max,
                               enum store_charset cs);
/* Empty, or min..max hex digits; out (max + 1 bytes) receives it in lowercase. */
iotsec_result store_check_hex(const char *field, const char *v, size_t min, size_t max,
                              bool may_be_empty, char *out);
/* An IPv4 or IPv6 address ("" when may_be_empty); out (IOTSEC_STORE_IP_MAX + 1 bytes)
 * receives its canonical spelling. */
iotsec_result store_check_ip(const char *field, const char *v, bool may_be_empty, char *out);
/* "device:<id>" or an IP address; out (IOTSEC_STORE_SOURCE_MAX + 1) receives it canonical. */
iotsec_result store_check_source(const char *field, const char *v, char *out);
/* A JSON object of at most IOTSEC_STORE_DETAILS_MAX bytes, duplicate keys refused. */
iotsec_result store_check_json_object(const char *field, const char *v);
iotsec_result store_check_time(const char *field, int64_t t);
iotsec_result store_check_crl_reason(int reason);
/* Fills out with the page's cursor ("" when none) and limit (the default when 0). */
iotsec_result store_check_page(const struct iotsec_store_page *page, struct iotsec_store_page *out);
iotsec_result store_check_limit(size_t limit, size_t *out);

#endif
