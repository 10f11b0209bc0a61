/* SPDX-License-Identifier: MIT */
/*
 * The configuration keys of webhooks, confirmations and approvals:
 *   webhook = EVENTS URL          (EVENTS: a comma-separated list, or all)
 *   webhook-timeout, confirm-interval, confirm-timeout
 *   approve = yes|no, approval-timeout
 */
#include <stdio.h>
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
