/*
 * The store: the platform's registry and logs behind one interface (docs/store.md).
 *
 * It holds devices, certificates, API keys, operator accounts, the security event log
 * and the blocklist. Callers see only `struct iotsec_store` and the functions below; the
 * URL given to iotsec_store_open() picks the backend ("sqlite:/var/lib/iotsec/store.db"
 * or a plain path today, "postgres://..." later), so a new backend needs no change in
 * any caller. Every argument is checked here, before any backend sees it: strings are
 * bounded and restricted to their character set, hex is lowercased, IP addresses are put
 * in one canonical spelling, times must be >= 0. A failure names the field and the limit.
 *
 * Records are plain structs. Small fields are fixed-size, NUL-terminated arrays. The two
 * large text fields (a device's public key PEM, an event's details) are `char *`:
 *   - in a record the caller passes in, the pointer is borrowed for the call only;
 *   - in a record the store fills (get, list), it is allocated by the store and released
 *     by iotsec_store_<thing>_clear() or iotsec_store_<thing>_list_free().
 * Clear/free functions are safe on zero-initialised and already-cleared records, and the
 * user record's secrets (password hash, TOTP secret) are wiped by them.
 *
 * Times are int64 Unix milliseconds, always supplied by the caller (the library reads no
 * clock), so callers and tests control them. 0 means "never" / "not set" where noted.
 *
 * Writes are durable when the call returns (SQLite: synchronous=FULL). Several processes
 * may open the same database at once (the API server and the broker plugin do): a writer
 * waits up to IOTSEC_STORE_BUSY_TIMEOUT_MS for another to finish and then fails with
 * IOTSEC_ERR_BUSY. A handle is for one thread at a time (open one per thread) and must
 * not be used across fork(): a child opens its own.
 *
 * Errors: IOTSEC_ERR_INVALID_ARG (a field is out of bounds), IOTSEC_ERR_NOT_FOUND (no such
 * record), IOTSEC_ERR_EXISTS (a unique key is taken, or the record is already revoked),
 * IOTSEC_ERR_BUSY (another writer held the database too long, or the store was called
 * from inside an event-chain callback), IOTSEC_ERR_VERSION (the database was written by a
 * newer iotsec), IOTSEC_ERR_FORMAT (not an iotsec database, a corrupt one, or one whose
 * schema is not what this code expects), IOTSEC_ERR_PERMISSION (file mode), IOTSEC_ERR_IO,
 * IOTSEC_ERR_CONFIG (bad URL).
 */
#ifndef IOTSEC_STORE_H
#define IOTSEC_STORE_H

#include "iotsec/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The schema version this build creates and understands. */
#define IOTSEC_STORE_SCHEMA_VERSION 4
/* How long a writer waits for another process's write transaction. */
#define IOTSEC_STORE_BUSY_TIMEOUT_MS 5000

/* ---- bounds (characters, without the terminating NUL) ---- */
#define IOTSEC_STORE_ID_MAX            64 /* device id, API key id: [A-Za-z0-9_-] */
#define IOTSEC_STORE_USER_MAX          64 /* operator name: [A-Za-z0-9_.@-] */
#define IOTSEC_STORE_MODEL_MAX         64 /* printable ASCII, may be empty */
#define IOTSEC_STORE_FINGERPRINT_LEN   64 /* SHA-256 in hex, exactly, or empty */
#define IOTSEC_STORE_SERIAL_MAX        64 /* hex digits; X.509 serials are <= 20 octets */
#define IOTSEC_STORE_PEM_MAX           16384
#define IOTSEC_STORE_PASSWORD_HASH_MAX 255   /* e.g. "$argon2id$v=19$m=...": printable, no space */
#define IOTSEC_STORE_TOTP_SECRET_MAX   128   /* bytes; the caller may store it encrypted */
#define IOTSEC_STORE_EVENT_TYPE_MAX    64    /* [A-Za-z0-9_.-] */
#define IOTSEC_STORE_IP_MAX            45    /* INET6_ADDRSTRLEN - 1 */
#define IOTSEC_STORE_DETAILS_MAX       16384 /* bytes of JSON text */
#define IOTSEC_STORE_SOURCE_MAX        (7 + IOTSEC_STORE_ID_MAX) /* "device:<id>" or an IP */
#define IOTSEC_STORE_REASON_MAX        255                       /* printable ASCII */
#define IOTSEC_STORE_HASH_LEN          32
#define IOTSEC_STORE_TELEMETRY_MAX     (64 * 1024) /* bytes of one telemetry body (JSON) */
#define IOTSEC_STORE_TELEMETRY_BATCH   1024        /* records per group commit */
#define IOTSEC_STORE_LIST_DEFAULT      100
#define IOTSEC_STORE_LIST_MAX          1000

struct iotsec_store; /* opaque */

/* url: "sqlite:PATH", "sqlite::memory:" (private to this handle; for tests) or a plain
 * PATH. A missing database file is created with mode 0600 (its -wal and -shm files take
 * the same mode); an existing one that other users may access is refused. The schema is
 * brought to IOTSEC_STORE_SCHEMA_VERSION, each migration step in its own transaction; a
 * database of a newer version is refused with IOTSEC_ERR_VERSION and left untouched.
 * "postgres://" and "postgresql://" URLs are IOTSEC_ERR_CONFIG until that backend lands. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_open(const char *url, struct iotsec_store **out);
void iotsec_store_close(struct iotsec_store *s);
/* "sqlite". */
const char *iotsec_store_backend_name(const struct iotsec_store *s);

/* How durable a handle's commits are. Every handle starts at IOTSEC_STORE_SYNC_FULL. */
enum iotsec_store_sync {
    /* A commit survives a crash of the machine (SQLite: synchronous=FULL, an fsync per
     * commit). For the registry, accounts, keys and the security event log. */
    IOTSEC_STORE_SYNC_FULL,
    /* A commit survives a crash of the process (kill -9): it is in the operating system
     * when the call returns, but the last commits before a power cut may be lost; the
     * database stays consistent either way (SQLite WAL with synchronous=NORMAL). For a
     * separate telemetry handle, where an fsync per batch would cap the rate. */
    IOTSEC_STORE_SYNC_PROCESS,
};
IOTSEC_MUST_CHECK iotsec_result iotsec_store_set_sync(struct iotsec_store *s,
                                                      enum iotsec_store_sync mode);

/* Runs fn inside one write transaction: every store call fn makes commits together when
 * fn succeeds, or not at all when it fails (the store returns fn's error). Transactions
 * nest: an inner one is a savepoint. For multi-step changes such as enrolment (insert the
 * device, insert its certificate, make it current). */
typedef iotsec_result (*iotsec_store_tx_fn)(struct iotsec_store *s, void *ctx);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_transaction(struct iotsec_store *s,
                                                         iotsec_store_tx_fn fn, void *ctx);

/* A page of a list: records after the key `after` ("" or NULL: from the start; otherwise
 * the key of the last record of the previous page, as the store returned it), at most
 * `limit` of them (0: IOTSEC_STORE_LIST_DEFAULT; more than IOTSEC_STORE_LIST_MAX is
 * IOTSEC_ERR_INVALID_ARG). A NULL page means the first page with the default limit.
 * Each list result says whether more records follow (`more`); the next page starts
 * after the key of the last item returned. */
struct iotsec_store_page {
    const char *after;
    size_t limit;
};

/* ---- devices ---- */
enum iotsec_store_device_status {
    IOTSEC_STORE_DEVICE_ANY = 0, /* in queries only */
    IOTSEC_STORE_DEVICE_ACTIVE = 1,
    IOTSEC_STORE_DEVICE_DISABLED = 2,
    IOTSEC_STORE_DEVICE_REVOKED = 3,
};

struct iotsec_store_device {
    char id[IOTSEC_STORE_ID_MAX + 1];
    char model[IOTSEC_STORE_MODEL_MAX + 1];
    enum iotsec_store_device_status status;
    char cert_fingerprint[IOTSEC_STORE_FINGERPRINT_LEN + 1]; /* current certificate or "" */
    char cert_serial[IOTSEC_STORE_SERIAL_MAX + 1];           /* current certificate or "" */
    char *public_key_pem; /* for challenge-response; NULL or "" when none (see ownership) */
    int64_t created_at;
    int64_t updated_at;
};

struct iotsec_store_device_list {
    struct iotsec_store_device *items;
    size_t count;
    bool more;
};

/* Fails with IOTSEC_ERR_EXISTS when the id is taken. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_device_insert(struct iotsec_store *s,
                                                           const struct iotsec_store_device *d);
/* IOTSEC_ERR_NOT_FOUND when there is no such device. out is overwritten (clear it first
 * if it holds a previous result). */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_device_get(struct iotsec_store *s, const char *id,
                                                        struct iotsec_store_device *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_device_set_status(
    struct iotsec_store *s, const char *id, enum iotsec_store_device_status status, int64_t now);
/* Records the device's current certificate (both "" to clear it). */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_device_set_certificate(struct iotsec_store *s,
                                                                    const char *id,
                                                                    const char *fingerprint,
                                                                    const char *serial,
                                                                    int64_t now);
/* pem NULL or "" removes the key. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_device_set_public_key(struct iotsec_store *s,
                                                                   const char *id, const char *pem,
                                                                   int64_t now);
/* In one transaction: status becomes revoked, every unrevoked certificate of the device
 * is revoked (revoked_at = now, the given RFC 5280 reason) and every unrevoked API key
 * of the device is revoked, so the registry and the CRL never disagree. certs_revoked
 * (may be NULL) receives how many certificates this call revoked. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_device_revoke(struct iotsec_store *s, const char *id,
                                                           int reason, int64_t now,
                                                           size_t *certs_revoked);
/* Devices ordered by id, optionally only those with one status; page.after is an id. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_device_list(struct iotsec_store *s,
                                                         enum iotsec_store_device_status status,
                                                         const struct iotsec_store_page *page,
                                                         struct iotsec_store_device_list *out);
void iotsec_store_device_clear(struct iotsec_store_device *d);
void iotsec_store_device_list_free(struct iotsec_store_device_list *l);

/* ---- certificates ---- */
/* RFC 5280 section 5.3.1 CRLReason codes. 7 is unassigned; 8 (removeFromCRL) belongs to
 * delta CRLs, which iotsec does not issue: both are refused. */
enum iotsec_store_crl_reason {
    IOTSEC_STORE_CRL_UNSPECIFIED = 0,
    IOTSEC_STORE_CRL_KEY_COMPROMISE = 1,
    IOTSEC_STORE_CRL_CA_COMPROMISE = 2,
    IOTSEC_STORE_CRL_AFFILIATION_CHANGED = 3,
    IOTSEC_STORE_CRL_SUPERSEDED = 4,
    IOTSEC_STORE_CRL_CESSATION_OF_OPERATION = 5,
    IOTSEC_STORE_CRL_CERTIFICATE_HOLD = 6,
    IOTSEC_STORE_CRL_PRIVILEGE_WITHDRAWN = 9,
    IOTSEC_STORE_CRL_AA_COMPROMISE = 10,
};

struct iotsec_store_cert {
    char serial[IOTSEC_STORE_SERIAL_MAX + 1];           /* lowercase hex, unique */
    char device_id[IOTSEC_STORE_ID_MAX + 1];            /* must name an existing device */
    char fingerprint[IOTSEC_STORE_FINGERPRINT_LEN + 1]; /* lowercase hex, unique */
    int64_t not_before;
    int64_t not_after;
    int64_t issued_at;
    int64_t revoked_at;    /* 0: not revoked */
    int revocation_reason; /* enum iotsec_store_crl_reason; meaningful when revoked */
};

struct iotsec_store_cert_list {
    struct iotsec_store_cert *items;
    size_t count;
    bool more;
};

/* EXISTS when the serial or the fingerprint is taken; NOT_FOUND when the device is. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_cert_insert(struct iotsec_store *s,
                                                         const struct iotsec_store_cert *c);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_cert_get(struct iotsec_store *s, const char *serial,
                                                      struct iotsec_store_cert *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_cert_get_by_fingerprint(struct iotsec_store *s,
                                                                     const char *fingerprint,
                                                                     struct iotsec_store_cert *out);
/* Revoking is once only: a certificate already revoked keeps its original time and
 * reason (a CRL's revocationDate must not move) and the call fails with
 * IOTSEC_ERR_EXISTS, which a caller wanting idempotence may treat as success. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_cert_revoke(struct iotsec_store *s, const char *serial,
                                                         int reason, int64_t now);
/* Revoked certificates ordered by serial, for building a CRL. unexpired_at > 0 leaves out
 * certificates whose not_after is before it (RFC 5280 lets a CRL drop expired ones). */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_cert_list_revoked(struct iotsec_store *s,
                                                               int64_t unexpired_at,
                                                               const struct iotsec_store_page *page,
                                                               struct iotsec_store_cert_list *out);
/* A device's certificates, oldest issued first; page.after is a serial. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_cert_list_by_device(
    struct iotsec_store *s, const char *device_id, const struct iotsec_store_page *page,
    struct iotsec_store_cert_list *out);
void iotsec_store_cert_list_free(struct iotsec_store_cert_list *l);

/* ---- API keys ---- */
struct iotsec_store_apikey {
    char key_id[IOTSEC_STORE_ID_MAX + 1];    /* public short id, [A-Za-z0-9_-] */
    char device_id[IOTSEC_STORE_ID_MAX + 1]; /* must name an existing device */
    uint8_t hash[IOTSEC_STORE_HASH_LEN];     /* of the key; the auth module decides how */
    int64_t created_at;
    int64_t last_used_at;        /* 0: never */
    int64_t revoked_at;          /* 0: not revoked */
    uint32_t rate_limit_per_min; /* 0: the platform default */
};

struct iotsec_store_apikey_list {
    struct iotsec_store_apikey *items;
    size_t count;
    bool more;
};

/* EXISTS when the key id or the hash is taken; NOT_FOUND when the device is. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_apikey_insert(struct iotsec_store *s,
                                                           const struct iotsec_store_apikey *k);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_apikey_get(struct iotsec_store *s, const char *key_id,
                                                        struct iotsec_store_apikey *out);
/* One indexed lookup by the unique hash column. Revoked keys are found too: the caller
 * must check revoked_at (so that it can log the use of a revoked key). */
IOTSEC_MUST_CHECK iotsec_result
iotsec_store_apikey_find_by_hash(struct iotsec_store *s, const uint8_t hash[IOTSEC_STORE_HASH_LEN],
                                 struct iotsec_store_apikey *out);
/* last_used_at = now, never moving backwards. Each call is a durable write: callers on a
 * hot path may want to touch at most once a minute per key. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_apikey_touch(struct iotsec_store *s,
                                                          const char *key_id, int64_t now);
/* Once only, like certificates: an already revoked key gives IOTSEC_ERR_EXISTS. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_apikey_revoke(struct iotsec_store *s,
                                                           const char *key_id, int64_t now);
/* A device's keys ordered by key id. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_apikey_list_by_device(
    struct iotsec_store *s, const char *device_id, const struct iotsec_store_page *page,
    struct iotsec_store_apikey_list *out);
void iotsec_store_apikey_list_free(struct iotsec_store_apikey_list *l);

/* ---- operators ---- */
enum iotsec_store_role {
    IOTSEC_STORE_ROLE_ADMIN = 1,
    IOTSEC_STORE_ROLE_OPERATOR = 2,
    IOTSEC_STORE_ROLE_VIEWER = 3,
};

struct iotsec_store_user {
    char name[IOTSEC_STORE_USER_MAX + 1];
    char password_hash[IOTSEC_STORE_PASSWORD_HASH_MAX + 1]; /* wiped by _clear */
    uint8_t totp_secret[IOTSEC_STORE_TOTP_SECRET_MAX];      /* wiped by _clear */
    size_t totp_secret_len;                                 /* 0: no TOTP enrolled */
    enum iotsec_store_role role;
    int64_t created_at;
    int64_t updated_at;
    bool disabled;
    bool must_change_password;
};

struct iotsec_store_user_list {
    struct iotsec_store_user *items;
    size_t count;
    bool more;
};

IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_insert(struct iotsec_store *s,
                                                         const struct iotsec_store_user *u);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_get(struct iotsec_store *s, const char *name,
                                                      struct iotsec_store_user *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_set_password(struct iotsec_store *s,
                                                               const char *name,
                                                               const char *password_hash,
                                                               bool must_change_password,
                                                               int64_t now);
/* An empty secret removes TOTP. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_set_totp(struct iotsec_store *s, const char *name,
                                                           const uint8_t *secret, size_t len,
                                                           int64_t now);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_set_role(struct iotsec_store *s, const char *name,
                                                           enum iotsec_store_role role,
                                                           int64_t now);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_set_disabled(struct iotsec_store *s,
                                                               const char *name, bool disabled,
                                                               int64_t now);
/* Ordered by name. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_list(struct iotsec_store *s,
                                                       const struct iotsec_store_page *page,
                                                       struct iotsec_store_user_list *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_user_delete(struct iotsec_store *s, const char *name);
void iotsec_store_user_clear(struct iotsec_store_user *u);
void iotsec_store_user_list_free(struct iotsec_store_user_list *l);

/* ---- security events ---- */
enum iotsec_store_severity {
    IOTSEC_STORE_SEVERITY_ANY = 0, /* in queries only */
    IOTSEC_STORE_SEVERITY_LOW = 1,
    IOTSEC_STORE_SEVERITY_MEDIUM = 2,
    IOTSEC_STORE_SEVERITY_HIGH = 3,
    IOTSEC_STORE_SEVERITY_CRITICAL = 4,
};

struct iotsec_store_event {
    int64_t seq; /* assigned by the store: 1, 2, 3, ... without gaps */
    int64_t ts;  /* milliseconds since the epoch */
    char event_type[IOTSEC_STORE_EVENT_TYPE_MAX + 1];
    enum iotsec_store_severity severity;
    char device_id[IOTSEC_STORE_ID_MAX + 1]; /* may be "" */
    char source_ip[IOTSEC_STORE_IP_MAX + 1]; /* may be ""; canonical form */
    char *details;                           /* JSON text; NULL is stored as "{}" (see ownership) */
    uint8_t prev_hash[IOTSEC_STORE_HASH_LEN]; /* hash of seq - 1; zeros for seq 1 */
    uint8_t hash[IOTSEC_STORE_HASH_LEN];
};

struct iotsec_store_event_list {
    struct iotsec_store_event *items;
    size_t count;
    bool more;
};

/* Computes ev->hash from the other fields, ev->seq and ev->prev_hash included. Called
 * inside the append's write transaction, so it must be quick and must not call the store
 * (such calls fail with IOTSEC_ERR_BUSY). A failure aborts the append. */
typedef iotsec_result (*iotsec_store_chain_fn)(void *ctx, struct iotsec_store_event *ev);

/* Appends ev to the hash-chained log. Inside one write transaction, which excludes every
 * other writer in every process: the last record is read, ev->seq becomes its seq + 1 and
 * ev->prev_hash its hash (zeros for the first record), chain(ctx, ev) fills ev->hash, and
 * the record is inserted. So concurrent appenders can neither fork the chain nor leave a
 * gap; the database also refuses any insert that does not link to the last record. ev is
 * in/out: source_ip is canonicalised and seq, prev_hash and hash are filled in. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_event_append(struct iotsec_store *s,
                                                          struct iotsec_store_event *ev,
                                                          iotsec_store_chain_fn chain, void *ctx);
/* The newest record's seq and hash; seq 0 and a zero hash when the log is empty. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_event_last(struct iotsec_store *s, int64_t *seq,
                                                        uint8_t hash[IOTSEC_STORE_HASH_LEN]);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_event_get(struct iotsec_store *s, int64_t seq,
                                                       struct iotsec_store_event *out);

/* Filters; zero/NULL/"" fields do not filter. Seq bounds are exclusive and work in both
 * orders, so a page continues with after_seq = last seq (oldest first) or before_seq =
 * last seq (newest first). */
struct iotsec_store_event_query {
    int64_t after_seq;  /* seq > after_seq */
    int64_t before_seq; /* seq < before_seq */
    int64_t since;      /* ts >= since */
    int64_t until;      /* ts < until */
    const char *event_type;
    const char *device_id;
    enum iotsec_store_severity severity;     /* exactly this one */
    enum iotsec_store_severity min_severity; /* this one or more severe */
    bool newest_first;
    size_t limit; /* 0: IOTSEC_STORE_LIST_DEFAULT; at most IOTSEC_STORE_LIST_MAX */
};

/* q may be NULL: the oldest IOTSEC_STORE_LIST_DEFAULT records. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_event_list(struct iotsec_store *s,
                                                        const struct iotsec_store_event_query *q,
                                                        struct iotsec_store_event_list *out);
/* How many records match q's filters (limit and order are ignored); q may be NULL. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_event_count(struct iotsec_store *s,
                                                         const struct iotsec_store_event_query *q,
                                                         uint64_t *count);
/* Calls fn for every record with seq > after_seq, in seq order, in constant memory: the
 * records are read in pages between calls, so no read is held open while fn runs and fn
 * may call the store. Every record that existed when the walk began is visited; records
 * appended during the walk may be visited too (they come after, in order). fn's failure
 * stops the walk and is returned. For verifying the chain. */
typedef iotsec_result (*iotsec_store_event_fn)(void *ctx, const struct iotsec_store_event *ev);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_event_foreach(struct iotsec_store *s,
                                                           int64_t after_seq,
                                                           iotsec_store_event_fn fn, void *ctx);
void iotsec_store_event_clear(struct iotsec_store_event *ev);
void iotsec_store_event_list_free(struct iotsec_store_event_list *l);

/* ---- blocklist ---- */
/* Sources are "device:<id>" or an IPv4/IPv6 address. Addresses are stored and looked up
 * in one canonical spelling (inet_ntop's; IPv4-mapped IPv6 as plain IPv4), so that
 * "::FFFF:10.0.0.1", "::ffff:10.0.0.1" and "10.0.0.1" are the same source and no other
 * spelling slips past a block. */
struct iotsec_store_block {
    char source[IOTSEC_STORE_SOURCE_MAX + 1];
    char reason[IOTSEC_STORE_REASON_MAX + 1];
    int64_t created_at;
    int64_t expires_at; /* 0: never */
};

struct iotsec_store_block_list {
    struct iotsec_store_block *items;
    size_t count;
    bool more;
};

enum iotsec_store_block_mode {
    /* The new block replaces any existing one for the source (operator edits). */
    IOTSEC_STORE_BLOCK_REPLACE,
    /* The longer-lasting of the two stays (a permanent block outlasts any other), so an
     * automatic detector re-blocking a source never shortens an operator's block. */
    IOTSEC_STORE_BLOCK_EXTEND,
};

/* expires_at must be 0 or later than created_at. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_block_put(struct iotsec_store *s,
                                                       const struct iotsec_store_block *b,
                                                       enum iotsec_store_block_mode mode);
/* NOT_FOUND when the source has no block (expired or not). */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_block_remove(struct iotsec_store *s,
                                                          const char *source);
/* One indexed lookup: *blocked is true when the source has a block that has not expired
 * at `now`. out (may be NULL) receives that block. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_block_check(struct iotsec_store *s, const char *source,
                                                         int64_t now, bool *blocked,
                                                         struct iotsec_store_block *out);
/* Blocks in force at `now`, ordered by source; page.after is a source. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_block_list_active(struct iotsec_store *s, int64_t now,
                                                               const struct iotsec_store_page *page,
                                                               struct iotsec_store_block_list *out);
/* Deletes blocks that expired at or before now; removed (may be NULL) receives how many. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_block_purge_expired(struct iotsec_store *s,
                                                                 int64_t now, size_t *removed);
void iotsec_store_block_list_free(struct iotsec_store_block_list *l);

/* ---- telemetry ---- */
struct iotsec_store_telemetry {
    int64_t seq;                             /* assigned by the store, growing */
    char device_id[IOTSEC_STORE_ID_MAX + 1]; /* the authenticated device */
    int64_t ts;                              /* the device's timestamp, ms */
    int64_t received_at;                     /* ms */
    char *body; /* the validated JSON as received (see ownership); NUL-terminated */
};

struct iotsec_store_telemetry_list {
    struct iotsec_store_telemetry *items;
    size_t count;
    bool more;
};

/* Group commit: appends n records (1 .. IOTSEC_STORE_TELEMETRY_BATCH) in one transaction,
 * durable when it returns, all or none; each items[i].seq is filled in. The device must
 * exist (IOTSEC_ERR_NOT_FOUND otherwise, and nothing is written). */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_telemetry_append(struct iotsec_store *s,
                                                              struct iotsec_store_telemetry *items,
                                                              size_t n);
/* A device's records, newest first, with seq < before_seq (0: from the newest). */
IOTSEC_MUST_CHECK iotsec_result
iotsec_store_telemetry_list(struct iotsec_store *s, const char *device_id, int64_t before_seq,
                            size_t limit, struct iotsec_store_telemetry_list *out);
void iotsec_store_telemetry_list_free(struct iotsec_store_telemetry_list *l);

/* ---- commands to devices ---- */
#define IOTSEC_STORE_ACTION_MAX  16          /* restart, update, configure, reset */
#define IOTSEC_STORE_PAYLOAD_MAX (16 * 1024) /* bytes of JSON object text */

struct iotsec_store_command {
    int64_t seq;                              /* assigned by the store */
    char target[IOTSEC_STORE_ID_MAX + 1];     /* a device that exists */
    char action[IOTSEC_STORE_ACTION_MAX + 1]; /* [a-z]+ */
    char *payload;                            /* JSON object text; NULL is "{}" (ownership as
                                                 for event details) */
    char issued_by[IOTSEC_STORE_USER_MAX + 1];
    int64_t created_at;
    int64_t delivered_at; /* 0: not yet (the MQTT bridge sets it) */
};

struct iotsec_store_command_list {
    struct iotsec_store_command *items;
    size_t count;
    bool more;
};

/* Records a command (validated by the caller's schema); c->seq is filled in. NOT_FOUND
 * when the target device does not exist. */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_command_insert(struct iotsec_store *s,
                                                            struct iotsec_store_command *c);
/* A device's commands, newest first, with seq < before_seq (0: from the newest). */
IOTSEC_MUST_CHECK iotsec_result iotsec_store_command_list(struct iotsec_store *s,
                                                          const char *target, int64_t before_seq,
                                                          size_t limit,
                                                          struct iotsec_store_command_list *out);
void iotsec_store_command_list_free(struct iotsec_store_command_list *l);

/* ---- names of enumerations (API and CLI text) ---- */
/* "active", "disabled", "revoked"; "admin", "operator", "viewer"; "low", "medium",
 * "high", "critical". NULL for a value out of range. */
const char *iotsec_store_device_status_name(enum iotsec_store_device_status status);
const char *iotsec_store_role_name(enum iotsec_store_role role);
const char *iotsec_store_severity_name(enum iotsec_store_severity severity);
/* The inverse; IOTSEC_ERR_INVALID_ARG naming the accepted words for anything else. */
IOTSEC_MUST_CHECK iotsec_result
iotsec_store_device_status_parse(const char *name, enum iotsec_store_device_status *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_role_parse(const char *name,
                                                        enum iotsec_store_role *out);
IOTSEC_MUST_CHECK iotsec_result iotsec_store_severity_parse(const char *name,
                                                            enum iotsec_store_severity *out);

#endif
