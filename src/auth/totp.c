/*
 * HOTP (RFC 4226) and TOTP (RFC 6238) through liboath, plus the pieces around them:
 * the strict code parser, base32 for authenticator apps, and the otpauth:// URI.
 *
 * Verification does not use oath_totp_validate*: those compare codes with strcmp, whose
 * time depends on the first differing digit. Instead each candidate step's code is
 * generated (liboath) and compared with iotsec_ct_equal, every candidate every time, and
 * the matching step is returned so that the caller can refuse its reuse.
 */
#include "iotsec/operator.h"

#include "iotsec/crypto.h"

#include <liboath/oath.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_init_rc = OATH_OK;

static void oath_init_once(void)
{
    oath_init_rc = oath_init();
}

static iotsec_result oath_ready(void)
{
    pthread_once(&oath_once, oath_init_once);
    IOTSEC_ENSURE(oath_init_rc == OATH_OK, IOTSEC_ERR_CRYPTO, "totp: liboath: %s",
                  oath_strerror(oath_init_rc));
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_secret(struct iotsec_slice secret, unsigned digits)
{
    IOTSEC_ENSURE(secret.ptr != NULL && secret.len > 0, IOTSEC_ERR_INVALID_ARG,
                  "totp: empty secret");
    IOTSEC_ENSURE(digits >= 6 && digits <= IOTSEC_OTP_MAX_DIGITS, IOTSEC_ERR_INVALID_ARG,
                  "totp: %u digits; 6 to %d are supported", digits, IOTSEC_OTP_MAX_DIGITS);
    return oath_ready();
}

iotsec_result iotsec_hotp_generate(struct iotsec_slice secret, uint64_t counter, unsigned digits,
                                   char out[IOTSEC_OTP_MAX_DIGITS + 1])
{
    IOTSEC_GUARD(check_secret(secret, digits));
    int rc = oath_hotp_generate((const char *)secret.ptr, secret.len, counter, digits, false,
                                OATH_HOTP_DYNAMIC_TRUNCATION, out);
    IOTSEC_ENSURE(rc == OATH_OK, IOTSEC_ERR_CRYPTO, "hotp: liboath: %s", oath_strerror(rc));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_totp_generate(struct iotsec_slice secret, int64_t unix_sec, unsigned step,
                                   unsigned digits, enum iotsec_otp_hash hash,
                                   char out[IOTSEC_OTP_MAX_DIGITS + 1])
{
    IOTSEC_GUARD(check_secret(secret, digits));
    IOTSEC_ENSURE(unix_sec >= 0 && step > 0, IOTSEC_ERR_INVALID_ARG,
                  "totp: time must be >= 0 and the step > 0");
    int flags = 0;
    switch (hash) {
    case IOTSEC_OTP_SHA1:
        break;
    case IOTSEC_OTP_SHA256:
        flags = OATH_TOTP_HMAC_SHA256;
        break;
    case IOTSEC_OTP_SHA512:
        flags = OATH_TOTP_HMAC_SHA512;
        break;
    default:
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "totp: unknown hash %d", (int)hash);
    }
    int rc = oath_totp_generate2((const char *)secret.ptr, secret.len, (time_t)unix_sec, step,
                                 OATH_TOTP_DEFAULT_START_TIME, digits, flags, out);
    IOTSEC_ENSURE(rc == OATH_OK, IOTSEC_ERR_CRYPTO, "totp: liboath: %s", oath_strerror(rc));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_totp_parse_code(struct iotsec_slice in, char out[IOTSEC_TOTP_DIGITS + 1])
{
    IOTSEC_ENSURE(in.len == IOTSEC_TOTP_DIGITS && in.ptr != NULL, IOTSEC_ERR_FORMAT,
                  "totp: a code is exactly %d digits", IOTSEC_TOTP_DIGITS);
    for (size_t i = 0; i < IOTSEC_TOTP_DIGITS; i++) {
        /* Plain ASCII only: isdigit() would follow the locale. */
        IOTSEC_ENSURE(in.ptr[i] >= '0' && in.ptr[i] <= '9', IOTSEC_ERR_FORMAT,
                      "totp: a code is exactly %d digits", IOTSEC_TOTP_DIGITS);
        out[i] = (char)in.ptr[i];
    }
    out[IOTSEC_TOTP_DIGITS] = '\0';
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_totp_verify(struct iotsec_slice secret,
                                 const char code[IOTSEC_TOTP_DIGITS + 1], int64_t unix_sec,
                                 uint64_t *step)
{
    IOTSEC_ENSURE(unix_sec >= 0, IOTSEC_ERR_INVALID_ARG, "totp: time before 1970");
    uint64_t now_step = (uint64_t)unix_sec / IOTSEC_TOTP_STEP;
    struct iotsec_slice given = iotsec_slice_make(code, IOTSEC_TOTP_DIGITS);
    bool matched = false;
    uint64_t found = 0;
    iotsec_result r = IOTSEC_RESULT_OK;
    /* Every candidate is computed and compared, matched or not, so the time taken does
     * not say which step (if any) matched. */
    for (int k = -IOTSEC_TOTP_WINDOW; k <= IOTSEC_TOTP_WINDOW; k++) {
        if (k < 0 && now_step < (uint64_t)-k)
            continue;
        uint64_t counter = now_step + (uint64_t)(int64_t)k;
        char want[IOTSEC_OTP_MAX_DIGITS + 1];
        r = iotsec_hotp_generate(secret, counter, IOTSEC_TOTP_DIGITS, want);
        if (!iotsec_ok(r))
            break;
        bool eq = iotsec_ct_equal(given, iotsec_slice_make(want, IOTSEC_TOTP_DIGITS));
        iotsec_wipe(want, sizeof(want));
        found = eq && !matched ? counter : found;
        matched |= eq;
    }
    IOTSEC_GUARD(r);
    IOTSEC_ENSURE(matched, IOTSEC_ERR_AUTH, "totp: wrong code");
    if (step != NULL)
        *step = found;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_base32_encode(struct iotsec_slice in, struct iotsec_buf *out)
{
    IOTSEC_ENSURE(in.len > 0 && in.ptr != NULL, IOTSEC_ERR_INVALID_ARG, "base32: no input");
    IOTSEC_GUARD(oath_ready());
    char *enc = NULL;
    size_t enc_len = 0;
    int rc = oath_base32_encode((const char *)in.ptr, in.len, &enc, &enc_len);
    IOTSEC_ENSURE(rc == OATH_OK && enc != NULL, IOTSEC_ERR_NOMEM, "base32: liboath: %s",
                  oath_strerror(rc));
    /* Authenticator apps expect the key without '=' padding (Key URI format). */
    size_t len = enc_len;
    while (len > 0 && enc[len - 1] == '=')
        len--;
    iotsec_result r = iotsec_buf_append(out, enc, len);
    iotsec_wipe(enc, enc_len);
    free(enc);
    return r;
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
static iotsec_result append_escaped(struct iotsec_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (plain) {
            IOTSEC_GUARD(iotsec_buf_append_u8(out, c));
            continue;
        }
        IOTSEC_GUARD(iotsec_buf_append_u8(out, '%'));
        IOTSEC_GUARD(iotsec_buf_append_u8(out, (uint8_t)hex[c >> 4]));
        IOTSEC_GUARD(iotsec_buf_append_u8(out, (uint8_t)hex[c & 15]));
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_totp_uri(struct iotsec_slice secret, const char *account,
                              struct iotsec_buf *out)
{
    IOTSEC_ENSURE(account != NULL && account[0] != '\0', IOTSEC_ERR_INVALID_ARG,
                  "totp: no account name");
    IOTSEC_GUARD(iotsec_buf_append_str(out, "otpauth://totp/" IOTSEC_TOTP_ISSUER ":"));
    IOTSEC_GUARD(append_escaped(out, account));
    IOTSEC_GUARD(iotsec_buf_append_str(out, "?secret="));
    IOTSEC_GUARD(iotsec_base32_encode(secret, out));
    IOTSEC_GUARD(iotsec_buf_append_str(out, "&issuer=" IOTSEC_TOTP_ISSUER
                                            "&algorithm=SHA1&digits=6&period=30"));
    return IOTSEC_RESULT_OK;
}
