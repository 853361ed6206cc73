/*
 * The hash-chained event log (see include/iotsec/eventlog.h for the format and what
 * verification can and cannot see).
 *
 * Append is the store's chained append with our hash as the callback. Verification is
 * one pass over iotsec_store_event_foreach, keeping only the previous record's seq and
 * hash, so memory does not grow with the log. Each record gets at most one problem,
 * the most specific one: MOVED before EDITED before UNLINKED, because a record that was
 * renumbered also fails its link, and saying "moved from 5" tells the operator more.
 */
#include "iotsec/eventlog.h"

#include "iotsec/buf.h"
#include "iotsec/crypto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DOMAIN "iotsec-event-v1"
/* Unreadable records the walk steps over before giving up on a badly damaged file. */
#define MAX_UNREADABLE 1000
/* How far past the last good record the walk probes for the unreadable one. */
#define PROBE_SPAN 64

static iotsec_result append_text(struct iotsec_buf *b, const char *s)
{
    size_t len = strlen(s);
    IOTSEC_GUARD(iotsec_buf_append_u32(b, (uint32_t)len));
    return iotsec_buf_append(b, s, len);
}

static iotsec_result encode(struct iotsec_buf *b, const struct iotsec_store_event *rec, int64_t seq)
{
    iotsec_buf_reset(b);
    IOTSEC_GUARD(iotsec_buf_append(b, DOMAIN, sizeof(DOMAIN) - 1));
    IOTSEC_GUARD(iotsec_buf_append_u64(b, (uint64_t)seq));
    IOTSEC_GUARD(iotsec_buf_append_u64(b, (uint64_t)rec->ts));
    IOTSEC_GUARD(iotsec_buf_append_u8(b, (uint8_t)rec->severity));
    IOTSEC_GUARD(append_text(b, rec->event_type));
    IOTSEC_GUARD(append_text(b, rec->device_id));
    IOTSEC_GUARD(append_text(b, rec->source_ip));
    IOTSEC_GUARD(append_text(b, rec->details != NULL ? rec->details : "{}"));
    return iotsec_buf_append(b, rec->prev_hash, sizeof(rec->prev_hash));
}

/* The encoding of everything but seq is the same for every seq tried, so the move search
 * patches the seq bytes in place instead of re-encoding. */
#define SEQ_OFFSET (sizeof(DOMAIN) - 1)

static void put_seq(struct iotsec_buf *b, int64_t seq)
{
    for (int i = 0; i < 8; i++)
        b->ptr[SEQ_OFFSET + (size_t)i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
}

iotsec_result iotsec_eventlog_hash(const struct iotsec_store_event *rec,
                                   uint8_t out[IOTSEC_STORE_HASH_LEN])
{
    IOTSEC_ENSURE(rec != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "eventlog: no record");
    struct iotsec_buf b = {0};
    iotsec_result r = encode(&b, rec, rec->seq);
    if (iotsec_ok(r))
        r = iotsec_sha256(iotsec_buf_slice(&b), out);
    iotsec_buf_free(&b);
    return r;
}

static iotsec_result chain(void *ctx, struct iotsec_store_event *ev)
{
    (void)ctx;
    return iotsec_eventlog_hash(ev, ev->hash);
}

iotsec_result iotsec_eventlog_append(struct iotsec_store *s, struct iotsec_store_event *rec)
{
    return iotsec_store_event_append(s, rec, chain, NULL);
}

/* ---- verification ---- */

struct walk {
    struct iotsec_store *s;
    const struct iotsec_eventlog_head *head;
    iotsec_eventlog_problem_fn fn;
    void *ctx;
    struct iotsec_eventlog_verify_result *out;
    struct iotsec_buf enc;
    int64_t prev_seq; /* last record read, 0 before the first */
    uint8_t prev_hash[IOTSEC_STORE_HASH_LEN];
    bool prev_unreadable; /* prev_hash is unknown: the link after it cannot be checked */
    bool head_seen;
    bool stopped; /* the callback asked to stop */
};

static const uint8_t zero_hash[IOTSEC_STORE_HASH_LEN];

/* Returns false when the caller should stop walking. */
static bool report(struct walk *w, enum iotsec_eventlog_problem_kind kind, int64_t seq,
                   int64_t other, const char *fmt, ...) IOTSEC_PRINTF(5, 6);

static bool report(struct walk *w, enum iotsec_eventlog_problem_kind kind, int64_t seq,
                   int64_t other, const char *fmt, ...)
{
    struct iotsec_eventlog_problem p = {.kind = kind, .seq = seq, .other_seq = other};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p.message, sizeof(p.message), fmt, ap);
    va_end(ap);
    if (w->out->problems++ == 0)
        w->out->first = p;
    if (w->fn != NULL && !w->fn(w->ctx, &p))
        w->stopped = true;
    return !w->stopped;
}

/* The seq under which rec's contents hash to its stored hash, searching outwards from
 * its position; 0 when there is none within IOTSEC_EVENTLOG_MOVE_SEARCH. */
static iotsec_result find_written_seq(struct walk *w, const struct iotsec_store_event *rec,
                                      int64_t *found)
{
    *found = 0;
    uint8_t h[IOTSEC_SHA256_LEN];
    for (int64_t d = 1; d <= IOTSEC_EVENTLOG_MOVE_SEARCH; d++) {
        int64_t cand[2] = {rec->seq + d, rec->seq - d};
        for (int i = 0; i < 2; i++) {
            if (cand[i] < 1)
                continue;
            put_seq(&w->enc, cand[i]);
            IOTSEC_GUARD(iotsec_sha256(iotsec_buf_slice(&w->enc), h));
            if (memcmp(h, rec->hash, sizeof(h)) == 0) {
                *found = cand[i];
                return IOTSEC_RESULT_OK;
            }
        }
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_record(struct walk *w, const struct iotsec_store_event *rec)
{
    w->out->records++;
    int64_t seq = rec->seq;
    bool pred_known = seq == 1 || (w->prev_seq == seq - 1 && !w->prev_unreadable);
    if (seq > w->prev_seq + 1) {
        int64_t first = w->prev_seq + 1, last = seq - 1;
        bool go = first == last ? report(w, IOTSEC_EVENTLOG_MISSING, first, last,
                                         "record %lld is missing (deleted)", (long long)first)
                                : report(w, IOTSEC_EVENTLOG_MISSING, first, last,
                                         "records %lld to %lld are missing (deleted)",
                                         (long long)first, (long long)last);
        if (!go)
            return IOTSEC_RESULT_OK;
    }

    uint8_t h[IOTSEC_SHA256_LEN];
    IOTSEC_GUARD(encode(&w->enc, rec, seq));
    IOTSEC_GUARD(iotsec_sha256(iotsec_buf_slice(&w->enc), h));
    bool intact = memcmp(h, rec->hash, sizeof(h)) == 0;
    const uint8_t *want_prev = seq == 1 ? zero_hash : w->prev_hash;
    bool linked = !pred_known || memcmp(rec->prev_hash, want_prev, sizeof(rec->prev_hash)) == 0;

    if (!intact) {
        int64_t written = 0;
        IOTSEC_GUARD(find_written_seq(w, rec, &written));
        if (written != 0)
            report(w, IOTSEC_EVENTLOG_MOVED, seq, written,
                   "record %lld was moved: it was written as record %lld (reordered or "
                   "renumbered)",
                   (long long)seq, (long long)written);
        else
            report(w, IOTSEC_EVENTLOG_EDITED, seq, 0,
                   "record %lld was edited: its contents do not match its hash", (long long)seq);
    } else if (!linked) {
        report(w, IOTSEC_EVENTLOG_UNLINKED, seq, seq - 1,
               "record %lld does not follow record %lld: its prev_hash is not that record's "
               "hash (a neighbour was changed, moved or deleted)",
               (long long)seq, (long long)(seq - 1));
    }

    if (w->head != NULL && seq == w->head->seq && !w->stopped) {
        w->head_seen = true;
        if (memcmp(rec->hash, w->head->hash, sizeof(rec->hash)) != 0)
            report(w, IOTSEC_EVENTLOG_HEAD, seq, 0,
                   "record %lld does not have the hash of the saved head: the log was rewritten "
                   "from there or earlier",
                   (long long)seq);
    }
    w->prev_seq = seq;
    w->prev_unreadable = false;
    memcpy(w->prev_hash, rec->hash, sizeof(w->prev_hash));
    w->out->last_seq = seq;
    memcpy(w->out->last_hash, rec->hash, sizeof(w->out->last_hash));
    return IOTSEC_RESULT_OK;
}

static iotsec_result visit(void *ctx, const struct iotsec_store_event *ev)
{
    struct walk *w = ctx;
    IOTSEC_GUARD(check_record(w, ev));
    /* A stop request ends the walk through an error the caller recognises. */
    IOTSEC_ENSURE(!w->stopped, IOTSEC_ERR_OK, "stopped");
    return IOTSEC_RESULT_OK;
}

/* The walk failed on a record the store cannot read. Find it just past the last good
 * record, check the readable ones before it, and report it, so the walk can go on after
 * it. Returns the seq to resume after, or fails when it cannot be located. */
static iotsec_result step_over_unreadable(struct walk *w, int64_t *resume_after)
{
    for (int64_t seq = w->prev_seq + 1; seq <= w->prev_seq + PROBE_SPAN; seq++) {
        struct iotsec_store_event ev = {0};
        iotsec_result r = iotsec_store_event_get(w->s, seq, &ev);
        if (iotsec_ok(r)) {
            r = check_record(w, &ev);
            iotsec_store_event_clear(&ev);
            IOTSEC_GUARD(r);
            continue;
        }
        if (iotsec_error_code() == IOTSEC_ERR_NOT_FOUND)
            continue;
        if (iotsec_error_code() != IOTSEC_ERR_FORMAT)
            return IOTSEC_RESULT_ERR;
        report(w, IOTSEC_EVENTLOG_UNREADABLE, seq, 0, "record %lld is unreadable: %s",
               (long long)seq, iotsec_error_message());
        w->out->records++;
        /* Its hash is unknown, so the next record's link cannot be checked. */
        w->prev_seq = seq;
        w->prev_unreadable = true;
        memset(w->prev_hash, 0, sizeof(w->prev_hash));
        *resume_after = seq;
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_BAIL(IOTSEC_ERR_FORMAT, "eventlog: the log cannot be read after record %lld",
                (long long)w->prev_seq);
}

static void check_head_after_walk(struct walk *w)
{
    const struct iotsec_eventlog_head *head = w->head;
    if (head == NULL || w->head_seen || w->stopped)
        return;
    if (head->seq > w->out->last_seq)
        report(w, IOTSEC_EVENTLOG_HEAD, head->seq, w->out->last_seq,
               "the log ends at record %lld but the saved head is record %lld: records were "
               "deleted from the end",
               (long long)w->out->last_seq, (long long)head->seq);
    else
        report(w, IOTSEC_EVENTLOG_HEAD, head->seq, 0, "record %lld of the saved head is missing",
               (long long)head->seq);
}

iotsec_result iotsec_eventlog_verify(struct iotsec_store *s,
                                     const struct iotsec_eventlog_head *head,
                                     iotsec_eventlog_problem_fn fn, void *ctx,
                                     struct iotsec_eventlog_verify_result *out)
{
    IOTSEC_ENSURE(s != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "eventlog: no store");
    memset(out, 0, sizeof(*out));
    struct walk w = {.s = s, .head = head, .fn = fn, .ctx = ctx, .out = out};
    iotsec_result r = IOTSEC_RESULT_OK;
    int64_t after = 0;
    for (int attempt = 0; attempt <= MAX_UNREADABLE; attempt++) {
        r = iotsec_store_event_foreach(s, after, visit, &w);
        if (iotsec_ok(r) || w.stopped) {
            r = IOTSEC_RESULT_OK;
            break;
        }
        if (iotsec_error_code() != IOTSEC_ERR_FORMAT)
            break;
        r = step_over_unreadable(&w, &after);
        if (!iotsec_ok(r))
            break;
        r = IOTSEC_RESULT_ERR;
        iotsec_error_set(IOTSEC_ERR_FORMAT, "eventlog: more than %d unreadable records",
                         MAX_UNREADABLE);
    }
    iotsec_buf_free(&w.enc);
    IOTSEC_GUARD(r);
    check_head_after_walk(&w);
    return IOTSEC_RESULT_OK;
}

/* ---- heads ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

iotsec_result iotsec_eventlog_head_parse(const char *text, struct iotsec_eventlog_head *out)
{
    IOTSEC_ENSURE(text != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "eventlog: no head");
    memset(out, 0, sizeof(*out));
    const char *p = text;
    int64_t seq = 0;
    IOTSEC_ENSURE(*p >= '1' && *p <= '9', IOTSEC_ERR_INVALID_ARG,
                  "event log head '%.32s': expected SEQ:HASH (a record number from 1, then 64 "
                  "hex digits)",
                  text);
    for (; *p >= '0' && *p <= '9'; p++) {
        IOTSEC_ENSURE(seq <= (INT64_MAX - 9) / 10, IOTSEC_ERR_INVALID_ARG,
                      "event log head: record number is too large");
        seq = seq * 10 + (*p - '0');
    }
    IOTSEC_ENSURE(*p == ':', IOTSEC_ERR_INVALID_ARG,
                  "event log head '%.32s': expected ':' after the record number", text);
    p++;
    for (size_t i = 0; i < IOTSEC_STORE_HASH_LEN; i++) {
        int hi = hex_value(p[0]), lo = hi < 0 ? -1 : hex_value(p[1]);
        IOTSEC_ENSURE(hi >= 0 && lo >= 0, IOTSEC_ERR_INVALID_ARG,
                      "event log head: the hash must be 64 hex digits");
        out->hash[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    IOTSEC_ENSURE(*p == '\0', IOTSEC_ERR_INVALID_ARG,
                  "event log head: unexpected text after the 64 hex digits");
    out->seq = seq;
    return IOTSEC_RESULT_OK;
}

void iotsec_eventlog_head_format(const struct iotsec_eventlog_head *head,
                                 char out[IOTSEC_EVENTLOG_HEAD_STR_MAX])
{
    int n = snprintf(out, IOTSEC_EVENTLOG_HEAD_STR_MAX, "%lld:", (long long)head->seq);
    for (size_t i = 0; i < IOTSEC_STORE_HASH_LEN && n > 0; i++)
        n += snprintf(out + n, IOTSEC_EVENTLOG_HEAD_STR_MAX - (size_t)n, "%02x", head->hash[i]);
}
