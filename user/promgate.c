/* SPDX-License-Identifier: MIT */
/*
 * Prometheus gates as performed: every health-interval, each gate's query
 * (templated for the rollout) goes to [agent] prometheus's
 * /api/v1/query through the loop's HTTP client (webhook.c), bounded by
 * health-timeout; its answer becomes an FE_GATE verdict.  One series with
 * a number is judged against the threshold; no series, several, NaN, an
 * error answer, a refused connection or a timeout are inconclusive, never a
 * pass.  The rules are fsm_gate.c's.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "log.h"
#include "promgate.h"
#include "services.h"
#include "webhook.h"

struct query {
	char service[NAME_MAX_LEN];
	int num;
	int gate;
};

static void verdict(struct version *v, int g, int vd, double value, const char *text)
{
	struct fsm_event e = {
	    .type = FE_GATE, .v = v, .inst = g, .verdict = vd, .value = value, .why = text};

	fsm_feed(v->svc, &e);
}

/* The value of Prometheus' answer body, or why there is none (inconclusive). */
static int parse_answer(const char *body, double *value, char *why, size_t len)
{
	json_t *j = json_loads(body, 0, NULL), *data, *res, *val;
	const char *type, *s;
	int r = -1;

	data = json_object_get(j, "data");
	type = json_string_value(json_object_get(data, "resultType"));
	res = json_object_get(data, "result");
	if (!j || strcmp(json_string_value(json_object_get(j, "status")) ?: "", "success")) {
		snprintf(why, len, "Prometheus: %s",
			 json_string_value(json_object_get(j, "error")) ?: "not a query answer");
		goto out;
	}
	if (type && !strcmp(type, "scalar")) {
		val = res;
	} else if (type && !strcmp(type, "vector") && json_is_array(res)) {
		if (!json_array_size(res)) {
			snprintf(why, len, "no data");
			goto out;
		}
		if (json_array_size(res) > 1) {
			snprintf(why, len,
				 "%zu series (a gate needs one: aggregate it, e.g. sum())",
				 json_array_size(res));
			goto out;
		}
		val = json_object_get(json_array_get(res, 0), "value");
	} else {
		snprintf(why, len, "a %s answer (a gate needs one number)", type ?: "malformed");
		goto out;
	}
	s = json_string_value(json_array_get(val, 1));
	if (!s) {
		snprintf(why, len, "no value in the answer");
		goto out;
	}
	*value = strtod(s, NULL);
	if (isnan(*value)) {
		snprintf(why, len, "NaN (no data to divide)");
		goto out;
	}
	r = 0;
out:
	json_decref(j);
	return r;
}

static void answered(void *p, const struct http_result *res)
{
	struct query *q = p;
	struct service *s = res->cancelled ? NULL : service_find(q->service);
	struct version *v = s ? version_by_num(s, q->num) : NULL;
	const struct gate_conf *g;
	char why[160], text[200];
	double value = NAN;

	if (!v || v->freed || q->gate >= s->conf.ngates) {
		free(q);
		return;
	}
	g = &s->conf.gate[q->gate];
	v->gate[q->gate].busy = false;
	why[0] = 0;
	if (!res->ok)
		snprintf(why, sizeof(why), "Prometheus: %s", res->err ?: "no answer");
	else if (parse_answer(res->body, &value, why, sizeof(why)) == 0 && res->code != 200)
		snprintf(why, sizeof(why), "Prometheus answered HTTP %ld", res->code);
	if (why[0]) {
		snprintf(text, sizeof(text), "%s: %s (inconclusive)", g->name, why);
		verdict(v, q->gate, GV_INCONCLUSIVE, NAN, text);
	} else {
		bool pass = gate_passes(g, value);

		snprintf(text, sizeof(text), "%s = %g, %s %s %g", g->name, value,
			 pass ? "passes" : "fails", gate_op_names[g->op], g->threshold);
		verdict(v, q->gate, pass ? GV_PASS : GV_FAIL, value, text);
	}
	free(q);
}

void promgate_tick(struct version *v, long long now)
{
	struct service *s = v->svc;
	const struct service_conf *c = &s->conf;
	const char *prom = services_config()->agent.prometheus;
	char expr[GATE_QUERY_MAX * 2], url[GATE_QUERY_MAX * 6 + 300], text[200];
	struct query *q;
	char *esc;
	int g;

	if (!prom[0])
		return;
	for (g = 0; g < c->ngates && !v->freed && ro_new(s) == v; g++) {
		struct gate_state *st = &v->gate[g];

		if (st->busy || now < st->next_at)
			continue;
		st->next_at = now + c->health_interval_ms;
		esc = NULL;
		if (gate_expand(&c->gate[g], c->name, v->num, s->ro.old_num, expr, sizeof(expr)) ||
		    !(esc = curl_easy_escape(NULL, expr, 0)) ||
		    snprintf(url, sizeof(url), "%s/api/v1/query?query=%s", prom, esc) >=
			(int)sizeof(url) ||
		    !(q = calloc(1, sizeof(*q)))) {
			curl_free(esc);
			snprintf(text, sizeof(text), "%s: the query does not fit (inconclusive)",
				 c->gate[g].name);
			verdict(v, g, GV_INCONCLUSIVE, NAN, text);
			continue;
		}
		curl_free(esc);
		snprintf(q->service, sizeof(q->service), "%s", c->name);
		q->num = v->num;
		q->gate = g;
		if (http_get(url, c->health_timeout_ms, answered, q)) {
			free(q);
			snprintf(text, sizeof(text), "%s: cannot send the query now (inconclusive)",
				 c->gate[g].name);
			verdict(v, g, GV_INCONCLUSIVE, NAN, text);
			continue;
		}
		st->busy = true;
	}
}

/* ---- is it there? --------------------------------------------------------------- */

static void probed(void *p, const struct http_result *r)
{
	(void)p;
	if (r->cancelled)
		return;
	if (!r->ok || r->code != 200)
		log_warnx("prometheus %s does not answer (%s%ld); gates are inconclusive (never "
			  "a pass) until it does",
			  services_config()->agent.prometheus, r->ok ? "HTTP " : r->err,
			  r->ok ? r->code : 0L);
	else
		log_info("prometheus %s answers", services_config()->agent.prometheus);
}

void promgate_probe(void)
{
	char url[400];
	const char *prom = services_config()->agent.prometheus;

	if (!prom[0])
		return;
	snprintf(url, sizeof(url), "%s/api/v1/query?query=1", prom);
	if (http_get(url, 2000, probed, NULL))
		log_warnx("prometheus %s: cannot ask it now", prom);
}

static size_t drop(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

int promgate_check(const char *prom, char *msg, size_t len)
{
	char url[400];
	long code = 0;
	CURLcode rc;
	CURL *e;

	if (!prom[0])
		return 0;
	e = curl_easy_init();
	if (!e)
		return 0;
	snprintf(url, sizeof(url), "%s/api/v1/query?query=1", prom);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop);
	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(e);
	if (rc == CURLE_OK && code == 200)
		return 0;
	snprintf(msg, len,
		 "warning: prometheus %s does not answer (%s); gates will be inconclusive until "
		 "it does",
		 prom, rc != CURLE_OK ? curl_easy_strerror(rc) : "not HTTP 200");
	return -1;
}
