/*
 * TLS for both listeners: one SSL_CTX each, TLS 1.3 only, three AEAD suites, session
 * tickets on (stateful, one per connection). The device listener requires a client certificate and
 * hands the whole chain to the registry (pki chain, validity, EKU, CRL, then the device record) in
 * place of OpenSSL's own verification; a refused device fails the handshake.
 *
 * A blocked source is refused at the ClientHello, before any key exchange is spent on it.
 * A resumed session skips the certificate callback, so its device is checked again at
 * the first request (iotsecd_tls_recheck), against today's CRL and registry.
 *
 * The pki verification cache. Parsing and verifying the chain (X509 decoding, path
 * building, signatures, CRL lookups, our policy walk) was most of a handshake's own cost,
 * and a device presents the same bytes every time. Each worker keeps the pki results
 * of its current verifier, keyed by the SHA-256 of the presented chain's DER. A result is
 * reused only
 *   - for exactly the same bytes (a different chain, or the leaf alone after resumption,
 *     is a different key),
 *   - with the same verifier: the cache is emptied whenever the worker's verifier is
 *     replaced (SIGHUP, a rewritten ca.crl), so the trust anchors, intermediates and
 *     CRLs are those the result was computed with,
 *   - at a time inside the result's validity window (struct iotsec_pki_peer): between
 *     the latest notBefore and the earliest notAfter of the built chain and inside every
 *     CRL's thisUpdate .. nextUpdate, a second narrower on each side. Outside it the
 *     chain is verified again, so expiry and stale CRLs are noticed exactly as before.
 * Everything else X509_verify_cert and the policy depend on is fixed by those three, so
 * a hit gives the answer a full verification would give. Only acceptances are cached: a
 * refused chain is verified again each time (and logged with its reason). The registry
 * step (device known, active, current fingerprint, certificate not revoked) runs
 * against the store on every handshake, hit or not, so `iotsec device disable|revoke`
 * applies at the next connection. Possession of the leaf's key is proven by the TLS
 * handshake itself (CertificateVerify), which the cache does not touch.
 */
#include "iotsecd.h"

#include "iotsec/event.h"
#include "iotsec/file.h"
#include "iotsec/log.h"
#include "iotsec/registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define CIPHERSUITES "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
/* A resumed device is checked again anyway; the lifetime bounds how old a session gets. */
#define SESSION_LIFETIME_SEC 3600
#define CRL_RECHECK_MS       1000
#define SESSION_CACHE_MAX    20000
/* Direct-mapped: a device's chain always lands in the same slot; a collision costs a
 * full verification, never a wrong answer (the whole hash is compared). */
#define VERIFY_CACHE_SLOTS 256

struct verify_cache_entry {
    bool used;
    uint8_t hash[32];
    struct iotsec_pki_peer peer;
};

struct iotsecd_verify_cache {
    struct verify_cache_entry slots[VERIFY_CACHE_SLOTS];
};

static int conn_index = -1;

int iotsecd_tls_conn_index(void)
{
    return conn_index;
}

static struct iotsecd_conn *conn_of_ssl(SSL *ssl)
{
    return SSL_get_ex_data(ssl, conn_index);
}

/* ---- the verifier of a worker ---- */

static int64_t mtime_ns(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

iotsec_result iotsecd_worker_verifier(struct iotsecd_worker *w, struct iotsec_pki_verifier **out)
{
    const struct iotsecd_config *cfg = &w->server->cfg;
    unsigned generation = atomic_load(&w->server->reload_generation);
    int64_t now_ms = iotsecd_now_us() / 1000;
    bool reload = w->verifier == NULL || generation != w->verifier_generation;
    char crl[IOTSECD_PATH_MAX + 16];
    snprintf(crl, sizeof(crl), "%s/%s", cfg->data_dir, IOTSEC_REGISTRY_CRL);
    /* `iotsec device revoke` rewrites ca.crl: notice within a second, without a signal. */
    if (!reload && now_ms - w->crl_checked_ms >= CRL_RECHECK_MS) {
        w->crl_checked_ms = now_ms;
        reload = mtime_ns(crl) != w->crl_mtime_ns;
    }
    if (reload) {
        struct iotsec_pki_verifier *fresh = NULL;
        int64_t before = mtime_ns(crl);
        if (!iotsec_ok(iotsec_registry_load_verifier(cfg->data_dir, &fresh))) {
            /* Keep the previous one: a half-written directory must not open the door
             * (the previous CRL fails closed when it goes stale). */
            iotsec_log_error("cannot reload the CA and CRL",
                             IOTSEC_LOG_STR("error", iotsec_error_message()));
            if (w->verifier == NULL)
                return IOTSEC_RESULT_ERR;
        } else {
            iotsec_pki_verifier_free(w->verifier);
            w->verifier = fresh;
            w->crl_mtime_ns = before;
            /* Results of the previous anchors and CRLs must not outlive them. */
            if (w->verify_cache != NULL)
                memset(w->verify_cache, 0, sizeof(*w->verify_cache));
        }
        w->verifier_generation = generation;
        w->crl_checked_ms = now_ms;
    }
    *out = w->verifier;
    return IOTSEC_RESULT_OK;
}

/* ---- blocked sources, at the ClientHello ---- */

static void peer_address(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    out[0] = '\0';
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)size);
}

static bool source_blocked(struct iotsecd_worker *w, const char *source)
{
    bool blocked = false;
    if (source[0] == '\0')
        return false;
    if (!iotsec_ok(
            iotsec_store_block_check(w->store, source, iotsecd_now_us() / 1000, &blocked, NULL))) {
        /* Fail closed: a blocklist we cannot read blocks. */
        iotsec_log_error("blocklist lookup failed", IOTSEC_LOG_STR("source", source),
                         IOTSEC_LOG_STR("error", iotsec_error_message()));
        return true;
    }
    return blocked;
}

static int client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    struct iotsecd_conn *conn = conn_of_ssl(ssl);
    if (conn == NULL)
        return SSL_CLIENT_HELLO_SUCCESS;
    conn->fd = SSL_get_fd(ssl);
    /* A reply leaves as several TLS records; with Nagle's algorithm the last would wait
     * for the client's delayed ACK (40 ms on Linux) on every request. */
    int one = 1;
    if (conn->fd >= 0)
        setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    peer_address(conn->fd, conn->peer_ip, sizeof(conn->peer_ip));
    if (source_blocked(conn->worker, conn->peer_ip)) {
        atomic_fetch_add(&conn->worker->server->metrics.blocked, 1);
        iotsec_log_warn("blocked source refused", IOTSEC_LOG_STR("sourceIp", conn->peer_ip));
        iotsecd_report(conn->worker->server, IOTSEC_EVENT_BLOCKED_REQUEST, NULL, conn->peer_ip,
                       conn->device_listener ? "{\"listener\":\"device\"}"
                                             : "{\"listener\":\"api\"}");
        *alert = SSL_AD_ACCESS_DENIED;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ---- the device check ---- */

static iotsec_result chain_der(STACK_OF(X509) * chain, X509 *leaf, struct iotsec_buf *out)
{
    int n = chain != NULL ? sk_X509_num(chain) : 0;
    /* The peer's chain starts with its leaf; with a resumed session only the leaf is
     * known, and the verifier knows our intermediates. */
    if (n == 0 && leaf != NULL) {
        int len = i2d_X509(leaf, NULL);
        uint8_t *dst;
        IOTSEC_ENSURE(len > 0, IOTSEC_ERR_FORMAT, "tls: cannot encode the peer certificate");
        IOTSEC_GUARD(iotsec_buf_grow(out, (size_t)len, &dst));
        i2d_X509(leaf, &dst);
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_ENSURE(n > 0 && n <= IOTSEC_PKI_CHAIN_CERTS_MAX, IOTSEC_ERR_FORMAT,
                  "tls: the peer sent %d certificates", n);
    for (int i = 0; i < n; i++) {
        X509 *cert = sk_X509_value(chain, i);
        int len = i2d_X509(cert, NULL);
        uint8_t *dst;
        IOTSEC_ENSURE(len > 0, IOTSEC_ERR_FORMAT, "tls: cannot encode a peer certificate");
        IOTSEC_GUARD(iotsec_buf_grow(out, (size_t)len, &dst));
        i2d_X509(cert, &dst);
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsecd_verify_cache_new(struct iotsecd_verify_cache **out)
{
    *out = calloc(1, sizeof(**out));
    IOTSEC_ENSURE_ALLOC(*out);
    return IOTSEC_RESULT_OK;
}

void iotsecd_verify_cache_free(struct iotsecd_verify_cache *cache)
{
    free(cache);
}

/* iotsec_registry_verify_client with the pki step answered from the worker's cache when
 * it can be (see the top of this file). */
static iotsec_result verify_client(struct iotsecd_worker *w, struct iotsec_pki_verifier *v,
                                   struct iotsec_slice der, time_t at, struct iotsec_pki_peer *peer,
                                   enum iotsec_registry_refusal *why)
{
    struct iotsecd_verify_cache *cache = w->verify_cache;
    uint8_t hash[32];
    unsigned hash_len = 0;
    if (cache == NULL || EVP_Digest(der.ptr, der.len, hash, &hash_len, EVP_sha256(), NULL) != 1 ||
        hash_len != sizeof(hash))
        return iotsec_registry_verify_client(v, w->store, der, at, peer, why);
    struct verify_cache_entry *e =
        &cache->slots[((size_t)hash[0] << 8 | hash[1]) % VERIFY_CACHE_SLOTS];
    if (e->used && memcmp(e->hash, hash, sizeof(hash)) == 0 && at >= e->peer.valid_from &&
        at <= e->peer.valid_until) {
        *peer = e->peer;
        return iotsec_registry_check_peer(w->store, peer, why);
    }
    if (!iotsec_ok(iotsec_pki_verify_client(v, der, at, peer))) {
        *why = IOTSEC_REGISTRY_BAD_CERTIFICATE;
        return IOTSEC_RESULT_ERR;
    }
    if (peer->valid_from <= peer->valid_until) {
        e->used = true;
        memcpy(e->hash, hash, sizeof(hash));
        e->peer = *peer;
    }
    return iotsec_registry_check_peer(w->store, peer, why);
}

static bool check_device(struct iotsecd_conn *conn, STACK_OF(X509) * chain, X509 *leaf)
{
    struct iotsecd_worker *w = conn->worker;
    struct iotsec_buf der;
    iotsec_buf_init(&der);
    struct iotsec_pki_verifier *v = NULL;
    struct iotsec_pki_peer peer;
    enum iotsec_registry_refusal why = IOTSEC_REGISTRY_BAD_CERTIFICATE;
    bool ok = iotsec_ok(chain_der(chain, leaf, &der)) &&
              iotsec_ok(iotsecd_worker_verifier(w, &v)) &&
              iotsec_ok(verify_client(w, v, iotsec_buf_slice(&der), time(NULL), &peer, &why));
    iotsec_buf_free(&der);
    if (ok) {
        char source[16 + IOTSEC_PKI_DEVICE_ID_MAX];
        snprintf(source, sizeof(source), "device:%s", peer.device_id);
        if (source_blocked(w, source)) {
            atomic_fetch_add(&w->server->metrics.blocked, 1);
            iotsec_log_warn("blocked device refused", IOTSEC_LOG_STR("deviceId", peer.device_id),
                            IOTSEC_LOG_STR("sourceIp", conn->peer_ip));
            iotsecd_report(w->server, IOTSEC_EVENT_BLOCKED_REQUEST, peer.device_id, conn->peer_ip,
                           "{\"listener\":\"device\"}");
            return false;
        }
        snprintf(conn->device_id, sizeof(conn->device_id), "%s", peer.device_id);
        conn->identity_checked = true;
        return true;
    }
    atomic_fetch_add(&w->server->metrics.auth_failures, 1);
    iotsec_log_warn("auth_failure", IOTSEC_LOG_STR("sourceIp", conn->peer_ip),
                    IOTSEC_LOG_STR("reason", iotsec_registry_refusal_name(why)),
                    IOTSEC_LOG_STR("error", iotsec_error_message()));
    /* The device id is known only when pki accepted the certificate (the registry
     * refused it); it lets the detector count failures per device as well. */
    char details[128];
    snprintf(details, sizeof(details),
             "{\"listener\":\"device\",\"method\":\"certificate\",\"reason\":\"%s\"}",
             iotsec_registry_refusal_name(why));
    iotsecd_report(w->server, IOTSEC_EVENT_AUTH_FAILURE,
                   why == IOTSEC_REGISTRY_BAD_CERTIFICATE ? NULL : peer.device_id, conn->peer_ip,
                   details);
    return false;
}

static int verify_chain(X509_STORE_CTX *store_ctx, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct iotsecd_conn *conn = ssl != NULL ? conn_of_ssl(ssl) : NULL;
    if (conn == NULL) {
        X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    if (!check_device(conn, X509_STORE_CTX_get0_untrusted(store_ctx),
                      X509_STORE_CTX_get0_cert(store_ctx))) {
        X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

iotsec_result iotsecd_tls_recheck(struct iotsecd_conn *conn, SSL *ssl)
{
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    IOTSEC_ENSURE(leaf != NULL, IOTSEC_ERR_AUTH, "tls: no client certificate");
    IOTSEC_ENSURE(check_device(conn, NULL, leaf), IOTSEC_ERR_AUTH, "tls: device refused");
    return IOTSEC_RESULT_OK;
}

/* ---- contexts ---- */

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);

static iotsec_result load_identity(SSL_CTX *ctx, const char *dir)
{
    char cert[IOTSECD_PATH_MAX + 16], key[IOTSECD_PATH_MAX + 16];
    snprintf(cert, sizeof(cert), "%s/%s", dir, IOTSEC_REGISTRY_SERVER_CERT);
    snprintf(key, sizeof(key), "%s/%s", dir, IOTSEC_REGISTRY_SERVER_KEY);
    IOTSEC_ENSURE(iotsec_file_exists(cert), IOTSEC_ERR_NOT_FOUND,
                  "tls: %s is missing (run `iotsec ca server-cert`)", cert);
    /* The key file must be private, as every secret file. */
    struct iotsec_buf probe;
    iotsec_buf_init_secret(&probe);
    iotsec_result r = iotsec_file_read_private(key, 64 * 1024, &probe);
    iotsec_buf_free(&probe);
    IOTSEC_GUARD(r);
    IOTSEC_GUARD_OSSL(SSL_CTX_use_certificate_chain_file(ctx, cert), IOTSEC_ERR_FORMAT, "tls: %s",
                      cert);
    IOTSEC_GUARD_OSSL(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), IOTSEC_ERR_FORMAT,
                      "tls: %s", key);
    IOTSEC_GUARD_OSSL(SSL_CTX_check_private_key(ctx), IOTSEC_ERR_FORMAT,
                      "tls: %s does not match %s", key, cert);
    return IOTSEC_RESULT_OK;
}

static iotsec_result make_ctx(const struct iotsecd *server, bool device, SSL_CTX **out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    IOTSEC_ENSURE_ALLOC(ctx);
    *out = ctx;
    IOTSEC_GUARD_OSSL(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION), IOTSEC_ERR_CRYPTO,
                      "tls: TLS 1.3");
    IOTSEC_GUARD_OSSL(SSL_CTX_set_ciphersuites(ctx, CIPHERSUITES), IOTSEC_ERR_CRYPTO,
                      "tls: ciphersuites");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_timeout(ctx, SESSION_LIFETIME_SEC);
    /* Resumption uses stateful tickets: the session stays in the context's cache (shared
     * by the workers, at most SESSION_CACHE_MAX) and the ticket only names it. A stateless
     * ticket costs an encryption and, in OpenSSL 3.0, a copy of the session by an ASN.1
     * round trip that decodes the peer certificate again: with OpenSSL's default of two
     * tickets, about a sixth of a full handshake here. One ticket per connection is
     * enough to resume the next one (each resumption gets a fresh one). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, SESSION_CACHE_MAX);
    IOTSEC_GUARD_OSSL(SSL_CTX_set_num_tickets(ctx, 1), IOTSEC_ERR_CRYPTO, "tls: tickets");
    /* The two listeners never share sessions. */
    static const unsigned char device_sid[] = "iotsecd-device", api_sid[] = "iotsecd-api";
    IOTSEC_GUARD_OSSL(device
                          ? SSL_CTX_set_session_id_context(ctx, device_sid, sizeof(device_sid) - 1)
                          : SSL_CTX_set_session_id_context(ctx, api_sid, sizeof(api_sid) - 1),
                      IOTSEC_ERR_CRYPTO, "tls: session id context");
    SSL_CTX_set_client_hello_cb(ctx, client_hello, NULL);
    IOTSEC_GUARD(load_identity(ctx, server->cfg.data_dir));
    if (device) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_cert_verify_callback(ctx, verify_chain, NULL);
        /* Tell clients which CA to pick a certificate for. */
        char ca[IOTSECD_PATH_MAX + 16];
        snprintf(ca, sizeof(ca), "%s/%s", server->cfg.data_dir, IOTSEC_REGISTRY_CA_CERT);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        IOTSEC_ENSURE(names != NULL, IOTSEC_ERR_FORMAT, "tls: cannot read %s", ca);
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsecd_tls_init(struct iotsecd *server)
{
    if (conn_index < 0)
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
    IOTSEC_ENSURE(conn_index >= 0, IOTSEC_ERR_NOMEM, "tls: no ex_data slot");
    SSL_CTX *device = NULL, *api = NULL;
    iotsec_result r = make_ctx(server, true, &device);
    if (iotsec_ok(r))
        r = make_ctx(server, false, &api);
    atomic_store(&server->device_ctx, device);
    atomic_store(&server->api_ctx, api);
    return r;
}

static void retire(struct iotsecd *server, SSL_CTX *ctx)
{
    unsigned slot = server->n_retired++ % IOTSECD_RETIRED_MAX;
    /* Reloads ago enough that no worker can still be between loading it and SSL_new. */
    SSL_CTX_free(server->retired[slot]);
    server->retired[slot] = ctx;
}

void iotsecd_tls_reload(struct iotsecd *server)
{
    SSL_CTX *device = NULL, *api = NULL;
    if (!iotsec_ok(make_ctx(server, true, &device)) || !iotsec_ok(make_ctx(server, false, &api))) {
        iotsec_log_error("TLS reload failed; keeping the current certificate",
                         IOTSEC_LOG_STR("error", iotsec_error_message()));
        SSL_CTX_free(device);
        SSL_CTX_free(api);
        return;
    }
    retire(server, atomic_exchange(&server->device_ctx, device));
    retire(server, atomic_exchange(&server->api_ctx, api));
    iotsec_log_info("TLS certificate reloaded");
}

void iotsecd_tls_free(struct iotsecd *server)
{
    SSL_CTX_free(atomic_exchange(&server->device_ctx, NULL));
    SSL_CTX_free(atomic_exchange(&server->api_ctx, NULL));
    for (unsigned i = 0; i < IOTSECD_RETIRED_MAX; i++) {
        SSL_CTX_free(server->retired[i]);
        server->retired[i] = NULL;
    }
    server->n_retired = 0;
}

/* The connection's context lives exactly as long as its SSL object, which the
 * bufferevent frees with the connection. */
static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL)
        iotsecd_conn_release(ptr);
}
