/*
 * jwt_tool: our side of tests/e2e/test_jwt_interop.sh, a thin command line over
 * include/iotsec/jwt.h so that a shell test can set our tokens against node's
 * jsonwebtoken.
 *
 *   jwt_tool issue  KEYOPT --device ID [--cap C]... [--sub S] [--now T] [--lifetime S]
 *                   [--iss I] [--aud A]                prints the token
 *   jwt_tool verify KEYOPT [--now T] [--iss I] [--aud A] [--leeway S]
 *                   reads ONE token from stdin, prints the claims JSON (exit 0) or the
 *                   refusal on stderr (exit 1)
 *   jwt_tool jwks   --key PEM --kid KID [--key PEM --kid KID]...   prints the JWK Set
 *   jwt_tool genkey OUT.pem                            a new P-256 private key (0600)
 *   jwt_tool pubkey --key PEM                          prints the public key PEM
 *
 * KEYOPT is --secret FILE (HS256; the file's bytes, one trailing newline dropped; the
 * file must not be readable by group or others) or --key PEM [--kid KID] (ES256). The
 * algorithm is the key's, as in the library. Secrets and tokens never travel in argv:
 * files and stdin only. --now defaults to the clock.
 */
#include "iotsec/buf.h"
#include "iotsec/crypto.h"
#include "iotsec/file.h"
#include "iotsec/json.h"
#include "iotsec/jwt.h"
#include "iotsec/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CAPS      16
#define MAX_JWKS_KEYS 4
#define SECRET_MAX    4096

struct args {
    const char *secret_file;
    const char *key_files[MAX_JWKS_KEYS];
    const char *kids[MAX_JWKS_KEYS];
    size_t n_keys, n_kids;
    const char *device, *sub, *iss, *aud;
    const char *caps[MAX_CAPS];
    size_t n_caps;
    int64_t now, lifetime, leeway;
    bool have_now;
};

static int usage(void)
{
    fprintf(stderr, "usage: jwt_tool issue|verify|jwks|genkey|pubkey ... (see jwt_tool.c)\n");
    return 2;
}

static int die(const char *what)
{
    fprintf(stderr, "jwt_tool: %s: %s\n", what, iotsec_error_message());
    return 1;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

static bool parse_args(int argc, char **argv, struct args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return false;
        i++;
        if (strcmp(o, "--secret") == 0)
            a->secret_file = v;
        else if (strcmp(o, "--key") == 0 && a->n_keys < MAX_JWKS_KEYS)
            a->key_files[a->n_keys++] = v;
        else if (strcmp(o, "--kid") == 0 && a->n_kids < MAX_JWKS_KEYS)
            a->kids[a->n_kids++] = v;
        else if (strcmp(o, "--device") == 0)
            a->device = v;
        else if (strcmp(o, "--sub") == 0)
            a->sub = v;
        else if (strcmp(o, "--iss") == 0)
            a->iss = v;
        else if (strcmp(o, "--aud") == 0)
            a->aud = v;
        else if (strcmp(o, "--cap") == 0 && a->n_caps < MAX_CAPS)
            a->caps[a->n_caps++] = v;
        else if (strcmp(o, "--now") == 0 && parse_i64(v, &a->now))
            a->have_now = true;
        else if (strcmp(o, "--lifetime") == 0 && parse_i64(v, &a->lifetime))
            continue;
        else if (strcmp(o, "--leeway") == 0 && parse_i64(v, &a->leeway))
            continue;
        else
            return false;
    }
    return true;
}

/* Exactly one key: the HS256 secret or one ES256 PEM. *ec is set for ES256 (the jwt key
 * borrows it). */
static int load_key(const struct args *a, struct iotsec_key **ec, struct iotsec_jwt_key **out)
{
    if ((a->secret_file != NULL) == (a->n_keys == 1) || a->n_keys > 1) {
        fprintf(stderr, "jwt_tool: give either --secret FILE or one --key PEM\n");
        return 2;
    }
    const char *kid = a->n_kids > 0 ? a->kids[0] : NULL;
    if (a->n_keys == 1) {
        if (!iotsec_ok(iotsec_key_load_pem_file(a->key_files[0], ec)))
            return die("key");
        if (!iotsec_ok(iotsec_jwt_key_es256(*ec, kid, out)))
            return die("key");
        return 0;
    }
    struct iotsec_buf secret;
    iotsec_buf_init_secret(&secret);
    int rc = 0;
    if (!iotsec_ok(iotsec_file_read_private(a->secret_file, SECRET_MAX, &secret))) {
        rc = die("secret");
    } else {
        if (secret.len > 0 && secret.ptr[secret.len - 1] == '\n')
            secret.len--;
        if (!iotsec_ok(iotsec_jwt_key_hs256(iotsec_buf_slice(&secret), kid, out)))
            rc = die("secret");
    }
    iotsec_buf_free(&secret);
    return rc;
}

static struct iotsec_jwt_options options_of(const struct args *a)
{
    return (struct iotsec_jwt_options){
        .issuer = a->iss, .audience = a->aud, .lifetime_sec = a->lifetime, .leeway_sec = a->leeway};
}

static int64_t now_of(const struct args *a)
{
    return a->have_now ? a->now : iotsec_time_now().sec;
}

static int cmd_issue(const struct args *a)
{
    if (a->device == NULL)
        return usage();
    struct iotsec_key *ec = NULL;
    struct iotsec_jwt_key *k = NULL;
    int rc = load_key(a, &ec, &k);
    if (rc != 0)
        return rc;
    struct iotsec_jwt_options o = options_of(a);
    struct iotsec_jwt_claims cl = {.device_id = a->device,
                                   .subject = a->sub,
                                   .capabilities = a->caps,
                                   .n_capabilities = a->n_caps};
    struct iotsec_buf tok = {0};
    if (!iotsec_ok(iotsec_jwt_issue(k, &o, &cl, now_of(a), &tok)))
        rc = die("issue");
    else
        printf("%.*s\n", (int)tok.len, (const char *)tok.ptr);
    iotsec_buf_free(&tok);
    iotsec_jwt_key_free(k);
    iotsec_key_free(ec);
    return rc;
}

/* The token from stdin: one line, the newline dropped, nothing else accepted. */
static int read_token(struct iotsec_buf *tok)
{
    char chunk[1024];
    size_t n;
    iotsec_buf_set_max(tok, IOTSEC_JWT_MAX_TOKEN + 2);
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (!iotsec_ok(iotsec_buf_append(tok, chunk, n)))
            return die("token");
    if (tok->len > 0 && tok->ptr[tok->len - 1] == '\n')
        tok->len--;
    return 0;
}

static int cmd_verify(const struct args *a)
{
    struct iotsec_key *ec = NULL;
    struct iotsec_jwt_key *k = NULL;
    int rc = load_key(a, &ec, &k);
    if (rc != 0)
        return rc;
    struct iotsec_buf tok = {0};
    rc = read_token(&tok);
    json_t *claims = NULL;
    struct iotsec_jwt_options o = options_of(a);
    if (rc == 0 && !iotsec_ok(iotsec_jwt_verify(k, &o, iotsec_buf_slice(&tok), now_of(a), &claims)))
        rc = die("verify");
    if (rc == 0) {
        struct iotsec_buf out = {0};
        if (iotsec_ok(iotsec_json_dump(claims, IOTSEC_JSON_SORT_KEYS, &out)))
            printf("%.*s\n", (int)out.len, (const char *)out.ptr);
        else
            rc = die("claims");
        iotsec_buf_free(&out);
    }
    json_decref(claims);
    iotsec_buf_free(&tok);
    iotsec_jwt_key_free(k);
    iotsec_key_free(ec);
    return rc;
}

static int cmd_jwks(const struct args *a)
{
    if (a->n_keys == 0 || a->n_keys != a->n_kids || a->secret_file != NULL)
        return usage();
    struct iotsec_key *ec[MAX_JWKS_KEYS] = {0};
    struct iotsec_jwt_key *k[MAX_JWKS_KEYS] = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < a->n_keys; i++) {
        if (!iotsec_ok(iotsec_key_load_pem_file(a->key_files[i], &ec[i])) ||
            !iotsec_ok(iotsec_jwt_key_es256(ec[i], a->kids[i], &k[i])))
            rc = die("key");
    }
    struct iotsec_buf out = {0};
    const struct iotsec_jwt_key *const *set = (const struct iotsec_jwt_key *const *)k;
    if (rc == 0 && !iotsec_ok(iotsec_jwks_write(set, a->n_keys, &out)))
        rc = die("jwks");
    if (rc == 0)
        printf("%.*s\n", (int)out.len, (const char *)out.ptr);
    iotsec_buf_free(&out);
    for (size_t i = 0; i < a->n_keys; i++) {
        iotsec_jwt_key_free(k[i]);
        iotsec_key_free(ec[i]);
    }
    return rc;
}

static int cmd_genkey(const char *path)
{
    struct iotsec_key *ec = NULL;
    if (!iotsec_ok(iotsec_key_generate(IOTSEC_KEY_EC_P256, &ec)))
        return die("genkey");
    int rc = iotsec_ok(iotsec_key_save_private_pem(ec, path)) ? 0 : die("genkey");
    iotsec_key_free(ec);
    return rc;
}

static int cmd_pubkey(const struct args *a)
{
    if (a->n_keys != 1)
        return usage();
    struct iotsec_key *ec = NULL;
    if (!iotsec_ok(iotsec_key_load_pem_file(a->key_files[0], &ec)))
        return die("key");
    struct iotsec_buf pem = {0};
    int rc = iotsec_ok(iotsec_key_public_to_pem(ec, &pem)) ? 0 : die("pubkey");
    if (rc == 0)
        fwrite(pem.ptr, 1, pem.len, stdout);
    iotsec_buf_free(&pem);
    iotsec_key_free(ec);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "genkey") == 0)
        return argc == 3 ? cmd_genkey(argv[2]) : usage();
    struct args a = {0};
    if (!parse_args(argc - 2, argv + 2, &a))
        return usage();
    if (strcmp(cmd, "issue") == 0)
        return cmd_issue(&a);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(&a);
    if (strcmp(cmd, "jwks") == 0)
        return cmd_jwks(&a);
    if (strcmp(cmd, "pubkey") == 0)
        return cmd_pubkey(&a);
    return usage();
}
