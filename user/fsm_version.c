/* SPDX-License-Identifier: MIT */
/* The state machine's rules for a version: its drain, its bounds, its end, its events. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "fsm_int.h"
#include "log.h"

/* ---- the end of a version --------------------------------------------------- */

/* All processes of a version are gone: its slot is free. */
void fsm_version_stopped(struct fsm *f, struct version *v)
{
	struct service *s = f->s;
	bool old_of_rollout = s->ro.stage == RO_DRAIN_OLD && s->ro.oldv == v->vslot;
	char how[96];
	int k;

	fsm_unplace(f, v);
	fsm_http_drain_end(f, v, 0);
	if (v->t_switch)
		snprintf(how, sizeof(how), "stopped %.3f s after switch-out",
			 (f->now - v->t_switch) / 1000.0);
	else
		snprintf(how, sizeof(how), "stopped without taking traffic");
	log_info("%s: all processes exited, %s", vname(v), how);
	history_add(s, v->num, how);
	if (s->active == v->vslot)
		s->active = -1;
	if (s->previous == v->vslot)
		s->previous = -1;
	if (s->starting == v->vslot)
		s->starting = -1;
	s->slot[v->vslot] = NULL;
	fsm_policy(f);
	fsm_emit(f, FA_FORGET, v, -1, 0);
	if (old_of_rollout) {
		s->ro.oldv = -1;
		fsm_hook_start(f, HOOK_AFTER_DRAIN);
	}
	if (s->removed && !s->gone) {
		for (k = 0; k < MAX_VERSIONS && !s->slot[k]; k++)
			;
		if (k == MAX_VERSIONS) {
			s->gone = true;
			fsm_emit(f, FA_SERVICE_GONE, NULL, -1, 0);
		}
	}
}

/* ---- signals -------------------------------------------------------------------- */

/*
 * The exit signal and SIGTERM go to the processes baton started (a
 * pre-forking master decides what its workers do), or with exit-signal-to =
 * all to every process of the version; SIGKILL, the last bound, always to
 * the whole tree: nothing of a version outlives kill-after.
 */
void fsm_signal(struct fsm *f, struct version *v, int sig)
{
	if (sig == SIGKILL || f->s->conf.exit_signal_all)
		fsm_emit(f, FA_SIGNAL_TREE, v, -1, sig);
	else
		fsm_emit(f, FA_SIGNAL, v, -1, sig);
}

/* ---- the drain ---------------------------------------------------------------- */

/*
 * A rolling rollout's old version: the instances it retired were told to
 * exit already (each at its own time), and are not told twice; only those
 * left to the version's drain at the rollout's end are.  False: not such
 * a version.
 */
static bool signal_left(struct fsm *f, struct version *v, int sig)
{
	bool any = false;
	int i;

	for (i = 0; i < v->ninst; i++)
		any |= v->inst[i].retiring && (v->inst[i].retire_step == RETIRE_WITH_VERSION ||
					       v->inst[i].retire_step == RETIRE_ALONE_SIGNALLED);
	if (!any)
		return false;
	for (i = 0; i < v->ninst; i++) {
		struct instance *in = &v->inst[i];

		if (!in->retiring || in->retire_step != RETIRE_WITH_VERSION)
			continue;
		in->retire_step = 0;
		if (in->alive)
			fsm_emit(f, FA_SIGNAL_INST, v, i, sig);
	}
	return true;
}

/* A version taken over while it drained: the drain program's sockhash did not survive. */
void fsm_http_drain_restore(struct fsm *f, struct version *v)
{
	if (!f->s->conf.drain_http || v->http_draining)
		return;
	v->http_draining = true;
	fsm_emit(f, FA_HTTP_DRAIN, v, -1, 1);
}

/*
 * drain-http ends: how 0 when the drain is over (what is still open then is
 * idle, and is counted so), -1 when the version goes back into service.
 */
void fsm_http_drain_end(struct fsm *f, struct version *v, int how)
{
	if (!v->http_draining)
		return;
	v->http_draining = false;
	fsm_emit(f, FA_HTTP_DRAIN, v, -1, how);
}

/*
 * Drain, last step: the exit signal.  With signal-then-wait the version has
 * drain-timeout to exit (then SIGTERM, then SIGKILL after kill-after); with
 * wait-then-signal it had its drain-timeout already and gets kill-after.
 */
void fsm_drain_signal(struct fsm *f, struct version *v)
{
	const struct service_conf *c = &f->s->conf;

	if (v->resetting) {
		fsm_emit(f, FA_RESET_STOP, v, -1, 0);
		v->resetting = false;
	}
	fsm_emit(f, FA_WATCH, v, -1, 0);
	/* wait-then-signal: the wait is over; what is still open did not close for the rewrite. */
	if (c->drain == DRAIN_WAIT_THEN_SIGNAL)
		fsm_http_drain_end(f, v, 0);
	v->t_signal = f->now;
	fsm_emit(f, FA_RELEASE, v, -1, 0);
	log_info("%s: draining, sending %s to %d process(es)", vname(v),
		 signal_name(c->exit_signal), v->nalive);
	if (!signal_left(f, v, c->exit_signal))
		fsm_signal(f, v, c->exit_signal);
	if (c->drain == DRAIN_SIGNAL_THEN_WAIT) {
		v->phase = VP_DRAINING;
		fsm_vtimer(f, v, v->t_signal + c->drain_timeout_ms);
	} else {
		v->phase = VP_TERMINATING;
		fsm_vtimer(f, v, v->t_signal + c->kill_after_ms);
	}
}

/* wait-then-signal: watch the live count; the kernel reports when it is 0. */
void fsm_drain_wait(struct fsm *f, struct version *v)
{
	v->phase = VP_DRAIN_WAIT;
	fsm_vtimer(f, v, f->now + f->s->conf.drain_timeout_ms);
	/* Watch first, then look (exec.c): a close between the two is reported or seen. */
	fsm_emit(f, FA_WATCH, v, -1, 1);
	/* A rolling rollout's old version: each instance left to it goes at its own 0. */
	fsm_roll_left_arm(f, v);
}

void fsm_drain_next(struct fsm *f, struct version *v)
{
	/* Kept warm (placed, no weight) until now: out of the map before it drains. */
	fsm_unplace(f, v);
	if (f->s->conf.drain == DRAIN_WAIT_THEN_SIGNAL)
		fsm_drain_wait(f, v);
	else
		fsm_drain_signal(f, v);
}

/* Drain step 1: out of the map; rollback can still take it back until it is signalled. */
void fsm_drain_begin(struct fsm *f, struct version *v)
{
	const struct service_conf *c = &f->s->conf;

	/*
	 * keep-warm: replaced by a version that now has the traffic (not a
	 * shutdown or a removal), it stays placed with no weight for
	 * rollback-window, so that rollback is one policy update.
	 */
	bool warm = c->keep_warm && f->s->active >= 0 && f->s->active != v->vslot &&
		    !f->s->removed && fsm_procs_left(v);
	unsigned delay = warm && c->rollback_window_ms > c->drain_delay_ms ? c->rollback_window_ms
									   : c->drain_delay_ms;

	v->phase = VP_DRAIN_DELAY;
	v->t_switch = f->now;
	if (!warm)
		fsm_unplace(f, v);
	if (!fsm_procs_left(v)) {
		fsm_version_stopped(f, v);
		return;
	}
	/* After the unplace: no new connection reaches it; each it has closes after a response. */
	if (c->drain_http && !v->http_draining) {
		v->http_draining = true;
		fsm_emit(f, FA_HTTP_DRAIN, v, -1, 1);
	}
	if (delay)
		fsm_vtimer(f, v, v->t_switch + delay);
	else
		fsm_drain_next(f, v);
}

/* Stop a version that never took traffic: TERM now, KILL after kill-after. */
void fsm_version_abort(struct fsm *f, struct version *v, const char *why)
{
	struct service *s = f->s;

	log_warnx("%s: deploy failed: %s", vname(v), why);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	if (s->starting == v->vslot)
		s->starting = -1;
	if (s->active == v->vslot)
		s->active = -1; /* a first version that never became ready */
	fsm_unplace(f, v);
	fsm_policy(f);
	fsm_emit(f, FA_RELEASE, v, -1, 0);
	v->phase = VP_ABORTING;
	if (!fsm_procs_left(v)) {
		fsm_version_stopped(f, v);
		return;
	}
	fsm_signal(f, v, SIGTERM);
	fsm_vtimer(f, v, f->now + s->conf.kill_after_ms);
}

/* ---- events of a version --------------------------------------------------------- */

void fsm_on_exit(struct fsm *f, struct version *v, int i, const char *desc)
{
	struct service *s = f->s;
	struct instance *in = &v->inst[i];
	char why[300];
	int k;

	if (i < 0 || i >= v->ninst || !in->alive)
		return;
	in->alive = false;
	v->nalive--;
	if (v->adopted) {
		/* Its process held every instance's sockets: they are all gone. */
		for (k = 0; k < v->ninst; k++)
			if (v->inst[k].alive) {
				v->inst[k].alive = false;
				snprintf(v->inst[k].exit_desc, sizeof(v->inst[k].exit_desc), "%s",
					 desc);
				v->nalive--;
				fsm_emit(f, FA_STOP_CHECKS, v, k, 0);
				if (v->phase == VP_ACTIVE)
					fsm_emit(f, FA_UNPLACE_INST, v, k, 0);
			}
	}
	fsm_emit(f, FA_STOP_CHECKS, v, i, 0);
	fsm_roll_http_drain(f, v, i, 0); /* a retired instance's own drain-http ends with it */
	if (fsm_rolling(s) && fsm_rolling_exit(f, v, i, desc))
		return;
	switch (v->phase) {
	case VP_STARTING:
		snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
			 in->pid, desc);
		fsm_rollout_fail(f, RB_EXIT, why);
		return;
	case VP_ACTIVE:
		if (s->starting == v->vslot) {
			/* first version, still starting */
			snprintf(why, sizeof(why), "instance %d (pid %d) %s before it was ready", i,
				 in->pid, desc);
			fsm_rollout_fail(f, RB_EXIT, why);
			return;
		}
		/*
		 * A running instance died.  Its slot leaves the map and the agent's
		 * copy closes, so what was queued on it moves to a sibling, or
		 * (when the new version of a rollout dies) back to the old version.
		 */
		log_warnx("%s: instance %d (pid %d) %s", vname(v), i, in->pid, desc);
		/*
		 * Before the dead sockets leave the map: while the policy still
		 * names this version, an empty slot set would refuse new clients.
		 */
		if (!v->nalive && s->active == v->vslot && s->ro.stage == RO_NONE) {
			struct version *prev = s->previous >= 0 ? s->slot[s->previous] : NULL;
			char msg[300];

			if (prev && prev->nalive &&
			    (prev->phase == VP_DRAIN_DELAY || prev->phase == VP_DRAIN_WAIT)) {
				/*
				 * The version that took over is gone and the one it replaced
				 * can still serve: give it back, before the dead one's
				 * listeners close, so what was queued on them migrates to it.
				 */
				snprintf(why, sizeof(why), "%s: every instance exited (last: %s)",
					 vname(v), desc);
				log_warnx("%s; rolling back", why);
				fsm_note_rollback(s, v->num, f->wall, why);
				s->rollbacks[RB_EXIT]++;
				fsm_rollback(f, msg, sizeof(msg)); /* v is forgotten: no process */
				return;
			}
		}
		if (ro_new(s) == v &&
		    (s->ro.stage == RO_STEPPING || s->ro.stage == RO_AFTER_SWITCH)) {
			bool last = !fsm_procs_left(v);

			snprintf(why, sizeof(why), "%s instance %d (pid %d) %s during the rollout",
				 vname(v), i, in->pid, desc);
			fsm_rollout_fail(f, RB_EXIT, why);
			if (last)
				return; /* v is gone: it had no process left */
		}
		fsm_emit(f, FA_UNPLACE_INST, v, i, 0);
		fsm_emit(f, FA_RELEASE, v, i, 0);
		if (!v->nalive && s->active == v->vslot)
			log_warnx(
			    "%s: no instance left; %s has no live version until the next deploy",
			    vname(v), s->conf.name);
		return;
	default:
		log_debug("%s: pid %d %s", vname(v), in->pid, desc);
		if (v->placed && fsm_procs_left(v)) {
			/* Kept warm: its socket leaves the map with it (no weight: no policy
			 * first). */
			fsm_emit(f, FA_UNPLACE_INST, v, i, 0);
			fsm_emit(f, FA_RELEASE, v, i, 0);
		}
		if (!fsm_procs_left(v))
			fsm_version_stopped(f, v);
		else if (!v->nalive)
			log_info("%s: its started process(es) exited; other processes of it still "
				 "run (stopped when none is left, killed at its bound)",
				 vname(v));
		return;
	}
}

/* No process of v's tree is left: with its instances gone too, it has stopped. */
void fsm_on_tree_empty(struct fsm *f, struct version *v)
{
	if (!v->tree)
		return;
	v->tree = false;
	if (v->nalive || v->phase == VP_ACTIVE || v->phase == VP_STARTING)
		return;
	fsm_version_stopped(f, v);
}

void fsm_on_vtimer(struct fsm *f, struct version *v)
{
	const struct service_conf *c = &f->s->conf;

	if (fsm_rolling(f->s) && fsm_rolling_vtimer(f, v))
		return;
	if (fsm_starting(f->s, v)) {
		char why[256], mutes[128] = "";
		int i, mute = -1;

		/* The readiness tick: only its deadline is a rule. */
		if (v->nready == v->ninst || !v->deadline || f->now < v->deadline)
			return;
		/* The first that said READY=1: the address its accept probe waited on. */
		for (i = 0; i < v->ninst && mute < 0; i++)
			if (v->inst[i].notified && !v->inst[i].ready)
				mute = i;
		if (mute >= 0) {
			int j = v->inst[mute].probe_addr;

			snprintf(mutes, sizeof(mutes),
				 " (instance %d sent READY=1 but accepted no connection on %s)",
				 mute,
				 j >= 0 && j < c->nlisten ? c->listen[j].text : "its listeners");
		}
		snprintf(why, sizeof(why),
			 "%d of %d instance(s) not ready within ready-timeout %u ms%s",
			 v->ninst - v->nready, v->ninst, c->ready_timeout_ms, mutes);
		fsm_emit(f, FA_STOP_CHECKS, v, -1, 0);
		fsm_rollout_fail(f, RB_HEALTH, why);
		return;
	}
	/* A rolling rollout's old version in its wait: the instances' poll. */
	if (fsm_roll_left_tick(f, v))
		return;
	/* A drain deadline: only one that is set and due counts. */
	if (!v->deadline || f->now < v->deadline)
		return;
	switch (v->phase) {
	case VP_DRAIN_DELAY:
		fsm_drain_next(f, v);
		break;
	case VP_DRAIN_WAIT:
		/* exec.c said how many connections are still open. */
		if (c->drain_reset && !v->resetting) {
			/* Reset what is left, in bounded steps; the signal follows it. */
			v->resetting = true;
			fsm_vtimer(f, v, 0);
			fsm_emit(f, FA_RESET, v, -1, 0);
			break;
		}
		fsm_drain_signal(f, v);
		break;
	case VP_DRAINING:
		/* signal-then-wait: drain-timeout ends the time the rewrite had. */
		fsm_http_drain_end(f, v, 0);
		log_warnx("%s: %d process(es) still running at drain-timeout %u ms%s", vname(v),
			  v->nalive, c->drain_timeout_ms,
			  c->exit_signal != SIGTERM ? ", sending SIGTERM" : "");
		if (c->exit_signal != SIGTERM)
			fsm_signal(f, v, SIGTERM);
		v->phase = VP_TERMINATING;
		fsm_vtimer(f, v, f->now + c->kill_after_ms);
		break;
	case VP_TERMINATING:
	case VP_ABORTING:
		log_warnx("%s: %d started process(es)%s still running after kill-after %u ms, "
			  "sending SIGKILL to all its processes",
			  vname(v), v->nalive, v->tree ? " and others of its tree" : "",
			  c->kill_after_ms);
		fsm_signal(f, v, SIGKILL);
		v->phase = VP_KILLED;
		fsm_vtimer(f, v, 0);
		break;
	default:
		break;
	}
}

void fsm_on_zero(struct fsm *f, struct version *v, const struct fsm_event *e)
{
	if (v->phase != VP_DRAIN_WAIT)
		return;
	if (!e->zero_ns)
		log_info("%s: no connections left", vname(v));
	fsm_drain_signal(f, v);
	if (e->zero_ns) {
		v->zero_to_signal_us = (e->now_ns - e->zero_ns) / 1000;
		v->zero_turn_cpu_us = e->turn_cpu_us;
		log_info("%s: last connection closed; signalled %lld us later (%lld us of the "
			 "agent's CPU in that loop turn)",
			 vname(v), v->zero_to_signal_us, v->zero_turn_cpu_us);
	}
}
