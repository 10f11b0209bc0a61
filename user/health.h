/* SPDX-License-Identifier: MIT */
#ifndef BATON_HEALTH_H
#define BATON_HEALTH_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include <linux/types.h>

#define HC_PATH_MAX  256	  /* an HTTP path is shorter than this */
#define HC_LINE_MAX  1024	  /* longest status line, without its line end */
#define HC_DRAIN_MAX (256 * 1024) /* response bytes read after the status line, at most */
#define HC_REQ_MAX   512	  /* the whole GET request */

enum hc_kind { HC_TCP = 1, HC_HTTP = 2 };
enum hc_result { HC_PENDING = 0, HC_PASS = 1, HC_FAIL = 2 };

/*
 * One check of one instance.  The agent reads fd, sport and detail; the rest
 * belongs to health.c.  A zeroed struct holds no socket (fd 0 is not taken
 * for one): hc_end() on it does nothing.
 */
struct hcheck {
	int fd;	   /* -1 or the check's socket, from hc_begin() to hc_end() */
	int kind;  /* enum hc_kind */
	int state; /* where the check is; 0: no socket */
	int result;
	int code; /* HTTP status, once the status line is in */
	struct sockaddr_storage dst;
	socklen_t dstlen;
	size_t reqlen, sent;
	size_t inlen; /* bytes of the status line collected in in[] */
	size_t nread; /* response bytes read, in[] included */
	char req[HC_REQ_MAX];
	char in[HC_LINE_MAX + 2];
	__u16 sport;		     /* local port, host order, bound by hc_begin() */
	struct sockaddr_storage src; /* local address and port, bound by hc_begin() */
	char detail[128];	     /* why it passed or failed: "HTTP 200", "connect: ..." */
};

/*
 * Create a non-blocking socket bound to an ephemeral port on the address it
 * will connect to (a wildcard dst is checked on loopback: 0.0.0.0 ->
 * 127.0.0.1, :: -> ::1) and fill h->sport and h->src, so the caller can
 * steer connections from that address and port before the SYN leaves.
 * path: the HTTP path for HC_HTTP ('/' then printable ASCII, no spaces,
 * shorter than HC_PATH_MAX), ignored for HC_TCP.  Returns 0, or -errno with
 * a one-line reason in err and h->fd -1.  Does not connect.
 */
int hc_begin(struct hcheck *h, enum hc_kind kind, const struct sockaddr *dst, socklen_t len,
	     const char *path, char *err, size_t errlen);
/* Start the connect: HC_PENDING, or HC_FAIL with the reason in h->detail. */
int hc_connect(struct hcheck *h);
/* Events to wait for on h->fd now: EPOLLOUT while connecting or sending,
 * EPOLLIN while reading, 0 once the result is known. */
unsigned hc_events(const struct hcheck *h);
/*
 * Advance when h->fd is ready (a spurious call is harmless); never blocks.
 * Returns HC_PENDING, or HC_PASS / HC_FAIL with h->detail saying why, e.g.
 * "HTTP 200", "HTTP 503", "connect: Connection refused", "closed before a
 * status line", "not an HTTP response".  The socket stays open until hc_end().
 */
int hc_step(struct hcheck *h);
/* Close the socket; safe twice, and on a zeroed or failed struct. */
void hc_end(struct hcheck *h);
/*
 * Parse an HTTP/1.x status line at the start of buf ("HTTP/1.1 200 OK\r\n";
 * a bare LF also ends it).  1: complete, *code set (100..599); 0: need more
 * bytes; -1: not HTTP/1.x, malformed, or longer than HC_LINE_MAX bytes.
 */
int hc_parse_status(const char *buf, size_t len, int *code);

#endif /* BATON_HEALTH_H */
