/*
 * store_writer: a separate process that writes to a shared store, for
 * tests/e2e/test_store_concurrency.sh (several writers at once, and writers killed
 * mid-write).
 *
 *   store_writer write DB NAME EVENTS DEVICES
 *       appends EVENTS chained events (device_id NAME) and inserts DEVICES devices
 *       ("NAME-dev-0000", ...) spread among them, printing each event's sequence number
 *       only after its append returned: a printed number is committed.
 *   store_writer verify DB
 *       walks the whole log, checking that sequence numbers run 1, 2, 3, ... and that
 *       every record names its predecessor's hash and hashes to its own; prints
 *       "events N devices M" (exit 0) or what is broken (exit 1).
 *
 * The chain hash is the same simple one as tests/unit/test_store.c: SHA-256 over the
 * previous hash and the record's fields. The real chain belongs to the monitor module.
 */
#include "iotsec/buf.h"
#include "iotsec/crypto.h"
#include "iotsec/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static iotsec_result chain(void *ctx, struct iotsec_store_event *ev)
{
    (void)ctx;
    struct iotsec_buf b = {0};
    uint8_t hash[IOTSEC_SHA256_LEN];
    bool ok = iotsec_ok(iotsec_buf_append(&b, ev->prev_hash, sizeof(ev->prev_hash))) &&
              iotsec_ok(iotsec_buf_append_u64(&b, (uint64_t)ev->seq)) &&
              iotsec_ok(iotsec_buf_append_u64(&b, (uint64_t)ev->ts)) &&
              iotsec_ok(iotsec_buf_append(&b, ev->event_type, strlen(ev->event_type) + 1)) &&
              iotsec_ok(iotsec_buf_append_u8(&b, (uint8_t)ev->severity)) &&
              iotsec_ok(iotsec_buf_append(&b, ev->device_id, strlen(ev->device_id) + 1)) &&
              iotsec_ok(iotsec_buf_append(&b, ev->source_ip, strlen(ev->source_ip) + 1)) &&
              iotsec_ok(iotsec_buf_append_str(&b, ev->details != NULL ? ev->details : "{}")) &&
              iotsec_ok(iotsec_sha256(iotsec_buf_slice(&b), hash));
    if (ok)
        memcpy(ev->hash, hash, sizeof(ev->hash));
    iotsec_buf_free(&b);
    return ok ? IOTSEC_RESULT_OK : IOTSEC_RESULT_ERR;
}

static int fail(const char *what)
{
    fprintf(stderr, "store_writer: %s: %s\n", what, iotsec_error_message());
    return 1;
}

static int write_events(struct iotsec_store *s, const char *name, long events, long devices)
{
    long every = devices > 0 ? (events > devices ? events / devices : 1) : 0;
    long inserted = 0;
    for (long i = 0; i < events || inserted < devices; i++) {
        if (i < events) {
            struct iotsec_store_event e = {.ts = 1700000000000LL + i,
                                           .severity = IOTSEC_STORE_SEVERITY_LOW};
            char details[64];
            snprintf(e.event_type, sizeof(e.event_type), "concurrency_test");
            snprintf(e.device_id, sizeof(e.device_id), "%s", name);
            snprintf(details, sizeof(details), "{\"i\":%ld}", i);
            e.details = details;
            if (!iotsec_ok(iotsec_store_event_append(s, &e, chain, NULL)))
                return fail("append");
            printf("%lld\n", (long long)e.seq);
            fflush(stdout);
        }
        if (inserted < devices && (i >= events || i % every == 0)) {
            struct iotsec_store_device d = {.status = IOTSEC_STORE_DEVICE_ACTIVE,
                                            .created_at = 1700000000000LL,
                                            .updated_at = 1700000000000LL};
            snprintf(d.id, sizeof(d.id), "%s-dev-%04ld", name, inserted);
            if (!iotsec_ok(iotsec_store_device_insert(s, &d)))
                return fail("device insert");
            inserted++;
        }
    }
    return 0;
}

struct verify {
    int64_t next;
    uint8_t prev[IOTSEC_STORE_HASH_LEN];
    const char *broken;
};

static iotsec_result verify_one(void *ctx, const struct iotsec_store_event *ev)
{
    struct verify *v = ctx;
    struct iotsec_store_event copy = *ev;
    if (ev->seq != v->next)
        v->broken = "a sequence number is missing or repeated";
    else if (memcmp(ev->prev_hash, v->prev, sizeof(v->prev)) != 0)
        v->broken = "a record does not name its predecessor's hash";
    else if (!iotsec_ok(chain(NULL, &copy)) || memcmp(copy.hash, ev->hash, sizeof(ev->hash)) != 0)
        v->broken = "a record's hash does not match its contents";
    if (v->broken != NULL)
        IOTSEC_BAIL(IOTSEC_ERR_VERIFY, "event %lld: %s", (long long)ev->seq, v->broken);
    memcpy(v->prev, ev->hash, sizeof(v->prev));
    v->next++;
    return IOTSEC_RESULT_OK;
}

static int verify(struct iotsec_store *s)
{
    struct verify v = {.next = 1};
    if (!iotsec_ok(iotsec_store_event_foreach(s, 0, verify_one, &v)))
        return fail("verify");
    size_t devices = 0;
    struct iotsec_store_page page = {.after = "", .limit = IOTSEC_STORE_LIST_MAX};
    char after[IOTSEC_STORE_ID_MAX + 1] = "";
    for (;;) {
        struct iotsec_store_device_list l;
        page.after = after;
        if (!iotsec_ok(iotsec_store_device_list(s, IOTSEC_STORE_DEVICE_ANY, &page, &l)))
            return fail("device list");
        devices += l.count;
        bool more = l.more;
        if (l.count > 0)
            snprintf(after, sizeof(after), "%s", l.items[l.count - 1].id);
        iotsec_store_device_list_free(&l);
        if (!more)
            break;
    }
    printf("events %lld devices %zu\n", (long long)(v.next - 1), devices);
    return 0;
}

int main(int argc, char **argv)
{
    bool write = argc == 6 && strcmp(argv[1], "write") == 0;
    bool check = argc == 3 && strcmp(argv[1], "verify") == 0;
    if (!write && !check) {
        fprintf(stderr, "usage: store_writer write DB NAME EVENTS DEVICES\n"
                        "       store_writer verify DB\n");
        return 2;
    }
    struct iotsec_store *s;
    if (!iotsec_ok(iotsec_store_open(argv[2], &s)))
        return fail("open");
    int rc = write ? write_events(s, argv[3], atol(argv[4]), atol(argv[5])) : verify(s);
    iotsec_store_close(s);
    return rc;
}
