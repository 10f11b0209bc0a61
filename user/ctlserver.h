/* SPDX-License-Identifier: MIT */
/*
 * The control server: accepts clients on the control socket, checks who
 * they are (SO_PEERCRED: root, or read-only members of control-group),
 * bounds them (a read deadline per request, a token bucket), frames JSON
 * lines and hands each request to requests.c.  Replies go back through
 * reply(), reply_err() and progress().
 */
#ifndef BATON_CTLSERVER_H
#define BATON_CTLSERVER_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "config.h"
#include "control.h"
#include "loop.h"

#define MAX_CLIENTS 64

struct client {
	int fd;
	char buf[CTL_MAX_LINE];
	size_t len;
	bool closed; /* closed: events still queued for it are ignored */
	char *out;   /* replies not yet written, out_off..out_len */
	size_t out_len, out_off, out_cap;
	struct client *next_dead;
	bool readonly; /* a control-group member, not root */
	uid_t uid;
	pid_t pid;
	int tfd; /* read deadline: a request must be complete in time; or the heartbeat */
	enum { CT_OFF, CT_READ, CT_HEARTBEAT } timer;
	int timer_ms;	  /* the interval tfd is armed with (timer != CT_OFF) */
	int heartbeat_ms; /* asked for by its last request (CTL_HEARTBEAT_*), or 0 */
	double tokens;	  /* rate limit: requests left in the bucket */
	long long refill; /* ms of the last refill */
	struct evsrc ev, tev;
};

/* Listen on the control socket of a; 0 or -1 with err. */
int ctl_open(const struct agent_conf *a, char *err, size_t errlen);
/* Close every client and the socket (and remove its path). */
void ctl_close(void);
void on_control(void);
void on_client(struct client *c, unsigned events);
void on_client_timer(struct client *c);
void client_close(struct client *c);
/* Free clients closed in this epoll batch. */
void ctl_bury(void);

/* Replies: c may be NULL (nobody waits); msg is consumed. */
void reply(struct client *c, json_t *msg);
void reply_ok(struct client *c, const char *message);
void reply_err(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* BATON_CTLSERVER_H */
