/* SPDX-License-Identifier: MIT */
/*
 * Webhooks: HTTP POSTs of events (webhook = EVENTS URL) and the
 * confirmation requests a held rollout waits for, through libcurl's multi
 * interface driven by the agent's epoll loop (its sockets and one timerfd in
 * the loop; no thread of ours, no blocking call).  Every request has a
 * timeout (webhook-timeout); events go to each URL one at a time, in order;
 * an event is tried at most WH_TRIES times with backoff; a confirmation is asked again every
 * confirm-interval until it gets a 2xx (then FE_CONFIRMED) or the state machine stops it.
 */
#ifndef BATON_WEBHOOK_H
#define BATON_WEBHOOK_H

#include "model.h"

#define WH_TRIES   3  /* tries of an event's POST: 1 s, then 2 s between them */
#define WH_MAX_REQ 64 /* requests in flight or waiting to retry; more are dropped (logged) */

struct wh_sock;

/* Set up libcurl and the timers: 0, or -1 with err. */
int webhook_open(char *err, size_t errlen);
void webhook_close(void);
void on_webhook_socket(struct wh_sock *ws, unsigned events);
void on_webhook_timer(void);
void on_webhook_retry(void);
/* Free what ended in this epoll batch. */
void webhook_bury(void);

/* FA_CONFIRM: ask s's webhooks of point (WH_CONFIRM_*) until a 2xx; point -1: stop. */
void webhook_confirm(struct service *s, int point);

/* What a GET gave: ok (a complete answer, any status) or err; body NUL-terminated. */
struct http_result {
	bool ok;
	long code;
	const char *body;
	size_t len;
	const char *err;
	bool cancelled; /* the agent is ending: the caller's state may be gone */
};

#define HTTP_BODY_MAX (1024 * 1024) /* a longer answer is an error */

/*
 * GET url through the same loop (Prometheus queries): done(ctx, result) is
 * called once, later, from the loop (with ok false if the agent ends
 * first); never retried.  0, or -1 when no request can be made now.
 */
int http_get(const char *url, unsigned timeout_ms,
	     void (*done)(void *ctx, const struct http_result *r), void *ctx);

#endif /* BATON_WEBHOOK_H */
