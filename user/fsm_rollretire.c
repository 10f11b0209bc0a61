/* SPDX-License-Identifier: MIT */
/*
 * The state machine's rules for an old instance that a rolling rollout
 * retired: out of the map, it drains on its own as drain-policy says
 * (drain-delay, drain-http for its own connections, wait-then-signal on
 * its own live count), then its exit signal, SIGTERM at
 * drain-timeout and SIGKILL after kill-after, as a version's drain bounds a version.  Which
 * instance leaves and when is fsm_rolling.c's.
 */
#include <signal.h>
#include <stdio.h>

#include "fsm_int.h"
#include "log.h"

/* How often the counts of retired instances that wait for their connections are read. */
#define INST_POLL_MS 100

/*
 * A retired instance that waits, unsignalled, for its connections to close
 * (drain-policy wait-then-signal): out of the map, its listener still held.
 */
static bool waits(const struct instance *in)
{
	return in->retiring && in->alive && in->retire_step == -1;
}

bool fsm_roll_unsignalled(const struct instance *in)
{
	return in->retiring && in->alive && in->retire_step < 0;
}

static bool any_waits(const struct version *ov)
{
	int i;

	for (i = 0; ov && i < ov->ninst; i++)
		if (waits(&ov->inst[i]))
			return true;
	return false;
}

/*
 * drain-http for one instance: its connections get Connection: close in
 * their next response (on), until it exited or serves again.  Its version
 * may go on serving through the other instances: only this one's are asked.
 */
void fsm_roll_http_drain(struct fsm *f, struct version *v, int i, int how)
{
	struct instance *in = &v->inst[i];

	if (how == 1) {
		if (!f->s->conf.drain_http || in->http_draining)
			return;
		in->http_draining = true;
		fsm_emit(f, FA_HTTP_DRAIN, v, i, 1);
		return;
	}
	if (!in->http_draining)
		return;
	in->http_draining = false;
	fsm_emit(f, FA_HTTP_DRAIN, v, i, how);
}

/* What a retired instance does once drain-delay is over (or at once without one). */
static void drain_inst(struct fsm *f, struct version *ov, int i, long long conns)
{
	const struct service_conf *c = &f->s->conf;
	struct instance *in = &ov->inst[i];

	in->retire_at = f->now + c->drain_timeout_ms;
	if (c->drain == DRAIN_WAIT_THEN_SIGNAL && conns != 0) {
		in->retire_step = -1;
		if (!f->s->ro.poll_at)
			f->s->ro.poll_at = f->now + INST_POLL_MS;
		return;
	}
	fsm_emit(f, FA_RELEASE, ov, i, 0);
	fsm_emit(f, FA_SIGNAL_INST, ov, i, c->exit_signal);
	in->retire_step = 0;
}

/*
 * A waiting retired instance's connections closed, or drain-timeout passed:
 * the agent's copies of its listeners go (what is still queued migrates
 * when it closes its own), it gets the exit signal, SIGKILL after
 * kill-after, as a wait-then-signal version.
 */
static void signal_waiting(struct fsm *f, struct version *ov, int i, const char *why)
{
	const struct service_conf *c = &f->s->conf;
	struct instance *in = &ov->inst[i];

	in->retire_step = 1;
	in->retire_at = f->now + c->kill_after_ms;
	/* The wait is over: what is still open did not close for the rewrite (idle). */
	fsm_roll_http_drain(f, ov, i, 0);
	fsm_emit(f, FA_RELEASE, ov, i, 0);
	fsm_emit(f, FA_SIGNAL_INST, ov, i, c->exit_signal);
	log_info("%s: retired instance %d (pid %d) %s: exit signal", vname(ov), i, in->pid, why);
}

/*
 * Out of the map (its caller took it out of the policy); then, as
 * drain-policy says, told to exit at once (bounded as a drain), or left
 * alone until its own live connections (the kernel's count, read every
 * INST_POLL_MS) reach 0 or drain-timeout passes.  With drain-http its
 * connections are asked to close from the start (drain-delay included).
 */
void fsm_roll_retire(struct fsm *f, struct version *ov, int i, long long conns)
{
	const struct service_conf *c = &f->s->conf;
	struct instance *in = &ov->inst[i];

	fsm_emit(f, FA_UNPLACE_INST, ov, i, 0);
	log_info("%s: instance %d (pid %d, %lld live connection(s)) leaves, %d of %d retired",
		 vname(ov), i, in->pid, conns, f->s->ro.retired, ov->ninst);
	/* After the unplace: no new connection reaches it; each it has closes after a response. */
	if (conns != 0)
		fsm_roll_http_drain(f, ov, i, 1);
	if (c->drain_delay_ms) {
		/* Kept as it is (a rollback places it again) for drain-delay. */
		in->retire_step = -2;
		in->retire_at = f->now + c->drain_delay_ms;
		return;
	}
	drain_inst(f, ov, i, conns);
}

/* A retired instance, not signalled yet, serves again (a rollback): nothing of its drain stays. */
void fsm_roll_unretire(struct fsm *f, struct version *ov, int i)
{
	struct instance *in = &ov->inst[i];

	in->retiring = false;
	in->retire_at = 0;
	in->retire_step = 0;
	fsm_roll_http_drain(f, ov, i, -1);
	fsm_emit(f, FA_PLACE_INST, ov, i, 0);
	log_info("%s: instance %d (pid %d) serves again", vname(ov), i, in->pid);
}

/* The earliest time a retired instance needs the rollout timer (0: none). */
long long fsm_roll_retire_next(struct service *s)
{
	struct version *ov = ro_old(s);
	long long at = s->ro.poll_at > 0 ? s->ro.poll_at : 0;
	int i;

	for (i = 0; ov && i < ov->ninst; i++)
		if (ov->inst[i].retiring && ov->inst[i].alive && ov->inst[i].retire_at &&
		    (!at || ov->inst[i].retire_at < at))
			at = ov->inst[i].retire_at;
	return at;
}

/* FE_INST_CONNS: the waiting retired instances that have no connection left get their signal. */
void fsm_roll_retire_conns(struct fsm *f, struct version *ov, const struct fsm_event *e)
{
	struct rollout *ro = &f->s->ro;
	int i;

	for (i = 0; e->ok && i < ov->ninst; i++)
		if (waits(&ov->inst[i]) && e->inst_conns[i] == 0)
			signal_waiting(f, ov, i, "has no connection left");
	if (any_waits(ov) && !ro->poll_at)
		ro->poll_at = f->now + INST_POLL_MS;
}

/* The rollout timer: drain-delay over, drain-timeout, kill-after, and the count's poll. */
void fsm_roll_retire_timer(struct fsm *f)
{
	struct service *s = f->s;
	const struct service_conf *c = &s->conf;
	struct version *ov = ro_old(s);
	int i;

	for (i = 0; ov && i < ov->ninst; i++) {
		struct instance *in = &ov->inst[i];

		if (!in->retiring || !in->alive || !in->retire_at || f->now < in->retire_at)
			continue;
		if (in->retire_step == -2) {
			/* drain-delay is over: its count is read at the next poll. */
			drain_inst(f, ov, i, -1);
			continue;
		}
		if (in->retire_step < 0) {
			log_warnx("%s: retired instance %d (pid %d) still has connections at "
				  "drain-timeout",
				  vname(ov), i, in->pid);
			signal_waiting(f, ov, i, "reached drain-timeout");
			continue;
		}
		/* As a version's drain: drain-timeout, then SIGTERM, then SIGKILL after kill-after.
		 */
		if (in->retire_step == 0 && c->exit_signal != SIGTERM) {
			log_warnx("%s: retired instance %d (pid %d) still runs at drain-timeout, "
				  "sending SIGTERM",
				  vname(ov), i, in->pid);
			in->retire_step = 1;
			in->retire_at = f->now + c->kill_after_ms;
			fsm_emit(f, FA_SIGNAL_INST, ov, i, SIGTERM);
		} else {
			log_warnx("%s: retired instance %d (pid %d) still runs, sending SIGKILL",
				  vname(ov), i, in->pid);
			in->retire_step = 2;
			in->retire_at = 0;
			/* As a version's tree at kill-after: its workers too, not only its process.
			 */
			fsm_emit(f, FA_KILL_INST, ov, i, 0);
		}
	}
	if (s->ro.poll_at > 0 && f->now >= s->ro.poll_at) {
		s->ro.poll_at = 0;
		if (any_waits(ov)) {
			s->ro.poll_at = -1; /* until FE_INST_CONNS */
			fsm_emit(f, FA_INST_CONNS, ov, -1, 0);
		}
	}
}

/* ---- after the rollout: the instances left to their version's drain ------------------- */

/* Left to its version's wait-then-signal, alive, not signalled yet. */
static bool left_waits(const struct instance *in)
{
	return in->retiring && in->alive && in->retire_step == RETIRE_WITH_VERSION;
}

/*
 * wait-then-signal of a rolling rollout's old version: the version's timer
 * ticks every INST_POLL_MS (before its drain-timeout) while instances left
 * to its drain wait, so that each is signalled once its own live count is
 * 0 rather than when the whole version's is (retired instances still
 * draining would hold it).
 */
static bool any_left_waits(const struct version *v)
{
	int i;

	for (i = 0; i < v->ninst; i++)
		if (left_waits(&v->inst[i]))
			return true;
	return false;
}

void fsm_roll_left_arm(struct fsm *f, struct version *v)
{
	if (v->phase != VP_DRAIN_WAIT || !v->deadline || !any_left_waits(v))
		return;
	fsm_emit(f, FA_VTIMER, v, -1,
		 f->now + INST_POLL_MS < v->deadline ? f->now + INST_POLL_MS : v->deadline);
}

/* The version's timer before its drain deadline: read each instance's count.  True: done. */
bool fsm_roll_left_tick(struct fsm *f, struct version *v)
{
	if (v->phase != VP_DRAIN_WAIT || !v->deadline || f->now >= v->deadline)
		return false;
	if (any_left_waits(v))
		fsm_emit(f, FA_INST_CONNS, v, -1, 0);
	return true; /* an early tick: not the deadline */
}

/* FE_INST_CONNS of a version in its wait: those left to it with no connection are signalled. */
void fsm_roll_left_conns(struct fsm *f, struct version *v, const struct fsm_event *e)
{
	const struct service_conf *c = &f->s->conf;
	int i;

	for (i = 0; e->ok && i < v->ninst; i++) {
		struct instance *in = &v->inst[i];

		if (!left_waits(in) || e->inst_conns[i] != 0)
			continue;
		in->retire_step = RETIRE_ALONE_SIGNALLED;
		fsm_emit(f, FA_RELEASE, v, i, 0);
		fsm_emit(f, FA_SIGNAL_INST, v, i, c->exit_signal);
		log_info("%s: instance %d (pid %d) has no connection left: exit signal", vname(v),
			 i, in->pid);
	}
	if (v->deadline && any_left_waits(v))
		fsm_roll_left_arm(f, v);
	else if (v->deadline)
		fsm_emit(f, FA_VTIMER, v, -1, v->deadline); /* the drain's own deadline again */
}
