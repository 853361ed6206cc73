/*
 * bench_bruteforce: the brute-force detector's cost per auth failure and its memory under
 * a flood of distinct source addresses, each beside a bare reference measured in the
 * same run.
 *
 * 1. Throughput on one core: OPS failures spread over KEYS source addresses and DEVICES
 *    device ids (both keys counted per failure), the clock advancing 1 ms per 100
 *    failures. References, same keys, same number of operations:
 *      - a bare open-addressing table lookup per key (FNV-1a, linear probing, no lock,
 *        no keyed hash, no window): the cheapest "have I seen this key";
 *      - the bare keyed hash the detector uses (OpenSSL EVP_MAC SipHash) per key.
 *    A failure costs two of each (device and source), so the ratios divide by that.
 * 2. Memory under FLOOD distinct addresses (one failure each, all inside one window):
 *    the detector's resident memory growth against an unbounded reference that keeps
 *    every address it saw in a growable hash set (what a design without a bound holds).
 *
 * Each throughput figure is the best of ROUNDS runs divided by this process's CPU time.
 */
#include "iotsec/bruteforce.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYS     20000
#define DEVICES  1000
#define OPS      2000000
#define ROUNDS   3
#define FLOOD    1000000
#define CAPACITY 65536
#define T0       1700000000000LL

static char ips[KEYS][20];
static size_t ip_lens[KEYS];
static char devs[DEVICES][16];
static size_t dev_lens[DEVICES];

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    return kib;
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- reference 1: a bare fixed table of the same keys ---- */
#define REF_SLOTS 65536
struct ref_slot {
    uint8_t len;
    char key[20];
    int64_t value;
};
static struct ref_slot ref_table[REF_SLOTS];

static struct ref_slot *ref_find(const char *k, size_t n, int insert)
{
    size_t i = (size_t)fnv1a(k, n) & (REF_SLOTS - 1);
    for (;;) {
        struct ref_slot *s = &ref_table[i];
        if (s->len == 0) {
            if (!insert)
                return NULL;
            s->len = (uint8_t)n;
            memcpy(s->key, k, n);
            return s;
        }
        if (s->len == n && memcmp(s->key, k, n) == 0)
            return s;
        i = (i + 1) & (REF_SLOTS - 1);
    }
}

static double run_table(void)
{
    double best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int64_t sum = 0;
        double t0 = cpu_seconds();
        for (long i = 0; i < OPS; i++) {
            struct ref_slot *s = ref_find(ips[i % KEYS], ip_lens[i % KEYS], 0);
            sum += s->value++;
        }
        double rate = OPS / (cpu_seconds() - t0);
        if (sum == -1)
            puts("");
        if (rate > best)
            best = rate;
    }
    return best;
}

/* ---- reference 2: the keyed hash alone ---- */
static double run_siphash(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    uint8_t key[16] = {1, 2, 3, 4};
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_END};
    if (ctx == NULL || EVP_MAC_init(ctx, key, sizeof(key), params) != 1) {
        fprintf(stderr, "bench_bruteforce: no SipHash\n");
        exit(1);
    }
    double best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t acc = 0;
        double t0 = cpu_seconds();
        for (long i = 0; i < OPS; i++) {
            uint8_t h[8];
            size_t n;
            EVP_MAC_init(ctx, NULL, 0, NULL);
            EVP_MAC_update(ctx, (const uint8_t *)ips[i % KEYS], ip_lens[i % KEYS]);
            EVP_MAC_final(ctx, h, &n, sizeof(h));
            acc += h[0];
        }
        double rate = OPS / (cpu_seconds() - t0);
        if (acc == 1)
            puts("");
        if (rate > best)
            best = rate;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return best;
}

static int run_detector(double *best, uint64_t *detections)
{
    *best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        struct iotsec_bruteforce_config c = {.capacity = CAPACITY};
        struct iotsec_bruteforce *bf = NULL;
        if (!iotsec_ok(iotsec_bruteforce_new(&c, &bf))) {
            fprintf(stderr, "bench_bruteforce: %s\n", iotsec_error_message());
            return 1;
        }
        double t0 = cpu_seconds();
        for (long i = 0; i < OPS; i++) {
            struct iotsec_bruteforce_verdict v;
            if (!iotsec_ok(iotsec_bruteforce_record(bf, devs[i % DEVICES], ips[i % KEYS],
                                                    T0 + i / 100, &v))) {
                fprintf(stderr, "bench_bruteforce: %s\n", iotsec_error_message());
                return 1;
            }
        }
        double rate = OPS / (cpu_seconds() - t0);
        if (rate > *best)
            *best = rate;
        struct iotsec_bruteforce_stats st;
        iotsec_bruteforce_get_stats(bf, &st);
        *detections = st.detections;
        iotsec_bruteforce_free(bf);
    }
    return 0;
}

/* ---- memory: the detector vs an unbounded set of every address seen ---- */
struct set_entry {
    char *key;
};

static void flood_address(uint32_t i, char out[20])
{
    snprintf(out, 20, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static long unbounded_set_kib(size_t *entries)
{
    long before = rss_kib();
    size_t cap = 1024, n = 0;
    struct set_entry *t = calloc(cap, sizeof(*t));
    for (uint32_t i = 0; i < FLOOD && t != NULL; i++) {
        char ip[20];
        flood_address(i, ip);
        if (2 * (n + 1) > cap) { /* grow at half full, like any open-addressing set */
            struct set_entry *g = calloc(cap * 2, sizeof(*g));
            if (g == NULL)
                break;
            for (size_t j = 0; j < cap; j++) {
                if (t[j].key == NULL)
                    continue;
                size_t k = (size_t)fnv1a(t[j].key, strlen(t[j].key)) & (cap * 2 - 1);
                while (g[k].key != NULL)
                    k = (k + 1) & (cap * 2 - 1);
                g[k] = t[j];
            }
            free(t);
            t = g;
            cap *= 2;
        }
        size_t k = (size_t)fnv1a(ip, strlen(ip)) & (cap - 1);
        while (t[k].key != NULL && strcmp(t[k].key, ip) != 0)
            k = (k + 1) & (cap - 1);
        if (t[k].key == NULL) {
            t[k].key = strdup(ip);
            n++;
        }
    }
    long grown = rss_kib() - before;
    for (size_t j = 0; t != NULL && j < cap; j++)
        free(t[j].key);
    free(t);
    *entries = n;
    return grown;
}

int main(void)
{
    for (int i = 0; i < KEYS; i++) {
        snprintf(ips[i], sizeof(ips[i]), "198.%d.%d.%d", (i * 7919 >> 16) & 255,
                 (i * 7919 >> 8) & 255, i * 7919 & 255);
        ip_lens[i] = strlen(ips[i]);
        ref_find(ips[i], ip_lens[i], 1);
    }
    for (int i = 0; i < DEVICES; i++) {
        snprintf(devs[i], sizeof(devs[i]), "dev-%05d", i);
        dev_lens[i] = strlen(devs[i]);
    }
    double table = run_table();
    double sip = run_siphash();
    double det;
    uint64_t detections;
    if (run_detector(&det, &detections) != 0)
        return 1;
    printf("bench_bruteforce: %d failures per run (%d addresses, %d devices, 2 keys per "
           "failure), best of %d, one core\n",
           OPS, KEYS, DEVICES, ROUNDS);
    printf("  reference bare table lookup:   %12.0f lookups/s\n", table);
    printf("  reference bare SipHash (EVP):  %12.0f hashes/s\n", sip);
    printf("  iotsec_bruteforce_record:      %12.0f failures/s (%llu detections per run)\n", det,
           (unsigned long long)detections);
    printf("  ratio detector key-updates/table lookups: %6.3f\n", 2 * det / table);
    printf("  ratio detector key-updates/SipHash:       %6.3f\n", 2 * det / sip);

    /* Memory: the detector first (its tables are allocated at creation, so their pages
     * are counted as they are touched), then the unbounded reference. */
    long before = rss_kib();
    struct iotsec_bruteforce_config c = {.capacity = CAPACITY};
    struct iotsec_bruteforce *bf = NULL;
    if (!iotsec_ok(iotsec_bruteforce_new(&c, &bf))) {
        fprintf(stderr, "bench_bruteforce: %s\n", iotsec_error_message());
        return 1;
    }
    double t0 = cpu_seconds();
    for (uint32_t i = 0; i < FLOOD; i++) {
        char ip[20];
        struct iotsec_bruteforce_verdict v;
        flood_address(i, ip);
        if (!iotsec_ok(iotsec_bruteforce_record(bf, NULL, ip, T0 + i / 10000, &v)))
            return 1;
    }
    double flood_s = cpu_seconds() - t0;
    long det_kib = rss_kib() - before;
    struct iotsec_bruteforce_stats st;
    iotsec_bruteforce_get_stats(bf, &st);
    iotsec_bruteforce_free(bf);
    size_t set_entries;
    long set_kib = unbounded_set_kib(&set_entries);
    printf("memory after %d distinct source addresses (one failure each, one window):\n", FLOOD);
    printf("  detector: %zu slots per table, %zu in use, fixed tables %zu KiB, RSS growth "
           "%ld KiB, %llu active keys evicted, %.2f s\n",
           st.slots, st.source_entries, st.memory_bytes / 1024, det_kib,
           (unsigned long long)st.evicted_active, flood_s);
    printf("  reference unbounded set of every address: %zu entries, RSS growth %ld KiB\n",
           set_entries, set_kib);
    printf("  ratio detector/unbounded RSS growth: %6.3f\n",
           set_kib > 0 ? (double)det_kib / (double)set_kib : 0.0);
    return 0;
}
