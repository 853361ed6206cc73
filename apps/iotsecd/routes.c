/*
 * Requests: the order of checks, the routes, and their handlers.
 *
 * Every request goes through the same gate, cheapest and most decisive first:
 *   1. draining?                 503
 *   2. source blocked?           403 (re-checked at most once a second per connection)
 *   3. device identity           resumed TLS sessions are checked again (401)
 *   4. route and method          404, 405 with Allow
 *   5. authentication            401: on the API listener an API key (X-API-Key) or a
 *                                device token (Authorization: Bearer); 429 for a key
 *                                over its own limit
 *   6. Content-Type, body size   415, 413
 *   7. rate limit per identity   429 with Retry-After
 *   8. schema                    400 with every failing field
 * and only then the handler.
 */
#include "iotsecd.h"

#include "iotsec/apikey.h"
#include "iotsec/challenge.h"
#include "iotsec/event.h"
#include "iotsec/json.h"
#include "iotsec/jwt.h"
#include "iotsec/log.h"
#include "iotsec/operator.h"
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
    [ROUTE_AUTH_TOKEN] = "/api/auth/token",
    [ROUTE_AUTH_CHALLENGE] = "/api/auth/challenge",
    [ROUTE_AUTH_VERIFY] = "/api/auth/verify",
    [ROUTE_AUTH_LOGIN] = "/api/auth/login",
    [ROUTE_AUTH_PASSWORD] = "/api/auth/password",
    [ROUTE_AUTH_SESSION] = "/api/auth/session",
    [ROUTE_SECURITY_EVENTS] = "/api/security/events",
    [ROUTE_SECURITY_BLOCKS] = "/api/security/blocks",
    [ROUTE_DEVICES] = "/api/devices",
    [ROUTE_COMMANDS] = "/api/commands",
    [ROUTE_USERS] = "/api/users",
    [ROUTE_APIKEYS] = "/api/apikeys",
    [ROUTE_OTHER] = "other",
};

struct request {
    struct evhttp_request *req;
    struct iotsecd_conn *conn;
    struct iotsecd *server;
    int64_t started_us;
    int route;
    /* The authenticated device: the certificate's on the device listener, the API key's
     * or token's on the API listener; "" until known. */
    char device_id[IOTSEC_PKI_DEVICE_ID_MAX + 1];
    bool key_limited; /* an API key's own rate limit already counted this request */
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

static void too_many(struct request *r, int64_t retry_ms);

static bool limited_by(struct request *r, struct iotsec_ratelimit *rl, const char *identity)
{
    bool allowed = false;
    int64_t retry_ms = 0;
    if (iotsec_ok(iotsec_ratelimit_take(rl, iotsec_slice_from_str(identity), r->started_us / 1000,
                                        &allowed, &retry_ms)) &&
        allowed)
        return false;
    too_many(r, retry_ms);
    return true;
}

static bool rate_limited(struct request *r, const char *identity)
{
    return limited_by(r, r->server->ratelimit, identity);
}

/* The credential endpoints (login, challenge, verify): a budget per source address, so
 * that guessing is slow before the brute-force detector blocks it outright. */
static bool auth_rate_limited(struct request *r)
{
    char key[80];
    snprintf(key, sizeof(key), "ip:%s", r->conn->peer_ip);
    return limited_by(r, r->server->auth_ratelimit, key);
}

static void too_many(struct request *r, int64_t retry_ms)
{
    int64_t retry_s = retry_ms > 0 ? (retry_ms + 999) / 1000 : 1;
    char value[24];
    snprintf(value, sizeof(value), "%lld", (long long)retry_s);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", value);
    atomic_fetch_add(&r->server->metrics.rate_limited, 1);
    iotsecd_report(r->server, IOTSEC_EVENT_RATE_LIMITED, r->device_id, r->conn->peer_ip, NULL);
    iotsecd_reply_json(
        r->req, r->conn, r->route, 429,
        json_pack("{s:s,s:I}", "error", "Rate limit exceeded", "retryAfter", (json_int_t)retry_s),
        r->started_us);
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
    snprintf(identity, sizeof(identity), "device:%s", r->device_id);
    if (!r->key_limited && rate_limited(r, identity))
        return;
    struct iotsec_schema_options opts = {.max_body_bytes = r->server->cfg.max_body,
                                         .max_skew_sec = r->server->cfg.max_skew_sec};
    json_t *doc = NULL, *details = NULL;
    if (!iotsec_ok(iotsec_schema_telemetry(body, &opts, iotsec_time_now(), &doc, &details))) {
        if (details == NULL) {
            fail(r, 400, "Validation failed");
            return;
        }
        iotsecd_report(r->server, IOTSEC_EVENT_VALIDATION_FAILED, r->device_id, conn->peer_ip,
                       "{\"route\":\"/api/telemetry\"}");
        json_t *err = iotsec_schema_error_body(details);
        json_decref(details);
        iotsecd_reply_json(r->req, conn, r->route, 400, err, r->started_us);
        return;
    }
    const char *device_id = json_string_value(json_object_get(doc, "device_id"));
    const char *timestamp = json_string_value(json_object_get(doc, "timestamp"));
    struct iotsec_time ts = {0};
    bool same = device_id != NULL && strcmp(device_id, r->device_id) == 0;
    bool timed =
        timestamp != NULL && iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(timestamp), &ts));
    json_decref(doc);
    if (!same) {
        iotsecd_report(r->server, IOTSEC_EVENT_AUTH_FAILURE, r->device_id, conn->peer_ip,
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
    snprintf(p->record.device_id, sizeof(p->record.device_id), "%s", r->device_id);
    iotsecd_writer_submit(r->server->writer, p);
}

void iotsecd_complete(struct iotsecd_pending *p)
{
    /* The connection may have gone meanwhile: libevent then frees the request here. */
    struct iotsecd_conn *conn = iotsecd_conn_of(p->req);
    if (p->ok)
        iotsecd_reply_accepted(p->req, conn, p->route, p->record.seq, p->started_us);
    else
        iotsecd_reply_error(p->req, conn, p->route, 503, "Telemetry could not be stored",
                            p->started_us);
    free(p->record.body);
    free(p);
}

static void telemetry_get(struct request *r, const char *device_id)
{
    if (strcmp(device_id, r->device_id) != 0) {
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

/* ---- credentials on the API listener ---- */

static void auth_failure(struct request *r, const char *method, const char *reason,
                         const char *device_id)
{
    char details[160];
    snprintf(details, sizeof(details), "{\"listener\":\"api\",\"method\":\"%s\",\"reason\":\"%s\"}",
             method, reason);
    atomic_fetch_add(&r->server->metrics.auth_failures, 1);
    iotsecd_report(r->server, IOTSEC_EVENT_AUTH_FAILURE, device_id, r->conn->peer_ip, details);
}

/* An API key (X-API-Key) or a device token (Authorization: Bearer). True with
 * r->device_id set; false when it has answered (401, 429 or 503). */
static bool api_identity(struct request *r)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
    const char *key = evhttp_find_header(in, "X-API-Key");
    const char *authz = evhttp_find_header(in, "Authorization");
    int64_t now_ms = r->started_us / 1000;
    if (key != NULL) {
        struct iotsec_apikey_identity who;
        if (iotsec_ok(iotsec_apikey_authenticate(r->server->apikeys, r->conn->worker->store,
                                                 iotsec_slice_from_str(key), now_ms, &who))) {
            snprintf(r->device_id, sizeof(r->device_id), "%s", who.device_id);
            r->key_limited = true;
            return true;
        }
        if (who.reason == IOTSEC_APIKEY_RATE_LIMITED) {
            snprintf(r->device_id, sizeof(r->device_id), "%s", who.device_id);
            too_many(r, who.retry_after_ms);
        } else if (who.reason == IOTSEC_APIKEY_ERROR) {
            fail(r, 503, "Credentials could not be checked");
        } else {
            auth_failure(r, "api_key", iotsec_apikey_reason_name(who.reason), who.device_id);
            fail(r, 401, "Invalid API key");
        }
        return false;
    }
    if (authz != NULL && strncmp(authz, "Bearer ses_", 11) == 0) {
        fail(r, 403, "Operators cannot send device telemetry");
        return false;
    }
    if (authz != NULL && strncmp(authz, "Bearer ", 7) == 0) {
        json_t *claims = NULL;
        bool ok = iotsec_ok(iotsec_jwt_verify(
            r->server->jwt_key, NULL, iotsec_slice_from_str(authz + 7), now_ms / 1000, &claims));
        const char *device = ok ? json_string_value(json_object_get(claims, "deviceId")) : NULL;
        struct iotsec_store_device d = {0};
        /* A token outlives nothing: the device must still be active now. */
        bool active = device != NULL &&
                      iotsec_ok(iotsec_store_device_get(r->conn->worker->store, device, &d)) &&
                      d.status == IOTSEC_STORE_DEVICE_ACTIVE;
        if (active)
            snprintf(r->device_id, sizeof(r->device_id), "%s", device);
        iotsec_store_device_clear(&d);
        json_decref(claims);
        if (active)
            return true;
        auth_failure(r, "token", ok ? "device_inactive" : "invalid_token", NULL);
        fail(r, 401, "Invalid token");
        return false;
    }
    auth_failure(r, "none", "no_credentials", NULL);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
    fail(r, 401, "Authentication required");
    return false;
}

/* A small JSON request body: content type, size, strict parse, known members only. */
static bool json_body(struct request *r, const char *const *members, json_t **doc)
{
    struct iotsec_slice body;
    if (!json_content(r)) {
        fail(r, 415, "Content-Type must be application/json");
        return false;
    }
    if (!body_of(r, &body)) {
        fail(r, 413, "Request body too large");
        return false;
    }
    if (!iotsec_ok(iotsec_json_parse(body, NULL, doc)) ||
        !iotsec_ok(iotsec_json_reject_unknown(*doc, members))) {
        json_decref(*doc);
        *doc = NULL;
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        return false;
    }
    return true;
}

static const char *const device_capabilities[] = {"telemetry:write", "commands:read"};

static void reply_token(struct request *r, const char *device_id)
{
    struct iotsec_jwt_claims claims = {
        .device_id = device_id, .capabilities = device_capabilities, .n_capabilities = 2};
    struct iotsec_buf token;
    iotsec_buf_init_secret(&token);
    if (!iotsec_ok(
            iotsec_jwt_issue(r->server->jwt_key, NULL, &claims, r->started_us / 1000000, &token)) ||
        !iotsec_ok(iotsec_buf_terminate(&token))) {
        iotsec_buf_free(&token);
        fail(r, 500, "Internal error");
        return;
    }
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:s,s:s,s:I}", "token", (const char *)token.ptr, "tokenType",
                                 "Bearer", "expiresIn", (json_int_t)IOTSEC_JWT_DEFAULT_LIFETIME),
                       r->started_us);
    iotsec_buf_free(&token);
}

/* POST /api/auth/token: a device with its certificate trades it for a token. */
static void auth_token(struct request *r)
{
    if (!r->conn->device_listener) {
        fail(r, 403, "A token is issued on the device listener, for a client certificate");
        return;
    }
    char identity[16 + IOTSEC_PKI_DEVICE_ID_MAX];
    snprintf(identity, sizeof(identity), "device:%s", r->device_id);
    if (!rate_limited(r, identity))
        reply_token(r, r->device_id);
}

/* The registered public key of an active device, or false (nothing said about why: a
 * caller must not learn which devices exist). */
static bool device_key(struct request *r, const char *device_id, struct iotsec_store_device *d)
{
    return iotsec_pki_device_id_valid(device_id) &&
           iotsec_ok(iotsec_store_device_get(r->conn->worker->store, device_id, d)) &&
           d->status == IOTSEC_STORE_DEVICE_ACTIVE && d->public_key_pem != NULL &&
           d->public_key_pem[0] != '\0';
}

/* POST /api/auth/challenge {"deviceId"} -> {"challenge","expiresAt"}. */
static void auth_challenge(struct request *r)
{
    static const char *const members[] = {"deviceId", NULL};
    json_t *doc = NULL;
    if (auth_rate_limited(r) || !json_body(r, members, &doc))
        return;
    const char *device_id = NULL;
    struct iotsec_store_device d = {0};
    struct iotsec_challenge c;
    bool known = iotsec_ok(iotsec_json_get_string(doc, "deviceId", IOTSEC_JSON_REQUIRED,
                                                  IOTSEC_PKI_DEVICE_ID_MAX, &device_id)) &&
                 device_key(r, device_id, &d);
    iotsec_store_device_clear(&d);
    if (!known) {
        json_decref(doc);
        auth_failure(r, "challenge", "unknown_device", NULL);
        fail(r, 404, "No such device, or it cannot use challenge-response");
        return;
    }
    if (!iotsec_ok(
            iotsec_challenge_issue(r->server->challenges, device_id, r->started_us / 1000, &c))) {
        json_decref(doc);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "60");
        fail(r, 429, "Too many challenges outstanding");
        return;
    }
    json_decref(doc);
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:s,s:s}", "challenge", c.hex, "expiresAt", c.expires_at),
                       r->started_us);
}

/* POST /api/auth/verify {"deviceId","challenge","response"} -> {"token"}. */
static void auth_verify(struct request *r)
{
    static const char *const members[] = {"deviceId", "challenge", "response", NULL};
    json_t *doc = NULL;
    if (auth_rate_limited(r) || !json_body(r, members, &doc))
        return;
    const char *device_id = NULL, *challenge = NULL, *response = NULL;
    if (!iotsec_ok(iotsec_json_get_string(doc, "deviceId", IOTSEC_JSON_REQUIRED,
                                          IOTSEC_PKI_DEVICE_ID_MAX, &device_id)) ||
        !iotsec_ok(
            iotsec_json_get_string(doc, "challenge", IOTSEC_JSON_REQUIRED, 64, &challenge)) ||
        !iotsec_ok(
            iotsec_json_get_string(doc, "response", IOTSEC_JSON_REQUIRED, 4096, &response))) {
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        json_decref(doc);
        return;
    }
    struct iotsec_store_device d = {0};
    bool ok = device_key(r, device_id, &d) &&
              iotsec_ok(iotsec_challenge_verify(
                  r->server->challenges, device_id, iotsec_slice_from_str(challenge),
                  iotsec_slice_from_str(response), iotsec_slice_from_str(d.public_key_pem),
                  r->started_us / 1000));
    iotsec_store_device_clear(&d);
    char id[IOTSEC_PKI_DEVICE_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", device_id);
    json_decref(doc);
    if (!ok) {
        auth_failure(r, "challenge", "bad_response", iotsec_pki_device_id_valid(id) ? id : NULL);
        fail(r, 401, "Challenge verification failed");
        return;
    }
    reply_token(r, id);
}

/* ---- operators ---- */

static void method_not_allowed(struct request *r, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
    fail(r, 405, "Method not allowed");
}

static bool is_session(const char *authz)
{
    return authz != NULL && strncmp(authz, "Bearer ses_", 11) == 0;
}

/* An operator's session on the API listener; false when it has answered. */
static bool operator_session(struct request *r, struct iotsecd_op_request *op)
{
    *op = (struct iotsecd_op_request){.req = r->req,
                                      .conn = r->conn,
                                      .server = r->server,
                                      .started_us = r->started_us,
                                      .route = r->route};
    if (r->conn->device_listener) {
        fail(r, 403, "Operators use the API listener");
        return false;
    }
    const char *authz =
        evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    if (!is_session(authz)) {
        auth_failure(r, "session", "no_credentials", NULL);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
        fail(r, 401, "Authentication required");
        return false;
    }
    return iotsecd_op_authenticate(op, authz + 7);
}

/* "/api/devices/{id}/{action}" -> id and action ("disable", "enable"). */
static bool match_device_action(const char *path, char *id, size_t size, const char **action)
{
    static const char prefix[] = "/api/devices/";
    size_t plen = sizeof(prefix) - 1;
    if (strncmp(path, prefix, plen) != 0)
        return false;
    const char *slash = strchr(path + plen, '/');
    if (slash == NULL || (size_t)(slash - path - plen) >= size)
        return false;
    memcpy(id, path + plen, (size_t)(slash - path - plen));
    id[slash - path - plen] = '\0';
    *action = slash + 1;
    return iotsec_pki_device_id_valid(id) &&
           (strcmp(*action, "disable") == 0 || strcmp(*action, "enable") == 0);
}

/* "/api/users/{name}/{action}" -> name and action ("role", "disable", "enable"). */
static bool match_user_action(const char *path, char *name, size_t size, const char **action)
{
    static const char prefix[] = "/api/users/";
    size_t plen = sizeof(prefix) - 1;
    if (strncmp(path, prefix, plen) != 0)
        return false;
    const char *slash = strchr(path + plen, '/');
    if (slash == NULL || slash == path + plen || (size_t)(slash - path - plen) >= size)
        return false;
    memcpy(name, path + plen, (size_t)(slash - path - plen));
    name[slash - path - plen] = '\0';
    *action = slash + 1;
    return strcmp(*action, "role") == 0 || strcmp(*action, "disable") == 0 ||
           strcmp(*action, "enable") == 0;
}

/* "/api/devices/{id}/apikeys" -> id. */
static bool match_device_apikeys(const char *path, char *id, size_t size)
{
    static const char prefix[] = "/api/devices/", suffix[] = "/apikeys";
    size_t plen = sizeof(prefix) - 1, slen = sizeof(suffix) - 1, len = strlen(path);
    if (len <= plen + slen || strncmp(path, prefix, plen) != 0 ||
        strcmp(path + len - slen, suffix) != 0 || len - plen - slen >= size)
        return false;
    memcpy(id, path + plen, len - plen - slen);
    id[len - plen - slen] = '\0';
    return iotsec_pki_device_id_valid(id);
}

/* The last path segment after prefix, decoded; NULL when empty or when it has a '/'. */
static char *path_tail(const char *path, size_t prefix_len)
{
    const char *tail = path + prefix_len;
    if (tail[0] == '\0' || strchr(tail, '/') != NULL)
        return NULL;
    return evhttp_uridecode(tail, 0, NULL);
}

/* The operator routes; false when path is none of them. */
static bool operator_routes(struct request *r, const char *path, enum evhttp_cmd_type method)
{
    struct iotsecd_op_request op;
    char id[IOTSEC_PKI_DEVICE_ID_MAX + 1];
    char name[IOTSEC_STORE_USER_MAX + 1];
    const char *action = NULL;
    if (strcmp(path, "/api/auth/login") == 0) {
        static const char *const members[] = {"username", "password", "totp", NULL};
        r->route = ROUTE_AUTH_LOGIN;
        json_t *doc = NULL;
        if (method != EVHTTP_REQ_POST) {
            method_not_allowed(r, "POST");
        } else if (r->conn->device_listener) {
            fail(r, 403, "Operators use the API listener");
        } else if (!auth_rate_limited(r) && json_body(r, members, &doc)) {
            iotsecd_op_login(&(struct iotsecd_op_request){.req = r->req,
                                                          .conn = r->conn,
                                                          .server = r->server,
                                                          .started_us = r->started_us,
                                                          .route = r->route},
                             doc);
            json_decref(doc);
        }
    } else if (strcmp(path, "/api/auth/password") == 0) {
        static const char *const members[] = {"currentPassword", "newPassword", "totp", NULL};
        r->route = ROUTE_AUTH_PASSWORD;
        json_t *doc = NULL;
        if (method != EVHTTP_REQ_POST)
            method_not_allowed(r, "POST");
        else if (operator_session(r, &op) && json_body(r, members, &doc)) {
            iotsecd_op_password(&op, doc);
            json_decref(doc);
        }
    } else if (strcmp(path, "/api/auth/session") == 0) {
        r->route = ROUTE_AUTH_SESSION;
        if (method != EVHTTP_REQ_DELETE)
            method_not_allowed(r, "DELETE");
        else if (operator_session(r, &op))
            iotsecd_op_logout(&op);
    } else if (strcmp(path, "/api/security/events") == 0) {
        r->route = ROUTE_SECURITY_EVENTS;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(r, "GET");
        else if (operator_session(r, &op))
            iotsecd_op_events(&op);
    } else if (strcmp(path, "/api/security/blocks") == 0) {
        r->route = ROUTE_SECURITY_BLOCKS;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(r, "GET");
        else if (operator_session(r, &op))
            iotsecd_op_blocks(&op, NULL);
    } else if (strncmp(path, "/api/security/blocks/", 21) == 0) {
        r->route = ROUTE_SECURITY_BLOCKS;
        if (method != EVHTTP_REQ_DELETE) {
            method_not_allowed(r, "DELETE");
        } else if (operator_session(r, &op)) {
            char *source = evhttp_uridecode(path + 21, 0, NULL);
            if (source == NULL || source[0] == '\0')
                fail(r, 400, "Which source?");
            else
                iotsecd_op_blocks(&op, source);
            free(source);
        }
    } else if (strcmp(path, "/api/devices") == 0) {
        r->route = ROUTE_DEVICES;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(r, "GET");
        else if (operator_session(r, &op))
            iotsecd_op_devices(&op);
    } else if (strcmp(path, "/api/commands") == 0) {
        r->route = ROUTE_COMMANDS;
        struct iotsec_slice body;
        if (method != EVHTTP_REQ_POST)
            method_not_allowed(r, "POST");
        else if (!operator_session(r, &op))
            return true;
        else if (!json_content(r))
            fail(r, 415, "Content-Type must be application/json");
        else if (!body_of(r, &body))
            fail(r, 413, "Request body too large");
        else
            iotsecd_op_command(&op, body);
    } else if (strcmp(path, "/api/users") == 0 && method != EVHTTP_REQ_POST) {
        r->route = ROUTE_USERS;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(r, "GET, POST");
        else if (operator_session(r, &op))
            iotsecd_admin_users(&op);
    } else if (strcmp(path, "/api/users") == 0) {
        static const char *const members[] = {"username", "role", NULL};
        r->route = ROUTE_USERS;
        json_t *doc = NULL;
        if (method != EVHTTP_REQ_POST) {
            method_not_allowed(r, "GET, POST");
        } else if (operator_session(r, &op) && json_body(r, members, &doc)) {
            iotsecd_admin_user_create(&op, doc);
            json_decref(doc);
        }
    } else if (match_user_action(path, name, sizeof(name), &action)) {
        static const char *const members[] = {"role", NULL};
        r->route = ROUTE_USERS;
        json_t *doc = NULL;
        bool role = strcmp(action, "role") == 0;
        if (method != EVHTTP_REQ_POST) {
            method_not_allowed(r, "POST");
        } else if (operator_session(r, &op) && (!role || json_body(r, members, &doc))) {
            iotsecd_admin_user_change(&op, name, action, doc);
            json_decref(doc);
        }
    } else if (strncmp(path, "/api/users/", 11) == 0) {
        r->route = ROUTE_USERS;
        char *user = path_tail(path, 11);
        if (method != EVHTTP_REQ_DELETE)
            method_not_allowed(r, "DELETE");
        else if (user == NULL)
            fail(r, 404, "Not found");
        else if (operator_session(r, &op))
            iotsecd_admin_user_change(&op, user, "delete", NULL);
        free(user);
    } else if (match_device_apikeys(path, id, sizeof(id)) && method != EVHTTP_REQ_POST) {
        r->route = ROUTE_APIKEYS;
        if (method != EVHTTP_REQ_GET)
            method_not_allowed(r, "GET, POST");
        else if (operator_session(r, &op))
            iotsecd_admin_apikeys(&op, id);
    } else if (match_device_apikeys(path, id, sizeof(id))) {
        static const char *const members[] = {"rateLimit", NULL};
        r->route = ROUTE_APIKEYS;
        json_t *doc = NULL;
        if (method != EVHTTP_REQ_POST) {
            method_not_allowed(r, "GET, POST");
        } else if (operator_session(r, &op) && json_body(r, members, &doc)) {
            iotsecd_admin_apikey_create(&op, id, doc);
            json_decref(doc);
        }
    } else if (strncmp(path, "/api/apikeys/", 13) == 0) {
        r->route = ROUTE_APIKEYS;
        char *key_id = path_tail(path, 13);
        if (method != EVHTTP_REQ_DELETE)
            method_not_allowed(r, "DELETE");
        else if (key_id == NULL)
            fail(r, 404, "Not found");
        else if (operator_session(r, &op))
            iotsecd_admin_apikey_revoke(&op, key_id);
        free(key_id);
    } else if (match_device_action(path, id, sizeof(id), &action)) {
        r->route = ROUTE_DEVICES;
        if (method != EVHTTP_REQ_POST)
            method_not_allowed(r, "POST");
        else if (operator_session(r, &op))
            iotsecd_op_device_state(&op, id, strcmp(action, "enable") == 0);
    } else {
        return false;
    }
    return true;
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
    if (conn->device_listener)
        snprintf(r.device_id, sizeof(r.device_id), "%s", conn->device_id);
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
        else if (conn->device_listener || api_identity(&r))
            telemetry_post(&r);
    } else if (match_device_telemetry(path, id, sizeof(id))) {
        r.route = ROUTE_TELEMETRY_GET;
        struct iotsecd_op_request op;
        if (method != EVHTTP_REQ_GET) {
            method_not_allowed(&r, "GET");
        } else if (!conn->device_listener &&
                   is_session(evhttp_find_header(evhttp_request_get_input_headers(req),
                                                 "Authorization"))) {
            /* An operator reads any device's telemetry with telemetry.read. */
            if (operator_session(&r, &op) && iotsecd_op_allowed(&op, IOTSEC_PERM_TELEMETRY_READ)) {
                snprintf(r.device_id, sizeof(r.device_id), "%s", id);
                telemetry_get(&r, id);
            }
        } else if (conn->device_listener || api_identity(&r)) {
            telemetry_get(&r, id);
        }
    } else if (strcmp(path, "/api/auth/token") == 0) {
        r.route = ROUTE_AUTH_TOKEN;
        if (method != EVHTTP_REQ_POST)
            method_not_allowed(&r, "POST");
        else
            auth_token(&r);
    } else if (strcmp(path, "/api/auth/challenge") == 0) {
        r.route = ROUTE_AUTH_CHALLENGE;
        if (method != EVHTTP_REQ_POST)
            method_not_allowed(&r, "POST");
        else
            auth_challenge(&r);
    } else if (strcmp(path, "/api/auth/verify") == 0) {
        r.route = ROUTE_AUTH_VERIFY;
        if (method != EVHTTP_REQ_POST)
            method_not_allowed(&r, "POST");
        else
            auth_verify(&r);
    } else if (!operator_routes(&r, path, method)) {
        fail(&r, 404, "Not found");
    }
}
