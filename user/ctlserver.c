/* SPDX-License-Identifier: MIT */
/* The control server; see ctlserver.h.  Requests themselves: requests.c. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent.h"
#include "ctlserver.h"
#include "events.h"
#include "log.h"
#include "requests.h"
#include "services.h"

static int ctlfd = -1;
static char ctl_path[sizeof(((struct agent_conf *)0)->control)];
static gid_t control_gid;
static char control_group[sizeof(((struct agent_conf *)0)->control_group)];
static struct client *clients[MAX_CLIENTS];
static struct client *dead; /* closed in this epoll batch; freed after it */
static struct evsrc ev_ctl;

int ctl_open(const struct agent_conf *a, char *err, size_t errlen)
{
	ctlfd = ctl_listen(a->control, a->control_gid, err, errlen);
	if (ctlfd < 0)
		return -1;
	snprintf(ctl_path, sizeof(ctl_path), "%s", a->control);
	control_gid = a->control_gid;
	snprintf(control_group, sizeof(control_group), "%s", a->control_group);
	ep_add(ctlfd, &ev_ctl, EV_CONTROL, NULL, 0, EPOLLIN);
	return 0;
}

void ctl_close(void)
{
	int i;

	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i])
			client_close(clients[i]);
	ctl_bury();
	if (ctlfd >= 0) {
		close(ctlfd);
		unlink(ctl_path);
	}
	ctlfd = -1;
}

void ctl_bury(void)
{
	while (dead) {
		struct client *c = dead;

		dead = c->next_dead;
		free(c);
	}
}

void reply_ok(struct client *c, const char *message)
{
	reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", message));
}

/* Send what the socket takes now; the rest when it is writable (EPOLLOUT). */
static void client_flush(struct client *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ep_mod(c->fd, &c->ev, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
			return;
		}
		if (n <= 0) {
			log_debug("control client went away before its reply");
			c->out_len = c->out_off = 0;
			return;
		}
		c->out_off += n;
	}
	c->out_len = c->out_off = 0;
	ep_mod(c->fd, &c->ev, EPOLLIN | EPOLLRDHUP);
}

/*
 * Replies are queued on the client and written as its socket takes them,
 * never waiting: a status of many services is longer than a socket buffer.
 * A client that does not read more than CTL_MAX_REPLY behind is dropped.
 */
void reply(struct client *c, json_t *msg)
{
	char *s;
	size_t len;

	if (!c || c->closed) {
		json_decref(msg);
		return;
	}
	s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!s) {
		log_warnx("control: out of memory for a reply to uid %d pid %d", (int)c->uid,
			  (int)c->pid);
		return;
	}
	len = strlen(s);
	if (c->out_off && c->out_off == c->out_len)
		c->out_len = c->out_off = 0;
	if (c->out_len - c->out_off + len + 1 > CTL_MAX_REPLY) {
		log_warnx("control: uid %d pid %d reads no replies (%zu bytes behind); closing",
			  (int)c->uid, (int)c->pid, c->out_len - c->out_off);
		free(s);
		client_close(c);
		return;
	}
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = c->out_len + len + 1 + 4096;
		char *n = realloc(c->out, cap);

		if (!n) {
			free(s);
			log_warnx("control: out of memory for a reply");
			return;
		}
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	free(s);
	client_flush(c);
}

void reply_err(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	reply(c, json_pack("{s:b, s:s}", "ok", 0, "error", buf));
}

void progress(struct client *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!c)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	reply(c, json_pack("{s:s}", "progress", buf));
}

void client_close(struct client *c)
{
	int i;

	if (c->closed)
		return;
	/* Every deploy it waits for goes on without a listener. */
	services_client_gone(c);
	agent_client_gone(c);
	events_client_gone(c);
	/* What is still queued gets one more try (a shutdown's last answer). */
	if (c->out_off < c->out_len)
		send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		     MSG_NOSIGNAL | MSG_DONTWAIT);
	free(c->out);
	c->out = NULL;
	ep_del(c->fd);
	close(c->fd);
	if (c->tfd >= 0) {
		ep_del(c->tfd);
		close(c->tfd);
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] == c)
			clients[i] = NULL;
	/* Later events of this epoll batch may still name c: free it after the batch. */
	c->closed = true;
	c->next_dead = dead;
	dead = c;
}

/* Is uid (primary group gid) a member of group want? */
static bool in_group(uid_t uid, gid_t gid, gid_t want)
{
	gid_t groups[256];
	int n = 256, i;
	struct passwd *pw;

	if (gid == want)
		return true;
	pw = getpwuid(uid);
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

static void refuse(int fd, const char *msg)
{
	json_t *m = json_pack("{s:b, s:s}", "ok", 0, "error", msg);

	ctl_send(fd, m);
	json_decref(m);
	close(fd);
}

/*
 * The client's timer: the deadline for the request being read
 * (CTL_READ_TIMEOUT_MS from its first byte, CT_READ), else its heartbeat
 * if its last request asked for one (CT_HEARTBEAT, periodic), else none.
 * Re-armed when the mode or the interval changes: a later request on the
 * same connection may ask for another heartbeat_ms.
 */
static void client_timer(struct client *c, bool reading)
{
	int mode = reading ? CT_READ : c->heartbeat_ms ? CT_HEARTBEAT : CT_OFF;
	struct itimerspec its = {0};
	int ms = mode == CT_READ ? CTL_READ_TIMEOUT_MS : c->heartbeat_ms;

	if (mode == (int)c->timer && (mode == CT_OFF || ms == c->timer_ms))
		return;
	if (mode != CT_OFF) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000L;
	}
	if (mode == CT_HEARTBEAT)
		its.it_interval = its.it_value;
	timerfd_settime(c->tfd, 0, &its, NULL);
	c->timer = mode;
	c->timer_ms = ms;
}

/* A request's "heartbeat_ms": 0 when absent or valid (then kept), -1 after a reply saying why. */
static int client_heartbeat(struct client *c, json_t *req)
{
	json_t *hb = json_object_get(req, "heartbeat_ms");
	json_int_t ms;

	if (!hb)
		return 0;
	ms = json_is_integer(hb) ? json_integer_value(hb) : -1;
	if (ms < CTL_HEARTBEAT_MIN_MS || ms > CTL_HEARTBEAT_MAX_MS) {
		reply_err(c, "bad request: heartbeat_ms must be an integer from %d to %d",
			  CTL_HEARTBEAT_MIN_MS, CTL_HEARTBEAT_MAX_MS);
		return -1;
	}
	c->heartbeat_ms = (int)ms;
	return 0;
}

void on_control(void)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct client *c;
	bool readonly;
	char msg[256];
	int fd, i;

	for (;;) {
		fd = accept4(ctlfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
			refuse(fd, "permission denied: cannot tell who is calling");
			continue;
		}
		readonly = cr.uid != 0;
		if (readonly && !(control_gid && in_group(cr.uid, cr.gid, control_gid))) {
			log_warnx("control: refused uid %d pid %d (not root%s%s)", (int)cr.uid,
				  (int)cr.pid, control_gid ? " nor in group " : "", control_group);
			snprintf(msg, sizeof(msg),
				 "permission denied: the baton agent answers root%s%s",
				 control_gid ? " and, read-only, members of group " : " only",
				 control_group);
			refuse(fd, msg);
			continue;
		}
		for (i = 0; i < MAX_CLIENTS && clients[i]; i++)
			;
		c = i < MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			refuse(fd, "agent busy: too many control clients, try again");
			continue;
		}
		c->fd = fd;
		c->readonly = readonly;
		c->uid = cr.uid;
		c->pid = cr.pid;
		c->tokens = CTL_BURST;
		c->refill = now_ms();
		c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (c->tfd < 0) {
			free(c);
			refuse(fd, "agent busy: out of timers, try again");
			continue;
		}
		clients[i] = c;
		ep_add(fd, &c->ev, EV_CLIENT, c, 0, EPOLLIN | EPOLLRDHUP);
		ep_add(c->tfd, &c->tev, EV_CLIENT_TIMER, c, 0, EPOLLIN);
		client_timer(c, true); /* the first request must come in time too */
	}
}

void on_client_timer(struct client *c)
{
	uint64_t n;

	if (c->closed)
		return;
	/* Periodic: what is read is how many times it fired; the last line says enough. */
	if (read(c->tfd, &n, sizeof(n)) < 0 && errno == EAGAIN)
		return;
	if (c->timer == CT_HEARTBEAT) {
		reply(c, json_pack("{s:b}", "alive", 1));
		return;
	}
	log_warnx("control: uid %d pid %d sent no complete request within %d ms; closing",
		  (int)c->uid, (int)c->pid, CTL_READ_TIMEOUT_MS);
	reply_err(c, "timeout: no complete request line within %d ms", CTL_READ_TIMEOUT_MS);
	client_close(c);
}

/* Token bucket: CTL_BURST requests, refilled at CTL_RATE per second. */
static bool client_rate_ok(struct client *c)
{
	long long t = now_ms();

	c->tokens += (t - c->refill) * CTL_RATE / 1000.0;
	if (c->tokens > CTL_BURST)
		c->tokens = CTL_BURST;
	c->refill = t;
	if (c->tokens < 1)
		return false;
	c->tokens -= 1;
	return true;
}

void on_client(struct client *c, unsigned events)
{
	json_error_t jerr;
	json_t *req;
	char *nl;
	ssize_t n;

	if (c->closed)
		return;
	if (events & EPOLLOUT) {
		client_flush(c);
		if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			return;
	}
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		client_close(c);
		return;
	}
	c->len += n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t line = nl - c->buf;

		if (!client_rate_ok(c)) {
			log_warnx("control: uid %d pid %d sends more than %d requests per second; "
				  "closing",
				  (int)c->uid, (int)c->pid, CTL_RATE);
			reply_err(c,
				  "too many requests (more than %d per second after a burst of "
				  "%d); slow down",
				  CTL_RATE, CTL_BURST);
			client_close(c);
			return;
		}
		req = json_loadb(c->buf, line, 0, &jerr);
		memmove(c->buf, nl + 1, c->len - line - 1);
		c->len -= line + 1;
		if (!req || client_heartbeat(c, req) < 0) {
			if (!req)
				reply_err(c, "bad request: not JSON (%s)", jerr.text);
			json_decref(req);
			if (c->closed)
				return; /* too far behind in its replies: closed by reply_err */
			continue;
		}
		handle_request(c, req);
		json_decref(req);
		if (agent_quitting() || c->closed)
			return;
	}
	if (c->len == sizeof(c->buf)) {
		reply_err(c, "bad request: line longer than %d bytes", CTL_MAX_LINE);
		client_close(c);
		return;
	}
	/* Waiting for the rest of a line is bounded; an idle client between requests is not. */
	client_timer(c, c->len > 0);
}
