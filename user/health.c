/* SPDX-License-Identifier: MIT */
/*
 * One health check of one instance, driven from the agent's epoll loop: the
 * agent owns epoll and the deadline, this file owns the check's socket and
 * protocol, and never blocks.
 *
 * Two phases, because the agent steers the check to the instance under test
 * by its source port: hc_begin() binds the port, the agent pins it in the
 * steering map, and only then does hc_connect() send the SYN.
 *
 * A check must not look like a failing client to the server.  close() on a
 * socket with unread received data sends a RST instead of a FIN, which the
 * server sees as ECONNRESET (and counts, and logs).  So once an HTTP check
 * has its status line it keeps reading, and dropping, the rest of the
 * response until the server closes (the request says "Connection: close"),
 * and reports only then: hc_end()'s close() finds nothing unread and sends a
 * FIN.  What it reads is capped at HC_DRAIN_MAX so an endless response
 * cannot hold the check open: at the cap it reports the status anyway, says
 * so in detail, and shuts down its side with a FIN; a server that still
 * sends after that can get a RST when the agent closes.  A response that is
 * not HTTP is reported at once, without draining, as such a server may never
 * close.  A check ended early (at health-timeout, or when a rollout stops
 * checking) drops what already came before it closes.  A TCP check exchanges
 * no data, so its close is always a FIN.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "health.h"

enum {
	HCS_NONE = 0, /* no socket */
	HCS_BEGUN,    /* bound, the agent pins the port, no SYN yet */
	HCS_CONNECTING,
	HCS_SENDING,  /* HTTP: the request */
	HCS_READING,  /* HTTP: the status line */
	HCS_DRAINING, /* HTTP: the rest of the response, until EOF */
	HCS_DONE,     /* result and detail are set */
};

static void __attribute__((format(printf, 3, 4)))
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int __attribute__((format(printf, 3, 4)))
finish(struct hcheck *h, int result, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->detail, sizeof(h->detail), fmt, ap);
	va_end(ap);
	h->result = result;
	h->state = HCS_DONE;
	return result;
}

/* The status line is in: the result follows from the code, detail adds how it ended. */
static void report(struct hcheck *h, const char *how)
{
	finish(h, h->code >= 200 && h->code <= 299 ? HC_PASS : HC_FAIL, "HTTP %d%s", h->code, how);
}

static int check_path(const char *path, char *err, size_t errlen)
{
	size_t i, n;

	if (!path) {
		seterr(err, errlen, "an HTTP check needs a path (e.g. /health)");
		return -EINVAL;
	}
	n = strlen(path);
	if (n >= HC_PATH_MAX) {
		seterr(err, errlen, "HTTP path is %zu bytes long, the limit is %d", n,
		       HC_PATH_MAX - 1);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = path[i];

		if (c > ' ' && c < 0x7f)
			continue;
		seterr(err, errlen,
		       "HTTP path has %s at offset %zu (only printable ASCII without spaces; "
		       "percent-encode the rest)",
		       c == ' '		      ? "a space"
		       : c < ' ' || c == 0x7f ? "a control character"
					      : "a non-ASCII byte",
		       i);
		return -EINVAL;
	}
	if (path[0] != '/') {
		seterr(err, errlen, "HTTP path \"%s\" must start with '/'", path);
		return -EINVAL;
	}
	return 0;
}

/*
 * Copy dst into h, a wildcard turned into loopback, and write its
 * "host:port" as a Host header value.
 */
static int set_dst(struct hcheck *h, const struct sockaddr *dst, socklen_t len, char *host,
		   size_t hostlen, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN];
	int port;

	if (!dst || len < sizeof(sa_family_t)) {
		seterr(err, errlen, "no address to check");
		return -EINVAL;
	}
	if (dst->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&h->dst;

		if (len < sizeof(*sin)) {
			seterr(err, errlen, "IPv4 address length %u is too short", (unsigned)len);
			return -EINVAL;
		}
		memcpy(sin, dst, sizeof(*sin));
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		h->dstlen = sizeof(*sin);
		port = ntohs(sin->sin_port);
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		snprintf(host, hostlen, "%s:%d", addr, port);
	} else if (dst->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->dst;

		if (len < sizeof(*sin6)) {
			seterr(err, errlen, "IPv6 address length %u is too short", (unsigned)len);
			return -EINVAL;
		}
		memcpy(sin6, dst, sizeof(*sin6));
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			sin6->sin6_addr = in6addr_loopback;
		h->dstlen = sizeof(*sin6);
		port = ntohs(sin6->sin6_port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		snprintf(host, hostlen, "[%s]:%d", addr, port);
	} else {
		seterr(err, errlen, "cannot check address family %d (only IPv4 and IPv6)",
		       dst->sa_family);
		return -EAFNOSUPPORT;
	}
	if (!port) {
		seterr(err, errlen, "cannot check %s: port 0", host);
		return -EINVAL;
	}
	return 0;
}

int hc_begin(struct hcheck *h, enum hc_kind kind, const struct sockaddr *dst, socklen_t len,
	     const char *path, char *err, size_t errlen)
{
	struct sockaddr_storage local;
	socklen_t llen;
	char host[INET6_ADDRSTRLEN + 8];
	int n, e, fd;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	if (kind != HC_TCP && kind != HC_HTTP) {
		seterr(err, errlen, "unknown health check kind %d", (int)kind);
		return -EINVAL;
	}
	h->kind = kind;
	e = set_dst(h, dst, len, host, sizeof(host), err, errlen);
	if (e)
		return e;
	if (kind == HC_HTTP) {
		e = check_path(path, err, errlen);
		if (e)
			return e;
		n = snprintf(h->req, sizeof(h->req),
			     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: baton-health\r\n"
			     "Connection: close\r\n\r\n",
			     path, host);
		if (n < 0 || (size_t)n >= sizeof(h->req)) {
			seterr(err, errlen, "HTTP request to %s is too long", host);
			return -EINVAL;
		}
		h->reqlen = n;
	}

	fd = socket(h->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0) {
		e = errno;
		seterr(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	/*
	 * Port 0: the kernel picks a free port now, not at connect(), so the
	 * agent knows it before the SYN.  The address is the one checked, so
	 * the check stays on the node and leaves from where it arrives.
	 */
	memcpy(&local, &h->dst, h->dstlen);
	if (local.ss_family == AF_INET) {
		((struct sockaddr_in *)&local)->sin_port = 0;
	} else {
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
		((struct sockaddr_in6 *)&local)->sin6_flowinfo = 0;
	}
	if (bind(fd, (struct sockaddr *)&local, h->dstlen) < 0) {
		e = errno;
		seterr(err, errlen, "bind to check %s: %s", host, strerror(e));
		goto fail;
	}
	llen = sizeof(local);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0) {
		e = errno;
		seterr(err, errlen, "getsockname: %s", strerror(e));
		goto fail;
	}
	h->sport = ntohs(local.ss_family == AF_INET ? ((struct sockaddr_in *)&local)->sin_port
						    : ((struct sockaddr_in6 *)&local)->sin6_port);
	h->src = local;
	h->fd = fd;
	h->state = HCS_BEGUN;
	return 0;
fail:
	close(fd);
	return -e;
}

int hc_connect(struct hcheck *h)
{
	if (h->state == HCS_NONE) {
		snprintf(h->detail, sizeof(h->detail),
			 "no socket (hc_begin failed or was not called)");
		h->result = HC_FAIL;
		return HC_FAIL;
	}
	if (h->state != HCS_BEGUN)
		return h->state == HCS_DONE ? h->result : HC_PENDING;
	/* EINTR: a non-blocking connect goes on regardless, as for EINPROGRESS. */
	if (connect(h->fd, (struct sockaddr *)&h->dst, h->dstlen) == 0 || errno == EINPROGRESS ||
	    errno == EINTR) {
		h->state = HCS_CONNECTING;
		return HC_PENDING;
	}
	return finish(h, HC_FAIL, "connect: %s", strerror(errno));
}

unsigned hc_events(const struct hcheck *h)
{
	switch (h->state) {
	case HCS_CONNECTING:
	case HCS_SENDING:
		return EPOLLOUT;
	case HCS_READING:
	case HCS_DRAINING:
		return EPOLLIN;
	default:
		return 0;
	}
}

/* Each step returns 1 when it moved the check on, 0 when it waits or is done. */
static int step_connect(struct hcheck *h)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(int);
	int e = 0;

	if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e) {
		finish(h, HC_FAIL, "connect: %s", strerror(e));
		return 0;
	}
	/* SO_ERROR is 0 also while the handshake is on: only a peer means done. */
	len = sizeof(peer);
	if (getpeername(h->fd, (struct sockaddr *)&peer, &len) < 0) {
		if (errno == ENOTCONN)
			return 0;
		finish(h, HC_FAIL, "connect: %s", strerror(errno));
		return 0;
	}
	if (h->kind == HC_TCP) {
		finish(h, HC_PASS, "connected");
		return 0;
	}
	h->state = HCS_SENDING;
	return 1;
}

static int step_send(struct hcheck *h)
{
	ssize_t n;

	while (h->sent < h->reqlen) {
		n = send(h->fd, h->req + h->sent, h->reqlen - h->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			finish(h, HC_FAIL, "send: %s", strerror(errno));
			return 0;
		}
		h->sent += n;
	}
	h->state = HCS_READING;
	return 1;
}

static int step_read(struct hcheck *h)
{
	ssize_t n;
	int r;

	for (;;) {
		/* hc_parse_status() rejects a full in[] without a line end. */
		if (h->inlen >= sizeof(h->in)) {
			finish(h, HC_FAIL, "not an HTTP response");
			return 0;
		}
		n = recv(h->fd, h->in + h->inlen, sizeof(h->in) - h->inlen, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			finish(h, HC_FAIL, "recv: %s", strerror(errno));
			return 0;
		}
		if (n == 0) {
			finish(h, HC_FAIL, "closed before a status line");
			return 0;
		}
		h->inlen += n;
		r = hc_parse_status(h->in, h->inlen, &h->code);
		if (r < 0) {
			finish(h, HC_FAIL, "not an HTTP response");
			return 0;
		}
		if (r > 0) {
			h->nread = h->inlen;
			h->state = HCS_DRAINING;
			return 1;
		}
	}
}

/* Read and drop the rest of the response until EOF: see the top of the file. */
static int step_drain(struct hcheck *h)
{
	char buf[4096], how[96];
	size_t want;
	ssize_t n;

	for (;;) {
		/* One byte over the cap tells a response of exactly the cap from a longer one. */
		if (h->nread > HC_DRAIN_MAX) {
			shutdown(h->fd, SHUT_WR);
			snprintf(how, sizeof(how), ", rest of the response not read (over %d KiB)",
				 HC_DRAIN_MAX / 1024);
			report(h, how);
			return 0;
		}
		want = HC_DRAIN_MAX + 1 - h->nread;
		if (want > sizeof(buf))
			want = sizeof(buf);
		n = recv(h->fd, buf, want, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			/* The server has answered: its status counts, the error is noted. */
			snprintf(how, sizeof(how), ", then recv: %s", strerror(errno));
			report(h, how);
			return 0;
		}
		if (n == 0) {
			report(h, "");
			return 0;
		}
		h->nread += n;
	}
}

int hc_step(struct hcheck *h)
{
	int more = 1;

	while (more) {
		switch (h->state) {
		case HCS_CONNECTING:
			more = step_connect(h);
			break;
		case HCS_SENDING:
			more = step_send(h);
			break;
		case HCS_READING:
			more = step_read(h);
			break;
		case HCS_DRAINING:
			more = step_drain(h);
			break;
		case HCS_DONE:
			return h->result;
		case HCS_BEGUN:
			return finish(h, HC_FAIL, "hc_step before hc_connect");
		default:
			snprintf(h->detail, sizeof(h->detail),
				 "no socket (hc_begin failed or was not called)");
			h->result = HC_FAIL;
			return HC_FAIL;
		}
	}
	return h->state == HCS_DONE ? h->result : HC_PENDING;
}

void hc_end(struct hcheck *h)
{
	char sink[4096];
	int i;

	/* state, not fd, says whether a socket is open: a zeroed struct has fd 0. */
	if (h->state != HCS_NONE && h->fd >= 0) {
		/*
		 * A check ended before its answer was read (health-timeout, or a
		 * rollout that stops checking): drop what already came, so that
		 * close() sends a FIN and not a RST.  Bounded, never blocks.
		 */
		for (i = 0; i < 16 && recv(h->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
		close(h->fd);
	}
	h->fd = -1;
	h->state = HCS_NONE;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int hc_parse_status(const char *buf, size_t len, int *code)
{
	static const char version[] = "HTTP/1.";
	const char *nl;
	size_t i, end;
	int c;

	if (!len)
		return 0;
	/* What is in must be a prefix of "HTTP/1.", so other protocols fail fast. */
	if (memcmp(buf, version, len < 7 ? len : 7))
		return -1;
	nl = memchr(buf, '\n', len < HC_LINE_MAX + 2 ? len : HC_LINE_MAX + 2);
	if (!nl) {
		/* Too long already, unless the last byte in is the CR of a CRLF. */
		if (len > HC_LINE_MAX + 1 || (len == HC_LINE_MAX + 1 && buf[HC_LINE_MAX] != '\r'))
			return -1;
		return 0;
	}
	end = nl - buf;
	if (end && buf[end - 1] == '\r')
		end--;
	if (end > HC_LINE_MAX)
		return -1;
	/* "HTTP/1.x 200" then the end or " reason"; servers may leave out the reason. */
	if (end < 12 || !is_digit(buf[7]) || buf[8] != ' ')
		return -1;
	if (!is_digit(buf[9]) || !is_digit(buf[10]) || !is_digit(buf[11]))
		return -1;
	if (end > 12 && buf[12] != ' ')
		return -1;
	for (i = 13; i < end; i++) {
		c = (unsigned char)buf[i];
		if ((c < ' ' && c != '\t') || c == 0x7f)
			return -1;
	}
	c = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (c < 100 || c > 599)
		return -1;
	*code = c;
	return 1;
}
