/* SPDX-License-Identifier: MIT */
/*
 * The harness of the state machine's hold tests (test_fsm_hold.c,
 * test_fsm_http.c): a service and its versions made by hand, each event
 * stepped through the pure state machine, its actions rendered as text.
 * Included once by each test program (its functions are static).
 */
#ifndef BATON_FSM_HOLD_HARNESS_H
#define BATON_FSM_HOLD_HARNESS_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsm.h"
#include "lathist.h"
#include "log.h"
#include "statefile.h"

static struct fsm_out out;
static long long now = 1000000;
static char *cmd[] = {"/bin/true", NULL};
static struct client *const C1 = (struct client *)0x1, *const C2 = (struct client *)0x2;

/* A canary service: 1 instance ready by notify, steps 10%, 50%, 100%, bake 2 s. */
static struct service *service_new(unsigned webhook_events)
{
	struct service *s = calloc(1, sizeof(*s));

	snprintf(s->conf.name, sizeof(s->conf.name), "web");
	s->conf.nlisten = 1;
	s->conf.instances = 1;
	s->conf.ready = READY_NOTIFY;
	s->conf.ready_timeout_ms = 5000;
	s->conf.drain = DRAIN_SIGNAL_THEN_WAIT;
	s->conf.exit_signal = SIGTERM;
	s->conf.drain_timeout_ms = 3000;
	s->conf.kill_after_ms = 1000;
	s->conf.strategy = STRATEGY_CANARY;
	s->conf.nsteps = 3;
	s->conf.steps[0] = 1000;
	s->conf.steps[1] = 5000;
	s->conf.steps[2] = WEIGHT_MAX;
	s->conf.bake_ms = 2000;
	s->conf.health = HEALTH_NONE;
	s->conf.max_error_bp = ERROR_RATE_OFF;
	s->conf.health_threshold = 3;
	s->conf.hook_timeout_ms = 4000;
	s->conf.webhook_events = webhook_events;
	s->conf.confirm_interval_ms = 500;
	s->conf.confirm_timeout_ms = 7000;
	s->conf.approval_timeout_ms = 9000;
	s->active = s->previous = s->starting = -1;
	s->ro.newv = s->ro.oldv = -1;
	s->next_num = 1;
	return s;
}

static struct version *made[8];
static int nmade;

static void service_free(struct service *s)
{
	int i;

	for (i = 0; i < nmade; i++)
		free(made[i]);
	nmade = 0;
	free(s);
}

static struct version *version_make(struct service *s)
{
	struct version *v = calloc(1, sizeof(*v));
	int i;

	for (i = 0; s->slot[i]; i++)
		;
	v->svc = s;
	v->vslot = i;
	v->num = s->next_num++;
	v->ninst = s->conf.instances;
	v->spec.argv[0] = cmd[0];
	v->zero_to_signal_us = -1;
	s->slot[i] = v;
	made[nmade++] = v;
	return v;
}

/* The actions of the last step as one line, as test_fsm.c renders them. */
static const char *render(void)
{
	static char buf[4096];
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < out.n && n < sizeof(buf) - 64; i++) {
		const struct fsm_action *a = &out.a[i];

		n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "; " : "",
			      fsm_act_names[a->type]);
		if (a->v)
			n += snprintf(buf + n, sizeof(buf) - n, " v%d", a->v->num);
		switch (a->type) {
		case FA_SIGNAL:
			n += snprintf(buf + n, sizeof(buf) - n, " %s", signal_name((int)a->arg));
			break;
		case FA_WATCH:
			n += snprintf(buf + n, sizeof(buf) - n, " %s", a->arg ? "on" : "off");
			break;
		case FA_VTIMER:
		case FA_RO_TIMER:
			if (a->arg)
				n += snprintf(buf + n, sizeof(buf) - n, " %+lld", a->arg - now);
			else
				n += snprintf(buf + n, sizeof(buf) - n, " off");
			break;
		case FA_CONFIRM:
			n += snprintf(buf + n, sizeof(buf) - n, " %s",
				      a->arg < 0 ? "stop" : wh_event_names[a->arg]);
			break;
		case FA_REPLY:
			n += snprintf(buf + n, sizeof(buf) - n, " %s", a->ok ? "ok" : "err");
			break;
		case FA_DEPLOY_DONE:
			n += snprintf(buf + n, sizeof(buf) - n, " %s",
				      a->ok	       ? "ok"
				      : a->rolled_back ? "rolled-back"
						       : "failed");
			break;
		default:
			break;
		}
	}
	return buf;
}

static const char *step(struct service *s, struct fsm_event e)
{
	const char *broken;

	out.n = 0;
	out.overflow = false;
	fsm_step(s, &e, now, &out);
	broken = fsm_check(s, &out);
	if (broken)
		fail_msg("after %s: %s (actions: %s)", fsm_ev_names[e.type], broken, render());
	return render();
}

static const char *text_of(enum fsm_act t)
{
	int i;

	for (i = 0; i < out.n; i++)
		if (out.a[i].type == t)
			return out.a[i].text;
	return "";
}

#define EXPECT(s, e, want) assert_string_equal(step(s, e), want)

static void spawned(struct version *v)
{
	v->inst[0].alive = true;
	v->inst[0].pid = 100 * v->num;
	v->nalive = 1;
	v->tree = false;
}

static struct version *first_version(struct service *s)
{
	struct version *v = version_make(s);

	EXPECT(s, ((struct fsm_event){.type = FE_DEPLOY, .v = v}),
	       "place v1; policy; attach v1; spawn v1");
	spawned(v);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true});
	v->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 0}),
	       "vtimer v1 off; ro-timer off");
	return v;
}

/* v2 started and ready: its first step's actions are at_ready. */
static struct version *ready_new(struct service *s, struct version *v, const char *at_ready)
{
	spawned(v);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true});
	v->tree = false;
	EXPECT(s, ((struct fsm_event){.type = FE_READY, .v = v, .inst = 0}), at_ready);
	return v;
}

#endif /* BATON_FSM_HOLD_HARNESS_H */
