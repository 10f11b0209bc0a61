/* SPDX-License-Identifier: MIT */
/*
 * Each version's latency as the agent shows and judges it: every
 * LAT_TICK_MS the cumulative histograms of every version are read (dp.c)
 * and the last interval's quantiles kept for status and metrics; every
 * health-interval the version under rollout's gate window goes to the
 * state machine (FE_LAT_SAMPLE), closing once it holds min-samples.
 */
#include <stdio.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dp.h"
#include "exec.h"
#include "fsm.h"
#include "httpgate.h"
#include "httpstat.h"
#include "latview.h"
#include "log.h"
#include "loop.h"
#include "services.h"
#include "metrics.h"

static int tfd = -1;
static struct evsrc tev;

void latview_start(void)
{
	tfd = ep_ticker(&tev, EV_LATENCY, NULL, 0, LAT_TICK_MS, "latency");
}

static void tick_version(struct version *v)
{
	struct lat_view *lv = &v->lat;
	struct lat_hist d;
	int k;

	if (dp_latency(v, &lv->cum)) {
		lv->have = false; /* not measured (any more: latency = off by a reload) */
		return;
	}
	if (!lv->have) {
		lv->have = true;
		lv->prev = lv->cum;
		return;
	}
	lat_diff(&d, &lv->cum, &lv->prev);
	for (k = 0; k < LAT_KINDS; k++)
		lat_stats_of(&d, k, &lv->last[k]);
	lv->prev = lv->cum;
}

void on_latency_tick(void)
{
	struct service *s;
	uint64_t n;
	int i, j;

	if (read(tfd, &n, sizeof(n)) < 0)
		return;
	for (i = 0; (s = service_at(i)); i++)
		for (j = 0; j < MAX_VERSIONS; j++)
			if (s->slot[j] && !s->slot[j]->freed)
				tick_version(s->slot[j]);
	httpstat_tick();
}

void latview_gate_sample(struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	struct lat_view *lv = &v->lat;
	struct fsm_event e = {.type = FE_LAT_SAMPLE, .v = v};
	static struct lat_hist cur, win, ccur, cwin;
	struct version *o = http_compared_with(v);
	static const struct http_counts zero;
	struct http_counts hc, hcc;
	struct http_window hw;
	bool hv, ho;
	struct lat_stats r, a, cr;
	char text[200], p50[24], p99[24], ap99[24];
	long long now = now_ms();
	bool have_o;

	if (dp_latency(v, &cur))
		return;
	have_o = o && !dp_latency(o, &ccur);
	hv = v->http_on && !dp_http_counts(v, &hc);
	ho = have_o && o->http_on && !dp_http_counts(o, &hcc);
	if (!lv->win_on || (have_o ? o->num : 0) != lv->cmp_num) {
		/* A new window, or the version compared with changed: start over. */
		lv->win_on = true;
		lv->win_t = now;
		lv->base = cur;
		lv->cmp_num = have_o ? o->num : 0;
		if (have_o)
			lv->cmp_base = ccur;
		/* Counting begins at zero: a version counted later starts from there. */
		v->http_base = hv ? hc : zero;
		v->http_cmp = ho ? hcc : zero;
		return;
	}
	lat_diff(&win, &cur, &lv->base);
	lat_stats_of(&win, LAT_RESPONSE, &r);
	lat_stats_of(&win, LAT_ACCEPT, &a);
	e.lat.n = r.n;
	e.lat.p99_us = r.p99_us;
	e.lat.acc_n = a.n;
	e.lat.acc_p99_us = a.p99_us;
	e.lat.window_ms = now - lv->win_t;
	if (have_o) {
		lat_diff(&cwin, &ccur, &lv->cmp_base);
		lat_stats_of(&cwin, LAT_RESPONSE, &cr);
		e.lat.win = &win;
		e.lat.cmp = &cwin;
		e.lat.cmp_num = o->num;
		e.lat.cmp_baseline = o == ro_base(v->svc);
		e.lat.cmp_n = cr.n;
		e.lat.cmp_p99_us = cr.p99_us;
	}
	if (hv) {
		http_window_of(&hw, &hc, &v->http_base);
		e.lat.http = true;
		e.lat.http_n = hw.n;
		e.lat.http_5xx = hw.e5;
	}
	if (ho) {
		http_window_of(&hw, &hcc, &v->http_cmp);
		e.lat.http_cmp = true;
		e.lat.cmp_http_n = hw.n;
		e.lat.cmp_http_5xx = hw.e5;
	}
	snprintf(text, sizeof(text),
		 "p50 %s p99 %s over %llu requests in %.1f s; accept wait p99 %s over %llu "
		 "connections",
		 lat_fmt(r.p50_us, p50, sizeof(p50)), lat_fmt(r.p99_us, p99, sizeof(p99)),
		 (unsigned long long)r.n, e.lat.window_ms / 1000.0,
		 lat_fmt(a.p99_us, ap99, sizeof(ap99)), (unsigned long long)a.n);
	e.why = text;
	if (fsm_gates_conclusive(c, &e.lat)) {
		lv->base = cur;
		lv->win_t = now;
		if (have_o)
			lv->cmp_base = ccur;
		v->http_base = hv ? hc : zero;
		v->http_cmp = ho ? hcc : zero;
	}
	fsm_feed(v->svc, &e);
}

static json_t *stats_json(const struct lat_stats *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)s->n, "mean_us",
			 (json_int_t)s->mean_us, "p50_us", (json_int_t)s->p50_us, "p90_us",
			 (json_int_t)s->p90_us, "p99_us", (json_int_t)s->p99_us);
}

json_t *latview_json(const struct version *v)
{
	const struct lat_view *lv = &v->lat;

	if (!lv->have)
		return json_null();
	return json_pack("{s:i, s:o, s:o}", "interval_ms", LAT_TICK_MS, "response",
			 stats_json(&lv->last[LAT_RESPONSE]), "accept_wait",
			 stats_json(&lv->last[LAT_ACCEPT]));
}

/* Prometheus' bucket bounds: powers of two from 128 us to 16.8 s (all bucket bounds of ours). */
#define PROM_FIRST 7
#define PROM_LAST  24

void latview_metrics(FILE *f)
{
	static const char *const names[LAT_KINDS][2] = {
	    {"baton_version_response_seconds",
	     "Time from the server's read of a request to its first write of the response, "
	     "measured in the kernel on the connections baton counts."},
	    {"baton_version_accept_wait_seconds",
	     "Time from a connection's completed handshake to the server's first read of it."},
	};
	static struct lat_hist h;
	struct service *s;
	int k, i, j, b;

	for (k = 0; k < LAT_KINDS; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", names[k][0], names[k][1],
			names[k][0]);
		for (i = 0; (s = service_at(i)); i++)
			for (j = 0; j < MAX_VERSIONS; j++) {
				struct version *v = s->slot[j];

				if (!v || v->freed || s->gone || dp_latency(v, &h))
					continue;
				for (b = PROM_FIRST; b <= PROM_LAST + 1; b++) {
					fprintf(f, "%s_bucket{service=\"", names[k][0]);
					metrics_put_label(f, s->conf.name);
					if (b <= PROM_LAST)
						fprintf(f, "\",version=\"v%d\",le=\"%.9g\"} %llu\n",
							v->num, (1ULL << b) / 1e6,
							(unsigned long long)lat_count_below(
							    &h, k, 1ULL << b));
					else
						fprintf(f, "\",version=\"v%d\",le=\"+Inf\"} %llu\n",
							v->num,
							(unsigned long long)lat_count(&h, k));
				}
				fprintf(f, "%s_sum{service=\"", names[k][0]);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\"} %.6f\n", v->num, h.sum_us[k] / 1e6);
				fprintf(f, "%s_count{service=\"", names[k][0]);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\"} %llu\n", v->num,
					(unsigned long long)lat_count(&h, k));
			}
	}
}
