/*
 * Operators on the API listener: login (password, and TOTP when enrolled) for a
 * short-lived session, and the routes they use, each behind one permission of their role.
 *
 * Sessions are opaque random tokens ("ses_" + 48 hex) held in this process only, by the
 * SHA-256 of the token: 15 minutes from login, at most OPERATOR_SESSIONS at once (the
 * oldest goes first), gone on logout or restart. Every request reads the account again,
 * so disabling an operator or changing their role takes effect at their next request.
 * An account with a one-time password may do nothing but change it.
 */
#include "iotsecd.h"

#include "iotsec/crypto.h"
#include "iotsec/event.h"
#include "iotsec/json.h"
#include "iotsec/log.h"
#include "iotsec/operator.h"
#include "iotsec/registry.h"
#include "iotsec/schema.h"
#include "iotsec/time.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPERATOR_SESSIONS   1024
#define SESSION_LIFETIME_MS ((int64_t)15 * 60 * 1000)
#define SESSION_PREFIX      "ses_"
#define SESSION_HEX         48

struct session {
    uint8_t hash[IOTSEC_SHA256_LEN];
    char name[IOTSEC_STORE_USER_MAX + 1];
    int64_t expires_ms;
    bool must_change;
};

struct iotsecd_operators {
    pthread_mutex_t lock;
    struct session sessions[OPERATOR_SESSIONS];
    struct iotsec_operator_auth *auth;
};

iotsec_result iotsecd_operators_new(struct iotsecd *server)
{
    struct iotsecd_operators *ops = calloc(1, sizeof(*ops));
    IOTSEC_ENSURE_ALLOC(ops);
    pthread_mutex_init(&ops->lock, NULL);
    struct iotsec_operator_config cfg = {.params = IOTSEC_PASSWORD_PARAMS_DEFAULT};
    if (!iotsec_ok(iotsec_operator_auth_new(&cfg, &ops->auth))) {
        free(ops);
        return IOTSEC_RESULT_ERR;
    }
    server->operators = ops;
    return IOTSEC_RESULT_OK;
}

void iotsecd_operators_free(struct iotsecd *server)
{
    struct iotsecd_operators *ops = server->operators;
    if (ops == NULL)
        return;
    iotsec_operator_auth_free(ops->auth);
    pthread_mutex_destroy(&ops->lock);
    iotsec_wipe(ops->sessions, sizeof(ops->sessions));
    free(ops);
    server->operators = NULL;
}

iotsec_result iotsecd_operators_bootstrap(struct iotsecd *server, struct iotsec_store *store)
{
    struct iotsec_buf otp;
    iotsec_buf_init_secret(&otp);
    bool created = false;
    struct iotsec_password_params params = IOTSEC_PASSWORD_PARAMS_DEFAULT;
    iotsec_result r =
        iotsec_operator_bootstrap(store, &params, "admin", iotsecd_now_us() / 1000, &otp, &created);
    if (iotsec_ok(r) && created) {
        /* Once, on stdout, never in the log: the operator changes it at the first login. */
        printf("iotsecd: first start: operator 'admin' created with the one-time password\n"
               "  %.*s\n"
               "log in with it (POST /api/auth/login) and set your own (POST /api/auth/password)\n",
               (int)otp.len, (const char *)otp.ptr);
        fflush(stdout);
        iotsec_log_info("first admin created", IOTSEC_LOG_STR("user", "admin"));
    }
    (void)server;
    iotsec_buf_free(&otp);
    return r;
}

/* ---- sessions ---- */

static iotsec_result session_create(struct iotsecd_operators *ops, const char *name,
                                    bool must_change, int64_t now_ms,
                                    char token[sizeof(SESSION_PREFIX) + SESSION_HEX])
{
    uint8_t raw[SESSION_HEX / 2];
    IOTSEC_GUARD(iotsec_random(raw, sizeof(raw)));
    memcpy(token, SESSION_PREFIX, sizeof(SESSION_PREFIX) - 1);
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(token + sizeof(SESSION_PREFIX) - 1 + 2 * i, 3, "%02x", raw[i]);
    iotsec_wipe(raw, sizeof(raw));
    struct session s = {.expires_ms = now_ms + SESSION_LIFETIME_MS, .must_change = must_change};
    snprintf(s.name, sizeof(s.name), "%s", name);
    IOTSEC_GUARD(iotsec_sha256(iotsec_slice_from_str(token), s.hash));
    pthread_mutex_lock(&ops->lock);
    /* An expired slot, else the one closest to expiry: memory stays fixed. */
    size_t victim = 0;
    for (size_t i = 0; i < OPERATOR_SESSIONS; i++) {
        if (ops->sessions[i].expires_ms <= now_ms) {
            victim = i;
            break;
        }
        if (ops->sessions[i].expires_ms < ops->sessions[victim].expires_ms)
            victim = i;
    }
    ops->sessions[victim] = s;
    pthread_mutex_unlock(&ops->lock);
    return IOTSEC_RESULT_OK;
}

/* Finds a live session; the hash is compared in constant time. */
static bool session_find(struct iotsecd_operators *ops, const char *token, int64_t now_ms,
                         struct session *out, bool remove)
{
    uint8_t hash[IOTSEC_SHA256_LEN];
    if (strlen(token) != sizeof(SESSION_PREFIX) - 1 + SESSION_HEX ||
        !iotsec_ok(iotsec_sha256(iotsec_slice_from_str(token), hash)))
        return false;
    bool found = false;
    pthread_mutex_lock(&ops->lock);
    for (size_t i = 0; i < OPERATOR_SESSIONS && !found; i++) {
        struct session *s = &ops->sessions[i];
        if (s->expires_ms > now_ms && iotsec_ct_equal(iotsec_slice_make(s->hash, sizeof(hash)),
                                                      iotsec_slice_make(hash, sizeof(hash)))) {
            found = true;
            if (out != NULL)
                *out = *s;
            if (remove)
                *s = (struct session){0};
        }
    }
    pthread_mutex_unlock(&ops->lock);
    return found;
}

static void session_clear_must_change(struct iotsecd_operators *ops, const char *token)
{
    uint8_t hash[IOTSEC_SHA256_LEN];
    if (!iotsec_ok(iotsec_sha256(iotsec_slice_from_str(token), hash)))
        return;
    pthread_mutex_lock(&ops->lock);
    for (size_t i = 0; i < OPERATOR_SESSIONS; i++)
        if (iotsec_ct_equal(iotsec_slice_make(ops->sessions[i].hash, sizeof(hash)),
                            iotsec_slice_make(hash, sizeof(hash))))
            ops->sessions[i].must_change = false;
    pthread_mutex_unlock(&ops->lock);
}

/* ---- helpers ---- */

static void reply_error(struct iotsecd_op_request *r, int status, const char *message)
{
    iotsecd_reply_error(r->req, r->conn, r->route, status, message, r->started_us);
}

static void op_auth_failure(struct iotsecd_op_request *r, const char *reason, const char *user)
{
    char details[200];
    snprintf(details, sizeof(details),
             "{\"listener\":\"api\",\"method\":\"password\",\"reason\":\"%s\",\"user\":\"%s\"}",
             reason, user);
    atomic_fetch_add(&r->server->metrics.auth_failures, 1);
    iotsecd_report(r->server, IOTSEC_EVENT_AUTH_FAILURE, NULL, r->conn->peer_ip, details);
}

static bool user_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > IOTSEC_STORE_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* ---- login, logout, password ---- */

void iotsecd_op_login(struct iotsecd_op_request *r, json_t *body)
{
    const char *name = NULL, *password = NULL, *totp = NULL;
    if (!iotsec_ok(iotsec_json_get_string(body, "username", IOTSEC_JSON_REQUIRED,
                                          IOTSEC_STORE_USER_MAX, &name)) ||
        !iotsec_ok(
            iotsec_json_get_string(body, "password", IOTSEC_JSON_REQUIRED, 1024, &password)) ||
        !iotsec_ok(iotsec_json_get_string(body, "totp", IOTSEC_JSON_OPTIONAL, 16, &totp))) {
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        return;
    }
    int64_t now_ms = r->started_us / 1000;
    struct iotsec_login_outcome outcome = {0};
    bool ok = user_name_ok(name) &&
              iotsec_ok(iotsec_operator_login(r->server->operators->auth, r->conn->worker->store,
                                              name, iotsec_slice_from_str(password),
                                              iotsec_slice_from_str(totp != NULL ? totp : ""),
                                              now_ms, &outcome));
    if (!ok) {
        if (outcome.reason == IOTSEC_LOGIN_ERROR || outcome.reason == IOTSEC_LOGIN_BUSY) {
            reply_error(r, 503, "Login is unavailable; try again");
            return;
        }
        op_auth_failure(
            r, user_name_ok(name) ? iotsec_login_reason_name(outcome.reason) : "bad_user_name",
            user_name_ok(name) ? name : "");
        reply_error(r, 401, "Login failed");
        return;
    }
    char token[sizeof(SESSION_PREFIX) + SESSION_HEX];
    if (!iotsec_ok(session_create(r->server->operators, name, outcome.must_change_password, now_ms,
                                  token))) {
        reply_error(r, 500, "Internal error");
        return;
    }
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:s,s:s,s:I,s:s,s:b}", "token", token, "tokenType", "Bearer",
                                 "expiresIn", (json_int_t)(SESSION_LIFETIME_MS / 1000), "role",
                                 iotsec_store_role_name(outcome.role), "mustChangePassword",
                                 outcome.must_change_password),
                       r->started_us);
    iotsec_wipe(token, sizeof(token));
}

void iotsecd_op_logout(struct iotsecd_op_request *r)
{
    session_find(r->server->operators, r->token, r->started_us / 1000, NULL, true);
    iotsecd_reply_json(r->req, r->conn, r->route, 200, json_pack("{s:s}", "status", "logged out"),
                       r->started_us);
}

void iotsecd_op_password(struct iotsecd_op_request *r, json_t *body)
{
    const char *current = NULL, *fresh = NULL, *totp = NULL;
    if (!iotsec_ok(iotsec_json_get_string(body, "currentPassword", IOTSEC_JSON_REQUIRED, 1024,
                                          &current)) ||
        !iotsec_ok(
            iotsec_json_get_string(body, "newPassword", IOTSEC_JSON_REQUIRED, 1024, &fresh)) ||
        !iotsec_ok(iotsec_json_get_string(body, "totp", IOTSEC_JSON_OPTIONAL, 16, &totp))) {
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        return;
    }
    if (!iotsec_ok(iotsec_password_check_length(iotsec_slice_from_str(fresh)))) {
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        return;
    }
    int64_t now_ms = r->started_us / 1000;
    struct iotsec_login_outcome outcome = {0};
    /* The current password (and code) again: a stolen session alone cannot take over. */
    if (!iotsec_ok(iotsec_operator_login(r->server->operators->auth, r->conn->worker->store,
                                         r->user, iotsec_slice_from_str(current),
                                         iotsec_slice_from_str(totp != NULL ? totp : ""), now_ms,
                                         &outcome))) {
        op_auth_failure(r, iotsec_login_reason_name(outcome.reason), r->user);
        reply_error(r, 401, "Current password or code is wrong");
        return;
    }
    struct iotsec_password_params params = IOTSEC_PASSWORD_PARAMS_DEFAULT;
    if (!iotsec_ok(iotsec_operator_set_password(r->conn->worker->store, &params, r->user,
                                                iotsec_slice_from_str(fresh), false, now_ms))) {
        reply_error(r, 503, "Password could not be changed");
        return;
    }
    session_clear_must_change(r->server->operators, r->token);
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:s}", "status", "password changed"), r->started_us);
}

/* ---- who is asking ---- */

bool iotsecd_op_authenticate(struct iotsecd_op_request *r, const char *token)
{
    int64_t now_ms = r->started_us / 1000;
    struct session s;
    struct iotsec_store_user u = {0};
    bool found = session_find(r->server->operators, token, now_ms, &s, false);
    bool active = found && iotsec_ok(iotsec_store_user_get(r->conn->worker->store, s.name, &u)) &&
                  !u.disabled;
    if (active) {
        snprintf(r->user, sizeof(r->user), "%s", s.name);
        snprintf(r->token, sizeof(r->token), "%s", token);
        r->role = u.role;
        r->must_change = s.must_change || u.must_change_password;
    }
    iotsec_store_user_clear(&u);
    iotsec_wipe(&s, sizeof(s));
    if (!active) {
        op_auth_failure(r, found ? "account_disabled" : "invalid_session", "");
        reply_error(r, 401, "Invalid or expired session");
    }
    return active;
}

bool iotsecd_op_allowed(struct iotsecd_op_request *r, int permission)
{
    if (r->must_change) {
        reply_error(r, 403, "Password change required (POST /api/auth/password)");
        return false;
    }
    if (!iotsec_role_allows((enum iotsec_store_role)r->role, (enum iotsec_permission)permission)) {
        char message[96];
        snprintf(message, sizeof(message), "The %s role lacks %s",
                 iotsec_store_role_name((enum iotsec_store_role)r->role),
                 iotsec_permission_name((enum iotsec_permission)permission));
        reply_error(r, 403, message);
        return false;
    }
    return true;
}

/* ---- events, blocks, devices ---- */

static const char *query_param(struct evkeyvalq *q, const char *name)
{
    const char *v = evhttp_find_header(q, name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

void iotsecd_op_events(struct iotsecd_op_request *r)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_EVENTS_READ))
        return;
    struct evkeyvalq params;
    params.tqh_first = NULL;
    params.tqh_last = &params.tqh_first;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    if (query != NULL && evhttp_parse_query_str(query, &params) != 0) {
        reply_error(r, 400, "Malformed query");
        return;
    }
    struct iotsec_store_event_query q = {.newest_first = true, .limit = 100};
    const char *type = query_param(&params, "type"), *severity = query_param(&params, "severity");
    const char *device = query_param(&params, "device"), *since = query_param(&params, "since");
    const char *limit = query_param(&params, "limit"), *before = query_param(&params, "before");
    enum iotsec_event_type t;
    enum iotsec_store_severity sev;
    struct iotsec_time ts;
    const char *bad = NULL;
    if (type != NULL && !iotsec_ok(iotsec_event_type_parse(type, &t)))
        bad = "type";
    if (severity != NULL && !iotsec_ok(iotsec_store_severity_parse(severity, &sev)))
        bad = "severity";
    else if (severity != NULL)
        q.severity = sev;
    if (device != NULL && !iotsec_pki_device_id_valid(device))
        bad = "device";
    if (since != NULL && !iotsec_ok(iotsec_time_parse(iotsec_slice_from_str(since), &ts)))
        bad = "since";
    else if (since != NULL)
        q.since = ts.sec * 1000 + ts.nsec / 1000000;
    char *end = NULL;
    if (limit != NULL) {
        long v = strtol(limit, &end, 10);
        if (*end != '\0' || v < 1 || v > IOTSEC_STORE_LIST_MAX)
            bad = "limit";
        else
            q.limit = (size_t)v;
    }
    if (before != NULL) {
        long long v = strtoll(before, &end, 10);
        if (*end != '\0' || v < 1)
            bad = "before";
        else
            q.before_seq = v;
    }
    q.event_type = type;
    q.device_id = device;
    struct iotsec_store_event_list list = {0};
    if (bad != NULL) {
        char message[64];
        snprintf(message, sizeof(message), "Query parameter '%s' is not valid", bad);
        evhttp_clear_headers(&params);
        reply_error(r, 400, message);
        return;
    }
    bool ok = iotsec_ok(iotsec_store_event_list(r->conn->worker->store, &q, &list));
    evhttp_clear_headers(&params);
    if (!ok) {
        reply_error(r, 503, "Events could not be read");
        return;
    }
    json_t *events = json_array();
    for (size_t i = 0; events != NULL && i < list.count; i++) {
        struct iotsec_buf text;
        iotsec_buf_init(&text);
        json_t *one = NULL;
        if (iotsec_ok(iotsec_event_record_to_json(&list.items[i], &text)) &&
            iotsec_ok(iotsec_json_parse(iotsec_buf_slice(&text), NULL, &one))) {
            json_object_set_new(one, "seq", json_integer(list.items[i].seq));
            json_array_append_new(events, one);
        }
        iotsec_buf_free(&text);
    }
    bool more = list.more;
    iotsec_store_event_list_free(&list);
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:o,s:b}", "events", events, "more", more), r->started_us);
}

void iotsecd_op_blocks(struct iotsecd_op_request *r, const char *source)
{
    int64_t now_ms = r->started_us / 1000;
    if (source == NULL) {
        if (!iotsecd_op_allowed(r, IOTSEC_PERM_BLOCKS_READ))
            return;
        struct iotsec_store_block_list list = {0};
        struct iotsec_store_page page = {.limit = IOTSEC_STORE_LIST_MAX};
        if (!iotsec_ok(
                iotsec_store_block_list_active(r->conn->worker->store, now_ms, &page, &list))) {
            reply_error(r, 503, "Blocks could not be read");
            return;
        }
        json_t *blocks = json_array();
        for (size_t i = 0; blocks != NULL && i < list.count; i++)
            json_array_append_new(blocks,
                                  json_pack("{s:s,s:s,s:I,s:I}", "source", list.items[i].source,
                                            "reason", list.items[i].reason, "createdAt",
                                            (json_int_t)list.items[i].created_at, "expiresAt",
                                            (json_int_t)list.items[i].expires_at));
        bool more = list.more;
        iotsec_store_block_list_free(&list);
        iotsecd_reply_json(r->req, r->conn, r->route, 200,
                           json_pack("{s:o,s:b}", "blocks", blocks, "more", more), r->started_us);
        return;
    }
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_BLOCKS_WRITE))
        return;
    if (!iotsec_ok(iotsec_store_block_remove(r->conn->worker->store, source))) {
        int code = iotsec_error_code();
        reply_error(r,
                    code == IOTSEC_ERR_NOT_FOUND     ? 404
                    : code == IOTSEC_ERR_INVALID_ARG ? 400
                                                     : 503,
                    code == IOTSEC_ERR_NOT_FOUND     ? "No such block"
                    : code == IOTSEC_ERR_INVALID_ARG ? "Not a valid source"
                                                     : "The block could not be removed");
        return;
    }
    char details[160];
    snprintf(details, sizeof(details), "{\"actor\":\"%s\",\"source\":\"%s\"}", r->user, source);
    iotsecd_report(r->server, IOTSEC_EVENT_BLOCK_REMOVED, NULL, r->conn->peer_ip, details);
    iotsecd_reply_json(r->req, r->conn, r->route, 200, json_pack("{s:s}", "status", "unblocked"),
                       r->started_us);
}

void iotsecd_op_devices(struct iotsecd_op_request *r)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_DEVICES_READ))
        return;
    struct iotsec_store_device_list list = {0};
    struct iotsec_store_page page = {.limit = IOTSEC_STORE_LIST_MAX};
    if (!iotsec_ok(iotsec_store_device_list(r->conn->worker->store, IOTSEC_STORE_DEVICE_ANY, &page,
                                            &list))) {
        reply_error(r, 503, "Devices could not be read");
        return;
    }
    json_t *devices = json_array();
    for (size_t i = 0; devices != NULL && i < list.count; i++) {
        const struct iotsec_store_device *d = &list.items[i];
        json_array_append_new(devices,
                              json_pack("{s:s,s:s,s:s,s:s}", "id", d->id, "status",
                                        iotsec_store_device_status_name(d->status), "model",
                                        d->model, "certificateSha256", d->cert_fingerprint));
    }
    bool more = list.more;
    iotsec_store_device_list_free(&list);
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:o,s:b}", "devices", devices, "more", more), r->started_us);
}

void iotsecd_op_device_state(struct iotsecd_op_request *r, const char *device_id, bool enable)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_DEVICES_WRITE))
        return;
    if (!iotsec_ok(iotsec_registry_set_enabled(r->conn->worker->store, device_id, enable,
                                               r->started_us / 1000000))) {
        int code = iotsec_error_code();
        reply_error(r,
                    code == IOTSEC_ERR_NOT_FOUND    ? 404
                    : code == IOTSEC_ERR_PERMISSION ? 409
                                                    : 503,
                    code == IOTSEC_ERR_NOT_FOUND    ? "No such device"
                    : code == IOTSEC_ERR_PERMISSION ? "The device is revoked"
                                                    : "The device could not be changed");
        return;
    }
    if (!enable) {
        char details[120];
        snprintf(details, sizeof(details), "{\"actor\":\"%s\"}", r->user);
        iotsecd_report(r->server, IOTSEC_EVENT_DEVICE_DISABLED, device_id, r->conn->peer_ip,
                       details);
    }
    iotsecd_reply_json(
        r->req, r->conn, r->route, 200,
        json_pack("{s:s,s:s}", "id", device_id, "status", enable ? "active" : "disabled"),
        r->started_us);
}

/* POST /api/commands: validated by the command schema (reset needs payload.confirm ===
 * true), recorded for the device; delivery over MQTT is the broker bridge's job. */
void iotsecd_op_command(struct iotsecd_op_request *r, struct iotsec_slice body)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_COMMANDS_SEND))
        return;
    json_t *doc = NULL, *details = NULL;
    if (!iotsec_ok(iotsec_schema_command(body, NULL, iotsec_time_now(), &doc, &details))) {
        json_t *err = details != NULL ? iotsec_schema_error_body(details)
                                      : json_pack("{s:s}", "error", "Validation failed");
        json_decref(details);
        iotsecd_reply_json(r->req, r->conn, r->route, 400, err, r->started_us);
        return;
    }
    struct iotsec_store_command c = {.created_at = r->started_us / 1000};
    const char *target = json_string_value(json_object_get(doc, "target"));
    const char *action = json_string_value(json_object_get(doc, "action"));
    json_t *payload = json_object_get(doc, "payload");
    struct iotsec_buf text;
    iotsec_buf_init(&text);
    bool ok = target != NULL && action != NULL && iotsec_pki_device_id_valid(target) &&
              (payload == NULL || (iotsec_ok(iotsec_json_dump(payload, 0, &text)) &&
                                   iotsec_ok(iotsec_buf_terminate(&text))));
    if (ok) {
        snprintf(c.target, sizeof(c.target), "%s", target);
        snprintf(c.action, sizeof(c.action), "%s", action);
        snprintf(c.issued_by, sizeof(c.issued_by), "%s", r->user);
        c.payload = payload != NULL ? (char *)text.ptr : NULL;
    }
    json_decref(doc);
    if (!ok) {
        iotsec_buf_free(&text);
        reply_error(r, 400, "The target must be a device id");
        return;
    }
    iotsec_result stored = iotsec_store_command_insert(r->conn->worker->store, &c);
    iotsec_buf_free(&text);
    if (!iotsec_ok(stored)) {
        bool missing = iotsec_error_code() == IOTSEC_ERR_NOT_FOUND;
        reply_error(r, missing ? 404 : 503,
                    missing ? "No such device" : "The command could not be recorded");
        return;
    }
    iotsecd_reply_json(r->req, r->conn, r->route, 202,
                       json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)c.seq, "target", c.target,
                                 "action", c.action, "status", "pending"),
                       r->started_us);
}
