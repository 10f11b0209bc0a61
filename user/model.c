/* SPDX-License-Identifier: MIT */
/* Names and lookups of the model (model.h): no I/O. */
#include <stdio.h>
#include <string.h>

#include "model.h"

const char *const phase_names[] = {
    [VP_STARTING] = "starting",	  [VP_ACTIVE] = "active",     [VP_DRAIN_DELAY] = "draining",
    [VP_DRAIN_WAIT] = "draining", [VP_DRAINING] = "draining", [VP_TERMINATING] = "draining",
    [VP_KILLED] = "draining",	  [VP_ABORTING] = "stopping",
};

const char *const stage_names[] = {
    [RO_NONE] = "none",
    [RO_BEFORE_START] = "before-start hook",
    [RO_STARTING] = "starting",
    [RO_STEPPING] = "shifting traffic",
    [RO_AFTER_SWITCH] = "after-switch hook",
    [RO_DRAIN_OLD] = "draining the old version",
    [RO_AFTER_DRAIN] = "after-drain hook",
    [RO_ROLLING] = "replacing instances",
    [RO_ROLLING_BACK] = "rolling back",
};

const char *const rb_names[] = {
    [RB_HEALTH] = "health", [RB_ERRORS] = "errors",	[RB_EXIT] = "exit",
    [RB_HOOK] = "hook",	    [RB_OPERATOR] = "operator", [RB_RESTART] = "restart",
    [RB_GATE] = "gate",	    [RB_LATENCY] = "latency",	[RB_HTTP] = "http",
};

const char *const gate_verdict_names[] = {
    [GV_NONE] = "none",
    [GV_PASS] = "pass",
    [GV_FAIL] = "fail",
    [GV_INCONCLUSIVE] = "inconclusive",
};

const char *vname(const struct version *v)
{
	static char buf[2][64];
	static int k;

	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "%s v%d", v->svc->conf.name, v->num);
	return buf[k];
}

void history_add(struct service *s, int num, const char *how)
{
	struct history *h;

	if (s->nhist == HISTORY) {
		memmove(&s->hist[0], &s->hist[1], sizeof(s->hist[0]) * (HISTORY - 1));
		s->nhist--;
	}
	h = &s->hist[s->nhist++];
	memset(h, 0, sizeof(*h));
	h->num = num;
	snprintf(h->how, sizeof(h->how), "%s", how);
}

struct version *ro_new(struct service *s)
{
	return s->ro.newv >= 0 ? s->slot[s->ro.newv] : NULL;
}

struct version *ro_base(struct service *s)
{
	int i;

	for (i = 0; s->ro.base_num && i < MAX_VERSIONS; i++)
		if (s->slot[i] && s->slot[i]->num == s->ro.base_num)
			return s->slot[i];
	return NULL;
}

struct version *ro_old(struct service *s)
{
	return s->ro.oldv >= 0 ? s->slot[s->ro.oldv] : NULL;
}

struct version *version_by_num(struct service *s, long long num)
{
	int i;

	for (i = 0; i < MAX_VERSIONS; i++)
		if (s->slot[i] && s->slot[i]->num == num)
			return s->slot[i];
	return NULL;
}
