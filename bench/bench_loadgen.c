/*
 * bench_loadgen: an HTTPS load generator for the mutual-TLS API (iotsecd), and for the
 * reference it is measured against (nginx with the same certificates, bench/https.sh).
 *
 * Two modes:
 *   keepalive  N connections, each handshakes once and then sends one request after the
 *              other (no pipelining); what a fleet of connected devices costs.
 *   handshake  every request on a new connection: connect, full TLS 1.3 handshake with a
 *              client certificate, one request, close. The client never offers a session,
 *              so there is no resumption: this measures full handshakes per second.
 *
 * Each thread owns an epoll instance and a slice of the connections; sockets are
 * non-blocking and each SSL object is driven by a small state machine. Latency goes into a
 * log-linear histogram (32 sub-buckets per power of two: at most ~3% error, fixed memory),
 * never a list of samples. Every loop is bounded: the run by --duration (always) and
 * --requests (optionally), each request by --timeout, each read by its buffer.
 *
 * The response parser reads the status line and the headers it needs (Content-Length,
 * Transfer-Encoding, Connection) from a bounded buffer; anything it does not support
 * (chunked bodies, a body without a length, 1xx) is counted as an error, never guessed.
 * `--self-test` runs it over a table of good and bad responses.
 *
 * Output: a human-readable summary, then one line of key=value pairs for scripts,
 * starting with "mode=". Exit 0 when the run completed at least one request, 1 on setup
 * failure or when nothing completed, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_CONNECTIONS 10000
#define LG_MAX_THREADS     64
#define LG_MAX_DURATION    3600
#define LG_MAX_DEVICES     1000000
#define LG_PATH_MAX        256
#define LG_NAME_MAX        253
#define LG_REQ_MAX         1024        /* the request we send: line, headers and body */
#define LG_HEAD_MAX        8192        /* response status line and headers */
#define LG_RBUF            LG_HEAD_MAX /* read buffer: the head, then scratch for the body */
#define LG_HEADER_LINES    100
#define LG_BODY_MAX        (64u * 1024 * 1024) /* a larger Content-Length is an error */
#define LG_EVENTS          256
#define LG_RETRY_MS        10 /* after an error, wait this long before reconnecting */

/* ---- the histogram: log-linear buckets of microseconds ------------------------------ */

#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_EXP_MAX  40 /* 2^40 us is 12 days: far beyond any --duration */
#define HIST_BUCKETS  (HIST_SUB + (HIST_EXP_MAX - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max_us;
    uint64_t buckets[HIST_BUCKETS];
};

static unsigned hist_bucket(uint64_t us)
{
    if (us < HIST_SUB)
        return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);
    if (e > HIST_EXP_MAX)
        return HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(us >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
    return HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB + sub;
}

/* The largest value that falls into bucket b: a percentile is never under-reported. */
static uint64_t hist_bucket_high(unsigned b)
{
    if (b < HIST_SUB)
        return b;
    unsigned e = (b - HIST_SUB) / HIST_SUB + HIST_SUB_BITS;
    uint64_t sub = (b - HIST_SUB) % HIST_SUB;
    uint64_t low = (1ull << e) + (sub << (e - HIST_SUB_BITS));
    return low + (1ull << (e - HIST_SUB_BITS)) - 1;
}

static void hist_add(struct hist *h, uint64_t us)
{
    h->buckets[hist_bucket(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

static void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

static double hist_quantile_ms(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0.0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_high(i);
            return (double)(v < h->max_us ? v : h->max_us) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* ---- the HTTP/1.1 response head parser --------------------------------------------- */

enum http_result { HTTP_NEED_MORE, HTTP_DONE, HTTP_BAD };

struct http_head {
    size_t head_len; /* bytes up to and including the blank line */
    int status;
    bool close;              /* the server will close the connection after this response */
    bool has_length;         /* Content-Length was present */
    uint64_t content_length; /* body bytes that follow the head */
    const char *why;         /* on HTTP_BAD: what was wrong */
};

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Case-insensitive search of the token `tok` in a comma-separated header value. */
static bool value_has_token(const char *v, size_t n, const char *tok)
{
    size_t tn = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tn && strncasecmp(v + start, tok, tn) == 0)
            return true;
    }
    return false;
}

static enum http_result http_bad(struct http_head *h, const char *why)
{
    h->why = why;
    return HTTP_BAD;
}

/*
 * Parses the head of one response from p[0..len). HTTP_NEED_MORE until the blank line is
 * there (and HTTP_BAD once LG_HEAD_MAX bytes hold none); the body is not looked at.
 * Strict on purpose: the tool measures a server, so a malformed answer is the server's
 * error to count, not something to work around.
 */
static enum http_result http_parse_head(const char *p, size_t len, struct http_head *h)
{
    memset(h, 0, sizeof(*h));
    size_t scan = len < LG_HEAD_MAX ? len : LG_HEAD_MAX;
    const char *end = NULL;
    for (size_t i = 0; i + 3 < scan; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            end = p + i;
            break;
        }
    }
    if (end == NULL)
        return len >= LG_HEAD_MAX ? http_bad(h, "response head too large") : HTTP_NEED_MORE;
    h->head_len = (size_t)(end - p) + 4;

    /* Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF (RFC 9112 section 4). */
    if ((size_t)(end - p) < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ')
        return http_bad(h, "bad status line");
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return http_bad(h, "bad status code");
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (h->status < 100)
        return http_bad(h, "bad status code");
    bool http10 = p[7] == '0';
    bool keep_alive = false;
    const char *line = p + 12;
    if (line[0] != '\r' && line[0] != ' ')
        return http_bad(h, "bad status line");
    const char *eol = line;
    while (eol < end && !(eol[0] == '\r' && eol[1] == '\n'))
        eol++;
    for (const char *c = line; c < eol; c++)
        if (*c == '\r' || *c == '\n' || *c == '\0')
            return http_bad(h, "control character in status line");

    unsigned lines = 0;
    line = eol < end ? eol + 2 : end;
    while (line < end) {
        if (++lines > LG_HEADER_LINES)
            return http_bad(h, "too many header lines");
        eol = line;
        while (eol < end && !(eol[0] == '\r' && eol[1] == '\n'))
            eol++;
        const char *colon = line;
        while (colon < eol && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == line || colon == eol || *colon != ':')
            return http_bad(h, "bad header line"); /* also obs-fold: a line starting with SP */
        size_t name_len = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *c = v; c < ve; c++)
            if (*c == '\r' || *c == '\n' || *c == '\0')
                return http_bad(h, "control character in header value");
        size_t vn = (size_t)(ve - v);

        if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) {
            if (vn == 0 || vn > 10)
                return http_bad(h, "bad Content-Length");
            uint64_t n = 0;
            for (size_t i = 0; i < vn; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return http_bad(h, "bad Content-Length");
                n = n * 10 + (uint64_t)(v[i] - '0');
            }
            if (h->has_length && n != h->content_length)
                return http_bad(h, "conflicting Content-Length");
            if (n > LG_BODY_MAX)
                return http_bad(h, "Content-Length too large");
            h->has_length = true;
            h->content_length = n;
        } else if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
            return http_bad(h, "Transfer-Encoding (chunked) not supported");
        } else if (name_len == 10 && strncasecmp(line, "connection", 10) == 0) {
            if (value_has_token(v, vn, "close"))
                h->close = true;
            if (value_has_token(v, vn, "keep-alive"))
                keep_alive = true;
        }
        line = eol + 2;
    }
    if (http10 && !keep_alive)
        h->close = true;

    /* RFC 9110 section 6.4.1: 1xx, 204 and 304 carry no body, whatever the headers say. */
    if (h->status < 200)
        return http_bad(h, "unexpected 1xx response");
    if (h->status == 204 || h->status == 304) {
        h->content_length = 0;
        return HTTP_DONE;
    }
    if (!h->has_length)
        return http_bad(h, "response without Content-Length");
    return HTTP_DONE;
}

/* ---- configuration ------------------------------------------------------------------ */

enum lg_mode { MODE_KEEPALIVE, MODE_HANDSHAKE };

struct lg_config {
    const char *host;
    char servername[LG_NAME_MAX + 1];
    int port;
    unsigned connections;
    unsigned threads;
    unsigned duration_s;
    uint64_t requests; /* 0: no cap but the duration */
    unsigned timeout_ms;
    enum lg_mode mode;
    const char *cert;
    const char *key;
    const char *ca;
    const char *path;
    unsigned devices;
    bool post;
    struct sockaddr_in addr;
};

static struct lg_config cfg = {
    .host = "127.0.0.1",
    .servername = "localhost",
    .port = 0,
    .connections = 64,
    .threads = 1,
    .duration_s = 10,
    .requests = 0,
    .timeout_ms = 5000,
    .mode = MODE_KEEPALIVE,
    .path = "/api/telemetry",
    .devices = 100,
    .post = true,
};

static SSL_CTX *ssl_ctx;
static atomic_uint_fast64_t started_total; /* requests begun, across threads: --requests */
static uint64_t start_ns;
static uint64_t deadline_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- per-thread state ------------------------------------------------------------- */

enum conn_state { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_WRITE, C_READ, C_DONE };

enum err_kind { E_CONNECT, E_TLS, E_IO, E_HTTP, E_TIMEOUT, E_KINDS };
static const char *const err_names[E_KINDS] = {"connect", "tls", "io", "http", "timeout"};

struct conn {
    int fd;
    SSL *ssl;
    enum conn_state state;
    uint32_t events;  /* what epoll is asked for */
    uint64_t t_start; /* this request's start: its latency is measured from here */
    uint64_t retry_at;
    char req[LG_REQ_MAX];
    size_t req_len, req_off;
    char rbuf[LG_RBUF];
    size_t rlen;
    bool head_done;
    bool close_after;
    uint64_t body_left;
    int status;
};

struct worker {
    pthread_t tid;
    unsigned index;
    int ep;
    struct conn *conns;
    unsigned nconns;
    uint64_t next_device;
    /* results */
    struct hist hist;
    uint64_t completed;
    uint64_t status_class[6]; /* [1]..[5]: 1xx..5xx; [0]: anything else */
    uint64_t errors[E_KINDS];
    uint64_t handshakes;
    const char *last_error;
    char ts_cache[32];
    time_t ts_second;
};

static const char *rfc3339_now(struct worker *w)
{
    time_t t = time(NULL);
    if (t != w->ts_second) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(w->ts_cache, sizeof(w->ts_cache), "%Y-%m-%dT%H:%M:%SZ", &tm);
        w->ts_second = t;
    }
    return w->ts_cache;
}

static void build_request(struct worker *w, struct conn *c)
{
    unsigned dev = (unsigned)(w->next_device++ % cfg.devices);
    int n;
    if (cfg.post) {
        char body[256];
        int bn = snprintf(body, sizeof(body),
                          "{\"device_id\":\"dev-%u\",\"timestamp\":\"%s\",\"temperature\":21.5,"
                          "\"humidity\":40,\"battery\":90}",
                          dev, rfc3339_now(w));
        n = snprintf(c->req, sizeof(c->req),
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     cfg.path, cfg.servername, bn, body);
    } else {
        n = snprintf(c->req, sizeof(c->req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", cfg.path,
                     cfg.servername);
    }
    /* Path and name lengths are bounded at option parsing so that this always fits. */
    c->req_len = n > 0 && (size_t)n < sizeof(c->req) ? (size_t)n : 0;
    c->req_off = 0;
    c->rlen = 0;
    c->head_done = false;
    c->close_after = false;
    c->body_left = 0;
}

static void set_events(struct worker *w, struct conn *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->events = ev;
}

static void conn_close(struct worker *w, struct conn *c, bool polite)
{
    if (c->ssl != NULL) {
        if (polite)
            SSL_shutdown(c->ssl); /* one close_notify, not waiting for the peer's */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = C_IDLE;
    c->events = 0;
}

static void conn_error(struct worker *w, struct conn *c, enum err_kind k, const char *why,
                       uint64_t now)
{
    w->errors[k]++;
    w->last_error = why;
    ERR_clear_error();
    conn_close(w, c, false);
    c->retry_at = now + (uint64_t)LG_RETRY_MS * 1000000u;
}

/* May one more request start? Claims it if so. */
static bool claim_request(void)
{
    if (cfg.requests == 0)
        return true;
    uint64_t prev = atomic_fetch_add(&started_total, 1);
    return prev < cfg.requests;
}

static void conn_open(struct worker *w, struct conn *c, uint64_t now)
{
    c->t_start = now;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_error(w, c, E_CONNECT, "socket() failed", now);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->events = EPOLLOUT;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        close(c->fd);
        c->fd = -1;
        conn_error(w, c, E_CONNECT, "epoll_ctl failed", now);
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)&cfg.addr, sizeof(cfg.addr)) != 0 &&
        errno != EINPROGRESS) {
        conn_error(w, c, E_CONNECT, "connect failed", now);
        return;
    }
    c->state = C_CONNECTING;
}

static bool start_tls(struct worker *w, struct conn *c, uint64_t now)
{
    c->ssl = SSL_new(ssl_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_error(w, c, E_TLS, "SSL_new failed", now);
        return false;
    }
    struct in_addr ip;
    if (inet_pton(AF_INET, cfg.servername, &ip) == 1) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, cfg.servername) != 1) {
            conn_error(w, c, E_TLS, "bad server IP address", now);
            return false;
        }
    } else if (SSL_set1_host(c->ssl, cfg.servername) != 1 ||
               SSL_set_tlsext_host_name(c->ssl, cfg.servername) != 1) {
        conn_error(w, c, E_TLS, "bad server name", now);
        return false;
    }
    SSL_set_connect_state(c->ssl);
    c->state = C_HANDSHAKE;
    return true;
}

/* Maps an SSL_ERROR_* to "wait for this epoll event", or 0 for a real error. */
static uint32_t want_events(SSL *ssl, int ret)
{
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return EPOLLIN;
    case SSL_ERROR_WANT_WRITE:
        return EPOLLOUT;
    default:
        return 0;
    }
}

static void record_response(struct worker *w, struct conn *c, uint64_t now)
{
    w->completed++;
    int cls = c->status / 100;
    w->status_class[cls >= 1 && cls <= 5 ? cls : 0]++;
    hist_add(&w->hist, (now - c->t_start) / 1000u);
}

/* Bytes of the current response: head first, then the body, which is only counted. */
static enum http_result consume(struct worker *w, struct conn *c, size_t n, uint64_t now)
{
    if (!c->head_done) {
        c->rlen += n;
        struct http_head h;
        enum http_result r = http_parse_head(c->rbuf, c->rlen, &h);
        if (r == HTTP_BAD) {
            conn_error(w, c, E_HTTP, h.why, now);
            return HTTP_BAD;
        }
        if (r == HTTP_NEED_MORE)
            return HTTP_NEED_MORE;
        c->head_done = true;
        c->status = h.status;
        c->close_after = h.close;
        c->body_left = h.content_length;
        n = c->rlen - h.head_len;
    }
    /* One request is outstanding at a time: bytes past this response are the server's error. */
    if (n > c->body_left) {
        conn_error(w, c, E_HTTP, "bytes after the end of the response", now);
        return HTTP_BAD;
    }
    c->body_left -= n;
    return c->body_left == 0 ? HTTP_DONE : HTTP_NEED_MORE;
}

/* After a complete response: the next request on this connection, or a new connection. */
static void next_request(struct worker *w, struct conn *c, uint64_t now)
{
    bool reuse = cfg.mode == MODE_KEEPALIVE && !c->close_after;
    if (!reuse)
        conn_close(w, c, true);
    if (now >= deadline_ns || !claim_request()) {
        if (reuse)
            conn_close(w, c, true);
        c->state = C_DONE;
        return;
    }
    if (!reuse) {
        conn_open(w, c, now);
        return;
    }
    build_request(w, c);
    c->t_start = now;
    c->state = C_WRITE;
}

/* Runs one connection's state machine until it has to wait. Bounded: at most DRIVE_STEPS
 * steps per call, so one fast connection cannot starve the others; a connection that still
 * has work then waits for EPOLLOUT, which a connected socket reports at once. */
#define DRIVE_STEPS 16
static void drive(struct worker *w, struct conn *c, uint32_t ev)
{
    for (int step = 0; step < DRIVE_STEPS; step++) {
        uint64_t now = now_ns();
        int r;
        switch (c->state) {
        case C_CONNECTING: {
            if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                return;
            int err = 0;
            socklen_t el = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                conn_error(w, c, E_CONNECT, "connect failed", now);
                return;
            }
            if (!start_tls(w, c, now))
                return;
            break;
        }
        case C_HANDSHAKE:
            r = SSL_connect(c->ssl);
            if (r == 1) {
                w->handshakes++;
                build_request(w, c);
                if (cfg.mode == MODE_KEEPALIVE)
                    c->t_start = now; /* keep-alive latency is the request's alone */
                c->state = C_WRITE;
                break;
            }
            if ((ev = want_events(c->ssl, r)) == 0) {
                conn_error(w, c, E_TLS, "TLS handshake failed", now);
                return;
            }
            set_events(w, c, ev);
            return;
        case C_WRITE:
            r = SSL_write(c->ssl, c->req + c->req_off, (int)(c->req_len - c->req_off));
            if (r > 0) {
                c->req_off += (size_t)r;
                if (c->req_off == c->req_len)
                    c->state = C_READ;
                break;
            }
            if ((ev = want_events(c->ssl, r)) == 0) {
                conn_error(w, c, E_IO, "write failed", now);
                return;
            }
            set_events(w, c, ev);
            return;
        case C_READ: {
            size_t off = c->head_done ? 0 : c->rlen;
            if (off >= sizeof(c->rbuf)) {
                conn_error(w, c, E_HTTP, "response head too large", now);
                return;
            }
            r = SSL_read(c->ssl, c->rbuf + off, (int)(sizeof(c->rbuf) - off));
            if (r > 0) {
                enum http_result h = consume(w, c, (size_t)r, now);
                if (h == HTTP_BAD)
                    return;
                if (h == HTTP_DONE) {
                    record_response(w, c, now);
                    next_request(w, c, now);
                    if (c->state != C_WRITE)
                        return; /* closed, or reopening: epoll reports the connect */
                }
                break;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
                conn_error(w, c, E_IO, "server closed the connection mid-request", now);
                return;
            }
            if (e == SSL_ERROR_SSL) {
                /* In TLS 1.3 the server judges the client certificate after the client's
                 * handshake is done: a refusal arrives as an alert on the first read. */
                conn_error(w, c, E_TLS, "TLS error or alert after the handshake", now);
                return;
            }
            if ((ev = want_events(c->ssl, r)) == 0) {
                conn_error(w, c, E_IO, "read failed", now);
                return;
            }
            set_events(w, c, ev);
            return;
        }
        case C_IDLE:
        case C_DONE:
            return;
        }
        ev = EPOLLIN | EPOLLOUT; /* after a state change, try the next step at once */
    }
    if (c->state == C_WRITE || c->state == C_READ || c->state == C_HANDSHAKE)
        set_events(w, c, EPOLLOUT);
}

/* Reopens idle connections and times out stuck requests; runs every few milliseconds. */
static void sweep(struct worker *w, uint64_t now, bool *active)
{
    uint64_t timeout_ns = (uint64_t)cfg.timeout_ms * 1000000u;
    *active = false;
    for (unsigned i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->state == C_DONE)
            continue;
        if (c->state == C_IDLE) {
            if (now < c->retry_at) {
                *active = true;
                continue;
            }
            if (now >= deadline_ns || !claim_request()) {
                c->state = C_DONE;
                continue;
            }
            conn_open(w, c, now);
        } else if (now - c->t_start > timeout_ns) {
            conn_error(w, c, E_TIMEOUT, "request timed out", now);
        }
        *active = true;
    }
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[LG_EVENTS];
    uint64_t next_sweep = 0;
    bool active = true;
    /* Bounded: every pass waits at most 5 ms and the loop ends at the deadline at latest. */
    while (active) {
        uint64_t now = now_ns();
        if (now >= deadline_ns)
            break;
        if (now >= next_sweep) {
            sweep(w, now, &active);
            next_sweep = now + 5000000u;
            if (!active)
                break;
        }
        int n = epoll_wait(w->ep, events, LG_EVENTS, 5);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            drive(w, c, events[i].events);
        }
    }
    /* Requests still in flight at the deadline are neither completed nor errors. */
    for (unsigned i = 0; i < w->nconns; i++)
        conn_close(w, &w->conns[i], false);
    return NULL;
}

/* ---- setup ------------------------------------------------------------------------- */

static int setup_fail(const char *what)
{
    fprintf(stderr, "bench_loadgen: %s", what);
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, ": %s", buf);
    }
    fputc('\n', stderr);
    return 1;
}

static int setup_tls(void)
{
    ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (ssl_ctx == NULL)
        return setup_fail("SSL_CTX_new failed");
    if (SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ssl_ctx, TLS1_3_VERSION) != 1)
        return setup_fail("cannot restrict to TLS 1.3");
    if (SSL_CTX_load_verify_locations(ssl_ctx, cfg.ca, NULL) != 1)
        return setup_fail("cannot read --ca");
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cfg.cert) != 1)
        return setup_fail("cannot read --cert");
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx, cfg.key, SSL_FILETYPE_PEM) != 1)
        return setup_fail("cannot read --key");
    if (SSL_CTX_check_private_key(ssl_ctx) != 1)
        return setup_fail("--key does not match --cert");
    /* No resumption in either mode: no client session cache and no tickets, and no
     * session is ever set on an SSL, so every handshake is a full one. */
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    /* One read() per burst of records instead of one per record header and body: the
     * generator should spend its share of the shared cores on TLS, not on syscalls. */
    SSL_CTX_set_read_ahead(ssl_ctx, 1);
    return 0;
}

/* ---- the --self-test of the response parser ----------------------------------------- */

struct parse_case {
    const char *in;
    enum http_result want;
    int status;
    uint64_t length;
    bool close;
};

static const struct parse_case parse_cases[] = {
    {"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", HTTP_DONE, 204, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", HTTP_DONE, 200, 5, false},
    {"HTTP/1.1 201 Created\r\ncontent-length:  12 \r\nConnection: Close\r\n\r\n", HTTP_DONE, 201,
     12, true},
    {"HTTP/1.1 400 Bad\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", HTTP_DONE,
     400, 0, true},
    {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP_DONE, 200, 0, true},
    {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", HTTP_DONE, 200, 0,
     false},
    {"HTTP/1.1 429\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", HTTP_DONE, 429, 2, false},
    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", HTTP_DONE, 304, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", HTTP_NEED_MORE, 0, 0, false},
    {"HTTP/1.1 2", HTTP_NEED_MORE, 0, 0, false},
    {"", HTTP_NEED_MORE, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 0\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/2 200 OK\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 20x OK\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.1 100 Continue\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"HTTP/1.12000 OK\r\n\r\n", HTTP_BAD, 0, 0, false},
    {"ICY 200 OK\r\n\r\n", HTTP_BAD, 0, 0, false},
};

static int self_test(void)
{
    unsigned failed = 0, total = 0;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *pc = &parse_cases[i];
        struct http_head h;
        enum http_result r = http_parse_head(pc->in, strlen(pc->in), &h);
        bool ok = r == pc->want;
        if (ok && r == HTTP_DONE)
            ok = h.status == pc->status && h.content_length == pc->length && h.close == pc->close;
        total++;
        if (!ok) {
            failed++;
            fprintf(stderr, "self-test: case %zu: got %d (%s)\n", i, (int)r, h.why ? h.why : "");
        }
    }
    /* A head that never ends is refused once the bound is reached, not buffered forever. */
    static char big[LG_HEAD_MAX + 16];
    memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
    memset(big + 17, 'a', sizeof(big) - 17);
    struct http_head h;
    total++;
    if (http_parse_head(big, sizeof(big), &h) != HTTP_BAD) {
        failed++;
        fprintf(stderr, "self-test: an endless head was not refused\n");
    }
    total++;
    if (http_parse_head(big, LG_HEAD_MAX - 1, &h) != HTTP_NEED_MORE) {
        failed++;
        fprintf(stderr, "self-test: a head under the bound was refused\n");
    }
    /* The histogram: exact below 32 us, within 1/32 above, never under-reported. */
    for (uint64_t v = 0; v < (1ull << 36); v = v * 2 + 7) {
        unsigned b = hist_bucket(v);
        uint64_t hi = hist_bucket_high(b);
        total++;
        if (hi < v || (double)(hi - v) > (double)v / HIST_SUB + 0.5 ||
            (b > 0 && hist_bucket_high(b - 1) >= v)) {
            failed++;
            fprintf(stderr, "self-test: histogram bucket of %llu is wrong\n",
                    (unsigned long long)v);
        }
    }
    printf("self-test: %u passed, %u failed\n", total - failed, failed);
    return failed == 0 ? 0 : 1;
}

/* ---- options ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_loadgen --port N --cert FILE --key FILE --ca FILE [options]\n"
            "       bench_loadgen --self-test\n"
            "  --host ADDR          IPv4 address to connect to (127.0.0.1)\n"
            "  --port N             TCP port (required)\n"
            "  --servername NAME    name (or IP) the server certificate must carry; SNI and\n"
            "                       Host header (localhost)\n"
            "  --mode keepalive|handshake\n"
            "                       keepalive: requests back to back on open connections;\n"
            "                       handshake: one request per new connection, no resumption\n"
            "  --connections N      concurrent connections, spread over the threads (64)\n"
            "  --threads N          event-loop threads (1)\n"
            "  --duration SEC       hard cap on the run (10, at most %d)\n"
            "  --requests N         stop after N requests have been started (no cap)\n"
            "  --timeout MS         a request not answered in MS is an error (5000)\n"
            "  --method POST|GET    POST sends a telemetry body (POST)\n"
            "  --path PATH          request path (/api/telemetry)\n"
            "  --devices N          the body's device_id cycles over dev-0..dev-N-1 (100)\n"
            "  --cert, --key FILE   client certificate (chain) and key, PEM\n"
            "  --ca FILE            CA certificate(s) the server certificate must chain to\n",
            LG_MAX_DURATION);
}

static bool parse_uint(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool path_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > LG_PATH_MAX || p[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return false;
    return true;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > LG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_loadgen: %s needs a value (or is unknown)\n", o);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long long n = 0;
        bool ok = true;
        if (strcmp(o, "--host") == 0) {
            cfg.host = v;
        } else if (strcmp(o, "--port") == 0) {
            ok = parse_uint(v, 1, 65535, &n);
            cfg.port = (int)n;
        } else if (strcmp(o, "--servername") == 0) {
            ok = name_ok(v);
            if (ok)
                snprintf(cfg.servername, sizeof(cfg.servername), "%s", v);
        } else if (strcmp(o, "--mode") == 0) {
            ok = strcmp(v, "keepalive") == 0 || strcmp(v, "handshake") == 0;
            cfg.mode = strcmp(v, "handshake") == 0 ? MODE_HANDSHAKE : MODE_KEEPALIVE;
        } else if (strcmp(o, "--connections") == 0) {
            ok = parse_uint(v, 1, LG_MAX_CONNECTIONS, &n);
            cfg.connections = (unsigned)n;
        } else if (strcmp(o, "--threads") == 0) {
            ok = parse_uint(v, 1, LG_MAX_THREADS, &n);
            cfg.threads = (unsigned)n;
        } else if (strcmp(o, "--duration") == 0) {
            ok = parse_uint(v, 1, LG_MAX_DURATION, &n);
            cfg.duration_s = (unsigned)n;
        } else if (strcmp(o, "--requests") == 0) {
            ok = parse_uint(v, 1, UINT64_MAX / 2, &n);
            cfg.requests = n;
        } else if (strcmp(o, "--timeout") == 0) {
            ok = parse_uint(v, 1, 600000, &n);
            cfg.timeout_ms = (unsigned)n;
        } else if (strcmp(o, "--method") == 0) {
            ok = strcmp(v, "POST") == 0 || strcmp(v, "GET") == 0;
            cfg.post = strcmp(v, "POST") == 0;
        } else if (strcmp(o, "--path") == 0) {
            ok = path_ok(v);
            cfg.path = v;
        } else if (strcmp(o, "--devices") == 0) {
            ok = parse_uint(v, 1, LG_MAX_DEVICES, &n);
            cfg.devices = (unsigned)n;
        } else if (strcmp(o, "--cert") == 0) {
            cfg.cert = v;
        } else if (strcmp(o, "--key") == 0) {
            cfg.key = v;
        } else if (strcmp(o, "--ca") == 0) {
            cfg.ca = v;
        } else {
            fprintf(stderr, "bench_loadgen: unknown option %s\n", o);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "bench_loadgen: bad value for %s: %s\n", o, v);
            return 2;
        }
    }
    if (cfg.port == 0 || cfg.cert == NULL || cfg.key == NULL || cfg.ca == NULL) {
        fprintf(stderr, "bench_loadgen: --port, --cert, --key and --ca are required\n");
        usage(stderr);
        return 2;
    }
    if (cfg.threads > cfg.connections)
        cfg.threads = cfg.connections;
    if (inet_pton(AF_INET, cfg.host, &cfg.addr.sin_addr) != 1) {
        fprintf(stderr, "bench_loadgen: bad --host %s\n", cfg.host);
        return 2;
    }
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_port = htons((uint16_t)cfg.port);
    return 0;
}

/* ---- main ------------------------------------------------------------------------- */

static struct worker workers[LG_MAX_THREADS];

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
        return self_test();
    int rc = parse_args(argc, argv);
    if (rc != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    /* Every connection is a descriptor: raise the soft limit as far as allowed, and refuse
     * a run that cannot open them all rather than count EMFILE as the server's errors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)cfg.connections + 32 + cfg.threads > rl.rlim_cur) {
        fprintf(stderr, "bench_loadgen: %u connections need more descriptors than ulimit -n %llu\n",
                cfg.connections, (unsigned long long)rl.rlim_cur);
        return 1;
    }
    if (setup_tls() != 0)
        return 1;

    unsigned per = cfg.connections / cfg.threads, extra = cfg.connections % cfg.threads;
    for (unsigned t = 0; t < cfg.threads; t++) {
        struct worker *w = &workers[t];
        w->index = t;
        w->nconns = per + (t < extra ? 1 : 0);
        w->next_device = t; /* threads start on different devices */
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->conns = calloc(w->nconns, sizeof(*w->conns));
        if (w->ep < 0 || w->conns == NULL)
            return setup_fail("out of resources (epoll or memory)");
        for (unsigned i = 0; i < w->nconns; i++) {
            w->conns[i].fd = -1;
            w->conns[i].state = C_IDLE;
        }
    }

    start_ns = now_ns();
    deadline_ns = start_ns + (uint64_t)cfg.duration_s * 1000000000u;
    for (unsigned t = 0; t < cfg.threads; t++)
        if (pthread_create(&workers[t].tid, NULL, worker_run, &workers[t]) != 0)
            return setup_fail("pthread_create failed");
    for (unsigned t = 0; t < cfg.threads; t++)
        pthread_join(workers[t].tid, NULL);
    uint64_t end_ns = now_ns();

    struct hist *all = calloc(1, sizeof(*all));
    if (all == NULL)
        return setup_fail("out of memory");
    uint64_t completed = 0, handshakes = 0, status[6] = {0}, errors[E_KINDS] = {0};
    const char *last_error = NULL;
    for (unsigned t = 0; t < cfg.threads; t++) {
        struct worker *w = &workers[t];
        hist_merge(all, &w->hist);
        completed += w->completed;
        handshakes += w->handshakes;
        for (int k = 0; k < 6; k++)
            status[k] += w->status_class[k];
        for (int k = 0; k < E_KINDS; k++)
            errors[k] += w->errors[k];
        if (w->last_error != NULL)
            last_error = w->last_error;
        free(w->conns);
        close(w->ep);
    }
    uint64_t error_total = 0;
    for (int k = 0; k < E_KINDS; k++)
        error_total += errors[k];
    double seconds = (double)(end_ns - start_ns) / 1e9;
    double rps = seconds > 0 ? (double)completed / seconds : 0.0;
    double hps = seconds > 0 ? (double)handshakes / seconds : 0.0;
    double p50 = hist_quantile_ms(all, 0.50), p99 = hist_quantile_ms(all, 0.99),
           p999 = hist_quantile_ms(all, 0.999), pmax = (double)all->max_us / 1000.0;
    const char *mode = cfg.mode == MODE_KEEPALIVE ? "keepalive" : "handshake";

    printf("%s %s https://%s:%d%s: %u connections, %u thread(s), %.2f s\n", mode,
           cfg.post ? "POST" : "GET", cfg.host, cfg.port, cfg.path, cfg.connections, cfg.threads,
           seconds);
    printf("  requests   %llu completed, %.0f/s; %llu TLS handshakes, %.0f/s\n",
           (unsigned long long)completed, rps, (unsigned long long)handshakes, hps);
    printf("  latency    p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n", p50, p99, p999,
           pmax);
    printf("  status     2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu, other %llu\n",
           (unsigned long long)status[2], (unsigned long long)status[3],
           (unsigned long long)status[4], (unsigned long long)status[5],
           (unsigned long long)(status[0] + status[1]));
    printf("  errors     %llu", (unsigned long long)error_total);
    for (int k = 0; k < E_KINDS; k++)
        if (errors[k] != 0)
            printf(", %s %llu", err_names[k], (unsigned long long)errors[k]);
    if (last_error != NULL)
        printf(" (last: %s)", last_error);
    printf("\n");
    printf("mode=%s requests=%llu seconds=%.3f rps=%.1f handshakes=%llu hps=%.1f p50_ms=%.3f "
           "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f status_2xx=%llu status_3xx=%llu "
           "status_4xx=%llu status_5xx=%llu status_other=%llu errors=%llu",
           mode, (unsigned long long)completed, seconds, rps, (unsigned long long)handshakes, hps,
           p50, p99, p999, pmax, (unsigned long long)status[2], (unsigned long long)status[3],
           (unsigned long long)status[4], (unsigned long long)status[5],
           (unsigned long long)(status[0] + status[1]), (unsigned long long)error_total);
    for (int k = 0; k < E_KINDS; k++)
        printf(" err_%s=%llu", err_names[k], (unsigned long long)errors[k]);
    printf("\n");
    free(all);
    SSL_CTX_free(ssl_ctx);
    if (completed == 0) {
        fprintf(stderr, "bench_loadgen: no request completed%s%s\n",
                last_error ? "; last error: " : "", last_error ? last_error : "");
        return 1;
    }
    return 0;
}
