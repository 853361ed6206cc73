/*
 * The monitor: the event log, the sinks, the brute-force detector and the blocklist put
 * together behind report() and is_blocked() (see include/iotsec/monitor.h).
 *
 * One mutex covers everything but the detector (which has its own): the store handle
 * is for one thread at a time, and taking the lock around append + sinks keeps the
 * sinks' order the log's order. Work under the lock is one append (one fsync in SQLite
 * FULL mode) and one write per sink; detection adds at most two appends and two block
 * writes, at most once per key per window.
 */
#include "iotsec/monitor.h"

#include "iotsec/eventlog.h"
#include "iotsec/time.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct iotsec_monitor {
    pthread_mutex_t lock;
    struct iotsec_store *store;
    struct iotsec_bruteforce *bf;
    struct iotsec_bruteforce_config bf_config; /* with defaults filled in */
    int64_t block_ms;
    bool block_device;
    struct iotsec_sink *sinks[IOTSEC_MONITOR_MAX_SINKS];
    size_t nsinks;
    struct iotsec_monitor_stats stats;
};

iotsec_result iotsec_monitor_new(struct iotsec_store *store,
                                 const struct iotsec_monitor_config *config,
                                 struct iotsec_monitor **out)
{
    IOTSEC_ENSURE(store != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "monitor: no store");
    *out = NULL;
    struct iotsec_monitor_config c = config != NULL ? *config : (struct iotsec_monitor_config){0};
    if (c.block_ms == 0)
        c.block_ms = IOTSEC_MONITOR_DEFAULT_BLOCK_MS;
    IOTSEC_ENSURE(c.block_ms > 0 && c.block_ms <= IOTSEC_MONITOR_DURATION_MAX_MS, IOTSEC_ERR_CONFIG,
                  "monitor: block time %lld ms is out of range", (long long)c.block_ms);
    struct iotsec_monitor *m = calloc(1, sizeof(*m));
    IOTSEC_ENSURE_ALLOC(m);
    if (!iotsec_ok(iotsec_bruteforce_new(&c.bruteforce, &m->bf))) {
        free(m);
        return IOTSEC_RESULT_ERR;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->store = store;
    m->bf_config = c.bruteforce;
    if (m->bf_config.threshold == 0)
        m->bf_config.threshold = IOTSEC_BRUTEFORCE_DEFAULT_THRESHOLD;
    if (m->bf_config.window_ms == 0)
        m->bf_config.window_ms = IOTSEC_BRUTEFORCE_DEFAULT_WINDOW_MS;
    m->block_ms = c.block_ms;
    m->block_device = c.block_device;
    *out = m;
    return IOTSEC_RESULT_OK;
}

void iotsec_monitor_free(struct iotsec_monitor *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nsinks; i++)
        iotsec_sink_close(m->sinks[i]);
    iotsec_bruteforce_free(m->bf);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

iotsec_result iotsec_monitor_add_sink(struct iotsec_monitor *m, struct iotsec_sink *sink)
{
    IOTSEC_ENSURE(m != NULL && sink != NULL, IOTSEC_ERR_INVALID_ARG, "monitor: no sink");
    pthread_mutex_lock(&m->lock);
    bool room = m->nsinks < IOTSEC_MONITOR_MAX_SINKS;
    if (room)
        m->sinks[m->nsinks++] = sink;
    pthread_mutex_unlock(&m->lock);
    if (!room)
        iotsec_sink_close(sink);
    IOTSEC_ENSURE(room, IOTSEC_ERR_CONFIG, "monitor: at most %d sinks", IOTSEC_MONITOR_MAX_SINKS);
    return IOTSEC_RESULT_OK;
}

/* Called with the lock held. Sink failures are counted, never returned. */
static unsigned write_sinks(struct iotsec_monitor *m, const struct iotsec_store_event *rec)
{
    unsigned failed = 0;
    for (size_t i = 0; i < m->nsinks; i++) {
        if (iotsec_ok(iotsec_sink_write(m->sinks[i], rec)))
            continue;
        failed++;
        m->stats.sink_failures++;
        snprintf(m->stats.last_sink_error, sizeof(m->stats.last_sink_error), "%s",
                 iotsec_error_message());
    }
    iotsec_error_clear();
    return failed;
}

static void str_cleanup(char **s)
{
    free(*s);
}

static void json_cleanup(json_t **j)
{
    json_decref(*j);
}

/* Appends an event the monitor builds itself and writes it to the sinks. */
static iotsec_result emit_own(struct iotsec_monitor *m, enum iotsec_event_type type, int64_t ts,
                              const char *device_id, const char *source_ip, json_t *details)
{
    char *text IOTSEC_DEFER(str_cleanup) = json_dumps(details, JSON_COMPACT);
    IOTSEC_ENSURE_ALLOC(text);
    struct iotsec_event ev = {
        .ts = ts, .type = type, .device_id = device_id, .source_ip = source_ip, .details = text};
    struct iotsec_store_event rec;
    IOTSEC_GUARD(iotsec_event_to_record(&ev, &rec));
    IOTSEC_GUARD(iotsec_eventlog_append(m->store, &rec));
    write_sinks(m, &rec);
    return IOTSEC_RESULT_OK;
}

static iotsec_result format_time(int64_t ms, char out[IOTSEC_TIME_STR_MAX])
{
    struct iotsec_time t = {.sec = ms / 1000, .nsec = (uint32_t)(ms % 1000) * 1000000u};
    return iotsec_time_format(t, IOTSEC_TIME_MILLIS, out);
}

/* Blocks source until expires (EXTEND) and records block_added, unless a block that
 * lasts at least as long is already in force: re-blocking would only repeat the event. */
static iotsec_result auto_block(struct iotsec_monitor *m, const char *source, int64_t now,
                                const char *device_id, const char *source_ip, const char *reason,
                                bool *blocked)
{
    *blocked = false;
    int64_t expires = now + m->block_ms;
    bool in_force;
    struct iotsec_store_block old;
    IOTSEC_GUARD(iotsec_store_block_check(m->store, source, now, &in_force, &old));
    if (in_force && (old.expires_at == 0 || old.expires_at >= expires))
        return IOTSEC_RESULT_OK;
    struct iotsec_store_block b = {.created_at = now, .expires_at = expires};
    snprintf(b.source, sizeof(b.source), "%s", source);
    snprintf(b.reason, sizeof(b.reason), "%s", reason);
    IOTSEC_GUARD(iotsec_store_block_put(m->store, &b, IOTSEC_STORE_BLOCK_EXTEND));
    m->stats.blocks++;
    *blocked = true;
    char until[IOTSEC_TIME_STR_MAX];
    IOTSEC_GUARD(format_time(expires, until));
    json_t *d IOTSEC_DEFER(json_cleanup) =
        json_pack("{s:s,s:s,s:s,s:s}", "source", source, "expiresAt", until, "reason", reason, "by",
                  "brute-force detector");
    IOTSEC_ENSURE_ALLOC(d);
    return emit_own(m, IOTSEC_EVENT_BLOCK_ADDED, now, device_id, source_ip, d);
}

static iotsec_result on_auth_failure(struct iotsec_monitor *m, const struct iotsec_store_event *rec,
                                     struct iotsec_monitor_outcome *oc)
{
    struct iotsec_bruteforce_verdict v;
    IOTSEC_GUARD(iotsec_bruteforce_record(m->bf, rec->device_id, rec->source_ip, rec->ts, &v));
    if (v.device_detected || v.source_detected) {
        const char *key = v.device_detected && v.source_detected ? "device and source"
                          : v.device_detected                    ? "device"
                                                                 : "source";
        json_t *d IOTSEC_DEFER(json_cleanup) =
            json_pack("{s:s,s:i,s:i,s:I,s:i,s:I}", "key", key, "deviceFailures",
                      (int)v.device_failures, "sourceFailures", (int)v.source_failures, "windowMs",
                      (json_int_t)m->bf_config.window_ms, "threshold", (int)m->bf_config.threshold,
                      "triggerSeq", (json_int_t)rec->seq);
        IOTSEC_ENSURE_ALLOC(d);
        IOTSEC_GUARD(emit_own(m, IOTSEC_EVENT_BRUTE_FORCE_DETECTED, rec->ts, rec->device_id,
                              rec->source_ip, d));
        m->stats.detections++;
        oc->brute_force_detected = true;
    }
    char reason[IOTSEC_STORE_REASON_MAX + 1];
    if (rec->source_ip[0] != '\0' &&
        (v.source_detected || v.device_detected || v.device_under_attack)) {
        snprintf(reason, sizeof(reason),
                 "brute force: %u failures from this address, %u against %s", v.source_failures,
                 v.device_failures, rec->device_id[0] != '\0' ? "the device" : "no device");
        IOTSEC_GUARD(auto_block(m, rec->source_ip, rec->ts, rec->device_id, rec->source_ip, reason,
                                &oc->source_blocked));
    }
    if (m->block_device && v.device_detected) {
        char source[IOTSEC_STORE_SOURCE_MAX + 1];
        snprintf(source, sizeof(source), "device:%s", rec->device_id);
        snprintf(reason, sizeof(reason), "brute force: %u failures against this device",
                 v.device_failures);
        IOTSEC_GUARD(auto_block(m, source, rec->ts, rec->device_id, rec->source_ip, reason,
                                &oc->device_blocked));
    }
    return IOTSEC_RESULT_OK;
}

static iotsec_result report_locked(struct iotsec_monitor *m, const struct iotsec_event *ev,
                                   struct iotsec_monitor_outcome *oc)
{
    struct iotsec_store_event rec;
    IOTSEC_GUARD(iotsec_event_to_record(ev, &rec));
    IOTSEC_GUARD(iotsec_eventlog_append(m->store, &rec));
    m->stats.reported++;
    oc->seq = rec.seq;
    oc->sink_failures = write_sinks(m, &rec);
    if (ev->type == IOTSEC_EVENT_AUTH_FAILURE)
        IOTSEC_GUARD(on_auth_failure(m, &rec, oc));
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_monitor_report(struct iotsec_monitor *m, const struct iotsec_event *ev,
                                    struct iotsec_monitor_outcome *out)
{
    IOTSEC_ENSURE(m != NULL && ev != NULL, IOTSEC_ERR_INVALID_ARG, "monitor: no event");
    struct iotsec_monitor_outcome oc = {0};
    pthread_mutex_lock(&m->lock);
    iotsec_result r = report_locked(m, ev, &oc);
    pthread_mutex_unlock(&m->lock);
    if (out != NULL)
        *out = oc;
    return r;
}

iotsec_result iotsec_monitor_is_blocked(struct iotsec_monitor *m, const char *source_ip,
                                        const char *device_id, int64_t now, bool *blocked,
                                        struct iotsec_store_block *which)
{
    IOTSEC_ENSURE(m != NULL && blocked != NULL, IOTSEC_ERR_INVALID_ARG, "monitor: no query");
    *blocked = false;
    iotsec_result r = IOTSEC_RESULT_OK;
    pthread_mutex_lock(&m->lock);
    if (source_ip != NULL && source_ip[0] != '\0')
        r = iotsec_store_block_check(m->store, source_ip, now, blocked, which);
    if (iotsec_ok(r) && !*blocked && device_id != NULL && device_id[0] != '\0') {
        char source[IOTSEC_STORE_SOURCE_MAX + 2];
        int n = snprintf(source, sizeof(source), "device:%s", device_id);
        if (n < 0 || (size_t)n >= sizeof(source)) {
            iotsec_error_set(IOTSEC_ERR_INVALID_ARG, "monitor: device id is too long");
            r = IOTSEC_RESULT_ERR;
        } else {
            r = iotsec_store_block_check(m->store, source, now, blocked, which);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}

/* ---- operator blocks: the change and its event commit together ---- */

struct block_tx {
    struct iotsec_monitor *m;
    const struct iotsec_store_block *block; /* NULL: remove */
    struct iotsec_store_block stored;       /* the block as stored (canonical source) */
    const char *source;
    const char *actor;
    int64_t now;
    struct iotsec_store_event rec;
    char *details;
};

/* The event names the device or the address the source is, so filters find it. */
static void source_fields(const char *source, const char **device_id, const char **ip)
{
    *device_id = "";
    *ip = "";
    if (strncmp(source, "device:", 7) == 0)
        *device_id = source + 7;
    else
        *ip = source;
}

static iotsec_result block_tx_run(struct iotsec_store *s, void *ctx)
{
    struct block_tx *t = ctx;
    json_t *d IOTSEC_DEFER(json_cleanup) = NULL;
    enum iotsec_event_type type;
    if (t->block != NULL) {
        IOTSEC_GUARD(iotsec_store_block_put(s, t->block, IOTSEC_STORE_BLOCK_REPLACE));
        /* Read it back for the canonical spelling the store gave the source. */
        bool in_force;
        IOTSEC_GUARD(iotsec_store_block_check(s, t->block->source, t->now, &in_force, &t->stored));
        IOTSEC_ENSURE(in_force, IOTSEC_ERR_INVALID_ARG, "block: the block has already expired");
        char until[IOTSEC_TIME_STR_MAX] = "";
        if (t->block->expires_at != 0)
            IOTSEC_GUARD(format_time(t->block->expires_at, until));
        d = json_pack("{s:s,s:o,s:s,s:s}", "source", t->stored.source, "expiresAt",
                      t->block->expires_at != 0 ? json_string(until) : json_null(), "reason",
                      t->block->reason, "by", t->actor);
        type = IOTSEC_EVENT_BLOCK_ADDED;
    } else {
        IOTSEC_GUARD(iotsec_store_block_remove(s, t->source));
        d = json_pack("{s:s,s:s}", "source", t->source, "by", t->actor);
        type = IOTSEC_EVENT_BLOCK_REMOVED;
    }
    IOTSEC_ENSURE_ALLOC(d);
    t->details = json_dumps(d, JSON_COMPACT);
    IOTSEC_ENSURE_ALLOC(t->details);
    const char *device_id, *ip;
    source_fields(t->block != NULL ? t->stored.source : t->source, &device_id, &ip);
    struct iotsec_event ev = {
        .ts = t->now, .type = type, .device_id = device_id, .source_ip = ip, .details = t->details};
    IOTSEC_GUARD(iotsec_event_to_record(&ev, &t->rec));
    return iotsec_eventlog_append(s, &t->rec);
}

static iotsec_result block_change(struct iotsec_monitor *m, struct block_tx *t)
{
    pthread_mutex_lock(&m->lock);
    iotsec_result r = iotsec_store_transaction(m->store, block_tx_run, t);
    if (iotsec_ok(r)) {
        if (t->block != NULL)
            m->stats.blocks++;
        t->rec.details = t->details;
        write_sinks(m, &t->rec);
    }
    pthread_mutex_unlock(&m->lock);
    free(t->details);
    return r;
}

iotsec_result iotsec_monitor_block(struct iotsec_monitor *m, const char *source, int64_t now,
                                   int64_t expires_at, const char *reason, const char *actor,
                                   struct iotsec_store_block *stored)
{
    IOTSEC_ENSURE(m != NULL && source != NULL, IOTSEC_ERR_INVALID_ARG, "monitor: no source");
    struct iotsec_store_block b = {.created_at = now, .expires_at = expires_at};
    IOTSEC_ENSURE(strlen(source) < sizeof(b.source), IOTSEC_ERR_INVALID_ARG,
                  "block: source is longer than %zu characters", sizeof(b.source) - 1);
    IOTSEC_ENSURE(reason == NULL || strlen(reason) < sizeof(b.reason), IOTSEC_ERR_INVALID_ARG,
                  "block: reason is longer than %zu characters", sizeof(b.reason) - 1);
    snprintf(b.source, sizeof(b.source), "%s", source);
    snprintf(b.reason, sizeof(b.reason), "%s", reason != NULL ? reason : "");
    struct block_tx t = {.m = m, .block = &b, .actor = actor != NULL ? actor : "", .now = now};
    IOTSEC_GUARD(block_change(m, &t));
    if (stored != NULL)
        *stored = t.stored;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_monitor_unblock(struct iotsec_monitor *m, const char *source, int64_t now,
                                     const char *actor)
{
    IOTSEC_ENSURE(m != NULL && source != NULL, IOTSEC_ERR_INVALID_ARG, "monitor: no source");
    struct block_tx t = {.m = m, .source = source, .actor = actor != NULL ? actor : "", .now = now};
    return block_change(m, &t);
}

void iotsec_monitor_get_stats(struct iotsec_monitor *m, struct iotsec_monitor_stats *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->stats;
    pthread_mutex_unlock(&m->lock);
    iotsec_bruteforce_get_stats(m->bf, &out->bruteforce);
}

/* ---- durations ---- */

iotsec_result iotsec_monitor_duration_parse(struct iotsec_slice text, int64_t *ms)
{
    IOTSEC_ENSURE(ms != NULL, IOTSEC_ERR_INVALID_ARG, "duration: no output");
    *ms = 0;
    static const char permanent[] = "permanent";
    if (text.len == sizeof(permanent) - 1 && memcmp(text.ptr, permanent, text.len) == 0)
        return IOTSEC_RESULT_OK;
    IOTSEC_ENSURE(text.len >= 2 && text.len <= 16, IOTSEC_ERR_INVALID_ARG,
                  "duration '%.*s': expected a number and a unit (s, m, h, d), like 15m, or "
                  "'permanent'",
                  (int)(text.len > 16 ? 16 : text.len), (const char *)text.ptr);
    int64_t n = 0;
    size_t i = 0;
    for (; i < text.len - 1; i++) {
        uint8_t c = text.ptr[i];
        IOTSEC_ENSURE(c >= '0' && c <= '9', IOTSEC_ERR_INVALID_ARG,
                      "duration '%.*s': expected a number and a unit (s, m, h, d), like 15m, or "
                      "'permanent'",
                      (int)text.len, (const char *)text.ptr);
        n = n * 10 + (c - '0'); /* at most 15 digits: no overflow */
    }
    int64_t unit;
    switch (text.ptr[i]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 24 * 3600 * 1000;
        break;
    default:
        IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG,
                    "duration '%.*s': the unit must be s, m, h or d (or say 'permanent')",
                    (int)text.len, (const char *)text.ptr);
    }
    IOTSEC_ENSURE(n > 0, IOTSEC_ERR_INVALID_ARG, "duration '%.*s': must be more than zero",
                  (int)text.len, (const char *)text.ptr);
    IOTSEC_ENSURE(n <= IOTSEC_MONITOR_DURATION_MAX_MS / unit, IOTSEC_ERR_INVALID_ARG,
                  "duration '%.*s': longer than 3650 days (use 'permanent')", (int)text.len,
                  (const char *)text.ptr);
    *ms = n * unit;
    return IOTSEC_RESULT_OK;
}
