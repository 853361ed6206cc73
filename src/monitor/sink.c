/*
 * Event sinks: a JSON lines file and RFC 5424 syslog (see include/iotsec/sink.h).
 *
 * Both build the whole record in memory and hand it to the kernel in one call (write or
 * send), so a record is never half-written by us and records from several processes do
 * not interleave. Sockets are connect()ed once at open: each send then needs no address,
 * and a UDP receiver that goes away shows up as ECONNREFUSED on a later send.
 */
#include "iotsec/sink.h"

#include "iotsec/buf.h"
#include "iotsec/event.h"
#include "iotsec/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum sink_kind { SINK_FILE, SINK_SYSLOG };

struct iotsec_sink {
    enum sink_kind kind;
    int fd;      /* file, or UDP socket; -1 when absent */
    int unix_fd; /* unix datagram socket; -1 when absent */
    long procid;
    struct iotsec_syslog_config config; /* strings point into the copies below */
    char hostname[256];
    char app_name[49];
    char path[108];
    struct iotsec_buf line;
};

static iotsec_result sink_alloc(enum sink_kind kind, struct iotsec_sink **out)
{
    struct iotsec_sink *s = calloc(1, sizeof(*s));
    IOTSEC_ENSURE_ALLOC(s);
    s->kind = kind;
    s->fd = -1;
    s->unix_fd = -1;
    iotsec_buf_set_max(&s->line, IOTSEC_EVENT_JSON_MAX + 1024);
    *out = s;
    return IOTSEC_RESULT_OK;
}

void iotsec_sink_close(struct iotsec_sink *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->unix_fd >= 0)
        close(s->unix_fd);
    iotsec_buf_free(&s->line);
    free(s);
}

iotsec_result iotsec_sink_file_open(const char *path, struct iotsec_sink **out)
{
    IOTSEC_ENSURE(path != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "sink: no path");
    *out = NULL;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    IOTSEC_ENSURE(fd >= 0, IOTSEC_ERR_IO, "event file %s: %s", path, strerror(errno));
    struct iotsec_sink *s;
    if (!iotsec_ok(sink_alloc(SINK_FILE, &s))) {
        close(fd);
        return IOTSEC_RESULT_ERR;
    }
    s->fd = fd;
    *out = s;
    return IOTSEC_RESULT_OK;
}

/* RFC 5424 section 6: HOSTNAME, APP-NAME and MSGID are PRINTUSASCII (33..126). */
static bool printusascii(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
            return false;
    }
    return true;
}

static iotsec_result connect_udp(struct iotsec_sink *s, const char *host, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof(*v6);
    } else {
        IOTSEC_BAIL(IOTSEC_ERR_CONFIG, "syslog: '%.64s' is not an IP address literal", host);
    }
    s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    IOTSEC_ENSURE(s->fd >= 0, IOTSEC_ERR_IO, "syslog: socket: %s", strerror(errno));
    IOTSEC_ENSURE(connect(s->fd, (struct sockaddr *)&ss, len) == 0, IOTSEC_ERR_IO,
                  "syslog: udp %s port %u: %s", host, port, strerror(errno));
    return IOTSEC_RESULT_OK;
}

static iotsec_result connect_unix(struct iotsec_sink *s, const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    IOTSEC_ENSURE(strlen(path) < sizeof(sun.sun_path), IOTSEC_ERR_CONFIG,
                  "syslog: socket path is longer than %zu bytes", sizeof(sun.sun_path) - 1);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    s->unix_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    IOTSEC_ENSURE(s->unix_fd >= 0, IOTSEC_ERR_IO, "syslog: socket: %s", strerror(errno));
    IOTSEC_ENSURE(connect(s->unix_fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, IOTSEC_ERR_IO,
                  "syslog: %s: %s", path, strerror(errno));
    return IOTSEC_RESULT_OK;
}

static iotsec_result check_syslog_config(const struct iotsec_syslog_config *c)
{
    IOTSEC_ENSURE(c->udp_port != 0 || c->unix_path != NULL, IOTSEC_ERR_CONFIG,
                  "syslog: give a UDP port or a unix socket path");
    IOTSEC_ENSURE(c->facility <= 23, IOTSEC_ERR_CONFIG, "syslog: facility %u is out of range 1..23",
                  c->facility);
    IOTSEC_ENSURE(c->hostname == NULL || c->hostname[0] == '\0' || printusascii(c->hostname, 255),
                  IOTSEC_ERR_CONFIG, "syslog: hostname must be 1-255 printable ASCII characters");
    IOTSEC_ENSURE(c->app_name == NULL || printusascii(c->app_name, 48), IOTSEC_ERR_CONFIG,
                  "syslog: app name must be 1-48 printable ASCII characters");
    IOTSEC_ENSURE(c->max_datagram == 0 || (c->max_datagram >= IOTSEC_SYSLOG_DATAGRAM_MIN &&
                                           c->max_datagram <= IOTSEC_SYSLOG_DATAGRAM_MAX),
                  IOTSEC_ERR_CONFIG, "syslog: max datagram %zu is out of range %d..%d",
                  c->max_datagram, IOTSEC_SYSLOG_DATAGRAM_MIN, IOTSEC_SYSLOG_DATAGRAM_MAX);
    return IOTSEC_RESULT_OK;
}

iotsec_result iotsec_sink_syslog_open(const struct iotsec_syslog_config *config,
                                      struct iotsec_sink **out)
{
    IOTSEC_ENSURE(config != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG, "syslog: no config");
    *out = NULL;
    IOTSEC_GUARD(check_syslog_config(config));
    struct iotsec_sink *s;
    IOTSEC_GUARD(sink_alloc(SINK_SYSLOG, &s));
    s->procid = (long)getpid();
    s->config = *config;
    snprintf(s->hostname, sizeof(s->hostname), "%s", config->hostname ? config->hostname : "");
    snprintf(s->app_name, sizeof(s->app_name), "%s", config->app_name ? config->app_name : "");
    snprintf(s->path, sizeof(s->path), "%s", config->unix_path ? config->unix_path : "");
    s->config.hostname = s->hostname;
    s->config.app_name = config->app_name != NULL ? s->app_name : NULL;
    s->config.unix_path = config->unix_path != NULL ? s->path : NULL;
    s->config.udp_host = NULL; /* only needed to connect */
    iotsec_result r = IOTSEC_RESULT_OK;
    if (config->udp_port != 0)
        r = connect_udp(s, config->udp_host != NULL ? config->udp_host : "127.0.0.1",
                        config->udp_port);
    if (iotsec_ok(r) && config->unix_path != NULL)
        r = connect_unix(s, config->unix_path);
    if (!iotsec_ok(r)) {
        iotsec_sink_close(s);
        return r;
    }
    *out = s;
    return IOTSEC_RESULT_OK;
}

static int syslog_severity(enum iotsec_store_severity sev)
{
    switch (sev) {
    case IOTSEC_STORE_SEVERITY_CRITICAL:
        return 1; /* alert */
    case IOTSEC_STORE_SEVERITY_HIGH:
        return 3; /* err */
    case IOTSEC_STORE_SEVERITY_MEDIUM:
        return 4; /* warning */
    default:
        return 5; /* notice */
    }
}

static iotsec_result format_once(const struct iotsec_syslog_config *c,
                                 const struct iotsec_store_event *ev, long procid,
                                 struct iotsec_buf *out)
{
    unsigned facility = c->facility != 0 ? c->facility : IOTSEC_SYSLOG_FACILITY_AUTHPRIV;
    char ts[IOTSEC_TIME_STR_MAX];
    struct iotsec_time t = {.sec = ev->ts / 1000, .nsec = (uint32_t)(ev->ts % 1000) * 1000000u};
    IOTSEC_ENSURE(ev->ts >= 0, IOTSEC_ERR_TIME, "syslog: negative event time");
    IOTSEC_GUARD(iotsec_time_format(t, IOTSEC_TIME_MILLIS, ts));
    /* MSGID is at most 32 characters; longer types are cut (ours are all shorter). */
    char msgid[33];
    size_t mlen = strnlen(ev->event_type, sizeof(msgid) - 1);
    memcpy(msgid, ev->event_type, mlen);
    msgid[mlen] = '\0';
    if (!printusascii(msgid, 32))
        snprintf(msgid, sizeof(msgid), "-");
    const char *sev = iotsec_store_severity_name(ev->severity);
    IOTSEC_ENSURE(sev != NULL, IOTSEC_ERR_INVALID_ARG, "syslog: bad severity");
    char head[512];
    /* SD-PARAM values here are digits and severity words: nothing needs escaping. */
    int n = snprintf(
        head, sizeof(head), "<%u>1 %s %s %s %ld %s [iotsec@32473 seq=\"%lld\" severity=\"%s\"] ",
        facility * 8 + (unsigned)syslog_severity(ev->severity), ts,
        c->hostname != NULL && c->hostname[0] != '\0' ? c->hostname : "-",
        c->app_name != NULL ? c->app_name : "iotsec", procid, msgid, (long long)ev->seq, sev);
    IOTSEC_ENSURE(n > 0 && (size_t)n < sizeof(head), IOTSEC_ERR_TOO_LARGE,
                  "syslog: header too long");
    IOTSEC_GUARD(iotsec_buf_append(out, head, (size_t)n));
    return iotsec_event_record_to_json(ev, out);
}

iotsec_result iotsec_sink_syslog_format(const struct iotsec_syslog_config *config,
                                        const struct iotsec_store_event *ev, long procid,
                                        struct iotsec_buf *out)
{
    IOTSEC_ENSURE(config != NULL && ev != NULL && out != NULL, IOTSEC_ERR_INVALID_ARG,
                  "syslog: no event");
    size_t max = config->max_datagram != 0 ? config->max_datagram : IOTSEC_SYSLOG_DATAGRAM_DEFAULT;
    size_t start = out->len;
    IOTSEC_GUARD(format_once(config, ev, procid, out));
    if (out->len - start <= max)
        return IOTSEC_RESULT_OK;
    /* Too long for one datagram: keep every field but the details. */
    struct iotsec_store_event cut = *ev;
    cut.details = (char *)(uintptr_t) "{\"truncated\":true}";
    out->len = start;
    IOTSEC_GUARD(format_once(config, &cut, procid, out));
    IOTSEC_ENSURE(out->len - start <= max, IOTSEC_ERR_TOO_LARGE,
                  "syslog: the message does not fit in %zu bytes", max);
    return IOTSEC_RESULT_OK;
}

static iotsec_result write_all(int fd, const uint8_t *p, size_t n)
{
    /* One write(2) normally takes the whole line; loop only on a signal or a short
     * write (a full disk shows up as an error on the next call). */
    for (int tries = 0; n > 0 && tries < 100; tries++) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        IOTSEC_ENSURE(w > 0, IOTSEC_ERR_IO, "event file: write: %s",
                      w < 0 ? strerror(errno) : "nothing written");
        p += w;
        n -= (size_t)w;
    }
    IOTSEC_ENSURE(n == 0, IOTSEC_ERR_IO, "event file: write did not complete");
    return IOTSEC_RESULT_OK;
}

static iotsec_result send_datagram(int fd, const struct iotsec_buf *b, const char *what)
{
    for (int tries = 0; tries < 3; tries++) {
        ssize_t w = send(fd, b->ptr, b->len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        IOTSEC_ENSURE(w >= 0, IOTSEC_ERR_IO, "syslog: %s: %s", what, strerror(errno));
        IOTSEC_ENSURE((size_t)w == b->len, IOTSEC_ERR_IO, "syslog: %s: short send", what);
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_BAIL(IOTSEC_ERR_IO, "syslog: %s: interrupted", what);
}

iotsec_result iotsec_sink_write(struct iotsec_sink *s, const struct iotsec_store_event *ev)
{
    IOTSEC_ENSURE(s != NULL && ev != NULL, IOTSEC_ERR_INVALID_ARG, "sink: no event");
    iotsec_buf_reset(&s->line);
    if (s->kind == SINK_FILE) {
        IOTSEC_GUARD(iotsec_event_record_to_json(ev, &s->line));
        IOTSEC_GUARD(iotsec_buf_append_u8(&s->line, '\n'));
        IOTSEC_GUARD(write_all(s->fd, s->line.ptr, s->line.len));
        if (ev->severity == IOTSEC_STORE_SEVERITY_CRITICAL)
            IOTSEC_ENSURE(fdatasync(s->fd) == 0, IOTSEC_ERR_IO, "event file: fdatasync: %s",
                          strerror(errno));
        return IOTSEC_RESULT_OK;
    }
    IOTSEC_GUARD(iotsec_sink_syslog_format(&s->config, ev, s->procid, &s->line));
    iotsec_result r = IOTSEC_RESULT_OK;
    /* Both transports are tried even if the first fails: one working copy is worth it. */
    if (s->fd >= 0)
        r = send_datagram(s->fd, &s->line, "udp");
    if (s->unix_fd >= 0) {
        iotsec_result u = send_datagram(s->unix_fd, &s->line, s->path);
        if (iotsec_ok(r))
            r = u;
    }
    return r;
}
