/* SPDX-License-Identifier: MIT */
/*
 * The harness every state-machine test program shares: a service and its
 * versions made by hand (no sockets, no processes), each event stepped
 * through the pure state machine with its invariants checked, the actions
 * of the step rendered as one line of text ("place v2; policy; spawn v2"),
 * which the tests compare whole.  Each program includes it once (all is
 * static) and builds its own service_new on service_base.
 */
#ifndef BATON_FSM_HARNESS_H
#define BATON_FSM_HARNESS_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsm.h"
#include "log.h"

/* Not every program uses every part. */
#define HARNESS __attribute__((unused)) static

HARNESS struct fsm_out out;
HARNESS long long now = 1000000;
HARNESS char *cmd[] = {"/bin/true", NULL};
/* Stand-ins for control clients: only compared, never read. */
HARNESS struct client *const C1 = (struct client *)0x1, *const C2 = (struct client *)0x2;

/* FA_PROGRESS left out of the rendered line (the rolling and history tests). */
HARNESS bool hide_progress;
/*
 * exec.c's part before an instance's exit: a version whose other processes
 * are gone already hears FE_TREE_EMPTY first (versions.c's tree_check).
 * Tests of process trees that outlive their instance, and programs whose
 * tests end processes by FE_EXIT alone, set trees_linger.
 */
HARNESS bool trees_linger;
/* When set, every event carries this wall-clock time (the history tests). */
HARNESS time_t step_wall;
/* Called after every step (the rolling tests record their bounds). */
HARNESS void (*after_step)(struct service *s);

/*
 * The defaults the tests share: 1 instance ready by notify, blue-green,
 * signal-then-wait (drain-timeout 3 s, kill-after 1 s), drain-delay 0, no
 * health checks, no error gate, hooks bounded at 4 s.
 */
HARNESS struct service *service_base(void)
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
	s->conf.strategy = STRATEGY_BLUEGREEN;
	s->conf.health = HEALTH_NONE;
	s->conf.health_threshold = 3;
	s->conf.max_error_bp = ERROR_RATE_OFF;
	s->conf.hook_timeout_ms = 4000;
	s->active = s->previous = s->starting = -1;
	s->ro.newv = s->ro.oldv = -1;
	s->next_num = 1;
	return s;
}

/* Canary steps 10%, 50%, 100% with a 2 s bake. */
HARNESS void canary_steps(struct service *s)
{
	s->conf.nsteps = 3;
	s->conf.steps[0] = 1000;
	s->conf.steps[1] = 5000;
	s->conf.steps[2] = WEIGHT_MAX;
	s->conf.bake_ms = 2000;
}

/* Every version made, forgotten or not: freed with the service of the test. */
HARNESS struct version *made[64];
HARNESS int nmade;

HARNESS void service_free(struct service *s)
{
	int i;

	for (i = 0; i < nmade; i++)
		if (made[i] && made[i]->svc == s) {
			free(made[i]);
			made[i] = NULL;
		}
	while (nmade && !made[nmade - 1])
		nmade--;
	free(s);
}

/* What version_new does, without sockets or a command: a free slot, the next number. */
HARNESS struct version *version_slot(struct service *s)
{
	struct version *v = calloc(1, sizeof(*v));
	int i;

	for (i = 0; s->slot[i]; i++)
		;
	v->svc = s;
	v->vslot = i;
	v->num = s->next_num++;
	v->ninst = s->conf.instances;
	v->zero_to_signal_us = -1;
	s->slot[i] = v;
	for (i = 0; i < nmade && made[i]; i++)
		;
	assert_true(i < (int)(sizeof(made) / sizeof(made[0])));
	if (i == nmade)
		nmade++;
	made[i] = v;
	return v;
}

HARNESS struct version *version_make(struct service *s)
{
	struct version *v = version_slot(s);

	v->spec.argv[0] = cmd[0];
	return v;
}

/* What follows an action's name and version in the rendered line. */
HARNESS size_t render_arg(char *buf, size_t len, const struct fsm_action *a)
{
	switch (a->type) {
	case FA_UNPLACE_INST:
	case FA_PLACE_INST:
	case FA_SPAWN_INST:
	case FA_KILL_INST:
	case FA_STOP_CHECKS:
	case FA_RELEASE:
	case FA_ACCEPT_PROBE:
		return a->inst >= 0 ? (size_t)snprintf(buf, len, "/%d", a->inst) : 0;
	case FA_SIGNAL_INST:
		return snprintf(buf, len, "/%d %s", a->inst, signal_name((int)a->arg));
	case FA_SIGNAL:
	case FA_SIGNAL_TREE:
		return snprintf(buf, len, " %s", signal_name((int)a->arg));
	case FA_WATCH:
	case FA_HTTP_RESTEER:
		return snprintf(buf, len, " %s", a->arg ? "on" : "off");
	case FA_HTTP_DRAIN: {
		size_t k = a->inst >= 0 ? (size_t)snprintf(buf, len, "/%d", a->inst) : 0;

		return k + snprintf(buf + k, len - k, " %s",
				    a->arg == 1	  ? "begin"
				    : a->arg == 0 ? "end"
						  : "cancel");
	}
	case FA_VTIMER:
	case FA_RO_TIMER:
		if (!a->arg)
			return snprintf(buf, len, " off");
		return snprintf(buf, len, " %+lld", a->arg - now);
	case FA_RUN_HOOK:
		return snprintf(buf, len, " %s", hook_name((enum hook_point)a->arg));
	case FA_CONFIRM:
		return snprintf(buf, len, " %s", a->arg < 0 ? "stop" : wh_event_names[a->arg]);
	case FA_REDEPLOY:
		return snprintf(buf, len, " v%lld", a->arg);
	case FA_REPLY:
		return snprintf(buf, len, " %s", a->ok ? "ok" : "err");
	case FA_DEPLOY_DONE:
		return snprintf(buf, len, " %s",
				a->ok		 ? "ok"
				: a->rolled_back ? "rolled-back"
						 : "failed");
	default:
		return 0;
	}
}

/* The actions of the last step as one line: "policy; place v2; spawn v2". */
HARNESS const char *render(void)
{
	static char buf[4096];
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < out.n && n < sizeof(buf) - 64; i++) {
		const struct fsm_action *a = &out.a[i];

		if (a->type == FA_PROGRESS && hide_progress)
			continue;
		n += snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "; " : "",
			      fsm_act_names[a->type]);
		if (a->v)
			n += snprintf(buf + n, sizeof(buf) - n, " v%d", a->v->num);
		n += render_arg(buf + n, sizeof(buf) - n, a);
	}
	return buf;
}

/* One event; the invariants must hold after it.  Its actions, rendered. */
HARNESS const char *step(struct service *s, struct fsm_event e)
{
	const char *broken;

	if (step_wall)
		e.wall = step_wall;
	if (e.type == FE_EXIT && e.v && e.v->tree && !trees_linger) {
		out.n = 0;
		fsm_step(s, &(struct fsm_event){.type = FE_TREE_EMPTY, .v = e.v, .wall = e.wall},
			 now, &out);
		assert_int_equal(out.n, 0); /* its instances still run: nothing follows */
		assert_false(e.v->tree);
	}
	out.n = 0;
	out.overflow = false;
	fsm_step(s, &e, now, &out);
	broken = fsm_check(s, &out);
	if (broken)
		fail_msg("after %s: %s (actions: %s)", fsm_ev_names[e.type], broken, render());
	if (after_step)
		after_step(s);
	return render();
}

#define EXPECT(s, e, want) assert_string_equal(step(s, e), want)

/* The text of the first action of type t in the last step. */
HARNESS const char *text_of(enum fsm_act t)
{
	int i;

	for (i = 0; i < out.n; i++)
		if (out.a[i].type == t)
			return out.a[i].text;
	return "";
}

/* exec.c's part after FA_SPAWN: every instance's process runs. */
HARNESS void spawned(struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++) {
		v->inst[i].alive = true;
		v->inst[i].pid = 100 * v->num + i;
	}
	v->nalive = v->ninst;
}

#endif /* BATON_FSM_HARNESS_H */
