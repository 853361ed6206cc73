/*
 * bench_aead: throughput of OUR iotsec_aead_seal (AES-256-GCM) on 16 KiB messages, the
 * figure bench/aead.sh sets beside `openssl speed -evp aes-256-gcm -bytes 16384`.
 *
 * Every call is a complete message as callers make it: fixed key, a fresh nonce (a
 * counter, as a real sender would use), key setup, encryption, tag, appended to a
 * reused output buffer. The run is bounded by a count and by 3 seconds of wall time.
 * The divisor is the CPU time of this process, as `openssl speed` divides by CPU time
 * by default, so that a busy machine skews both figures alike.
 */
#include "iotsec/crypto.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MSG_LEN     (16 * 1024)
#define MAX_OPS     2000000
#define MAX_SECONDS 3.0
#define WARMUP_OPS  200

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void next_nonce(uint8_t nonce[IOTSEC_AEAD_NONCE_LEN], uint64_t counter)
{
    for (int i = 0; i < 8; i++)
        nonce[IOTSEC_AEAD_NONCE_LEN - 1 - i] = (uint8_t)(counter >> (8 * i));
}

static int seal_one(struct iotsec_slice key, uint8_t *nonce, uint64_t counter,
                    struct iotsec_slice msg, struct iotsec_buf *out)
{
    next_nonce(nonce, counter);
    iotsec_buf_reset(out);
    if (iotsec_ok(iotsec_aead_seal(key, iotsec_slice_make(nonce, IOTSEC_AEAD_NONCE_LEN),
                                   iotsec_slice_make(NULL, 0), msg, out)))
        return 0;
    fprintf(stderr, "bench_aead: seal: %s\n", iotsec_error_message());
    return 1;
}

int main(void)
{
    static uint8_t msg[MSG_LEN];
    uint8_t key[IOTSEC_AEAD_KEY_LEN], nonce[IOTSEC_AEAD_NONCE_LEN] = {0};
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 131 + 7);
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0xa0 + i);
    struct iotsec_slice k = iotsec_slice_make(key, sizeof(key));
    struct iotsec_slice m = iotsec_slice_make(msg, sizeof(msg));
    struct iotsec_buf out = {0};
    uint64_t counter = 0;

    for (int i = 0; i < WARMUP_OPS; i++)
        if (seal_one(k, nonce, counter++, m, &out) != 0)
            return 1;

    double wall0 = clock_seconds(CLOCK_MONOTONIC);
    double cpu0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    long ops = 0;
    while (ops < MAX_OPS) {
        if (seal_one(k, nonce, counter++, m, &out) != 0)
            return 1;
        ops++;
        if (ops % 64 == 0 && clock_seconds(CLOCK_MONOTONIC) - wall0 >= MAX_SECONDS)
            break;
    }
    double cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double wall = clock_seconds(CLOCK_MONOTONIC) - wall0;
    iotsec_buf_free(&out);

    double mbps = (double)ops * MSG_LEN / cpu / 1e6;
    printf("aead_seal_16k: %.0f MB/s\n", mbps);
    fprintf(stderr, "bench_aead: %ld seals of %d bytes in %.2f s CPU (%.2f s wall)\n", ops, MSG_LEN,
            cpu, wall);
    return 0;
}
