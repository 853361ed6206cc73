/*
 * Requests: the order of checks, the routes, and their handlers.
 *
 * Every request goes through the same gate, cheapest and most decisive first:
 *   1. draining?                 503
 *   2. source blocked?           403 (re-checked at most once a second per connection)
 *   3. device identity           resumed TLS sessions are checked again (401)
 *   4. route and method          404, 405 with Allow
 *   5. authentication            401 (the API listener has no credentials yet: see docs)
 *   6. Content-Type, body size   415, 413
 *   7. rate limit per identity   429 with Retry-After
 *   8. schema                    400 with every failing field
 * and only then the handler.
 */
#include "iotsecd.h"

#include "iotsec/event.h"
#include "iotsec/json.h"
#include "iotsec/log.h"
#include "iotsec/schema.h"
#include "iotsec/time.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BLOCK_RECHECK_MS 1000

static const char *const route_names[ROUTE__COUNT] = {
    [ROUTE_HEALTHZ] = "/healthz",
    [ROUTE_METRICS] = "/metrics",
    [ROUTE_TELEMETRY_POST] = "/api/telemetry",
    [ROUTE_TELEMETRY_GET] = "/api/devices/{id}/telemetry",
    [ROUTE_OTHER] = "other",
};

struct request {
    struct evhttp_request *req;
    struct iotsecd_conn *conn;
    struct iotsecd *server;
    int64_t started_us;
    int route;
};

static void fail(struct request *r, int status, const char *message)
{
    iotsecd_reply_error(r->req, r->conn, r->route, status, message, r->started_us);
}

/* ---- the gate ---- */

static bool source_blocked(struct request *r)
{
    struct iotsecd_conn *conn = r->conn;
    int64_t now_ms = r->started_us / 1000;
    if (now_ms - conn->block_checked_ms < BLOCK_RECHECK_MS || conn->peer_ip[0] == '\0')
        return false;
    conn->block_checked_ms = now_ms;
    bool blocked = false;
    if (!iotsec_ok(
            iotsec_store_block_check(conn->worker->store, conn->peer_ip, now_ms, &blocked, NULL)))
        blocked = true; /* fail closed */
    if (!blocked && conn->device_id[0] != '\0') {
        char source[16 + IOTSEC_PKI_DEVICE_ID_MAX];
        snprintf(source, sizeof(source), "device:%s", conn->device_id);
        if (!iotsec_ok(
                iotsec_store_block_check(conn->worker->store, source, now_ms, &blocked, NULL)))
            blocked = true;
    }
    if (blocked) {
        /* Check again on the next request too. */
        conn->block_checked_ms = 0;
        atomic_fetch_add(&r->server->metrics.blocked, 1);
    }
    return blocked;
}

static bool identity_ok(struct request *r)
{
    struct iotsecd_conn *conn = r->conn;
    if (!conn->device_listener || conn->identity_checked)
        return true;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
    SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
    return ssl != NULL && iotsec_ok(iotsecd_tls_recheck(conn, ssl));
}

static bool json_content(struct request *r)
{
    const char *type = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Content-Type");
    if (type == NULL)
        return false;
    size_t n = strcspn(type, ";");
    while (n > 0 && type[n - 1] == ' ')
        n--;
    return n == 16 && strncasecmp(type, "application/json", 16) == 0;
}

/* The body as one contiguous slice, or false when it is over the limit. */
static bool body_of(struct request *r, struct iotsec_slice *out)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    if (len > r->server->cfg.max_body)
        return false;
    unsigned char *p = evbuffer_pullup(in, -1);
    *out = iotsec_slice_make(p, len);
    return true;
}

static bool rate_limited(struct request *r, const char *identity)
{
    bool allowed = false;
    int64_t retry_ms = 0;
    if (iotsec_ok(iotsec_ratelimit_take(r->server->ratelimit, iotsec_slice_from_str(identity),
                                        r->started_us / 1000, &allowed, &retry_ms)) &&
        allowed)
        return false;
    int64_t retry_s = retry_ms > 0 ? (retry_ms + 999) / 1000 : 1;
    char value[24];
    snprintf(value, sizeof(value), "%lld", (long long)retry_s);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", value);
    atomic_fetch_add(&r->server->metrics.rate_limited, 1);
    iotsecd_report(r->server, IOTSEC_EVENT_RATE_LIMITED, r->conn->device_id, r->conn->peer_ip,
                   NULL);
    iotsecd_reply_json(
        r->req, r->conn, r->route, 429,
        json_pack("{s:s,s:I}", "error", "Rate limit exceeded", "retryAfter", (json_int_t)retry_s),
        r->started_us);
    return true;
}

/* ---- handlers ---- */

static void healthz(struct request *r)
{
    iotsecd_reply_json(r->req, r->conn, r->route, 200, json_pack("{s:s}", "status", "ok"),
                       r->started_us);
}

static void metric_line(struct evbuffer *out, const char *name, const char *labels, uint64_t v)
{
    evbuffer_add_printf(out, "%s%s %llu\n", name, labels, (unsigned long long)v);
}

static void metrics(struct request *r)
{
    struct iotsecd_metrics *m = &r->server->metrics;
    struct evbuffer *out = evbuffer_new();
    if (out == NULL) {
        fail(r, 500, "Internal error");
        return;
    }
    evbuffer_add_printf(out, "# HELP iotsecd_requests_total Requests answered, by route and "
                             "status class.\n# TYPE iotsecd_requests_total counter\n");
    for (int route = 0; route < ROUTE__COUNT; route++) {
        for (int cls = 1; cls <= 5; cls++) {
            char labels[128];
            snprintf(labels, sizeof(labels), "{route=\"%s\",status=\"%dxx\"}", route_names[route],
                     cls);
            metric_line(out, "iotsecd_requests_total", labels,
                        atomic_load(&m->requests[route][cls]));
        }
    }
    evbuffer_add_printf(out, "# HELP iotsecd_auth_failures_total Refused device identities.\n"
                             "# TYPE iotsecd_auth_failures_total counter\n");
    metric_line(out, "iotsecd_auth_failures_total", "", atomic_load(&m->auth_failures));
    evbuffer_add_printf(out, "# HELP iotsecd_blocked_total Connections and requests refused "
                             "because the source is blocked.\n"
                             "# TYPE iotsecd_blocked_total counter\n");
    metric_line(out, "iotsecd_blocked_total", "", atomic_load(&m->blocked));
    evbuffer_add_printf(out, "# HELP iotsecd_rate_limited_total Requests refused with 429.\n"
                             "# TYPE iotsecd_rate_limited_total counter\n");
    metric_line(out, "iotsecd_rate_limited_total", "", atomic_load(&m->rate_limited));
    evbuffer_add_printf(out, "# HELP iotsecd_brute_force_detected_total Detections that blocked "
                             "a source.\n# TYPE iotsecd_brute_force_detected_total counter\n");
    metric_line(out, "iotsecd_brute_force_detected_total", "",
                atomic_load(&m->brute_force_detected));
    evbuffer_add_printf(out, "# HELP iotsecd_events_dropped_total Security events dropped "
                             "because the queue was full.\n"
                             "# TYPE iotsecd_events_dropped_total counter\n");
    metric_line(out, "iotsecd_events_dropped_total", "", atomic_load(&m->events_dropped));
    static const char *const bounds[IOTSECD_LATENCY_BUCKETS] = {
        "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
        "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5"};
    evbuffer_add_printf(out, "# HELP iotsecd_request_seconds Time from dispatch to reply.\n"
                             "# TYPE iotsecd_request_seconds histogram\n");
    uint64_t cumulative = 0;
    for (int b = 0; b <= IOTSECD_LATENCY_BUCKETS; b++) {
        cumulative += atomic_load(&m->latency[b]);
        char labels[48];
        snprintf(labels, sizeof(labels), "{le=\"%s\"}",
                 b < IOTSECD_LATENCY_BUCKETS ? bounds[b] : "+Inf");
        metric_line(out, "iotsecd_request_seconds_bucket", labels, cumulative);
    }
    evbuffer_add_printf(out, "iotsecd_request_seconds_sum %.6f\n",
                        (double)atomic_load(&m->latency_sum_us) / 1e6);
    metric_line(out, "iotsecd_request_seconds_count", "", cumulative);
    iotsecd_reply_text(r->req, r->conn, r->route, 200, out, r->started_us);
    evbuffer_free(out);
}

static void telemetry_post(struct request *r)
{
    struct iotsecd_conn *conn = r->conn;
    if (!json_content(r)) {
        fail(r, 415, "Content-Type must be application/json");
        return;
    }
    struct iotsec_slice body;
    if (!body_of(r, &body)) {
        fail(r, 413, "Request body too large");
        return;
    }
    char identity[16 + IOTSEC_PKI_DEVICE_ID_MAX];
    snprintf(identity, sizeof(identity), "device:%s", conn->device_id);
    if (rate_limited(r, identity))
        return;
    struct iotsec_schema_options opts = {.max_body_bytes = r->server->cfg.max_body,
                                         .max_skew_sec = r->server->cfg.max_skew_sec};
    json_t *doc = NULL, *details = NULL;
    if (!iotsec_ok(iotsec_schema_telemetry(body, &opts, iotsec_time_now(), &doc, &details))) {
        if (details == NULL) {
            fail(r, 400, "Validation failed");
            return;
        }
        iotsecd_report(r->server, IOTSEC_EVENT_VALIDATION_FAILED, conn->device_id, conn->peer_ip,
                       "{\"route\":\"/api/telemetry\"}");
        json_t *err = iotsec_schema_error_body(details);
        json_decref(details);
        iotsecd_reply_json(r->req, conn, r->route, 400, err, r->started_us);
        return;
    }
    const char *device_id = json_string_value(json_object_get(doc, "device_id"));
    const char *timestamp = json_string_value(json_object_get(doc, "timestamp"));
    struct iotsec_time ts = {0};
    bool same = device_id != NULL && strcmp(device_id, conn->device_id) == 0;
    bool timed =
        timestamp != NULL && iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(timestamp), &ts));
    json_decref(doc);
    if (!same) {
        iotsecd_report(r->server, IOTSEC_EVENT_AUTH_FAILURE, conn->device_id, conn->peer_ip,
                       "{\"reason\":\"device_id_mismatch\",\"route\":\"/api/telemetry\"}");
        fail(r, 403, "device_id is not the authenticated device");
        return;
    }
    if (!timed) {
        fail(r, 400, "Validation failed");
        return;
    }
    struct iotsecd_pending *p = calloc(1, sizeof(*p));
    char *copy = malloc(body.len + 1);
    if (p == NULL || copy == NULL) {
        free(p);
        free(copy);
        fail(r, 503, "Server busy");
        return;
    }
    memcpy(copy, body.ptr, body.len);
    copy[body.len] = '\0';
    p->worker = conn->worker;
    p->req = r->req;
    p->route = r->route;
    p->started_us = r->started_us;
    p->record.body = copy;
    p->record.ts = ts.sec * 1000 + ts.nsec / 1000000;
    p->record.received_at = r->started_us / 1000;
    snprintf(p->record.device_id, sizeof(p->record.device_id), "%s", conn->device_id);
    iotsecd_writer_submit(r->server->writer, p);
}

void iotsecd_complete(struct iotsecd_pending *p)
{
    /* The connection may have gone meanwhile: libevent then frees the request here. */
    struct iotsecd_conn *conn = iotsecd_conn_of(p->req);
    if (p->ok)
        iotsecd_reply_json(
            p->req, conn, p->route, 202,
            json_pack("{s:s,s:I}", "status", "accepted", "seq", (json_int_t)p->record.seq),
            p->started_us);
    else
        iotsecd_reply_error(p->req, conn, p->route, 503, "Telemetry could not be stored",
                            p->started_us);
    free(p->record.body);
    free(p);
}

static void telemetry_get(struct request *r, const char *device_id)
{
    if (strcmp(device_id, r->conn->device_id) != 0) {
        fail(r, 403, "A device may read only its own telemetry");
        return;
    }
    struct iotsec_store_telemetry_list list = {0};
    if (!iotsec_ok(iotsec_store_telemetry_list(r->conn->worker->store, device_id, 0, 100, &list))) {
        fail(r, 503, "Telemetry could not be read");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < list.count; i++) {
        json_t *doc = NULL;
        if (iotsec_ok(iotsec_json_parse(iotsec_slice_from_str(list.items[i].body), NULL, &doc)))
            json_array_append_new(
                items, json_pack("{s:I,s:o}", "seq", (json_int_t)list.items[i].seq, "data", doc));
    }
    bool more = list.more;
    iotsec_store_telemetry_list_free(&list);
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:o,s:b}", "items", items, "more", more), r->started_us);
}

/* ---- routing ---- */

/* "/api/devices/{id}/telemetry" -> id; false for any other path. */
static bool match_device_telemetry(const char *path, char *id, size_t size)
{
    static const char prefix[] = "/api/devices/", suffix[] = "/telemetry";
    size_t plen = sizeof(prefix) - 1, slen = sizeof(suffix) - 1, len = strlen(path);
    if (len <= plen + slen || strncmp(path, prefix, plen) != 0 ||
        strcmp(path + len - slen, suffix) != 0)
        return false;
    size_t n = len - plen - slen;
    if (n > IOTSEC_PKI_DEVICE_ID_MAX || n >= size)
        return false;
    memcpy(id, path + plen, n);
    id[n] = '\0';
    return iotsec_pki_device_id_valid(id);
}

/* The API listener's credentials (API keys, device tokens, operator sessions) are not
 * wired yet: every protected route there is an authentication failure, and counted as one. */
static void unauthenticated(struct request *r)
{
    atomic_fetch_add(&r->server->metrics.auth_failures, 1);
    iotsecd_report(r->server, IOTSEC_EVENT_AUTH_FAILURE, NULL, r->conn->peer_ip,
                   "{\"listener\":\"api\",\"reason\":\"no_credentials\"}");
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
    fail(r, 401, "Authentication required");
}

static void method_not_allowed(struct request *r, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
    fail(r, 405, "Method not allowed");
}

void iotsecd_dispatch(struct evhttp_request *req, struct iotsecd_conn *conn)
{
    struct request r = {.req = req,
                        .conn = conn,
                        .server = conn->worker->server,
                        .started_us = iotsecd_now_us(),
                        .route = ROUTE_OTHER};
    if (atomic_load(&r.server->draining)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        fail(&r, 503, "Server is shutting down");
        return;
    }
    if (source_blocked(&r)) {
        iotsecd_report(r.server, IOTSEC_EVENT_BLOCKED_REQUEST, conn->device_id, conn->peer_ip,
                       NULL);
        fail(&r, 403, "Source is blocked");
        return;
    }
    if (!identity_ok(&r)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        fail(&r, 401, "Device is not allowed");
        return;
    }
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    char id[IOTSEC_PKI_DEVICE_ID_MAX + 1];
    if (path == NULL) {
        fail(&r, 400, "Bad request target");
    } else if (strcmp(path, "/healthz") == 0) {
        r.route = ROUTE_HEALTHZ;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(&r, "GET");
        else
            healthz(&r);
    } else if (strcmp(path, "/metrics") == 0) {
        r.route = ROUTE_METRICS;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(&r, "GET");
        else
            metrics(&r);
    } else if (strcmp(path, "/api/telemetry") == 0) {
        r.route = ROUTE_TELEMETRY_POST;
        if (method != EVHTTP_REQ_POST)
            method_not_allowed(&r, "POST");
        else if (!conn->device_listener)
            unauthenticated(&r);
        else
            telemetry_post(&r);
    } else if (match_device_telemetry(path, id, sizeof(id))) {
        r.route = ROUTE_TELEMETRY_GET;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(&r, "GET");
        else if (!conn->device_listener)
            unauthenticated(&r);
        else
            telemetry_get(&r, id);
    } else {
        fail(&r, 404, "Not found");
    }
}
