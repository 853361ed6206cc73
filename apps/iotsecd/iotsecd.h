/*
 * iotsecd: the HTTPS API server. Shared pieces of its files.
 *
 * Threads and data flow:
 *   main      parses options, loads the data directory, starts the threads, waits for
 *             signals (SIGTERM/SIGINT drain and exit, SIGHUP reloads certificates + CRL).
 *   workers   N threads, each with its own event_base, evhttp, listening sockets
 *             (SO_REUSEPORT on the same ports, so the kernel spreads connections),
 *             store handle and pki verifier. TLS handshakes, the device check, parsing,
 *             validation and rate limiting happen here; no worker waits on the disk.
 *   writer    one thread that owns durable writes: it takes the telemetry records that
 *             queued up while the previous commit ran and commits them in one
 *             transaction (group commit), then hands each request back to its worker,
 *             which sends 202. A 202 therefore means the record is on disk.
 *
 * Every security decision is the library's (registry, schema, ratelimit); this program
 * wires them to the network.
 */
#ifndef IOTSECD_H
#define IOTSECD_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/pki.h"
#include "iotsec/ratelimit.h"
#include "iotsec/store.h"

#include <jansson.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct event;
struct evbuffer;
struct bufferevent;
struct evhttp_bound_socket;
struct evhttp;
struct evhttp_request;

#define IOTSECD_PATH_MAX    4096
#define IOTSECD_RETIRED_MAX 128 /* two per SIGHUP; beyond, the oldest are freed */

struct iotsecd_config {
    char data_dir[IOTSECD_PATH_MAX];
    char bind[64];          /* listen address for both listeners */
    int device_port;        /* mutual TLS: devices with certificates */
    int api_port;           /* TLS, server authentication only */
    int threads;            /* workers; 0 = one per core */
    size_t max_body;        /* bytes of a request body */
    size_t max_headers;     /* bytes of a request's headers */
    int request_timeout_ms; /* from accept (or the previous reply) to a complete request */
    int io_timeout_ms;      /* no progress at all on a connection */
    uint32_t rate_per_minute;
    uint32_t auth_rate_per_minute; /* login, challenge, verify: per source address */
    int64_t max_skew_sec;          /* how far in the future a telemetry timestamp may be */
    bool access_log;
    uint32_t bf_threshold; /* auth failures that make an attack (0: the detector's 5) */
    int64_t bf_window_sec; /* within this long (0: 5 minutes) */
    int64_t block_sec;     /* how long a detected source stays blocked (0: 15 minutes) */
};

/* Request counters for /metrics, by route and status class. */
enum iotsecd_route_id {
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_TELEMETRY_POST,
    ROUTE_TELEMETRY_GET,
    ROUTE_AUTH_TOKEN,
    ROUTE_AUTH_CHALLENGE,
    ROUTE_AUTH_VERIFY,
    ROUTE_AUTH_LOGIN,
    ROUTE_AUTH_PASSWORD,
    ROUTE_AUTH_SESSION,
    ROUTE_SECURITY_EVENTS,
    ROUTE_SECURITY_BLOCKS,
    ROUTE_DEVICES,
    ROUTE_COMMANDS,
    ROUTE_USERS,
    ROUTE_APIKEYS,
    ROUTE_OTHER,
    ROUTE__COUNT
};

#define IOTSECD_LATENCY_BUCKETS 12

struct iotsecd_metrics {
    atomic_uint_fast64_t requests[ROUTE__COUNT][6]; /* [route][status / 100] */
    atomic_uint_fast64_t auth_failures;
    atomic_uint_fast64_t blocked;
    atomic_uint_fast64_t rate_limited;
    atomic_uint_fast64_t events_dropped;
    atomic_uint_fast64_t brute_force_detected;
    atomic_uint_fast64_t latency[IOTSECD_LATENCY_BUCKETS + 1]; /* le bounds, +Inf */
    atomic_uint_fast64_t latency_sum_us;
};

struct iotsecd_writer;
struct iotsecd_worker;
struct iotsecd_verify_cache;
struct listener_ctx;
struct iotsec_apikey_auth;
struct iotsec_challenge_store;
struct iotsec_jwt_key;
struct iotsecd_operators;

struct iotsecd {
    struct iotsecd_config cfg;
    /* Replaced whole by SIGHUP (iotsecd_tls_reload); workers load them per connection. */
    SSL_CTX *_Atomic device_ctx; /* requires and checks a client certificate */
    SSL_CTX *_Atomic api_ctx;    /* server authentication only */
    /* Contexts replaced by reloads, freed at exit: a worker may have loaded one just
     * before it was replaced (each SSL then holds its own reference). */
    SSL_CTX *retired[IOTSECD_RETIRED_MAX];
    unsigned n_retired;
    struct iotsec_ratelimit *ratelimit;
    struct iotsec_ratelimit *auth_ratelimit;   /* credential endpoints, by source address */
    struct iotsec_apikey_auth *apikeys;        /* X-API-Key, with each key's own limit */
    struct iotsec_challenge_store *challenges; /* challenge-response, single use */
    struct iotsec_jwt_key *jwt_key;            /* device tokens: HS256, DIR/jwt-hs256.key */
    struct iotsecd_operators *operators;       /* login and sessions (operators.c) */
    struct iotsecd_writer *writer;
    struct iotsecd_worker *workers;
    int n_workers;
    struct iotsecd_metrics metrics;
    atomic_uint reload_generation; /* bumped by SIGHUP: workers reload their verifier */
    atomic_bool draining;
};

/* ---- one connection (http.c) ---- */
struct iotsecd_conn {
    struct iotsecd_worker *worker;
    bool device_listener;
    char peer_ip[64];
    /* Set by the handshake's certificate check (device listener). */
    bool identity_checked;
    char device_id[IOTSEC_PKI_DEVICE_ID_MAX + 1];
    struct event *deadline; /* request_timeout_ms from accept or the last reply */
    struct bufferevent *bev;
    int fd;
    int64_t block_checked_ms; /* when peer_ip was last looked up in the blocklist */
};
/* Frees a connection's context (called when its SSL object is freed). */
void iotsecd_conn_release(struct iotsecd_conn *conn);

/* ---- workers (http.c) ---- */
struct iotsecd_worker {
    struct iotsecd *server;
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *device_http, *api_http;
    struct event *wake; /* the writer's completions are ready */
    struct event *stop; /* drain and leave the loop */
    struct event *drain_timer;
    int64_t drain_started_ms;
    struct evhttp_bound_socket *bound[2]; /* device, api */
    struct listener_ctx *listeners[2];
    bool started;
    struct iotsec_store *store;
    struct iotsec_pki_verifier *verifier;
    unsigned verifier_generation;
    int64_t crl_checked_ms; /* when ca.crl's mtime was last looked at */
    int64_t crl_mtime_ns;
    pthread_mutex_t done_lock;
    struct iotsecd_pending *done; /* completions from the writer */
    int in_flight;                /* requests handed to the writer, not yet answered */
    struct iotsec_buf access_log; /* records not yet written (http.c) */
    struct event *log_flush;
    struct iotsecd_verify_cache *verify_cache; /* pki results of this verifier (tls.c) */
};

IOTSEC_MUST_CHECK iotsec_result iotsecd_workers_start(struct iotsecd *server);
/* Stops accepting, finishes what is in flight, joins the threads. */
void iotsecd_workers_stop(struct iotsecd *server);

/* Writes the worker's batched access log records. */
void iotsecd_access_log_flush(struct iotsecd_worker *w);

/* ---- TLS (tls.c) ---- */
IOTSEC_MUST_CHECK iotsec_result iotsecd_tls_init(struct iotsecd *server);
void iotsecd_tls_free(struct iotsecd *server);
/* SIGHUP: new contexts from the server certificate, key and CA files as they are now.
 * On any failure the running contexts stay and the error is logged. */
void iotsecd_tls_reload(struct iotsecd *server);
/* The SSL ex_data slot that holds the connection (freed with the SSL). */
int iotsecd_tls_conn_index(void);
/* The worker's verifier, reloaded when SIGHUP asked or ca.crl changed. */
IOTSEC_MUST_CHECK iotsec_result iotsecd_worker_verifier(struct iotsecd_worker *w,
                                                        struct iotsec_pki_verifier **out);
/* The worker's cache of pki verification results (tls.c explains why it is sound). */
IOTSEC_MUST_CHECK iotsec_result iotsecd_verify_cache_new(struct iotsecd_verify_cache **out);
void iotsecd_verify_cache_free(struct iotsecd_verify_cache *cache);
/* Checks the device of a connection whose session was resumed (no certificate check
 * ran in this handshake): its certificate, against today's CRL and registry. */
IOTSEC_MUST_CHECK iotsec_result iotsecd_tls_recheck(struct iotsecd_conn *conn, SSL *ssl);

/* ---- durable writes (writer.c) ---- */
enum iotsecd_job_kind {
    JOB_TELEMETRY, /* a record to commit, then a reply to send */
    JOB_EVENT,     /* a security event for the monitor; nobody waits for it */
};

struct iotsecd_pending {
    struct iotsecd_pending *next;
    enum iotsecd_job_kind kind;
    struct iotsecd_worker *worker;
    struct evhttp_request *req;
    struct iotsec_store_telemetry record; /* body owned */
    int64_t started_us;
    int route;
    bool ok; /* set by the writer */
    /* JOB_EVENT */
    int event_type; /* enum iotsec_event_type */
    int64_t event_ts;
    char device_id[IOTSEC_STORE_ID_MAX + 1];
    char source_ip[IOTSEC_STORE_IP_MAX + 1];
    char details[256];
};

/* Security events waiting for the writer beyond this are dropped (and counted): a flood
 * of failures must not grow memory, and the detector has seen enough of it by then. */
#define IOTSECD_EVENT_QUEUE_MAX 4096

IOTSEC_MUST_CHECK iotsec_result iotsecd_writer_start(struct iotsecd *server);
/* Queues p; the writer answers through p->worker. Never blocks on the disk. */
void iotsecd_writer_submit(struct iotsecd_writer *writer, struct iotsecd_pending *p);
/* Queues a security event (monitor: log, sinks, brute-force detection and blocks).
 * details is a JSON object's text or NULL. Never blocks; drops when the queue is full. */
void iotsecd_report(struct iotsecd *server, int type, const char *device_id, const char *source_ip,
                    const char *details);
/* Commits what is queued, then stops. */
void iotsecd_writer_stop(struct iotsecd_writer *writer);

/* ---- credentials (auth.c) ---- */
/* Loads DIR/jwt-hs256.key, creating it (32 random bytes, mode 0600) on the first start,
 * and sets up the API-key authenticator and the challenge store. */
IOTSEC_MUST_CHECK iotsec_result iotsecd_auth_init(struct iotsecd *server);
void iotsecd_auth_free(struct iotsecd *server);

/* ---- operators (operators.c) ---- */
struct iotsecd_op_request {
    struct evhttp_request *req;
    struct iotsecd_conn *conn;
    struct iotsecd *server;
    int64_t started_us;
    int route;
    /* Set by iotsecd_op_authenticate. */
    char user[IOTSEC_STORE_USER_MAX + 1];
    char token[64];
    int role; /* enum iotsec_store_role */
    bool must_change;
};

IOTSEC_MUST_CHECK iotsec_result iotsecd_operators_new(struct iotsecd *server);
void iotsecd_operators_free(struct iotsecd *server);
/* First start: the first admin with a one-time password, printed once on stdout. */
IOTSEC_MUST_CHECK iotsec_result iotsecd_operators_bootstrap(struct iotsecd *server,
                                                            struct iotsec_store *store);
/* A session token ("ses_..."): true with the operator filled in, else answered 401. */
bool iotsecd_op_authenticate(struct iotsecd_op_request *r, const char *token);
/* The operator's role has the permission (enum iotsec_permission) and no password change
 * is pending; else answered 403. */
bool iotsecd_op_allowed(struct iotsecd_op_request *r, int permission);
void iotsecd_op_login(struct iotsecd_op_request *r, json_t *body);
void iotsecd_op_logout(struct iotsecd_op_request *r);
void iotsecd_op_password(struct iotsecd_op_request *r, json_t *body);
void iotsecd_op_events(struct iotsecd_op_request *r);
/* GET (source NULL) lists the blocks in force; DELETE lifts the block of source. */
void iotsecd_op_blocks(struct iotsecd_op_request *r, const char *source);
void iotsecd_op_devices(struct iotsecd_op_request *r);
void iotsecd_op_device_state(struct iotsecd_op_request *r, const char *device_id, bool enable);
/* Administration (admin.c): accounts (users.manage) and API keys (apikeys.manage). */
void iotsecd_admin_users(struct iotsecd_op_request *r);
void iotsecd_admin_user_create(struct iotsecd_op_request *r, json_t *body);
/* action: "role" (body {"role"}), "disable", "enable" or "delete" (body NULL). */
void iotsecd_admin_user_change(struct iotsecd_op_request *r, const char *name, const char *action,
                               json_t *body);
void iotsecd_admin_apikeys(struct iotsecd_op_request *r, const char *device_id);
void iotsecd_admin_apikey_create(struct iotsecd_op_request *r, const char *device_id, json_t *body);
void iotsecd_admin_apikey_revoke(struct iotsecd_op_request *r, const char *key_id);
/* body: the raw request body (size and content type already checked). */
void iotsecd_op_command(struct iotsecd_op_request *r, struct iotsec_slice body);

/* ---- requests (routes.c) ---- */
void iotsecd_dispatch(struct evhttp_request *req, struct iotsecd_conn *conn);
/* Called by the worker for each completion of the writer. */
void iotsecd_complete(struct iotsecd_pending *p);

/* ---- replies (http.c) ---- */
int64_t iotsecd_now_us(void);
/* Sends a JSON body (a compact serialisation of value; value is released). */
void iotsecd_reply_json(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                        int status, json_t *value, int64_t started_us);
/* A text body (Prometheus exposition format); body is borrowed. */
void iotsecd_reply_text(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                        int status, struct evbuffer *body, int64_t started_us);
/* 202 {"status":"accepted","seq":seq}, formatted directly (the hot path). */
void iotsecd_reply_accepted(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                            int64_t seq, int64_t started_us);
/* 400 {"error":"Validation failed","message":<the current iotsec error>}: a request body
 * other than telemetry's (whose 400 lists every field) that the parser refused. */
void iotsecd_reply_invalid(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                           int64_t started_us);
/* {"error": message}. */
void iotsecd_reply_error(struct evhttp_request *req, struct iotsecd_conn *conn, int route,
                         int status, const char *message, int64_t started_us);
/* The connection of a request (NULL when it is already gone). */
struct iotsecd_conn *iotsecd_conn_of(struct evhttp_request *req);

#endif
