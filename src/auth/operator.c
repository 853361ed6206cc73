/*
 * Operator accounts: the login decision, the TOTP replay record, the role table, account
 * changes that must not lock everyone out, and the first admin's bootstrap.
 *
 * A login is judged so that its answer and its cost say as little as possible to the
 * client: unknown and disabled users are verified against a dummy hash made with the
 * current parameters (so they cost what a real user costs), and every refusal is the
 * same IOTSEC_ERR_AUTH "operator: login failed". The reason goes to the caller's
 * security event log through the outcome, not to the client.
 *
 * TOTP replay (RFC 6238 section 5.2): the context keeps, per user, the last step it
 * accepted and refuses that step and earlier ones. An entry can only matter while its
 * step is still inside the +-1 window, so entries older than that are reused; when all
 * IOTSEC_OPERATOR_REPLAY_SLOTS are live the login is refused (fail closed) rather than
 * an entry being forgotten early.
 */
#include "iotsec/operator.h"

#include "iotsec/crypto.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- roles ---- */

#define V (1u << IOTSEC_STORE_ROLE_VIEWER)
#define O (1u << IOTSEC_STORE_ROLE_OPERATOR)
#define A (1u << IOTSEC_STORE_ROLE_ADMIN)

/* The whole policy: which roles hold each permission. Viewers read; operators run the
 * fleet (devices, commands, blocks); only admins publish firmware and manage API keys
 * and accounts. docs/operators.md shows the same table. */
static const struct {
    const char *name;
    unsigned roles;
} permissions[IOTSEC_PERM__COUNT] = {
    [IOTSEC_PERM_DEVICES_READ] = {"devices.read", V | O | A},
    [IOTSEC_PERM_DEVICES_WRITE] = {"devices.write", O | A},
    [IOTSEC_PERM_TELEMETRY_READ] = {"telemetry.read", V | O | A},
    [IOTSEC_PERM_EVENTS_READ] = {"events.read", V | O | A},
    [IOTSEC_PERM_BLOCKS_READ] = {"blocks.read", V | O | A},
    [IOTSEC_PERM_BLOCKS_WRITE] = {"blocks.write", O | A},
    [IOTSEC_PERM_COMMANDS_SEND] = {"commands.send", O | A},
    [IOTSEC_PERM_FIRMWARE_READ] = {"firmware.read", V | O | A},
    [IOTSEC_PERM_FIRMWARE_PUBLISH] = {"firmware.publish", A},
    [IOTSEC_PERM_APIKEYS_MANAGE] = {"apikeys.manage", A},
    [IOTSEC_PERM_USERS_MANAGE] = {"users.manage", A},
};

#undef V
#undef O
#undef A

bool iotsec_role_allows(enum iotsec_store_role role, enum iotsec_permission perm)
{
    if ((unsigned)perm >= IOTSEC_PERM__COUNT)
        return false;
    if (role != IOTSEC_STORE_ROLE_ADMIN && role != IOTSEC_STORE_ROLE_OPERATOR &&
        role != IOTSEC_STORE_ROLE_VIEWER)
        return false;
    return (permissions[perm].roles & (1u << role)) != 0;
}

const char *iotsec_permission_name(enum iotsec_permission perm)
{
    return (unsigned)perm < IOTSEC_PERM__COUNT ? permissions[perm].name : NULL;
}

iotsec_result iotsec_permission_parse(const char *name, enum iotsec_permission *out)
{
    for (unsigned i = 0; name != NULL && i < IOTSEC_PERM__COUNT; i++) {
        if (strcmp(name, permissions[i].name) == 0) {
            *out = (enum iotsec_permission)i;
            return IOTSEC_RESULT_OK;
        }
    }
    IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "operator: unknown permission '%s'",
                name != NULL ? name : "");
}

const char *iotsec_login_reason_name(enum iotsec_login_reason reason)
{
    static const char *const names[] = {
        [IOTSEC_LOGIN_OK] = "ok",
        [IOTSEC_LOGIN_UNKNOWN_USER] = "unknown_user",
        [IOTSEC_LOGIN_DISABLED] = "disabled",
        [IOTSEC_LOGIN_BAD_PASSWORD] = "bad_password",
        [IOTSEC_LOGIN_TOTP_MISSING] = "totp_missing",
        [IOTSEC_LOGIN_TOTP_MALFORMED] = "totp_malformed",
        [IOTSEC_LOGIN_TOTP_WRONG] = "totp_wrong",
        [IOTSEC_LOGIN_TOTP_REPLAYED] = "totp_replayed",
        [IOTSEC_LOGIN_TOTP_NOT_ENROLLED] = "totp_not_enrolled",
        [IOTSEC_LOGIN_BUSY] = "busy",
        [IOTSEC_LOGIN_ERROR] = "error",
    };
    if ((unsigned)reason < sizeof(names) / sizeof(names[0]) && names[reason] != NULL)
        return names[reason];
    return "unknown";
}

/* ---- the login context ---- */

struct replay_slot {
    char name[IOTSEC_STORE_USER_MAX + 1];
    uint64_t step;
    bool used;
};

struct iotsec_operator_auth {
    struct iotsec_operator_config cfg;
    char dummy_hash[IOTSEC_STORE_PASSWORD_HASH_MAX + 1];
    pthread_mutex_t lock;
    struct replay_slot slots[IOTSEC_OPERATOR_REPLAY_SLOTS];
};

iotsec_result iotsec_operator_auth_new(const struct iotsec_operator_config *cfg,
                                       struct iotsec_operator_auth **out)
{
    IOTSEC_ENSURE(cfg != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "operator: no config");
    *out = NULL;
    struct iotsec_operator_auth *a = calloc(1, sizeof(*a));
    IOTSEC_ENSURE_ALLOC(a);
    a->cfg = *cfg;
    /* The dummy is a real hash of a random password nobody knows, with the current
     * parameters, so verifying against it costs exactly what a fresh real hash costs. */
    uint8_t pw[24];
    iotsec_result r = iotsec_random(pw, sizeof(pw));
    if (iotsec_ok(r))
        r = iotsec_password_hash(&a->cfg.params, iotsec_slice_make(pw, sizeof(pw)), a->dummy_hash);
    iotsec_wipe(pw, sizeof(pw));
    if (iotsec_ok(r) && pthread_mutex_init(&a->lock, NULL) != 0) {
        iotsec_error_set(IOTSEC_ERR_NOMEM, "operator: cannot create a mutex");
        r = IOTSEC_RESULT_ERR;
    }
    if (!iotsec_ok(r)) {
        free(a);
        return r;
    }
    *out = a;
    return IOTSEC_RESULT_OK;
}

void iotsec_operator_auth_free(struct iotsec_operator_auth *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->lock);
    iotsec_wipe(a, sizeof(*a));
    free(a);
}

/* Records step as name's last accepted one, unless it (or a later one) already is. */
static enum iotsec_login_reason replay_take(struct iotsec_operator_auth *a, const char *name,
                                            uint64_t step, uint64_t now_step)
{
    enum iotsec_login_reason reason = IOTSEC_LOGIN_BUSY;
    struct replay_slot *mine = NULL, *spare = NULL;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < IOTSEC_OPERATOR_REPLAY_SLOTS; i++) {
        struct replay_slot *slot = &a->slots[i];
        if (slot->used && strcmp(slot->name, name) == 0) {
            mine = slot;
            break;
        }
        /* A step below now-1 can no longer match any code, so its entry is free. */
        bool stale = !slot->used || slot->step + IOTSEC_TOTP_WINDOW < now_step;
        if (spare == NULL && stale)
            spare = slot;
    }
    if (mine != NULL && step <= mine->step) {
        reason = IOTSEC_LOGIN_TOTP_REPLAYED;
    } else if (mine != NULL || spare != NULL) {
        struct replay_slot *slot = mine != NULL ? mine : spare;
        snprintf(slot->name, sizeof(slot->name), "%s", name);
        slot->step = step;
        slot->used = true;
        reason = IOTSEC_LOGIN_OK;
    }
    pthread_mutex_unlock(&a->lock);
    return reason;
}

static iotsec_result login_refused(struct iotsec_login_outcome *out,
                                   enum iotsec_login_reason reason)
{
    out->reason = reason;
    IOTSEC_BAIL(IOTSEC_ERR_AUTH, "operator: login failed");
}

/* The second factor, once the password has been accepted. */
static enum iotsec_login_reason check_totp(struct iotsec_operator_auth *a,
                                           const struct iotsec_store_user *u,
                                           struct iotsec_slice code, int64_t now_ms)
{
    if (u->totp_secret_len == 0) {
        bool required = a->cfg.require_totp_for_admin && u->role == IOTSEC_STORE_ROLE_ADMIN;
        return required ? IOTSEC_LOGIN_TOTP_NOT_ENROLLED : IOTSEC_LOGIN_OK;
    }
    if (code.len == 0)
        return IOTSEC_LOGIN_TOTP_MISSING;
    char digits[IOTSEC_TOTP_DIGITS + 1];
    if (!iotsec_ok(iotsec_totp_parse_code(code, digits)))
        return IOTSEC_LOGIN_TOTP_MALFORMED;
    int64_t now_sec = now_ms / 1000;
    uint64_t step = 0;
    iotsec_result r = iotsec_totp_verify(iotsec_slice_make(u->totp_secret, u->totp_secret_len),
                                         digits, now_sec, &step);
    iotsec_wipe(digits, sizeof(digits));
    if (!iotsec_ok(r))
        return iotsec_error_code() == IOTSEC_ERR_AUTH ? IOTSEC_LOGIN_TOTP_WRONG
                                                      : IOTSEC_LOGIN_ERROR;
    return replay_take(a, u->name, step, (uint64_t)now_sec / IOTSEC_TOTP_STEP);
}

static void user_cleanup(struct iotsec_store_user *u)
{
    iotsec_store_user_clear(u);
}

iotsec_result iotsec_operator_login(struct iotsec_operator_auth *a, struct iotsec_store *s,
                                    const char *name, struct iotsec_slice password,
                                    struct iotsec_slice code, int64_t now_ms,
                                    struct iotsec_login_outcome *out)
{
    IOTSEC_ENSURE(out != NULL, IOTSEC_ERR_INVALID_ARG, "operator: no outcome");
    memset(out, 0, sizeof(*out));
    out->reason = IOTSEC_LOGIN_ERROR;
    IOTSEC_ENSURE(a != NULL && s != NULL && now_ms >= 0, IOTSEC_ERR_INVALID_ARG,
                  "operator: login without context, store or time");

    struct iotsec_store_user u IOTSEC_DEFER(user_cleanup) = {0};
    bool known = iotsec_ok(iotsec_store_user_get(s, name != NULL ? name : "", &u));
    /* A name the store refuses outright is as unknown as one it does not hold. */
    if (!known && iotsec_error_code() != IOTSEC_ERR_NOT_FOUND &&
        iotsec_error_code() != IOTSEC_ERR_INVALID_ARG)
        return IOTSEC_RESULT_ERR;

    bool real = known && !u.disabled;
    iotsec_result pr = iotsec_password_verify(real ? u.password_hash : a->dummy_hash, password);
    iotsec_err perr = iotsec_ok(pr) ? IOTSEC_ERR_OK : iotsec_error_code();
    if (!known)
        return login_refused(out, IOTSEC_LOGIN_UNKNOWN_USER);
    if (u.disabled)
        return login_refused(out, IOTSEC_LOGIN_DISABLED);
    if (perr == IOTSEC_ERR_AUTH)
        return login_refused(out, IOTSEC_LOGIN_BAD_PASSWORD);
    /* A stored hash that does not parse, or no memory: not the client's doing. */
    if (perr != IOTSEC_ERR_OK)
        return IOTSEC_RESULT_ERR;

    enum iotsec_login_reason second = check_totp(a, &u, code, now_ms);
    if (second == IOTSEC_LOGIN_ERROR)
        return IOTSEC_RESULT_ERR;
    if (second != IOTSEC_LOGIN_OK)
        return login_refused(out, second);

    out->reason = IOTSEC_LOGIN_OK;
    out->role = u.role;
    out->must_change_password = u.must_change_password;
    if (iotsec_password_needs_rehash(u.password_hash, &a->cfg.params)) {
        /* Best effort: the login stands even if the upgrade cannot be written now; it
         * is tried again at the next one. */
        out->rehashed = iotsec_ok(iotsec_operator_set_password(s, &a->cfg.params, u.name, password,
                                                               u.must_change_password, now_ms));
        iotsec_error_clear();
    }
    return IOTSEC_RESULT_OK;
}

/* ---- account management ---- */

iotsec_result iotsec_operator_create(struct iotsec_store *s,
                                     const struct iotsec_password_params *params, const char *name,
                                     enum iotsec_store_role role, struct iotsec_slice password,
                                     bool must_change, int64_t now_ms)
{
    struct iotsec_store_user u IOTSEC_DEFER(user_cleanup) = {0};
    IOTSEC_ENSURE(name != NULL && strlen(name) <= IOTSEC_STORE_USER_MAX, IOTSEC_ERR_INVALID_ARG,
                  "operator: user name must be 1-%d characters", IOTSEC_STORE_USER_MAX);
    IOTSEC_ENSURE(iotsec_store_role_name(role) != NULL, IOTSEC_ERR_INVALID_ARG,
                  "operator: unknown role");
    snprintf(u.name, sizeof(u.name), "%s", name);
    IOTSEC_GUARD(iotsec_password_hash(params, password, u.password_hash));
    u.role = role;
    u.created_at = now_ms;
    u.updated_at = now_ms;
    u.must_change_password = must_change;
    return iotsec_store_user_insert(s, &u);
}

iotsec_result iotsec_operator_set_password(struct iotsec_store *s,
                                           const struct iotsec_password_params *params,
                                           const char *name, struct iotsec_slice password,
                                           bool must_change, int64_t now_ms)
{
    char hash[IOTSEC_STORE_PASSWORD_HASH_MAX + 1];
    IOTSEC_GUARD(iotsec_password_hash(params, password, hash));
    iotsec_result r = iotsec_store_user_set_password(s, name, hash, must_change, now_ms);
    iotsec_wipe(hash, sizeof(hash));
    return r;
}

iotsec_result iotsec_operator_totp_enrol(struct iotsec_store *s, const char *name, int64_t now_ms,
                                         uint8_t secret[IOTSEC_TOTP_SECRET_LEN])
{
    IOTSEC_GUARD(iotsec_random(secret, IOTSEC_TOTP_SECRET_LEN));
    iotsec_result r = iotsec_store_user_set_totp(s, name, secret, IOTSEC_TOTP_SECRET_LEN, now_ms);
    if (!iotsec_ok(r))
        iotsec_wipe(secret, IOTSEC_TOTP_SECRET_LEN);
    return r;
}

iotsec_result iotsec_operator_totp_remove(struct iotsec_store *s, const char *name, int64_t now_ms)
{
    return iotsec_store_user_set_totp(s, name, NULL, 0, now_ms);
}

/* Enabled admins in the store, counted page by page. */
static iotsec_result count_enabled_admins(struct iotsec_store *s, size_t *count)
{
    char after[IOTSEC_STORE_USER_MAX + 1] = "";
    *count = 0;
    for (;;) {
        struct iotsec_store_user_list list = {0};
        struct iotsec_store_page page = {.after = after, .limit = IOTSEC_STORE_LIST_MAX};
        IOTSEC_GUARD(iotsec_store_user_list(s, &page, &list));
        for (size_t i = 0; i < list.count; i++) {
            if (list.items[i].role == IOTSEC_STORE_ROLE_ADMIN && !list.items[i].disabled)
                (*count)++;
        }
        bool more = list.more && list.count > 0;
        if (more)
            snprintf(after, sizeof(after), "%s", list.items[list.count - 1].name);
        iotsec_store_user_list_free(&list);
        if (!more)
            return IOTSEC_RESULT_OK;
    }
}

enum change_kind { CHANGE_ROLE, CHANGE_DISABLED, CHANGE_DELETE };

struct change {
    enum change_kind kind;
    const char *name;
    enum iotsec_store_role role;
    bool disabled;
    int64_t now_ms;
};

/* Whether the change takes an enabled admin away: only then is the count needed. */
static bool removes_admin(const struct change *c, const struct iotsec_store_user *u)
{
    if (u->role != IOTSEC_STORE_ROLE_ADMIN || u->disabled)
        return false;
    switch (c->kind) {
    case CHANGE_ROLE:
        return c->role != IOTSEC_STORE_ROLE_ADMIN;
    case CHANGE_DISABLED:
        return c->disabled;
    case CHANGE_DELETE:
        return true;
    }
    return true;
}

static iotsec_result apply_change(struct iotsec_store *s, void *ctx)
{
    const struct change *c = ctx;
    struct iotsec_store_user u IOTSEC_DEFER(user_cleanup) = {0};
    IOTSEC_GUARD(iotsec_store_user_get(s, c->name, &u));
    if (removes_admin(c, &u)) {
        size_t admins = 0;
        IOTSEC_GUARD(count_enabled_admins(s, &admins));
        IOTSEC_ENSURE(admins > 1, IOTSEC_ERR_PERMISSION,
                      "operator: %s is the last enabled admin; make another admin first", c->name);
    }
    switch (c->kind) {
    case CHANGE_ROLE:
        return iotsec_store_user_set_role(s, c->name, c->role, c->now_ms);
    case CHANGE_DISABLED:
        return iotsec_store_user_set_disabled(s, c->name, c->disabled, c->now_ms);
    case CHANGE_DELETE:
        return iotsec_store_user_delete(s, c->name);
    }
    IOTSEC_BAIL(IOTSEC_ERR_INVALID_ARG, "operator: unknown change");
}

iotsec_result iotsec_operator_set_role(struct iotsec_store *s, const char *name,
                                       enum iotsec_store_role role, int64_t now_ms)
{
    struct change c = {.kind = CHANGE_ROLE, .name = name, .role = role, .now_ms = now_ms};
    return iotsec_store_transaction(s, apply_change, &c);
}

iotsec_result iotsec_operator_set_disabled(struct iotsec_store *s, const char *name, bool disabled,
                                           int64_t now_ms)
{
    struct change c = {
        .kind = CHANGE_DISABLED, .name = name, .disabled = disabled, .now_ms = now_ms};
    return iotsec_store_transaction(s, apply_change, &c);
}

iotsec_result iotsec_operator_delete(struct iotsec_store *s, const char *name)
{
    struct change c = {.kind = CHANGE_DELETE, .name = name};
    return iotsec_store_transaction(s, apply_change, &c);
}

/* ---- bootstrap ---- */

static iotsec_result store_is_empty(struct iotsec_store *s, bool *empty)
{
    struct iotsec_store_user_list list = {0};
    struct iotsec_store_page page = {.after = NULL, .limit = 1};
    IOTSEC_GUARD(iotsec_store_user_list(s, &page, &list));
    *empty = list.count == 0;
    iotsec_store_user_list_free(&list);
    return IOTSEC_RESULT_OK;
}

struct bootstrap {
    struct iotsec_store_user *user;
    bool created;
};

static iotsec_result bootstrap_insert(struct iotsec_store *s, void *ctx)
{
    struct bootstrap *b = ctx;
    bool empty = false;
    IOTSEC_GUARD(store_is_empty(s, &empty));
    if (!empty)
        return IOTSEC_RESULT_OK;
    IOTSEC_GUARD(iotsec_store_user_insert(s, b->user));
    b->created = true;
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_operator_bootstrap(struct iotsec_store *s,
                                        const struct iotsec_password_params *params,
                                        const char *name, int64_t now_ms,
                                        struct iotsec_buf *one_time_password, bool *created)
{
    IOTSEC_ENSURE(created != NULL && one_time_password != NULL && name != NULL &&
                      strlen(name) <= IOTSEC_STORE_USER_MAX,
                  IOTSEC_ERR_INVALID_ARG, "operator: bootstrap needs a name and outputs");
    *created = false;
    bool empty = false;
    /* The cheap check first: on every start but the first, no hash is computed. */
    IOTSEC_GUARD(store_is_empty(s, &empty));
    if (!empty)
        return IOTSEC_RESULT_OK;

    struct iotsec_buf pw;
    iotsec_buf_init_secret(&pw);
    struct iotsec_store_user u IOTSEC_DEFER(user_cleanup) = {0};
    snprintf(u.name, sizeof(u.name), "%s", name);
    u.role = IOTSEC_STORE_ROLE_ADMIN;
    u.created_at = now_ms;
    u.updated_at = now_ms;
    u.must_change_password = true;
    iotsec_result r = iotsec_password_generate(&pw);
    if (iotsec_ok(r))
        r = iotsec_password_hash(params, iotsec_buf_slice(&pw), u.password_hash);
    /* Room for the password before the insert, so that once the admin exists nothing
     * can fail to hand its password out. */
    if (iotsec_ok(r))
        r = iotsec_buf_reserve(one_time_password, pw.len);
    struct bootstrap b = {.user = &u};
    if (iotsec_ok(r))
        r = iotsec_store_transaction(s, bootstrap_insert, &b);
    if (iotsec_ok(r) && b.created)
        r = iotsec_buf_append_slice(one_time_password, iotsec_buf_slice(&pw));
    iotsec_buf_free(&pw);
    IOTSEC_GUARD(r);
    *created = b.created;
    return IOTSEC_RESULT_OK;
}
