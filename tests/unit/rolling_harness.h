/* SPDX-License-Identifier: MIT */
/*
 * The harness of the rolling state-machine tests (test_fsm_rolling.c,
 * test_fsm_rollhold.c): a service of 4 instances, the executor played by
 * hand (start_spawned, conns), each step's exact actions rendered, the
 * invariants checked and the bounds recorded after every step.
 * Static: each test program includes it once.
 */
#ifndef BATON_TEST_ROLLING_HARNESS_H
#define BATON_TEST_ROLLING_HARNESS_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsm.h"
#include "log.h"
#include "rollconf.h"

static struct fsm_out out;
static long long now = 1000000;
static char *cmd[] = {"/bin/true", NULL};
static struct client *const C1 = (struct client *)0x1;

/* 4 instances, ready by notify, signal-then-wait, no gates unless a test sets them. */
static struct service *service_new(int surge, int unavail)
{
	struct service *s = calloc(1, sizeof(*s));

	snprintf(s->conf.name, sizeof(s->conf.name), "web");
	s->conf.nlisten = 1;
	s->conf.instances = 4;
	s->conf.ready = READY_NOTIFY;
	s->conf.ready_timeout_ms = 5000;
	s->conf.drain = DRAIN_SIGNAL_THEN_WAIT;
	s->conf.exit_signal = SIGTERM;
	s->conf.drain_timeout_ms = 3000;
	s->conf.kill_after_ms = 1000;
	s->conf.strategy = STRATEGY_ROLLING;
	s->conf.max_surge.n = surge;
	s->conf.max_unavail.n = unavail;
	s->conf.health = HEALTH_NONE;
	s->conf.health_threshold = 3;
	s->conf.max_error_bp = ERROR_RATE_OFF;
	s->conf.hook_timeout_ms = 4000;
	s->active = s->previous = s->starting = -1;
	s->ro.newv = s->ro.oldv = -1;
	s->next_num = 1;
	return s;
}

static struct version *made[16];
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

static const char *render(void)
{
	static char buf[4096];
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < out.n && n < sizeof(buf) - 64; i++) {
		const struct fsm_action *a = &out.a[i];

		if (a->type == FA_PROGRESS)
			continue;
		n += snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "; " : "",
			      fsm_act_names[a->type]);
		if (a->v)
			n += snprintf(buf + n, sizeof(buf) - n, " v%d", a->v->num);
		switch (a->type) {
		case FA_UNPLACE_INST:
		case FA_PLACE_INST:
		case FA_SPAWN_INST:
		case FA_STOP_CHECKS:
		case FA_RELEASE:
		case FA_KILL_INST:
			if (a->inst >= 0)
				n += snprintf(buf + n, sizeof(buf) - n, "/%d", a->inst);
			break;
		case FA_SIGNAL_INST:
			n += snprintf(buf + n, sizeof(buf) - n, "/%d %s", a->inst,
				      signal_name((int)a->arg));
			break;
		case FA_HTTP_DRAIN:
			if (a->inst >= 0)
				n += snprintf(buf + n, sizeof(buf) - n, "/%d", a->inst);
			if (a->arg == 1)
				n += snprintf(buf + n, sizeof(buf) - n, " on");
			else
				n += snprintf(buf + n, sizeof(buf) - n, " %s",
					      a->arg ? "back" : "end");
			break;
		case FA_SIGNAL:
		case FA_SIGNAL_TREE:
			n += snprintf(buf + n, sizeof(buf) - n, " %s", signal_name((int)a->arg));
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

static struct version *nv_, *ov_;
static int max_procs, min_serving = 1000;

/* Processes and serving instances now, as the steering map sees them. */
static void bounds(struct service *s)
{
	int i, procs = 0, serving = 0;

	for (i = 0; i < 4; i++) {
		if (ov_) {
			procs += ov_->inst[i].alive;
			serving += ov_->inst[i].alive && ov_->inst[i].ready &&
				   !ov_->inst[i].retiring && ov_->phase == VP_ACTIVE;
		}
		if (nv_)
			procs += nv_->inst[i].alive;
	}
	if (nv_ && s->slot[nv_->vslot] == nv_ && nv_->phase == VP_ACTIVE)
		serving += nv_->serve_n;
	if (procs > max_procs)
		max_procs = procs;
	if (serving < min_serving)
		min_serving = serving;
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
	bounds(s);
	return render();
}

#define EXPECT(s, e, want) assert_string_equal(step(s, e), want)

/* exec.c's part of a spawn-inst: the process runs. */
static void start(struct version *v, int i)
{
	v->inst[i].alive = true;
	v->inst[i].pid = 100 * v->num + i;
	v->nalive++;
}

/* exec.c's part of the last step: start what spawn-inst named. */
static void start_spawned(void)
{
	int i;

	for (i = 0; i < out.n; i++)
		if (out.a[i].type == FA_SPAWN_INST)
			start(out.a[i].v, out.a[i].inst);
}

static struct version *first_version(struct service *s)
{
	struct version *v = version_make(s);
	int i;

	step(s, (struct fsm_event){.type = FE_DEPLOY, .v = v});
	for (i = 0; i < 4; i++)
		start(v, i);
	step(s, (struct fsm_event){.type = FE_SPAWNED, .v = v, .ok = true});
	for (i = 0; i < 4; i++)
		step(s, (struct fsm_event){.type = FE_READY, .v = v, .inst = i});
	assert_int_equal(s->active, v->vslot);
	v->tree = false; /* the tests end processes by FE_EXIT alone */
	return v;
}

static struct fsm_event conns(struct version *v, long long a, long long b, long long c, long long d)
{
	struct fsm_event e = {.type = FE_INST_CONNS, .v = v, .ok = true};

	e.inst_conns[0] = a;
	e.inst_conns[1] = b;
	e.inst_conns[2] = c;
	e.inst_conns[3] = d;
	return e;
}

static struct fsm_event ev(enum fsm_ev t, struct version *v, int i)
{
	return (struct fsm_event){.type = t, .v = v, .inst = i, .ok = true, .why = "exited"};
}

static void setup_two(struct service *s)
{
	max_procs = 0;
	min_serving = 1000;
	nv_ = ov_ = NULL; /* the last test's, freed */
	ov_ = first_version(s);
	max_procs = 0;
	min_serving = 1000;
	nv_ = version_make(s);
}

#endif /* BATON_TEST_ROLLING_HARNESS_H */
