/*
 * Workers: one event_base per thread, each with its own listening sockets on the shared
 * ports (SO_REUSEPORT), an evhttp per listener over bufferevent_openssl, and the
 * per-connection context that carries the device identity and the request deadline.
 *
 * Slow clients: libevent's own timeout only notices a connection that sends nothing, so a
 * client dribbling one header byte a second would hold a connection forever. Each
 * connection therefore has a deadline: from accept (or from its last reply) to a complete
 * request, request_timeout_ms. When it passes, the socket is shut down and libevent
 * closes the connection on its next read. The deadline is off while a request is being
 * answered, since then the wait is ours, not the client's.
 */
#include "iotsecd.h"

#include "iotsec/json.h"
#include "iotsec/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024
#define DRAIN_LIMIT_MS 10000
#define DRAIN_POLL_MS  20
/* The access log is written per worker in batches: at most every ACCESS_LOG_FLUSH_MS, or
 * at once past ACCESS_LOG_FLUSH_BYTES, and when the worker stops. One write(2) per batch
 * instead of one per request; a crash (kill -9) loses at most the last few milliseconds
 * of access log lines. Security events (warnings, auth failures) are not batched. */
/* At most one TLS record's worth of plaintext. */
#define REPLY_COALESCE_MAX     16384
#define ACCESS_LOG_FLUSH_MS    5
#define ACCESS_LOG_FLUSH_BYTES (32 * 1024)

int64_t iotsecd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* ---- connections ---- */

struct listener_ctx {
    struct iotsecd_worker *worker;
    bool device;
};

static void arm_deadline(struct iotsecd_conn *conn)
{
    struct timeval tv = ms_tv(conn->worker->server->cfg.request_timeout_ms);
    evtimer_add(conn->deadline, &tv);
}

static void deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct iotsecd_conn *conn = arg;
    int sock = conn->bev != NULL ? bufferevent_getfd(conn->bev) : -1;
    if (sock >= 0)
        shutdown(sock, SHUT_RDWR);
}

void iotsecd_conn_release(struct iotsecd_conn *conn)
{
    if (conn->deadline != NULL)
        event_free(conn->deadline);
    free(conn);
}

static struct bufferevent *new_connection(struct event_base *base, void *arg)
{
    const struct listener_ctx *l = arg;
    struct iotsecd *server = l->worker->server;
    struct iotsecd_conn *conn = calloc(1, sizeof(*conn));
    SSL *ssl =
        SSL_new(l->device ? atomic_load(&server->device_ctx) : atomic_load(&server->api_ctx));
    if (conn == NULL || ssl == NULL) {
        free(conn);
        SSL_free(ssl);
        return NULL;
    }
    conn->worker = l->worker;
    conn->device_listener = l->device;
    conn->fd = -1;
    conn->deadline = evtimer_new(base, deadline_passed, conn);
    if (conn->deadline == NULL || SSL_set_ex_data(ssl, iotsecd_tls_conn_index(), conn) != 1) {
        iotsecd_conn_release(conn);
        SSL_free(ssl);
        return NULL;
    }
    /* From here the SSL owns conn (its ex_data free callback releases it). */
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    conn->bev = bev;
    arm_deadline(conn);
    return bev;
}

struct iotsecd_conn *iotsecd_conn_of(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL)
        return NULL;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl != NULL ? SSL_get_ex_data(ssl, iotsecd_tls_conn_index()) : NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct iotsecd_conn *conn = iotsecd_conn_of(req);
    if (conn == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evtimer_del(conn->deadline);
    iotsecd_dispatch(req, conn);
}

/* ---- replies, access log, metrics ---- */

static const double latency_bounds_s[IOTSECD_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

static void account(struct iotsecd *server, struct evhttp_request *req,
                    const struct iotsecd_conn *conn, int route, int status, int64_t started_us)
{
    int64_t us = iotsecd_now_us() - started_us;
    struct iotsecd_metrics *m = &server->metrics;
    int cls = status / 100;
    atomic_fetch_add(&m->requests[route][cls >= 1 && cls <= 5 ? cls : 0], 1);
    size_t b = 0;
    while (b < IOTSECD_LATENCY_BUCKETS && (double)us / 1e6 > latency_bounds_s[b])
        b++;
    atomic_fetch_add(&m->latency[b], 1);
    atomic_fetch_add(&m->latency_sum_us, (uint_fast64_t)(us > 0 ? us : 0));
    if (!server->cfg.access_log)
        return;
    const char *method = "OTHER";
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET:
        method = "GET";
        break;
    case EVHTTP_REQ_POST:
        method = "POST";
        break;
    case EVHTTP_REQ_DELETE:
        method = "DELETE";
        break;
    case EVHTTP_REQ_PUT:
        method = "PUT";
        break;
    default:
        break;
    }
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct iotsecd_worker *w = conn->worker;
    if (!iotsec_log_enabled(IOTSEC_LOG_INFO) ||
        !iotsec_ok(iotsec_log_format(
            IOTSEC_LOG_INFO, "request",
            IOTSEC_LOG_FIELDS_(IOTSEC_LOG_STR("method", method),
                               IOTSEC_LOG_STR("path", path != NULL ? path : ""),
                               IOTSEC_LOG_INT("status", status), IOTSEC_LOG_INT("us", us),
                               IOTSEC_LOG_STR("sourceIp", conn->peer_ip),
                               IOTSEC_LOG_STR("deviceId", conn->device_id)),
            &w->access_log)))
        return;
    if (w->access_log.len >= ACCESS_LOG_FLUSH_BYTES)
        iotsecd_access_log_flush(w);
    else if (!evtimer_pending(w->log_flush, NULL)) {
        struct timeval tv = ms_tv(ACCESS_LOG_FLUSH_MS);
        evtimer_add(w->log_flush, &tv);
    }
}

void iotsecd_access_log_flush(struct iotsecd_worker *w)
{
    iotsec_log_write_records(w->access_log.ptr, w->access_log.len);
    iotsec_buf_reset(&w->access_log);
}

static void access_log_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    iotsecd_access_log_flush(arg);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static void send_reply(struct evhttp_request *req, struct iotsecd_conn *conn, int route, int status,
                       struct evbuffer *body, const char *content_type, int64_t started_us)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    struct iotsecd *server = conn != NULL ? conn->worker->server : NULL;
    if (server != NULL)
        account(server, req, conn, route, status, started_us);
    evhttp_send_reply(req, status, reason_phrase(status), body);
    if (conn != NULL) {
        /* evhttp leaves the head and the body in separate chains, and bufferevent_openssl
         * makes a TLS record and a send(2) of each. A small reply made contiguous leaves
         * as one record: one system call fewer per request. The bytes are the same. */
        struct evbuffer *out = conn->bev != NULL ? bufferevent_get_output(conn->bev) : NULL;
        if (out != NULL && evbuffer_get_length(out) <= REPLY_COALESCE_MAX)
            evbuffer_pullup(out, -1);
        arm_deadline(conn);
    }
}

void iotsecd_reply_json(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                        int status, json_t *value, int64_t started_us)
{
    struct iotsec_buf text;
    iotsec_buf_init(&text);
    if (value == NULL || !iotsec_ok(iotsec_json_dump(value, 0, &text))) {
        iotsec_buf_reset(&text);
        status = 500;
        if (!iotsec_ok(iotsec_buf_append_str(&text, "{\"error\":\"Internal error\"}")))
            iotsec_buf_reset(&text);
    }
    json_decref(value);
    struct evbuffer *body = evbuffer_new();
    if (body != NULL)
        evbuffer_add(body, text.ptr, text.len);
    iotsec_buf_free(&text);
    send_reply(req, conn, route, status, body, "application/json", started_us);
    if (body != NULL)
        evbuffer_free(body);
}

void iotsecd_reply_accepted(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                            int64_t seq, int64_t started_us)
{
    /* The same bytes as iotsecd_reply_json of {"status":"accepted","seq":seq} (compact),
     * without building and serialising a JSON tree per request. */
    struct evbuffer *body = evbuffer_new();
    if (body != NULL)
        evbuffer_add_printf(body, "{\"status\":\"accepted\",\"seq\":%lld}", (long long)seq);
    send_reply(req, conn, route, 202, body, "application/json", started_us);
    if (body != NULL)
        evbuffer_free(body);
}

void iotsecd_reply_invalid(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                           int64_t started_us)
{
    iotsecd_reply_json(
        req, conn, route, 400,
        json_pack("{s:s,s:s}", "error", "Validation failed", "message", iotsec_error_message()),
        started_us);
}

void iotsecd_reply_error(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                         int status, const char *message, int64_t started_us)
{
    iotsecd_reply_json(req, conn, route, status, json_pack("{s:s}", "error", message), started_us);
}

void iotsecd_reply_text(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                        int status, struct evbuffer *body, int64_t started_us)
{
    send_reply(req, conn, route, status, body, "text/plain; version=0.0.4", started_us);
}

/* ---- completions from the writer ---- */

static void drain_completions(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct iotsecd_worker *w = arg;
    pthread_mutex_lock(&w->done_lock);
    struct iotsecd_pending *list = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->done_lock);
    while (list != NULL) {
        struct iotsecd_pending *next = list->next;
        w->in_flight--;
        iotsecd_complete(list);
        list = next;
    }
}

/* ---- listening ---- */

static iotsec_result listen_socket(const char *bind_addr, int port, int *out)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind_addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, bind_addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof(*in6);
    } else {
        IOTSEC_BAIL(IOTSEC_ERR_CONFIG, "bind address '%s' is not an IP address", bind_addr);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    IOTSEC_ENSURE(fd >= 0, IOTSEC_ERR_IO, "socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        IOTSEC_BAIL(IOTSEC_ERR_IO, "listen on %s port %d: %s", bind_addr, port, strerror(e));
    }
    *out = fd;
    return IOTSEC_RESULT_OK;
}

static iotsec_result make_http(struct iotsecd_worker *w, bool device, struct evhttp **out)
{
    const struct iotsecd_config *cfg = &w->server->cfg;
    struct evhttp *http = evhttp_new(w->base);
    IOTSEC_ENSURE_ALLOC(http);
    *out = http;
    struct listener_ctx *l = calloc(1, sizeof(*l));
    IOTSEC_ENSURE_ALLOC(l);
    *l = (struct listener_ctx){.worker = w, .device = device};
    w->listeners[device ? 0 : 1] = l;
    evhttp_set_bevcb(http, new_connection, l);
    evhttp_set_gencb(http, on_request, NULL);
    /* Bodies up to max_body get our JSON 413; far larger ones are cut off by libevent
     * before they are read (its own 413). */
    evhttp_set_max_body_size(http, (ev_ssize_t)(cfg->max_body < 65536 ? 65536 : cfg->max_body));
    evhttp_set_max_headers_size(http, (ev_ssize_t)cfg->max_headers);
    struct timeval io = ms_tv(cfg->io_timeout_ms);
    evhttp_set_timeout_tv(http, &io);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD);
    int fd;
    IOTSEC_GUARD(listen_socket(cfg->bind, device ? cfg->device_port : cfg->api_port, &fd));
    struct evhttp_bound_socket *bound = evhttp_accept_socket_with_handle(http, fd);
    if (bound == NULL) {
        close(fd);
        IOTSEC_BAIL(IOTSEC_ERR_IO, "evhttp cannot accept on port %d",
                    device ? cfg->device_port : cfg->api_port);
    }
    w->bound[device ? 0 : 1] = bound;
    return IOTSEC_RESULT_OK;
}

/* ---- drain and stop ---- */

static void drain_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct iotsecd_worker *w = arg;
    int64_t waited = iotsecd_now_us() / 1000 - w->drain_started_ms;
    if (w->in_flight > 0 && waited < DRAIN_LIMIT_MS) {
        struct timeval tv = ms_tv(DRAIN_POLL_MS);
        evtimer_add(w->drain_timer, &tv);
        return;
    }
    event_base_loopexit(w->base, NULL);
}

static void stop_requested(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct iotsecd_worker *w = arg;
    /* No new connections; requests in flight are answered before the loop ends. */
    for (int i = 0; i < 2; i++) {
        if (w->bound[i] != NULL) {
            evhttp_del_accept_socket(i == 0 ? w->device_http : w->api_http, w->bound[i]);
            w->bound[i] = NULL;
        }
    }
    w->drain_started_ms = iotsecd_now_us() / 1000;
    drain_poll(-1, 0, w);
}

static void *worker_main(void *arg)
{
    struct iotsecd_worker *w = arg;
    event_base_dispatch(w->base);
    iotsecd_access_log_flush(w);
    return NULL;
}

static iotsec_result worker_init(struct iotsecd *server, struct iotsecd_worker *w, int index)
{
    w->server = server;
    w->index = index;
    pthread_mutex_init(&w->done_lock, NULL);
    /* With the changelist, the read and write interest a request toggles several times
     * (evhttp pauses reading while it answers; bufferevent_openssl arms writing) reaches
     * epoll once per loop iteration, not once per change: epoll_ctl was a tenth of the
     * keep-alive profile. */
    struct event_config *ec = event_config_new();
    IOTSEC_ENSURE_ALLOC(ec);
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    IOTSEC_ENSURE_ALLOC(w->base);
    w->wake = event_new(w->base, -1, 0, drain_completions, w);
    w->stop = event_new(w->base, -1, 0, stop_requested, w);
    w->drain_timer = evtimer_new(w->base, drain_poll, w);
    w->log_flush = evtimer_new(w->base, access_log_timer, w);
    iotsec_buf_init(&w->access_log);
    IOTSEC_ENSURE(w->wake != NULL && w->stop != NULL && w->drain_timer != NULL &&
                      w->log_flush != NULL,
                  IOTSEC_ERR_NOMEM, "out of memory");
    /* The wake event stays pending so that event_active from the writer always finds it. */
    char path[IOTSECD_PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/store.db", server->cfg.data_dir);
    IOTSEC_GUARD(iotsec_store_open(path, &w->store));
    IOTSEC_GUARD(iotsecd_verify_cache_new(&w->verify_cache));
    struct iotsec_pki_verifier *v;
    IOTSEC_GUARD(iotsecd_worker_verifier(w, &v));
    IOTSEC_GUARD(make_http(w, true, &w->device_http));
    return make_http(w, false, &w->api_http);
}

static void worker_free(struct iotsecd_worker *w)
{
    if (w->device_http != NULL)
        evhttp_free(w->device_http);
    if (w->api_http != NULL)
        evhttp_free(w->api_http);
    free(w->listeners[0]);
    free(w->listeners[1]);
    if (w->wake != NULL)
        event_free(w->wake);
    if (w->stop != NULL)
        event_free(w->stop);
    if (w->drain_timer != NULL)
        event_free(w->drain_timer);
    if (w->log_flush != NULL)
        event_free(w->log_flush);
    iotsecd_access_log_flush(w);
    iotsec_buf_free(&w->access_log);
    if (w->base != NULL)
        event_base_free(w->base);
    iotsec_pki_verifier_free(w->verifier);
    iotsecd_verify_cache_free(w->verify_cache);
    iotsec_store_close(w->store);
    pthread_mutex_destroy(&w->done_lock);
}

iotsec_result iotsecd_workers_start(struct iotsecd *server)
{
    IOTSEC_ENSURE(evthread_use_pthreads() == 0, IOTSEC_ERR_NOMEM, "libevent threads");
    int n = server->cfg.threads;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    server->workers = calloc((size_t)n, sizeof(*server->workers));
    IOTSEC_ENSURE_ALLOC(server->workers);
    server->n_workers = n;
    for (int i = 0; i < n; i++)
        IOTSEC_GUARD(worker_init(server, &server->workers[i], i));
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&server->workers[i].thread, NULL, worker_main, &server->workers[i]);
        IOTSEC_ENSURE(rc == 0, IOTSEC_ERR_NOMEM, "cannot start a worker: %s", strerror(rc));
        server->workers[i].started = true;
    }
    return IOTSEC_RESULT_OK;
}

void iotsecd_workers_stop(struct iotsecd *server)
{
    for (int i = 0; i < server->n_workers; i++) {
        struct iotsecd_worker *w = &server->workers[i];
        if (w->started)
            event_active(w->stop, 0, 0);
    }
    for (int i = 0; i < server->n_workers; i++) {
        struct iotsecd_worker *w = &server->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        worker_free(w);
    }
    free(server->workers);
    server->workers = NULL;
    server->n_workers = 0;
}
