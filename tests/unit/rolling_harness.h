/* SPDX-License-Identifier: MIT */
/*
 * What the rolling state-machine tests (test_fsm_rolling.c,
 * test_fsm_rollhold.c) add to fsm_harness.h: a service of 4 instances, the
 * executor played by hand (start_spawned, conns), and the bounds
 * recorded after every step.
 * Static: each test program includes it once.
 */
#ifndef BATON_TEST_ROLLING_HARNESS_H
#define BATON_TEST_ROLLING_HARNESS_H

#include "fsm_harness.h"
#include "rollconf.h"

static void bounds(struct service *s);

/* 4 instances, ready by notify, signal-then-wait, no gates unless a test sets them. */
static struct service *service_new(int surge, int unavail)
{
	struct service *s = service_base();

	s->conf.instances = 4;
	s->conf.strategy = STRATEGY_ROLLING;
	s->conf.max_surge.n = surge;
	s->conf.max_unavail.n = unavail;
	hide_progress = true;
	trees_linger = true; /* the tests end processes by FE_EXIT alone */
	after_step = bounds;
	return s;
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
