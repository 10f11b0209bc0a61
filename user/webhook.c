/* SPDX-License-Identifier: MIT */
/*
 * Webhooks through libcurl's multi interface (see webhook.h).  libcurl was
 * chosen over a hand-written client: Debian's libcurl4 is maintained, does
 * HTTP and HTTPS (TLS, proxies, redirects off here), and its multi
 * interface hands us its sockets and a timeout (CURLMOPT_SOCKETFUNCTION,
 * CURLMOPT_TIMERFUNCTION), so the transfers run from our epoll loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <curl/curl.h>

#include "events.h"
#include "exec.h"
#include "log.h"
#include "loop.h"
#include "services.h"
#include "webhook.h"

struct wh_sock {
	curl_socket_t fd;
	bool dead; /* removed by libcurl: freed after the epoll batch */
	struct wh_sock *next_dead;
	struct evsrc ev;
};

struct wh_req {
	CURL *easy; /* NULL: waiting for retry_at */
	struct curl_slist *hdrs;
	char url[WEBHOOK_URL_MAX];
	char *body;
	unsigned timeout_ms;
	int tries;
	long long retry_at; /* ms; 0: not waiting */
	/* A confirmation: asked until every one of the service's answers 2xx. */
	struct service *svc;
	int point; /* WH_CONFIRM_*, or -1: an event */
	unsigned interval_ms;
	bool done; /* this URL answered 2xx */
	/* A GET (http_get): its answer goes to get_done, once. */
	void (*get_done)(void *ctx, const struct http_result *r);
	void *ctx;
	char *resp;
	size_t resp_len;
	char what[96]; /* "web rolled-back" for the log */
	/* An event: sent after every earlier event to the same URL is done. */
	unsigned long long order;
	bool queued; /* waiting for an earlier event to the same URL */
};

static CURLM *multi;
static int tfd = -1, rfd = -1; /* libcurl's timeout; retries */
static struct evsrc tev, rev;
static struct wh_req *reqs[WH_MAX_REQ];
static struct wh_sock *dead;
static bool global_init;
static unsigned long long next_order;

static void on_event(const struct event *ev);

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct wh_sock *ws = socketp;
	unsigned evs = 0;

	(void)e;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (ws) {
			ep_del(s);
			curl_multi_assign(multi, s, NULL);
			ws->dead = true;
			ws->next_dead = dead;
			dead = ws;
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		evs |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		evs |= EPOLLOUT;
	if (!ws) {
		ws = calloc(1, sizeof(*ws));
		if (!ws)
			return -1;
		ws->fd = s;
		if (ep_add(s, &ws->ev, EV_WEBHOOK, ws, 0, evs)) {
			free(ws);
			return -1;
		}
		curl_multi_assign(multi, s, ws);
		return 0;
	}
	return ep_mod(s, &ws->ev, evs) ? -1 : 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	(void)userp;
	/* 0: as soon as the loop turns (timerfd_at makes it 1 ms); -1: none. */
	timerfd_at(tfd, timeout_ms < 0 ? 0 : now_ms() + timeout_ms);
	return 0;
}

int webhook_open(char *err, size_t errlen)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errlen, "webhooks: cannot initialise libcurl");
		return -1;
	}
	global_init = true;
	multi = curl_multi_init();
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	rfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!multi || tfd < 0 || rfd < 0 || ep_add(tfd, &tev, EV_WEBHOOK_TIMER, NULL, 0, EPOLLIN) ||
	    ep_add(rfd, &rev, EV_WEBHOOK_RETRY, NULL, 0, EPOLLIN)) {
		snprintf(err, errlen, "webhooks: cannot set up libcurl's timers: %s",
			 strerror(errno));
		webhook_close();
		return -1;
	}
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	events_listen(on_event);
	return 0;
}

static void req_free(int k)
{
	struct wh_req *r = reqs[k];

	if (!r)
		return;
	if (r->get_done) {
		struct http_result res = {.err = "the agent is ending", .cancelled = true};

		r->get_done(r->ctx, &res);
	}
	free(r->resp);
	if (r->easy) {
		curl_multi_remove_handle(multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->hdrs);
	free(r->body);
	free(r);
	reqs[k] = NULL;
}

void webhook_bury(void)
{
	while (dead) {
		struct wh_sock *ws = dead;

		dead = ws->next_dead;
		free(ws);
	}
}

void webhook_close(void)
{
	int k;

	for (k = 0; k < WH_MAX_REQ; k++)
		req_free(k);
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
	webhook_bury();
	if (tfd >= 0) {
		ep_del(tfd);
		close(tfd);
	}
	if (rfd >= 0) {
		ep_del(rfd);
		close(rfd);
	}
	tfd = rfd = -1;
	events_listen(NULL);
	if (global_init)
		curl_global_cleanup();
	global_init = false;
}

/* The retry timer at the earliest retry, or off. */
static void retry_arm(void)
{
	long long at = 0;
	int k;

	for (k = 0; k < WH_MAX_REQ; k++)
		if (reqs[k] && !reqs[k]->easy && reqs[k]->retry_at &&
		    (!at || reqs[k]->retry_at < at))
			at = reqs[k]->retry_at;
	if (rfd >= 0)
		timerfd_at(rfd, at);
}

/* A GET's answer, kept up to HTTP_BODY_MAX (more fails the transfer). */
static size_t keep(char *p, size_t size, size_t n, void *u)
{
	struct wh_req *r = u;
	char *b;

	if (r->resp_len + size * n > HTTP_BODY_MAX)
		return 0;
	b = realloc(r->resp, r->resp_len + size * n + 1);
	if (!b)
		return 0;
	memcpy(b + r->resp_len, p, size * n);
	r->resp = b;
	r->resp_len += size * n;
	b[r->resp_len] = 0;
	return size * n;
}

static int req_start(struct wh_req *r)
{
	CURL *e = curl_easy_init();

	if (!e)
		return -ENOMEM;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	if (r->get_done) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "baton");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, r->get_done ? keep : discard);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	if (curl_multi_add_handle(multi, e)) {
		curl_easy_cleanup(e);
		return -EIO;
	}
	r->easy = e;
	r->retry_at = 0;
	r->tries++;
	return 0;
}

static struct wh_req *req_new(const char *url, json_t *body, unsigned timeout_ms)
{
	struct wh_req *r;
	int k;

	for (k = 0; k < WH_MAX_REQ && reqs[k]; k++)
		;
	if (k == WH_MAX_REQ || !multi) {
		json_decref(body);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		json_decref(body);
		return NULL;
	}
	r->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	snprintf(r->url, sizeof(r->url), "%s", url);
	r->timeout_ms = timeout_ms;
	r->point = -1;
	if (!r->body || !r->hdrs) {
		curl_slist_free_all(r->hdrs);
		free(r->body);
		free(r);
		return NULL;
	}
	reqs[k] = r;
	return r;
}

int http_get(const char *url, unsigned timeout_ms,
	     void (*done)(void *ctx, const struct http_result *r), void *ctx)
{
	struct wh_req *r = req_new(url, json_object(), timeout_ms);
	int k;

	if (!r)
		return -1;
	r->get_done = done;
	r->ctx = ctx;
	snprintf(r->what, sizeof(r->what), "GET");
	if (req_start(r)) {
		r->get_done = NULL;
		for (k = 0; k < WH_MAX_REQ; k++)
			if (reqs[k] == r)
				req_free(k);
		return -1;
	}
	return 0;
}

static bool is_event(const struct wh_req *r)
{
	return r->point < 0 && !r->get_done;
}

/* An earlier event to r's URL is still in flight, retrying or queued. */
static bool behind(const struct wh_req *r)
{
	int k;

	for (k = 0; k < WH_MAX_REQ; k++)
		if (reqs[k] && reqs[k] != r && is_event(reqs[k]) && reqs[k]->order < r->order &&
		    !strcmp(reqs[k]->url, r->url))
			return true;
	return false;
}

/* Events reach each URL one at a time, in the order they happened: start
 * every queued one that nothing is ahead of any more. */
static void advance(void)
{
	int k;

	for (k = 0; k < WH_MAX_REQ; k++)
		if (reqs[k] && reqs[k]->queued && !behind(reqs[k])) {
			reqs[k]->queued = false;
			if (req_start(reqs[k]))
				reqs[k]->retry_at = now_ms() + 1000;
		}
}

/* The events listener: a POST to every webhook of the service that wants this event. */
static void on_event(const struct event *ev)
{
	struct service *s = service_find(ev->service);
	int kind = wh_event_of(ev->kind), i;
	struct wh_req *r;

	if (!s || kind < 0 || !(s->conf.webhook_events & (1u << kind)))
		return;
	for (i = 0; i < s->conf.nwebhooks; i++) {
		if (!(s->conf.webhook[i].events & (1u << kind)))
			continue;
		r = req_new(s->conf.webhook[i].url, event_json(ev), s->conf.webhook_timeout_ms);
		if (!r) {
			log_warnx("%s: webhook %s: %d requests already waiting; %s event not sent",
				  ev->service, s->conf.webhook[i].url, WH_MAX_REQ, ev->kind);
			continue;
		}
		snprintf(r->what, sizeof(r->what), "%s %s", ev->service, ev->kind);
		r->order = ++next_order;
		if (behind(r))
			r->queued = true;
		else if (req_start(r))
			r->retry_at = now_ms() + 1000;
	}
	retry_arm();
}

/* A confirmation's body: what is about to happen, and how to answer. */
static json_t *confirm_body(struct service *s, int point)
{
	const struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	/* rolling: a batch's weight is known only as its instances get ready; the current one */
	unsigned w = point == WH_CONFIRM_PROMOTION ? WEIGHT_MAX
		     : point == WH_CONFIRM_STEP && ro->strategy == STRATEGY_ROLLING
			 ? (nv ? nv->weight : 0)
		     : point == WH_CONFIRM_STEP ? ro->steps[ro->hold_step]
		     : ro->nsteps		? ro->steps[0]
						: WEIGHT_MAX;
	char text[300];
	json_t *j;

	if (point == WH_CONFIRM_ROLLOUT)
		snprintf(text, sizeof(text),
			 "%s: may the rollout of v%d over v%d start? (answer 2xx)", s->conf.name,
			 ro->new_num, ro->old_num);
	else if (ro->strategy == STRATEGY_ROLLING)
		snprintf(text, sizeof(text),
			 "%s: may batch %d of v%d start%s? %d of %d instance(s) serve it now "
			 "(answer 2xx)",
			 s->conf.name, ro->hold_step, ro->new_num,
			 point == WH_CONFIRM_PROMOTION ? " (the last)" : "", nv ? nv->serve_n : 0,
			 nv ? nv->ninst : 0);
	else
		snprintf(text, sizeof(text),
			 "%s: may v%d take %.2f%% of new connections from v%d? (answer 2xx)",
			 s->conf.name, ro->new_num, w / 100.0, ro->old_num);
	j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:s}", "service", s->conf.name, "event",
		      wh_event_names[point], "version", ro->new_num, "weight", (int)w,
		      "current_weight", nv ? (int)nv->weight : 0, "text", text);
	if (j && ro->old_num)
		json_object_set_new(j, "previous_version", json_integer(ro->old_num));
	if (j && ro->strategy == STRATEGY_ROLLING && point != WH_CONFIRM_ROLLOUT) {
		/* weight: all once the last batch is in; step: the batch it holds */
		json_object_set_new(j, "step", json_integer(ro->hold_step));
	} else if (j && point == WH_CONFIRM_STEP) {
		json_object_set_new(j, "step", json_integer(ro->hold_step + 1));
		json_object_set_new(j, "steps", json_integer(ro->nsteps));
	}
	return j;
}

void webhook_confirm(struct service *s, int point)
{
	struct wh_req *r;
	int k, i;

	/* Whatever it asked before is over. */
	for (k = 0; k < WH_MAX_REQ; k++)
		if (reqs[k] && reqs[k]->svc == s)
			req_free(k);
	if (point < 0) {
		retry_arm();
		return;
	}
	for (i = 0; i < s->conf.nwebhooks; i++) {
		if (!(s->conf.webhook[i].events & (1u << point)))
			continue;
		r = req_new(s->conf.webhook[i].url, confirm_body(s, point),
			    s->conf.webhook_timeout_ms);
		if (!r) {
			/* Not asked, so never confirmed: the rollout fails at confirm-timeout. */
			log_warnx("%s: webhook %s: %d requests already waiting; cannot ask %s",
				  s->conf.name, s->conf.webhook[i].url, WH_MAX_REQ,
				  wh_event_names[point]);
			continue;
		}
		r->svc = s;
		r->point = point;
		r->interval_ms = s->conf.confirm_interval_ms;
		snprintf(r->what, sizeof(r->what), "%s %s", s->conf.name, wh_event_names[point]);
		if (req_start(r))
			r->retry_at = now_ms() + r->interval_ms;
	}
	retry_arm();
}

/* Every webhook of this confirmation answered 2xx: tell the state machine. */
static void confirm_check(struct service *s, int point)
{
	struct fsm_event e = {.type = FE_CONFIRMED, .inst = point, .ok = true};
	int k;

	for (k = 0; k < WH_MAX_REQ; k++)
		if (reqs[k] && reqs[k]->svc == s && reqs[k]->point == point && !reqs[k]->done)
			return;
	for (k = 0; k < WH_MAX_REQ; k++)
		if (reqs[k] && reqs[k]->svc == s)
			req_free(k);
	fsm_feed(s, &e);
}

static void finished(int k, CURLcode rc)
{
	struct wh_req *r = reqs[k];
	long code = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	if (r->get_done) {
		struct http_result res = {.ok = rc == CURLE_OK,
					  .code = code,
					  .body = r->resp ? r->resp : "",
					  .len = r->resp_len,
					  .err = rc == CURLE_OK ? NULL : curl_easy_strerror(rc)};
		void (*done)(void *, const struct http_result *) = r->get_done;

		/* Out of the table first: done may make the next request. */
		reqs[k] = NULL;
		r->get_done = NULL;
		done(r->ctx, &res);
		free(r->resp);
		curl_slist_free_all(r->hdrs);
		free(r->body);
		free(r);
		return;
	}
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		log_debug("webhook %s: %s answered %ld", r->what, r->url, code);
		if (r->point < 0) {
			req_free(k);
			return;
		}
		r->done = true;
		confirm_check(r->svc, r->point);
		return;
	}
	if (rc == CURLE_OK)
		log_warnx("webhook %s: %s answered HTTP %ld (try %d)", r->what, r->url, code,
			  r->tries);
	else
		log_warnx("webhook %s: %s: %s (try %d)", r->what, r->url, curl_easy_strerror(rc),
			  r->tries);
	if (r->point >= 0) {
		/* For status: what the held rollout heard last. */
		if (rc == CURLE_OK)
			snprintf(r->svc->ro.confirm_last, sizeof(r->svc->ro.confirm_last),
				 "HTTP %ld from %.100s", code, r->url);
		else
			snprintf(r->svc->ro.confirm_last, sizeof(r->svc->ro.confirm_last),
				 "%.50s: %.100s", curl_easy_strerror(rc), r->url);
		r->retry_at = now_ms() + r->interval_ms;
	} else if (r->tries < WH_TRIES) {
		r->retry_at = now_ms() + (1000LL << (r->tries - 1));
	} else {
		log_warnx("webhook %s: %s: gave up after %d tries", r->what, r->url, r->tries);
		req_free(k);
	}
}

static void check_done(void)
{
	CURLMsg *m;
	int left, k;

	while ((m = curl_multi_info_read(multi, &left)))
		if (m->msg == CURLMSG_DONE) {
			struct wh_req *r = NULL;

			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			for (k = 0; k < WH_MAX_REQ && (!r || reqs[k] != r); k++)
				;
			if (k < WH_MAX_REQ)
				finished(k, m->data.result);
		}
	advance();
	retry_arm();
}

void on_webhook_socket(struct wh_sock *ws, unsigned events)
{
	int flags = 0, running;

	if (ws->dead || !multi)
		return;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(multi, ws->fd, flags, &running);
	check_done();
}

void on_webhook_timer(void)
{
	uint64_t n;
	int running;

	if (read(tfd, &n, sizeof(n)) < 0 || !multi)
		return;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

void on_webhook_retry(void)
{
	long long now = now_ms();
	uint64_t n;
	int k;

	if (read(rfd, &n, sizeof(n)) < 0)
		return;
	for (k = 0; k < WH_MAX_REQ; k++)
		if (reqs[k] && !reqs[k]->easy && !reqs[k]->done && reqs[k]->retry_at &&
		    reqs[k]->retry_at <= now && req_start(reqs[k]))
			reqs[k]->retry_at = now + 1000;
	retry_arm();
}
