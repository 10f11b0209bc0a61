/* SPDX-License-Identifier: MIT */
/* drain-http performed: bounded passes, counting and logging; see httpdrain.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dp.h"
#include "drain_user.h"
#include "httpdrain.h"
#include "log.h"
#include "loop.h"
#include "services.h"

/* Connections that join or leave per loop turn: about 2 ms of work (drain-bench). */
#define PASS_BUDGET 64
/*
 * A pass that moved connections is followed by another this much later:
 * a handshake steered to the version before its sockets left the map may
 * complete after the pass walked past it.
 */
#define REPASS_MS 1000

static int tfd = -1;
static struct evsrc tev;
static int ndraining;	 /* versions in drain-http */
static bool again;	 /* a version began or ended during the pass: one more */
static int pass_changed; /* connections the pass under way moved */
static long long pass_t0;

static void arm(long long at)
{
	if (tfd < 0) {
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (tfd < 0 || ep_add(tfd, &tev, EV_HTTP_DRAIN, NULL, 0, EPOLLIN)) {
			log_warn("drain-http: timerfd");
			if (tfd >= 0)
				close(tfd);
			tfd = -1;
			return;
		}
	}
	timerfd_at(tfd, at);
}

static void pass_soon(void)
{
	if (pass_t0)
		again = true; /* the pass under way may have walked past its connections */
	else
		arm(now_ms());
}

void http_drain_pass_soon(void)
{
	pass_soon();
}

static long long live_of(const struct version *v)
{
	struct version_counts n;

	return dp_counts(v, &n) || n.live < 0 ? 0 : n.live;
}

static long long inst_live_of(const struct version *v, int i)
{
	long long n[MAX_INSTANCES];

	return dp_inst_conns(v, n) || n[i] < 0 ? 0 : n[i];
}

/* One instance: as a version's drain, its own connections, counts and stats. */
static void inst_perform(struct service *s, struct version *v, int i, int how)
{
	struct instance *in = &v->inst[i];
	struct drain_stats st = {0};
	long long idle, by_client;
	int r;

	if (how == 1) {
		r = dp_http_drain_inst(v, i, 1);
		if (r) {
			log_warnx("%s: drain-http: cannot drain instance %d: %s", vname(v), i,
				  strerror(-r));
			return;
		}
		in->hd_live0 = inst_live_of(v, i);
		ndraining++;
		log_info("%s: drain-http: asking the %lld connection(s) of instance %d (pid %d) to "
			 "close after their next response",
			 vname(v), in->hd_live0, i, in->pid);
		pass_soon();
		return;
	}
	if (dp_http_drain_inst_stats(v, i, &st))
		return; /* it never began */
	if (how == 0) {
		idle = in->alive ? inst_live_of(v, i) : 0;
		by_client = in->hd_live0 > idle ? in->hd_live0 - idle : 0;
		s->drain_closed_by_client += by_client;
		s->drain_idle_closed += idle;
		s->drain_rewritten += st.rewritten;
		log_info(
		    "%s: drain-http: instance %d: %lld connection(s) closed by their clients, "
		    "%lld idle until its drain ended; %llu response(s) rewritten, %llu already "
		    "closing or upgraded, %llu connection(s) joined",
		    vname(v), i, by_client, idle, (unsigned long long)st.rewritten,
		    (unsigned long long)st.kept, (unsigned long long)st.joined);
		if (!st.rewritten && (st.not_http || st.partial))
			log_warnx("%s: drain-http: instance %d: no response could be rewritten "
				  "(%llu not HTTP/1.x, %llu split the status line)",
				  vname(v), i, (unsigned long long)st.not_http,
				  (unsigned long long)st.partial);
	}
	dp_http_drain_inst(v, i, 0);
	ndraining--;
	pass_soon(); /* its connections leave the sockhash */
}

void http_drain_perform(struct service *s, struct version *v, int i, int how)
{
	struct drain_stats st = {0};
	long long live, idle, by_client;
	int r;

	if (i >= 0 && i < v->ninst) {
		inst_perform(s, v, i, how);
		return;
	}

	if (how == 1) {
		r = dp_http_drain(v, 1);
		if (r) {
			log_warnx("%s: drain-http: cannot drain it: %s", vname(v), strerror(-r));
			return;
		}
		v->hd_live0 = live_of(v);
		ndraining++;
		log_info("%s: drain-http: asking its %lld connection(s) to close after their next "
			 "response",
			 vname(v), v->hd_live0);
		pass_soon();
		return;
	}
	if (dp_http_drain_stats(v, &st))
		return; /* it never began (the drain program could not load) */
	if (how == 0) {
		live = live_of(v);
		idle = live;
		by_client = v->hd_live0 > idle ? v->hd_live0 - idle : 0;
		s->drain_closed_by_client += by_client;
		s->drain_idle_closed += idle;
		s->drain_rewritten += st.rewritten;
		log_info("%s: drain-http: %lld connection(s) closed by their clients, %lld idle "
			 "until the drain ended (drain_closed_by_client, drain_idle_closed); "
			 "%llu response(s) rewritten, %llu already closing or upgraded, %llu "
			 "connection(s) joined",
			 vname(v), by_client, idle, (unsigned long long)st.rewritten,
			 (unsigned long long)st.kept, (unsigned long long)st.joined);
		if (!st.rewritten && (st.not_http || st.partial))
			log_warnx(
			    "%s: drain-http: no response could be rewritten (%llu response(s) "
			    "did not begin with an HTTP/1.x status line, %llu split it over "
			    "writes): it drained as without drain-http",
			    vname(v), (unsigned long long)st.not_http,
			    (unsigned long long)st.partial);
	}
	dp_http_drain(v, 0);
	ndraining--;
	pass_soon(); /* its connections leave the sockhash */
}

void http_resteer_perform(struct service *s, int on)
{
	struct drain_stats st = {0};
	int r;

	if (on) {
		if (!s->resteer_on) {
			r = dp_http_resteer(s, 1);
			if (r) {
				log_warnx("%s: drain-http: keep-alive clients cannot follow the "
					  "weights: %s",
					  s->conf.name, strerror(-r));
				return;
			}
			s->resteer_on = true;
		}
		pass_soon();
		return;
	}
	if (!s->resteer_on)
		return;
	if (!dp_http_resteer_stats(s, &st))
		log_info("%s: drain-http: %llu connection(s) whose clients moved to another "
			 "version were asked to close, %llu response(s) rewritten",
			 s->conf.name, (unsigned long long)st.joined,
			 (unsigned long long)st.rewritten);
	dp_http_resteer(s, 0);
	s->resteer_on = false;
	pass_soon();
}

/* After a pass: what re-steering did since the last line, per service. */
static void resteer_report(void)
{
	struct drain_stats st;
	struct service *s;
	int i;

	for (i = 0; (s = service_at(i)); i++) {
		if (!s->resteer_on || dp_http_resteer_stats(s, &st) || st.joined == s->resteer_seen)
			continue;
		log_info(
		    "%s: drain-http: %llu connection(s) asked so far to close after their next "
		    "response, their clients now mapping to another version (%llu rewritten)",
		    s->conf.name, (unsigned long long)st.joined, (unsigned long long)st.rewritten);
		s->resteer_seen = st.joined;
	}
}

void on_http_drain_tick(void)
{
	uint64_t n;
	int r, changed;

	if (read(tfd, &n, sizeof(n)) < 0)
		return;
	if (!pass_t0)
		pass_t0 = now_ms();
	r = dp_http_drain_step(PASS_BUDGET, &changed);
	pass_changed += changed;
	if (r > 0) {
		arm(now_ms()); /* the next turn of the loop, after what else is ready */
		return;
	}
	if (r < 0)
		log_warnx("drain-http: a pass over the connections failed: %s", strerror(-r));
	else
		log_debug("drain-http: a pass moved %d connection(s) in %lld ms", pass_changed,
			  now_ms() - pass_t0);
	resteer_report();
	pass_t0 = 0;
	if (again)
		arm(now_ms());
	else if (r == 0 && pass_changed && ndraining > 0)
		arm(now_ms() + REPASS_MS);
	again = false;
	pass_changed = 0;
}

int http_drain_config_check(const struct config *cfg, char *err, size_t errlen)
{
	char why[256];
	int i;

	for (i = 0; i < cfg->nservices; i++) {
		const struct service_conf *c = &cfg->services[i];

		if (!c->drain_http && !c->measure_http)
			continue;
		if (drain_supported_for(c->drain_http ? "drain-http" : "measure-http", why,
					sizeof(why))) {
			snprintf(err, errlen, "%s: %s", cfg->services[i].name, why);
			return -1;
		}
		return 0; /* the kernel is the same for every service */
	}
	return 0;
}
