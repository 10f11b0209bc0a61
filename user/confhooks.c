/* SPDX-License-Identifier: MIT */
/*
 * The configuration keys of webhooks, confirmations, approvals and gates:
 *   webhook = EVENTS URL          (EVENTS: a comma-separated list, or all)
 *   webhook-timeout, confirm-interval, confirm-timeout
 *   approve = yes|no, approval-timeout
 *   prometheus = URL ([agent]); gate = NAME: <PromQL> <op> <threshold>,
 *   gate-dry-run, gate-timeout
 *   max-p99-ratio = R (R > 1), confidence = P%, baseline = yes|no,
 *   measure-http = yes|no, min-success-rate = P%, max-error-ratio = R,
 *   gate-mode = enforce|dry-run (every gate, built-in and Prometheus)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confparse.h"

const char *const wh_event_names[WH_COUNT] = {
    [WH_ROLLOUT_START] = "rollout-start",
    [WH_STEP] = "step",
    [WH_PAUSED] = "paused",
    [WH_GATE] = "gate",
    [WH_PROMOTED] = "promoted",
    [WH_COMPLETED] = "completed",
    [WH_FAILED] = "failed",
    [WH_ROLLED_BACK] = "rolled-back",
    [WH_DRAINING] = "draining",
    [WH_DRAINED] = "drained",
    [WH_STOPPED] = "stopped",
    [WH_CRASHED] = "crashed",
    [WH_LOST_CONNECTIONS] = "lost-connections",
    [WH_AGENT_RESTART] = "agent-restart",
    [WH_CONFIRM_ROLLOUT] = "confirm-rollout",
    [WH_CONFIRM_STEP] = "confirm-step",
    [WH_CONFIRM_PROMOTION] = "confirm-promotion",
};

int wh_event_of(const char *kind)
{
	int k;

	for (k = 0; k < WH_COUNT; k++)
		if (!strcmp(kind, wh_event_names[k]))
			return k;
	return -1;
}

/* EVENTS: "all" (every event, no confirmation), or names separated by commas. */
static int parse_events(struct parser *p, const char *key, const char *val, size_t len,
			unsigned *mask)
{
	char name[40];
	size_t i = 0, n;
	int k;

	*mask = 0;
	while (i < len) {
		n = strcspn(val + i, ",");
		if (n > len - i)
			n = len - i;
		if (!n || n >= sizeof(name))
			return perr(p, "%s: \"%.*s\" is not a list of events", key, ECHO_MAX, val);
		memcpy(name, val + i, n);
		name[n] = 0;
		if (!strcmp(name, "all")) {
			*mask |= ((1u << WH_COUNT) - 1) & ~WH_CONFIRM_MASK;
		} else if ((k = wh_event_of(name)) >= 0) {
			*mask |= 1u << k;
		} else {
			return perr(p,
				    "%s: unknown event \"%s\" (rollout-start, step, promoted, "
				    "rolled-back, completed, drained, confirm-step, ... or all)",
				    key, name);
		}
		i += n + 1;
	}
	return 0;
}

int set_webhook(struct parser *p, const char *key, const char *val)
{
	struct service_conf *c = p->svc;
	size_t elen = strcspn(val, " \t"), i;
	const char *url = val + elen;
	struct webhook_conf *w;
	unsigned mask;

	while (*url == ' ' || *url == '\t')
		url++;
	if (!elen || !*url)
		return perr(p, "%s needs EVENTS URL, e.g. %s = all http://127.0.0.1:9000/hook", key,
			    key);
	if (c->nwebhooks == MAX_WEBHOOKS)
		return perr(p, "more than %d webhooks in one service", MAX_WEBHOOKS);
	if (parse_events(p, key, val, elen, &mask))
		return -1;
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return perr(p, "%s: the URL must begin with http:// or https://, not \"%.*s\"", key,
			    ECHO_MAX, url);
	for (i = 0; url[i]; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
			return perr(p,
				    "%s: the URL may not contain spaces or control characters "
				    "(percent-encode them)",
				    key);
	if (strlen(url) >= WEBHOOK_URL_MAX)
		return perr(p, "%s: the URL is longer than %d characters", key,
			    WEBHOOK_URL_MAX - 1);
	w = &c->webhook[c->nwebhooks++];
	w->events = mask;
	snprintf(w->url, sizeof(w->url), "%s", url);
	c->webhook_events |= mask;
	return 0;
}

static int duration(struct parser *p, const char *key, const char *val, unsigned *dst)
{
	char msg[CONF_ERR_LEN];
	unsigned ms;

	if (parse_duration_ms(val, &ms, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	if (!ms)
		return perr(p, "%s must be more than 0", key);
	*dst = ms;
	return 0;
}

int set_webhook_timeout(struct parser *p, const char *key, const char *val)
{
	return duration(p, key, val, &p->svc->webhook_timeout_ms);
}

int set_confirm_interval(struct parser *p, const char *key, const char *val)
{
	return duration(p, key, val, &p->svc->confirm_interval_ms);
}

int set_confirm_timeout(struct parser *p, const char *key, const char *val)
{
	return duration(p, key, val, &p->svc->confirm_timeout_ms);
}

int set_approval_timeout(struct parser *p, const char *key, const char *val)
{
	return duration(p, key, val, &p->svc->approval_timeout_ms);
}

int set_approve(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->approve = true;
	else if (!strcmp(val, "no"))
		p->svc->approve = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

/* ---- Prometheus gates ----------------------------------------------------------- */

const char *const gate_op_names[] = {
    [GOP_LT] = "<",  [GOP_LE] = "<=", [GOP_GT] = ">",
    [GOP_GE] = ">=", [GOP_EQ] = "==", [GOP_NE] = "!=",
};

static const char *const gate_vars[] = {"SERVICE", "VERSION", "PREVIOUS_VERSION",
					"BASELINE_VERSION"};

/* The variable at s (after a '$'): its index, or -1; *len its length. */
static int gate_var(const char *s, size_t *len)
{
	size_t n = 0, k;

	while (s[n] == '_' || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
	       (s[n] >= '0' && s[n] <= '9'))
		n++;
	*len = n;
	for (k = 0; k < sizeof(gate_vars) / sizeof(gate_vars[0]); k++)
		if (strlen(gate_vars[k]) == n && !strncmp(s, gate_vars[k], n))
			return (int)k;
	return -1;
}

int gate_expand(const struct gate_conf *g, const char *service, int version, int previous,
		char *out, size_t len)
{
	const char *s = g->query;
	size_t o = 0, n;
	char val[48];
	int k, w;

	while (*s) {
		if (*s != '$' || (k = gate_var(s + 1, &n)) < 0) {
			if (o + 1 >= len)
				return -1;
			out[o++] = *s++;
			continue;
		}
		if (k == 0)
			w = snprintf(val, sizeof(val), "%s", service);
		else if (k == 1)
			w = snprintf(val, sizeof(val), "v%d", version);
		else
			w = previous ? snprintf(val, sizeof(val), "v%d", previous)
				     : snprintf(val, sizeof(val), "none");
		if (o + w >= len)
			return -1;
		memcpy(out + o, val, w);
		o += w;
		s += n + 1;
	}
	out[o] = 0;
	return 0;
}

bool gate_passes(const struct gate_conf *g, double v)
{
	if (v != v)
		return false;
	switch (g->op) {
	case GOP_LT:
		return v < g->threshold;
	case GOP_LE:
		return v <= g->threshold;
	case GOP_GT:
		return v > g->threshold;
	case GOP_GE:
		return v >= g->threshold;
	case GOP_EQ:
		return v == g->threshold;
	case GOP_NE:
		return v != g->threshold;
	}
	return false;
}

int set_prometheus(struct parser *p, const char *key, const char *val)
{
	size_t i;

	if (strncmp(val, "http://", 7) && strncmp(val, "https://", 8))
		return perr(
		    p, "%s must be an http:// or https:// URL (http://HOST:9090), not \"%.*s\"",
		    key, ECHO_MAX, val);
	for (i = 0; val[i]; i++)
		if ((unsigned char)val[i] <= ' ' || val[i] == 0x7f || val[i] == '?' ||
		    val[i] == '#')
			return perr(p,
				    "%s: give the server's base URL, without spaces, query or "
				    "fragment (http://HOST:9090)",
				    key);
	if (i >= sizeof(p->cfg->agent.prometheus))
		return perr(p, "%s is longer than %zu characters", key,
			    sizeof(p->cfg->agent.prometheus) - 1);
	/* Queries go to URL/api/v1/query: one slash between. */
	while (i > 8 && val[i - 1] == '/')
		i--;
	snprintf(p->cfg->agent.prometheus, sizeof(p->cfg->agent.prometheus), "%.*s", (int)i, val);
	return 0;
}

/* gate = NAME: <PromQL> <op> <threshold> */
int set_gate(struct parser *p, const char *key, const char *val)
{
	struct service_conf *c = p->svc;
	const char *colon = strchr(val, ':'), *q, *end, *th, *op;
	struct gate_conf g;
	size_t n, qlen;
	char num[64], *e;
	int k;

	memset(&g, 0, sizeof(g));
	n = colon ? (size_t)(colon - val) : 0;
	if (!colon || !n || n >= sizeof(g.name) ||
	    strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return perr(p,
			    "%s must be NAME: <PromQL> <op> <threshold>, NAME of a-z, 0-9, _ and - "
			    "(e.g. %s = errors: sum(rate(x[1m])) < 0.01)",
			    key, key);
	memcpy(g.name, val, n);
	for (k = 0; k < c->ngates; k++)
		if (!strcmp(c->gate[k].name, g.name))
			return perr(p, "%s %s is given twice", key, g.name);
	if (c->ngates == MAX_GATES)
		return perr(p, "more than %d gates in one service", MAX_GATES);
	q = colon + 1;
	while (*q == ' ' || *q == '\t')
		q++;
	/* From the end: the threshold, then the operator, then the query. */
	end = q + strlen(q);
	th = end;
	while (th > q && th[-1] != ' ' && th[-1] != '\t')
		th--;
	op = th;
	while (op > q && (op[-1] == ' ' || op[-1] == '\t'))
		op--;
	while (op > q && op[-1] != ' ' && op[-1] != '\t')
		op--;
	qlen = op - q;
	n = th - op;
	while (n && (op[n - 1] == ' ' || op[n - 1] == '\t'))
		n--;
	for (k = 0; k <= GOP_NE; k++)
		if (strlen(gate_op_names[k]) == n && !strncmp(op, gate_op_names[k], n))
			break;
	snprintf(num, sizeof(num), "%.*s", (int)(end - th), th);
	g.threshold = strtod(num, &e);
	if (k > GOP_NE || !*num || *e || g.threshold != g.threshold || !qlen)
		return perr(p,
			    "%s %s: needs <PromQL> <op> <threshold> at the end, <op> one of < <= "
			    "> >= == != and a number (e.g. ... < 0.01)",
			    key, g.name);
	g.op = (enum gate_op)k;
	while (qlen && (q[qlen - 1] == ' ' || q[qlen - 1] == '\t'))
		qlen--;
	if (qlen >= sizeof(g.query))
		return perr(p, "%s %s: the query is longer than %zu characters", key, g.name,
			    sizeof(g.query) - 1);
	memcpy(g.query, q, qlen);
	for (q = g.query; (q = strchr(q, '$')); q++)
		if (gate_var(q + 1, &n) < 0)
			return perr(p,
				    "%s %s: unknown template variable $%.*s (known: $SERVICE, "
				    "$VERSION, $PREVIOUS_VERSION, $BASELINE_VERSION)",
				    key, g.name, (int)(n < 32 ? n : 32), q + 1);
	c->gate[c->ngates++] = g;
	return 0;
}

int set_gate_dry_run(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->gate_dry_run = true;
	else if (!strcmp(val, "no"))
		p->svc->gate_dry_run = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

int set_gate_timeout(struct parser *p, const char *key, const char *val)
{
	return duration(p, key, val, &p->svc->gate_timeout_ms);
}

/* max-p99-ratio = R: the canary's response times against R times its baseline's (1 < R <= 100). */
int set_max_p99_ratio(struct parser *p, const char *key, const char *val)
{
	char *e;
	double r;

	if (!strcmp(val, "off")) {
		p->svc->max_p99_ratio = 0;
		return 0;
	}
	r = strtod(val, &e);
	if (e == val || *e || !isfinite(r) || r <= 1 || r > 100)
		return perr(
		    p,
		    "%s must be a ratio above 1 and at most 100 (e.g. 1.2: 20%% slower than "
		    "the baseline fails), or off, not \"%.*s\"",
		    key, ECHO_MAX, val);
	p->svc->max_p99_ratio = r;
	return 0;
}

/* confidence = P%: of the rank test, 50% < P < 100%. */
int set_confidence(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];
	unsigned bp;

	if (parse_percent_bp(val, &bp, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	if (bp <= 5000 || bp >= 10000)
		return perr(p, "%s must be above 50%% and below 100%% (e.g. 95%%), not %.*s", key,
			    ECHO_MAX, val);
	p->svc->confidence_bp = bp;
	return 0;
}

/* measure-http = yes | no: count the status class of the responses of versions under analysis. */
int set_measure_http(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->measure_http = true;
	else if (!strcmp(val, "no"))
		p->svc->measure_http = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

/* min-success-rate = P%: the non-5xx share of the new version's responses (0% < P <= 100%). */
int set_min_success_rate(struct parser *p, const char *key, const char *val)
{
	char msg[CONF_ERR_LEN];
	size_t len = strlen(val);
	unsigned bp;

	if (!strcmp(val, "off")) {
		p->svc->min_success_bp = 0;
		return 0;
	}
	if (len && val[len - 1] != '%')
		return perr(p, "%s needs a unit: %.*s%%, or off, not %.*s", key, ECHO_MAX, val,
			    ECHO_MAX, val);
	if (parse_percent_bp(val, &bp, msg, sizeof(msg)) < 0)
		return perr(p, "%s: %s", key, msg);
	if (!bp || bp > 10000)
		return perr(p,
			    "%s must be above 0%% and at most 100%% (e.g. 99%%), or off, not %.*s",
			    key, ECHO_MAX, val);
	p->svc->min_success_bp = bp;
	return 0;
}

/* max-error-ratio = R: the canary's 5xx rate against R times its comparison's (1 < R <= 100). */
int set_max_error_ratio(struct parser *p, const char *key, const char *val)
{
	char *e;
	double r;

	if (!strcmp(val, "off")) {
		p->svc->max_error_ratio = 0;
		return 0;
	}
	r = strtod(val, &e);
	if (e == val || *e || !isfinite(r) || r <= 1 || r > 100)
		return perr(p,
			    "%s must be a ratio above 1 and at most 100 (e.g. 2: twice the "
			    "baseline's 5xx rate fails), or off, not \"%.*s\"",
			    key, ECHO_MAX, val);
	p->svc->max_error_ratio = r;
	return 0;
}

int set_baseline(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "yes"))
		p->svc->baseline = true;
	else if (!strcmp(val, "no"))
		p->svc->baseline = false;
	else
		return perr(p, "%s must be yes or no, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}

/* gate-mode = enforce | dry-run: gate-dry-run = yes|no, for every gate. */
int set_gate_mode(struct parser *p, const char *key, const char *val)
{
	if (!strcmp(val, "dry-run"))
		p->svc->gate_dry_run = true;
	else if (!strcmp(val, "enforce"))
		p->svc->gate_dry_run = false;
	else
		return perr(p, "%s must be enforce or dry-run, not \"%.*s\"", key, ECHO_MAX, val);
	return 0;
}
