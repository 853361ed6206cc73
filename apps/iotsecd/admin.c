/*
 * Administration over the API: operator accounts (users.manage) and devices' API keys
 * (apikeys.manage). The same library calls as `iotsec user` and `iotsec apikey`; secrets
 * made here (a new account's one-time password, a new key) are in the response once and
 * nowhere else, never in a log or an event.
 */
#include "iotsecd.h"

#include "iotsec/apikey.h"
#include "iotsec/event.h"
#include "iotsec/json.h"
#include "iotsec/operator.h"

#include <event2/http.h>
#include <stdio.h>
#include <string.h>

static void reply_error(struct iotsecd_op_request *r, int status, const char *message)
{
    iotsecd_reply_error(r->req, r->conn, r->route, status, message, r->started_us);
}

/* The store's answer to a change: 404, 409 (a rule such as "the last admin" or "the
 * name is taken"), 400 (a bad value) or 503. */
static void store_refused(struct iotsecd_op_request *r, const char *what)
{
    char message[160];
    switch (iotsec_error_code()) {
    case IOTSEC_ERR_NOT_FOUND:
        snprintf(message, sizeof(message), "No such %s", what);
        reply_error(r, 404, message);
        return;
    case IOTSEC_ERR_EXISTS:
        snprintf(message, sizeof(message), "The %s already exists", what);
        reply_error(r, 409, message);
        return;
    case IOTSEC_ERR_PERMISSION:
        reply_error(r, 409, "Refused: an enabled admin must remain");
        return;
    case IOTSEC_ERR_INVALID_ARG:
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        return;
    default:
        reply_error(r, 503, "The change could not be made");
    }
}

/* ---- operators ---- */

void iotsecd_admin_users(struct iotsecd_op_request *r)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_USERS_MANAGE))
        return;
    struct iotsec_store_user_list list = {0};
    struct iotsec_store_page page = {.limit = IOTSEC_STORE_LIST_MAX};
    if (!iotsec_ok(iotsec_store_user_list(r->conn->worker->store, &page, &list))) {
        reply_error(r, 503, "Accounts could not be read");
        return;
    }
    json_t *users = json_array();
    for (size_t i = 0; users != NULL && i < list.count; i++) {
        const struct iotsec_store_user *u = &list.items[i];
        json_array_append_new(users, json_pack("{s:s,s:s,s:b,s:b,s:b}", "username", u->name, "role",
                                               iotsec_store_role_name(u->role), "disabled",
                                               u->disabled, "totp", u->totp_secret_len > 0,
                                               "mustChangePassword", u->must_change_password));
    }
    bool more = list.more;
    iotsec_store_user_list_free(&list);
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:o,s:b}", "users", users, "more", more), r->started_us);
}

void iotsecd_admin_user_create(struct iotsecd_op_request *r, json_t *body)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_USERS_MANAGE))
        return;
    const char *name = NULL, *role_name = NULL;
    enum iotsec_store_role role;
    if (!iotsec_ok(iotsec_json_get_string(body, "username", IOTSEC_JSON_REQUIRED,
                                          IOTSEC_STORE_USER_MAX, &name)) ||
        !iotsec_ok(iotsec_json_get_string(body, "role", IOTSEC_JSON_REQUIRED, 16, &role_name)) ||
        !iotsec_ok(iotsec_store_role_parse(role_name, &role))) {
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        return;
    }
    struct iotsec_buf password;
    iotsec_buf_init_secret(&password);
    struct iotsec_password_params params = IOTSEC_PASSWORD_PARAMS_DEFAULT;
    bool ok = iotsec_ok(iotsec_password_generate(&password)) &&
              iotsec_ok(iotsec_buf_terminate(&password));
    if (ok && !iotsec_ok(iotsec_operator_create(r->conn->worker->store, &params, name, role,
                                                iotsec_buf_slice(&password), true,
                                                r->started_us / 1000))) {
        iotsec_buf_free(&password);
        store_refused(r, "account");
        return;
    }
    if (!ok) {
        iotsec_buf_free(&password);
        reply_error(r, 500, "Internal error");
        return;
    }
    iotsecd_reply_json(r->req, r->conn, r->route, 201,
                       json_pack("{s:s,s:s,s:s,s:b}", "username", name, "role",
                                 iotsec_store_role_name(role), "oneTimePassword",
                                 (const char *)password.ptr, "mustChangePassword", 1),
                       r->started_us);
    iotsec_buf_free(&password);
}

/* POST /api/users/{name}/{role|disable|enable}, DELETE /api/users/{name}. */
void iotsecd_admin_user_change(struct iotsecd_op_request *r, const char *name, const char *action,
                               json_t *body)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_USERS_MANAGE))
        return;
    struct iotsec_store *s = r->conn->worker->store;
    int64_t now = r->started_us / 1000;
    iotsec_result done;
    if (strcmp(action, "delete") == 0) {
        done = iotsec_operator_delete(s, name);
    } else if (strcmp(action, "role") == 0) {
        const char *role_name = NULL;
        enum iotsec_store_role role;
        if (body == NULL ||
            !iotsec_ok(
                iotsec_json_get_string(body, "role", IOTSEC_JSON_REQUIRED, 16, &role_name)) ||
            !iotsec_ok(iotsec_store_role_parse(role_name, &role))) {
            iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
            return;
        }
        done = iotsec_operator_set_role(s, name, role, now);
    } else {
        done = iotsec_operator_set_disabled(s, name, strcmp(action, "disable") == 0, now);
    }
    if (!iotsec_ok(done)) {
        store_refused(r, "account");
        return;
    }
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:s,s:s}", "username", name, "status", "changed"),
                       r->started_us);
}

/* ---- API keys ---- */

void iotsecd_admin_apikey_create(struct iotsecd_op_request *r, const char *device_id, json_t *body)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_APIKEYS_MANAGE))
        return;
    int64_t rate = 0;
    if (!iotsec_ok(iotsec_json_get_int(body, "rateLimit", IOTSEC_JSON_OPTIONAL, 0,
                                       IOTSEC_APIKEY_RATE_MAX, &rate))) {
        iotsecd_reply_invalid(r->req, r->conn, r->route, r->started_us);
        return;
    }
    struct iotsec_apikey_secret key;
    if (!iotsec_ok(iotsec_apikey_create(r->conn->worker->store, device_id, (uint32_t)rate,
                                        r->started_us / 1000, &key))) {
        store_refused(r, "device");
        return;
    }
    iotsecd_reply_json(
        r->req, r->conn, r->route, 201,
        json_pack("{s:s,s:s,s:s}", "key", key.key, "keyId", key.key_id, "deviceId", device_id),
        r->started_us);
    iotsec_apikey_secret_wipe(&key);
}

void iotsecd_admin_apikeys(struct iotsecd_op_request *r, const char *device_id)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_APIKEYS_MANAGE))
        return;
    struct iotsec_store_apikey_list list = {0};
    struct iotsec_store_page page = {.limit = IOTSEC_STORE_LIST_MAX};
    if (!iotsec_ok(
            iotsec_store_apikey_list_by_device(r->conn->worker->store, device_id, &page, &list))) {
        store_refused(r, "device");
        return;
    }
    json_t *keys = json_array();
    for (size_t i = 0; keys != NULL && i < list.count; i++) {
        const struct iotsec_store_apikey *k = &list.items[i];
        json_array_append_new(keys, json_pack("{s:s,s:I,s:I,s:I,s:I}", "keyId", k->key_id,
                                              "createdAt", (json_int_t)k->created_at, "lastUsedAt",
                                              (json_int_t)k->last_used_at, "revokedAt",
                                              (json_int_t)k->revoked_at, "rateLimit",
                                              (json_int_t)k->rate_limit_per_min));
    }
    bool more = list.more;
    iotsec_store_apikey_list_free(&list);
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:o,s:b}", "apiKeys", keys, "more", more), r->started_us);
}

void iotsecd_admin_apikey_revoke(struct iotsecd_op_request *r, const char *key_id)
{
    if (!iotsecd_op_allowed(r, IOTSEC_PERM_APIKEYS_MANAGE))
        return;
    if (!iotsec_ok(
            iotsec_store_apikey_revoke(r->conn->worker->store, key_id, r->started_us / 1000))) {
        if (iotsec_error_code() == IOTSEC_ERR_EXISTS)
            reply_error(r, 409, "The API key is already revoked");
        else
            store_refused(r, "API key");
        return;
    }
    iotsecd_reply_json(r->req, r->conn, r->route, 200,
                       json_pack("{s:s,s:s}", "keyId", key_id, "status", "revoked"), r->started_us);
}
