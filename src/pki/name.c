/*
 * Names: device ids, host names and IP literals, and the device id inside a certificate.
 *
 * A device id is refused, never repaired: a CN of "dev 1", " dev1" or "dev1\0x" is not
 * trimmed, escaped or truncated into "dev1", because the id is an identity, and two
 * spellings that map to one id would let one certificate speak for another device. The
 * id comes from the subject's one and only CN; a subject with two CNs is ambiguous
 * (which one would the broker's ACL and the API each pick?) and is refused.
 *
 * Host names follow the LDH rule of RFC 1123 2.1 / RFC 5890 (letters, digits, hyphens;
 * labels of 1 to 63, no hyphen at either end, 253 in all), and a name whose last label is
 * all digits is refused as an IP address in disguise (x509-limbo rfc5280::san::ip-in-dns).
 */
#include "pki_internal.h"

#include <arpa/inet.h>
#include <string.h>

#define DNS_NAME_MAX  253
#define DNS_LABEL_MAX 63

static bool device_id_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool device_id_valid_n(const unsigned char *p, size_t n)
{
    if (n < 1 || n > IOTSEC_PKI_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!device_id_char(p[i]))
            return false;
    return true;
}

bool iotsec_pki_device_id_valid(const char *id)
{
    if (id == NULL)
        return false;
    /* strnlen: an id longer than the maximum is refused without reading all of it. */
    size_t n = strnlen(id, IOTSEC_PKI_DEVICE_ID_MAX + 1);
    return device_id_valid_n((const unsigned char *)id, n);
}

iotsec_result pki_device_id_from_cert(X509 *cert, char out[IOTSEC_PKI_DEVICE_ID_MAX + 1])
{
    out[0] = '\0';
    const X509_NAME *subject = X509_get_subject_name(cert);
    int first = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    IOTSEC_ENSURE(first >= 0, IOTSEC_ERR_AUTH, "pki: the certificate subject has no CN");
    IOTSEC_ENSURE(X509_NAME_get_index_by_NID(subject, NID_commonName, first) < 0, IOTSEC_ERR_AUTH,
                  "pki: the certificate subject has more than one CN");
    const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, first));
    /* UTF8String (what we issue) or PrintableString; other string types (BMPString,
     * TeletexString...) would need a conversion that could map two encodings to one id. */
    int type = ASN1_STRING_type(cn);
    IOTSEC_ENSURE(type == V_ASN1_UTF8STRING || type == V_ASN1_PRINTABLESTRING, IOTSEC_ERR_AUTH,
                  "pki: the certificate CN is not a UTF8String or PrintableString");
    const unsigned char *p = ASN1_STRING_get0_data(cn);
    size_t n = (size_t)ASN1_STRING_length(cn);
    IOTSEC_ENSURE(device_id_valid_n(p, n), IOTSEC_ERR_AUTH,
                  "pki: the certificate CN is not a device id (1 to %d characters of "
                  "[A-Za-z0-9_-])",
                  IOTSEC_PKI_DEVICE_ID_MAX);
    memcpy(out, p, n);
    out[n] = '\0';
    return IOTSEC_RESULT_OK;
}

static bool ldh_label(const char *p, size_t n)
{
    if (n < 1 || n > DNS_LABEL_MAX || p[0] == '-' || p[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

bool pki_dns_name_valid(const char *name, size_t len, bool allow_wildcard)
{
    if (len < 1 || len > DNS_NAME_MAX || memchr(name, '\0', len) != NULL)
        return false;
    if (allow_wildcard && len > 2 && name[0] == '*' && name[1] == '.') {
        name += 2;
        len -= 2;
    }
    const char *label = name, *end = name + len;
    const char *last = name;
    size_t last_len = 0;
    while (label <= end) {
        const char *dot = memchr(label, '.', (size_t)(end - label));
        size_t n = (size_t)((dot != NULL ? dot : end) - label);
        if (!ldh_label(label, n))
            return false;
        last = label;
        last_len = n;
        if (dot == NULL)
            break;
        label = dot + 1;
    }
    return !all_digits(last, last_len);
}

size_t pki_ip_parse(const char *text, uint8_t out[16])
{
    if (text == NULL)
        return 0;
    /* inet_pton accepts only the canonical dotted quad for IPv4 (no octal, hex or
     * shortened forms such as "127.1"), and the RFC 4291 text forms for IPv6. */
    if (inet_pton(AF_INET, text, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, text, out) == 1)
        return 16;
    return 0;
}
