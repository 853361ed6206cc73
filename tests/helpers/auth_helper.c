/*
 * auth_helper: what tests/e2e/test_apikey_cli.sh needs that no shipped command does yet.
 *
 *   auth_helper add-device STORE ID [PUBKEY_PEM_FILE|-] [active|disabled|revoked]
 *   auth_helper check-key STORE          key on stdin; prints "ok DEVICE KEYID" or the
 *                                        refusal reason and message; exit 0 only for ok
 *   auth_helper challenge STORE ID FILE SIGNER
 *       issues a challenge for ID, writes its string to FILE, runs the shell command
 *       SIGNER (which signs FILE and prints the base64 signature), verifies the answer
 *       with ID's registered key, then replays it. Prints "verified" and "replay: MSG";
 *       exit 0 only when the first passes and the replay is refused.
 *
 * Devices are added by another command being written in parallel; until it lands,
 * tests add them through the store API here.
 */
#include "iotsec/apikey.h"
#include "iotsec/challenge.h"
#include "iotsec/file.h"
#include "iotsec/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int die(const char *what)
{
    fprintf(stderr, "auth_helper: %s: %s\n", what, iotsec_error_message());
    return 2;
}

static int add_device(struct iotsec_store *s, int argc, char **argv)
{
    struct iotsec_buf pem = {0};
    struct iotsec_store_device d = {.status = IOTSEC_STORE_DEVICE_ACTIVE};
    snprintf(d.id, sizeof(d.id), "%s", argv[3]);
    if (argc > 4 && strcmp(argv[4], "-") != 0) {
        if (!iotsec_ok(iotsec_file_read(argv[4], IOTSEC_STORE_PEM_MAX, &pem)) ||
            !iotsec_ok(iotsec_buf_terminate(&pem)))
            return die("public key");
        d.public_key_pem = (char *)pem.ptr;
    }
    if (argc > 5 && !iotsec_ok(iotsec_store_device_status_parse(argv[5], &d.status)))
        return die("status");
    d.created_at = d.updated_at = now_ms();
    iotsec_result r = iotsec_store_device_insert(s, &d);
    iotsec_buf_free(&pem);
    return iotsec_ok(r) ? 0 : die("insert");
}

static int check_key(struct iotsec_store *s)
{
    char line[256];
    size_t n = fread(line, 1, sizeof(line) - 1, stdin);
    /* One trailing newline is the shell's, not the key's. */
    if (n > 0 && line[n - 1] == '\n')
        n--;
    struct iotsec_apikey_auth *auth;
    if (!iotsec_ok(iotsec_apikey_auth_new(NULL, &auth)))
        return die("auth");
    struct iotsec_apikey_identity id;
    iotsec_result r =
        iotsec_apikey_authenticate(auth, s, iotsec_slice_make(line, n), now_ms(), &id);
    if (iotsec_ok(r))
        printf("ok %s %s\n", id.device_id, id.key_id);
    else
        printf("%s: %s\n", iotsec_apikey_reason_name(id.reason), iotsec_error_message());
    iotsec_apikey_auth_free(auth);
    return iotsec_ok(r) ? 0 : 1;
}

static int challenge(struct iotsec_store *s, char **argv)
{
    struct iotsec_store_device d = {0};
    if (!iotsec_ok(iotsec_store_device_get(s, argv[3], &d)))
        return die("device");
    struct iotsec_challenge_store *cs;
    struct iotsec_challenge c;
    if (!iotsec_ok(iotsec_challenge_store_new(NULL, &cs)) ||
        !iotsec_ok(iotsec_challenge_issue(cs, d.id, now_ms(), &c)))
        return die("issue");
    FILE *f = fopen(argv[4], "w");
    if (f == NULL || fputs(c.hex, f) < 0 || fclose(f) != 0)
        return die("challenge file");
    FILE *p = popen(argv[5], "r");
    char response[IOTSEC_CHALLENGE_RESPONSE_MAX + 2];
    size_t n = p != NULL ? fread(response, 1, sizeof(response) - 1, p) : 0;
    if (p == NULL || pclose(p) != 0) {
        fprintf(stderr, "auth_helper: the signer failed\n");
        return 2;
    }
    if (n > 0 && response[n - 1] == '\n')
        n--;
    struct iotsec_slice pem =
        iotsec_slice_from_str(d.public_key_pem != NULL ? d.public_key_pem : "");
    int rc = 0;
    if (iotsec_ok(iotsec_challenge_verify(cs, d.id, iotsec_slice_from_str(c.hex),
                                          iotsec_slice_make(response, n), pem, now_ms()))) {
        printf("verified\n");
    } else {
        printf("refused: %s\n", iotsec_error_message());
        rc = 1;
    }
    if (iotsec_ok(iotsec_challenge_verify(cs, d.id, iotsec_slice_from_str(c.hex),
                                          iotsec_slice_make(response, n), pem, now_ms()))) {
        printf("replay: accepted\n");
        rc = 1;
    } else {
        printf("replay: %s\n", iotsec_error_message());
    }
    iotsec_challenge_store_free(cs);
    iotsec_store_device_clear(&d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: auth_helper add-device|check-key|challenge STORE ...\n");
        return 2;
    }
    struct iotsec_store *s;
    if (!iotsec_ok(iotsec_store_open(argv[2], &s)))
        return die("store");
    int rc = 2;
    if (strcmp(argv[1], "add-device") == 0 && argc >= 4 && argc <= 6)
        rc = add_device(s, argc, argv);
    else if (strcmp(argv[1], "check-key") == 0 && argc == 3)
        rc = check_key(s);
    else if (strcmp(argv[1], "challenge") == 0 && argc == 6)
        rc = challenge(s, argv);
    else
        fprintf(stderr, "auth_helper: bad arguments\n");
    iotsec_store_close(s);
    return rc;
}
