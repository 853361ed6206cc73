/*
 * The writer thread: group commit of telemetry.
 *
 * Workers queue records and go on serving. The writer takes everything queued (up to
 * IOTSEC_STORE_TELEMETRY_BATCH records) and appends it in one transaction: one fsync for
 * the whole batch. While it commits, new records queue up for the next batch, so under
 * load batches grow and the cost per record falls; when idle, a record is committed
 * alone, at once. Each request then goes back to the worker that owns it, which answers
 * 202 (committed) or 503 (not stored: the client may retry).
 *
 * Durability: the contract is that an acknowledged record survives kill -9 of the server.
 * Telemetry commits through its own handle with IOTSEC_STORE_SYNC_PROCESS: in the
 * operating system before the 202, but without an fsync per batch, which on an ordinary
 * disk would cap the server at a few thousand records a second. A power cut may lose the
 * last moments of telemetry (docs/iotsecd.md). Security events go through a second handle
 * that keeps IOTSEC_STORE_SYNC_FULL.
 */
#include "iotsecd.h"

#include "iotsec/log.h"
#include "iotsec/monitor.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct iotsecd_writer {
    struct iotsecd *server;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct iotsecd_pending *head, *tail;
    bool stopping;
    struct iotsec_store *store;        /* telemetry: survives a process crash */
    struct iotsec_store *events_store; /* the monitor's: survives a machine crash */
    struct iotsec_monitor *monitor;
    size_t queued_events;
    struct iotsecd_pending *events; /* taken off the queue, for the monitor */
    struct iotsec_store_telemetry batch[IOTSEC_STORE_TELEMETRY_BATCH];
    struct iotsecd_pending *owners[IOTSEC_STORE_TELEMETRY_BATCH];
};

static void enqueue(struct iotsecd_writer *writer, struct iotsecd_pending *p)
{
    p->next = NULL;
    pthread_mutex_lock(&writer->lock);
    if (writer->tail != NULL)
        writer->tail->next = p;
    else
        writer->head = p;
    writer->tail = p;
    pthread_cond_signal(&writer->ready);
    pthread_mutex_unlock(&writer->lock);
}

void iotsecd_writer_submit(struct iotsecd_writer *writer, struct iotsecd_pending *p)
{
    p->kind = JOB_TELEMETRY;
    p->worker->in_flight++;
    enqueue(writer, p);
}

void iotsecd_report(struct iotsecd *server, int type, const char *device_id, const char *source_ip,
                    const char *details)
{
    struct iotsecd_writer *wr = server->writer;
    pthread_mutex_lock(&wr->lock);
    bool room = wr->queued_events < IOTSECD_EVENT_QUEUE_MAX;
    if (room)
        wr->queued_events++;
    pthread_mutex_unlock(&wr->lock);
    struct iotsecd_pending *p = room ? calloc(1, sizeof(*p)) : NULL;
    if (p == NULL) {
        if (room) {
            pthread_mutex_lock(&wr->lock);
            wr->queued_events--;
            pthread_mutex_unlock(&wr->lock);
        }
        atomic_fetch_add(&server->metrics.events_dropped, 1);
        return;
    }
    p->kind = JOB_EVENT;
    p->event_type = type;
    p->event_ts = iotsecd_now_us() / 1000;
    snprintf(p->device_id, sizeof(p->device_id), "%s", device_id != NULL ? device_id : "");
    snprintf(p->source_ip, sizeof(p->source_ip), "%s", source_ip != NULL ? source_ip : "");
    snprintf(p->details, sizeof(p->details), "%s", details != NULL ? details : "{}");
    enqueue(wr, p);
}

/* One event through the monitor: the log (its own transaction), the sinks, and for an
 * auth failure the brute-force detector, which may block the source. */
static void record_event(struct iotsecd_writer *wr, struct iotsecd_pending *p)
{
    struct iotsec_event ev = {.ts = p->event_ts,
                              .type = (enum iotsec_event_type)p->event_type,
                              .device_id = p->device_id,
                              .source_ip = p->source_ip,
                              .details = p->details};
    struct iotsec_monitor_outcome outcome = {0};
    if (!iotsec_ok(iotsec_monitor_report(wr->monitor, &ev, &outcome))) {
        iotsec_log_error("security event not recorded",
                         IOTSEC_LOG_STR("eventType", iotsec_event_type_name(ev.type)),
                         IOTSEC_LOG_STR("error", iotsec_error_message()));
    } else if (outcome.brute_force_detected) {
        atomic_fetch_add(&wr->server->metrics.brute_force_detected, 1);
        iotsec_log_warn("brute_force_detected", IOTSEC_LOG_STR("sourceIp", p->source_ip),
                        IOTSEC_LOG_STR("deviceId", p->device_id),
                        IOTSEC_LOG_BOOL("sourceBlocked", outcome.source_blocked));
    }
    pthread_mutex_lock(&wr->lock);
    wr->queued_events--;
    pthread_mutex_unlock(&wr->lock);
    free(p);
}

static void hand_back(struct iotsecd_pending *p)
{
    struct iotsecd_worker *w = p->worker;
    pthread_mutex_lock(&w->done_lock);
    p->next = w->done;
    w->done = p;
    pthread_mutex_unlock(&w->done_lock);
    event_active(w->wake, 0, 0);
}

/* Takes up to a batch off the queue; false when stopping and nothing is left. */
static bool take_batch(struct iotsecd_writer *wr, size_t *n)
{
    pthread_mutex_lock(&wr->lock);
    while (wr->head == NULL && !wr->stopping)
        pthread_cond_wait(&wr->ready, &wr->lock);
    size_t count = 0;
    struct iotsecd_pending *events = NULL, **events_tail = &events;
    while (wr->head != NULL && count < IOTSEC_STORE_TELEMETRY_BATCH) {
        struct iotsecd_pending *p = wr->head;
        wr->head = p->next;
        if (p->kind == JOB_EVENT) {
            p->next = NULL;
            *events_tail = p;
            events_tail = &p->next;
            continue;
        }
        wr->owners[count] = p;
        wr->batch[count] = p->record;
        count++;
    }
    if (wr->head == NULL)
        wr->tail = NULL;
    pthread_mutex_unlock(&wr->lock);
    /* Telemetry first: its senders are waiting; the events' writers are not. */
    *n = count;
    wr->events = events;
    return count > 0 || events != NULL;
}

static void *writer_main(void *arg)
{
    struct iotsecd_writer *wr = arg;
    size_t n;
    while (take_batch(wr, &n)) {
        bool ok = n == 0 || iotsec_ok(iotsec_store_telemetry_append(wr->store, wr->batch, n));
        if (!ok) {
            /* One bad record must not sink the others: retry them one by one. */
            iotsec_log_error("telemetry batch failed; retrying records one by one",
                             IOTSEC_LOG_INT("records", (int64_t)n),
                             IOTSEC_LOG_STR("error", iotsec_error_message()));
        }
        for (size_t i = 0; i < n; i++) {
            struct iotsecd_pending *p = wr->owners[i];
            if (ok) {
                p->record.seq = wr->batch[i].seq;
                p->ok = true;
            } else {
                p->ok = iotsec_ok(iotsec_store_telemetry_append(wr->store, &p->record, 1));
            }
            hand_back(p);
        }
        while (wr->events != NULL) {
            struct iotsecd_pending *p = wr->events;
            wr->events = p->next;
            record_event(wr, p);
        }
    }
    return NULL;
}

iotsec_result iotsecd_writer_start(struct iotsecd *server)
{
    struct iotsecd_writer *wr = calloc(1, sizeof(*wr));
    IOTSEC_ENSURE_ALLOC(wr);
    wr->server = server;
    pthread_mutex_init(&wr->lock, NULL);
    pthread_cond_init(&wr->ready, NULL);
    char path[IOTSECD_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/store.db", server->cfg.data_dir);
    iotsec_result r = iotsec_store_open(path, &wr->store);
    if (iotsec_ok(r))
        r = iotsec_store_set_sync(wr->store, IOTSEC_STORE_SYNC_PROCESS);
    if (iotsec_ok(r))
        r = iotsec_store_open(path, &wr->events_store);
    struct iotsec_monitor_config mc = {
        .bruteforce = {.threshold = server->cfg.bf_threshold,
                       .window_ms = server->cfg.bf_window_sec * 1000},
        .block_ms = server->cfg.block_sec * 1000,
    };
    if (iotsec_ok(r))
        r = iotsec_monitor_new(wr->events_store, &mc, &wr->monitor);
    if (iotsec_ok(r)) {
        int rc = pthread_create(&wr->thread, NULL, writer_main, wr);
        if (rc != 0)
            iotsec_error_set(IOTSEC_ERR_NOMEM, "cannot start the writer: %s", strerror(rc));
        r = rc == 0 ? IOTSEC_RESULT_OK : IOTSEC_RESULT_ERR;
    }
    if (!iotsec_ok(r)) {
        iotsec_monitor_free(wr->monitor);
        iotsec_store_close(wr->events_store);
        iotsec_store_close(wr->store);
        free(wr);
        return r;
    }
    server->writer = wr;
    return IOTSEC_RESULT_OK;
}

void iotsecd_writer_stop(struct iotsecd_writer *wr)
{
    if (wr == NULL)
        return;
    pthread_mutex_lock(&wr->lock);
    wr->stopping = true;
    pthread_cond_signal(&wr->ready);
    pthread_mutex_unlock(&wr->lock);
    pthread_join(wr->thread, NULL);
    iotsec_monitor_free(wr->monitor);
    iotsec_store_close(wr->events_store);
    iotsec_store_close(wr->store);
    pthread_mutex_destroy(&wr->lock);
    pthread_cond_destroy(&wr->ready);
    free(wr);
}
