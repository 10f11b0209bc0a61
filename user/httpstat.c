/* SPDX-License-Identifier: MIT */
/*
 * measure-http: the versions under analysis are the new version of a
 * rollout of a service with measure-http (canary or rolling) and, with
 * max-error-ratio, the version it is compared with (its fresh baseline,
 * else the active version).  Only their connections run the sk_msg
 * program (bpf/drain.bpf.c); every other connection keeps its plain send
 * path.  A version leaves the analysis when its rollout ends: one that
 * becomes active at once, one that drains (rolled back, a baseline) when
 * it is gone, so that its final counts (logged) hold every response it
 * served.
 */
#include <string.h>

#include "dp.h"
#include "httpdrain.h"
#include "httpgate.h"
#include "httpstat.h"
#include "log.h"
#include "services.h"
#include "metrics.h"

static const char *const class_names[HC_COUNT] = {
    [HC_1XX] = "1xx", [HC_2XX] = "2xx", [HC_3XX] = "3xx",
    [HC_4XX] = "4xx", [HC_5XX] = "5xx", [HC_OTHER] = "other",
};

/* Passes still to run after the set changed: one now, one a tick later (handshakes in flight). */
static int repass;

struct version *http_compared_with(struct version *v)
{
	struct service *s = v->svc;
	struct version *o;

	if (!(s->conf.max_p99_ratio > 0) && !(s->conf.max_error_ratio > 0))
		return NULL;
	o = ro_base(s);
	if (!o && s->ro.oldv >= 0)
		o = s->slot[s->ro.oldv];
	return o && o != v && !o->freed ? o : NULL;
}

static bool wanted(struct service *s, struct version *v)
{
	struct version *n;
	bool active = s->active >= 0 && s->slot[s->active] == v;

	if (s->gone || !s->conf.measure_http || v->freed)
		return false;
	/*
	 * A rolled-back canary (or a leaving baseline) still answers the
	 * requests of the connections it has: counted to its end, so that its
	 * final counts hold every response it served.
	 */
	if (v->http_on && !active)
		return true;
	if (s->ro.stage == RO_NONE)
		return false;
	n = ro_new(s);
	if (!n || s->active < 0 || s->slot[s->active] == n)
		return false; /* a service's first version: nothing to compare or protect */
	return v == n || (s->conf.max_error_ratio > 0 && v == http_compared_with(n));
}

static void set(struct version *v, bool on)
{
	struct http_window w;

	if (on) {
		if (dp_http_measure(v, 1))
			return; /* logged by dp (the drain program cannot load) */
		v->http_on = true;
		memset(&v->http, 0, sizeof(v->http));
		log_info("%s: measure-http: counting the status of its responses", vname(v));
	} else {
		dp_http_counts(v, &v->http); /* the last responses before it leaves */
		dp_http_measure(v, 0);
		v->http_on = false;
		http_window_of(&w, &v->http, NULL);
		log_info("%s: measure-http: no longer counted; %llu final responses, %llu 5xx, "
			 "%llu unparseable",
			 vname(v), w.n, w.e5, (unsigned long long)v->http.n[HC_OTHER]);
	}
	repass = 2;
}

void httpstat_leave(struct version *v)
{
	if (v->http_on)
		set(v, false);
}

void httpstat_sync(struct service *s)
{
	struct version *v;
	int j;

	for (j = 0; j < MAX_VERSIONS; j++) {
		v = s->slot[j];
		if (!v || v->freed)
			continue;
		if (wanted(s, v) != v->http_on)
			set(v, !v->http_on);
		if (v->http_on)
			dp_http_counts(v, &v->http);
	}
}

void httpstat_tick(void)
{
	struct service *s;
	int i;

	for (i = 0; (s = service_at(i)); i++)
		httpstat_sync(s);
	if (repass > 0) {
		repass--;
		http_drain_pass_soon();
	}
}

json_t *httpstat_json(const struct version *v)
{
	struct http_window w;
	json_t *j;
	int k;

	if (!v->http_on)
		return json_null();
	j = json_object();
	for (k = 0; k < HC_COUNT; k++)
		json_object_set_new(j, class_names[k], json_integer((json_int_t)v->http.n[k]));
	http_window_of(&w, &v->http, NULL);
	json_object_set_new(j, "responses", json_integer((json_int_t)w.n));
	json_object_set_new(j, "success_pct", json_real(http_success_pct(&w)));
	return j;
}

void httpstat_metrics(FILE *f)
{
	static const char name[] = "baton_version_http_responses_total";
	struct service *s;
	struct version *v;
	int i, j, k;

	fprintf(f,
		"# HELP %s HTTP/1.x responses of a version under analysis by status class "
		"(measure-http), counted in the kernel from their status line since its analysis "
		"began.\n# TYPE %s counter\n",
		name, name);
	for (i = 0; (s = service_at(i)); i++)
		for (j = 0; j < MAX_VERSIONS; j++) {
			v = s->slot[j];
			if (!v || v->freed || s->gone || !v->http_on)
				continue;
			for (k = 0; k < HC_COUNT; k++) {
				fprintf(f, "%s{service=\"", name);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\",class=\"%s\"} %llu\n", v->num,
					class_names[k], (unsigned long long)v->http.n[k]);
			}
		}
}
