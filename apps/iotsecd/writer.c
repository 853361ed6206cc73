/*
 * The writer thread: group commit of telemetry.
 *
 * Workers queue records and go on serving. The writer takes everything queued (up to
 * IOTSEC_STORE_TELEMETRY_BATCH records) and appends it in one transaction: one fsync for
 * the whole batch. While it commits, new records queue up for the next batch, so under
 * load batches grow and the cost per record falls; when idle, a record is committed
 * alone, at once. Each request then goes back to the worker that owns it, which answers
 * 202 (committed) or 503 (not stored: the client may retry).
 */
#include "iotsecd.h"

#include "iotsec/log.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct iotsecd_writer {
    struct iotsecd *server;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct iotsecd_pending *head, *tail;
    bool stopping;
    struct iotsec_store *store;
    struct iotsec_store_telemetry batch[IOTSEC_STORE_TELEMETRY_BATCH];
    struct iotsecd_pending *owners[IOTSEC_STORE_TELEMETRY_BATCH];
};

void iotsecd_writer_submit(struct iotsecd_writer *writer, struct iotsecd_pending *p)
{
    p->next = NULL;
    p->worker->in_flight++;
    pthread_mutex_lock(&writer->lock);
    if (writer->tail != NULL)
        writer->tail->next = p;
    else
        writer->head = p;
    writer->tail = p;
    pthread_cond_signal(&writer->ready);
    pthread_mutex_unlock(&writer->lock);
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
    while (wr->head != NULL && count < IOTSEC_STORE_TELEMETRY_BATCH) {
        struct iotsecd_pending *p = wr->head;
        wr->head = p->next;
        wr->owners[count] = p;
        wr->batch[count] = p->record;
        count++;
    }
    if (wr->head == NULL)
        wr->tail = NULL;
    pthread_mutex_unlock(&wr->lock);
    *n = count;
    return count > 0;
}

static void *writer_main(void *arg)
{
    struct iotsecd_writer *wr = arg;
    size_t n;
    while (take_batch(wr, &n)) {
        bool ok = iotsec_ok(iotsec_store_telemetry_append(wr->store, wr->batch, n));
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
    if (iotsec_ok(r)) {
        int rc = pthread_create(&wr->thread, NULL, writer_main, wr);
        if (rc != 0)
            iotsec_error_set(IOTSEC_ERR_NOMEM, "cannot start the writer: %s", strerror(rc));
        r = rc == 0 ? IOTSEC_RESULT_OK : IOTSEC_RESULT_ERR;
    }
    if (!iotsec_ok(r)) {
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
    iotsec_store_close(wr->store);
    pthread_mutex_destroy(&wr->lock);
    pthread_cond_destroy(&wr->ready);
    free(wr);
}
