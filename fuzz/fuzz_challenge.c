/*
 * Fuzzes the challenge verify path: challenge hex parsing, strict base64 decoding of the
 * response, and signature verification, against fixed EC P-256, RSA and Ed25519 keys.
 *
 * Input: byte 0 picks the key (low two bits) and whether the challenge presented is the
 * one just issued (bit 2) or the input's own text; the rest is "CHALLENGE\nRESPONSE"
 * (without a newline, all of it is the response).
 *
 * Invariants beyond "no crash":
 * - nothing is ever accepted: the fuzzer cannot sign with keys it never sees;
 * - a refusal has one of the documented codes and a message naming its module;
 * - the issued challenge is gone after an attempt that names it (single use), and the
 *   store holds nothing once the iteration is over (no leak of slots);
 * - base64 is canonical: whatever decodes re-encodes to exactly the same text.
 */
#include "iotsec/challenge.h"
#include "iotsec/crypto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 ((int64_t)1764000000000)

static struct iotsec_buf pems[3];

static void setup(void)
{
    static bool done;
    if (done)
        return;
    enum iotsec_key_type types[2] = {IOTSEC_KEY_EC_P256, IOTSEC_KEY_ED25519};
    for (int i = 0; i < 2; i++) {
        struct iotsec_key *k;
        if (!iotsec_ok(iotsec_key_generate(types[i], &k)) ||
            !iotsec_ok(iotsec_key_public_to_pem(k, &pems[i])))
            abort();
        iotsec_key_free(k);
    }
    /* A fixed RSA-2048 public key (RSA keys cannot be generated through crypto.h). */
    static const char rsa[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAiF3eQ/VV0pn+oWF+u3kq\n"
                              "hhtPq74jvy9J23CxiK8JZ2QiYC35+pRSGQxBrErs8Iw+5W3LqgxuDZtlbgekNIlA\n"
                              "CC6VeqtXTO75IfWJpUELWhwCqwpJSeFp00+VOrzwvDo9X4xh7Q798jIRWxWyHUtG\n"
                              "VEGiZiqk3pfUWwUttuiTtRRHnZyw20AVA3lNjEJsSucG5KHnRkzDNfszd0JGPD4o\n"
                              "5ge+CeQ97sjFJguJoO64AXHRrsWAU9rgja9bY0JhX1i5q/kxyJN4w2Qy75rZf8SB\n"
                              "KJZvKBAZXbXqwF7hyrxCz58zOzvWv2JcLXwbsChpcK23AJlQvRri0YZP+BcmrDTy\n"
                              "KQIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";
    if (!iotsec_ok(iotsec_buf_append_str(&pems[2], rsa)))
        abort();
    done = true;
}

static void expect_refusal(void)
{
    iotsec_err code = iotsec_error_code();
    if (code != IOTSEC_ERR_FORMAT && code != IOTSEC_ERR_AUTH && code != IOTSEC_ERR_VERIFY)
        abort();
    if (strncmp(iotsec_error_message(), "challenge: ", 11) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    struct iotsec_slice rest = iotsec_slice_make(data + 1, size - 1);
    struct iotsec_slice chal = {0}, resp = rest;
    const uint8_t *nl = rest.len > 0 ? memchr(rest.ptr, '\n', rest.len) : NULL;
    if (nl != NULL) {
        chal = iotsec_slice_make(rest.ptr, (size_t)(nl - rest.ptr));
        resp = iotsec_slice_make(nl + 1, rest.len - chal.len - 1);
    }
    struct iotsec_slice pem = iotsec_buf_slice(&pems[(mode & 3) % 3]);

    struct iotsec_challenge_config cfg = {.capacity = 4, .per_device = 2};
    struct iotsec_challenge_store *cs;
    struct iotsec_challenge issued;
    if (!iotsec_ok(iotsec_challenge_store_new(&cfg, &cs)) ||
        !iotsec_ok(iotsec_challenge_issue(cs, "dev", T0, &issued)))
        abort();
    bool use_issued = (mode & 4) != 0;
    if (use_issued)
        chal = iotsec_slice_from_str(issued.hex);
    if (iotsec_ok(iotsec_challenge_verify(cs, "dev", chal, resp, pem, T0 + 1)))
        abort();
    expect_refusal();
    /* Single use: once named, the issued challenge is gone, whatever the response was. */
    struct iotsec_slice any = iotsec_slice_from_str("AAAA");
    bool again = iotsec_ok(
        iotsec_challenge_verify(cs, "dev", iotsec_slice_from_str(issued.hex), any, pem, T0 + 2));
    if (again)
        abort();
    if (use_issued && iotsec_error_code() != IOTSEC_ERR_AUTH)
        abort();
    struct iotsec_challenge_stats st;
    iotsec_challenge_get_stats(cs, &st);
    if (st.outstanding != 0 || st.verified != 0)
        abort();
    iotsec_challenge_store_free(cs);

    /* Canonical base64. */
    struct iotsec_buf dec = {0}, enc = {0};
    if (iotsec_ok(iotsec_base64_decode(resp, &dec))) {
        if (!iotsec_ok(iotsec_base64_encode(iotsec_buf_slice(&dec), &enc)) || enc.len != resp.len ||
            (resp.len > 0 && memcmp(enc.ptr, resp.ptr, resp.len) != 0))
            abort();
    }
    iotsec_buf_free(&dec);
    iotsec_buf_free(&enc);
    return 0;
}
