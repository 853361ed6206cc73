/*
 * Event sinks: where security events go besides the log, for people and their tools.
 *
 * - JSON lines file: one DESIGN.md event object per line, appended with O_APPEND and one
 *   write(2) per line, so lines from several processes sharing the file never interleave
 *   (for lines up to the file system's atomic append size; Linux regular files hold a
 *   whole write together). A critical event is fdatasync()ed before the call returns.
 * - RFC 5424 syslog: one datagram per event over UDP (an address literal, 127.0.0.1 by
 *   default; no name lookups) and/or a unix datagram socket (/dev/log or a collector's
 *   socket). Format:
 *
 *     <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [iotsec@32473 seq="N" severity="S"] MSG
 *
 *   PRI = facility * 8 + syslog severity, with low -> notice (5), medium -> warning (4),
 *   high -> err (3), critical -> alert (1): "alert: action must be taken immediately".
 *   TIMESTAMP is the event's (UTC, milliseconds), MSGID its type, MSG its JSON form
 *   (ASCII, so no BOM is needed). 32473 is the private enterprise number RFC 5612
 *   reserves for documentation; SD-ID "iotsec@32473" is therefore only a local name.
 *   A datagram longer than max_datagram has its details replaced by {"truncated":true}.
 *
 * Nothing is buffered: every write leaves the process before the call returns, so
 * "critical events are flushed at once" holds for every event, and critical ones are
 * additionally made durable (file) or sent as alert (syslog).
 *
 * A sink is used by one thread at a time (the monitor serialises its sinks).
 */
#ifndef IOTSEC_SINK_H
#define IOTSEC_SINK_H

#include "iotsec/buf.h"
#include "iotsec/error.h"
#include "iotsec/store.h"

#include <stddef.h>
#include <stdint.h>

#define IOTSEC_SYSLOG_FACILITY_AUTHPRIV 10
#define IOTSEC_SYSLOG_DATAGRAM_DEFAULT  8192
#define IOTSEC_SYSLOG_DATAGRAM_MIN      480 /* RFC 5426 section 3.2: every receiver takes this */
#define IOTSEC_SYSLOG_DATAGRAM_MAX      65000

struct iotsec_sink;

/* Opens (creating with mode 0600) a JSON lines file for appending. Symbolic links are
 * refused (O_NOFOLLOW). */
IOTSEC_MUST_CHECK iotsec_result iotsec_sink_file_open(const char *path, struct iotsec_sink **out);

struct iotsec_syslog_config {
    const char *udp_host;  /* an IPv4 or IPv6 literal; NULL: "127.0.0.1" when udp_port set */
    uint16_t udp_port;     /* 0: no UDP */
    const char *unix_path; /* NULL: no unix socket */
    unsigned facility;     /* 1..23; 0 means IOTSEC_SYSLOG_FACILITY_AUTHPRIV (facility 0,
                              kern, is for the kernel only) */
    const char *hostname;  /* NULL or "": "-" (the nil value) */
    const char *app_name;  /* NULL: "iotsec" */
    size_t max_datagram;   /* 0: IOTSEC_SYSLOG_DATAGRAM_DEFAULT */
};

IOTSEC_MUST_CHECK iotsec_result iotsec_sink_syslog_open(const struct iotsec_syslog_config *config,
                                                        struct iotsec_sink **out);

/* Writes one stored event. IOTSEC_ERR_IO when it could not be delivered. */
IOTSEC_MUST_CHECK iotsec_result iotsec_sink_write(struct iotsec_sink *sink,
                                                  const struct iotsec_store_event *ev);

/* Formats the RFC 5424 message a syslog sink would send (for tests and tools). */
IOTSEC_MUST_CHECK iotsec_result iotsec_sink_syslog_format(const struct iotsec_syslog_config *config,
                                                          const struct iotsec_store_event *ev,
                                                          long procid, struct iotsec_buf *out);

void iotsec_sink_close(struct iotsec_sink *sink);

#endif
