/* SPDX-License-Identifier: MIT */
/*
 * Inside the state machine: one step's context and the rules' shared
 * functions, for fsm*.c only.  Each rule changes the service through
 * f->s and says what to do through fsm_emit; none does I/O.
 */
#ifndef BATON_FSM_INT_H
#define BATON_FSM_INT_H

#include "fsm.h"

/* One step: the service, the time, the wall clock and where actions go. */
struct fsm {
	struct service *s;
	long long now;
	time_t wall;
	struct fsm_out *out;
};

#define reply_ok(f, c, ...)  fsm_emit_text(f, FA_REPLY, c, true, false, __VA_ARGS__)
#define reply_err(f, c, ...) fsm_emit_text(f, FA_REPLY, c, false, false, __VA_ARGS__)

/*
 * Whether any process of v may still run: an instance's own (nalive), or
 * another of its tree (a worker, a detached grandchild: its cgroup is not
 * empty).  A version stops only when neither is left.
 */
static inline bool fsm_procs_left(const struct version *v)
{
	return v->nalive > 0 || v->tree;
}

/* fsm.c */
struct fsm_action *fsm_emit(struct fsm *f, enum fsm_act t, struct version *v, int inst,
			    long long arg);
void fsm_emit_text(struct fsm *f, enum fsm_act t, struct client *c, bool ok, bool rolled_back,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void fsm_progress(struct fsm *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fsm_vtimer(struct fsm *f, struct version *v, long long at);
void fsm_ro_timer(struct fsm *f, long long at);
void fsm_policy(struct fsm *f);
void fsm_place(struct fsm *f, struct version *v);
void fsm_unplace(struct fsm *f, struct version *v);

/* An old instance of a finished rolling rollout: its version's drain signals it (model.h). */
#define RETIRE_WITH_VERSION (-3)
/* ... signalled on its own count by its version's wait-then-signal (fsm_rollretire.c). */
#define RETIRE_ALONE_SIGNALLED 3

/* fsm_version.c */
void fsm_version_stopped(struct fsm *f, struct version *v);
void fsm_drain_signal(struct fsm *f, struct version *v);
void fsm_drain_wait(struct fsm *f, struct version *v);
void fsm_drain_next(struct fsm *f, struct version *v);
void fsm_drain_begin(struct fsm *f, struct version *v);
void fsm_http_drain_end(struct fsm *f, struct version *v, int how);
void fsm_http_drain_restore(struct fsm *f, struct version *v);
void fsm_version_abort(struct fsm *f, struct version *v, const char *why);
void fsm_on_exit(struct fsm *f, struct version *v, int i, const char *desc);
void fsm_on_tree_empty(struct fsm *f, struct version *v);
void fsm_signal(struct fsm *f, struct version *v, int sig);
void fsm_on_vtimer(struct fsm *f, struct version *v);
void fsm_on_zero(struct fsm *f, struct version *v, const struct fsm_event *e);

/* fsm_rollout.c */
void fsm_rollout_end(struct fsm *f, bool ok, const char *why, bool rolled_back);
void fsm_hook_kill(struct fsm *f);
void fsm_drain_failed(struct fsm *f, struct version *v);
/* fsm_baseline.c: a canary's fresh baseline. */
void fsm_baseline_deploy(struct fsm *f, struct version *b);
void fsm_baseline_place(struct fsm *f);
void fsm_baseline_spawn(struct fsm *f);
bool fsm_baseline_spawned(struct fsm *f, struct version *v, bool ok, const char *why);
bool fsm_baseline_waits(struct service *s);
void fsm_baseline_ready(struct fsm *f);
unsigned fsm_baseline_weight(struct service *s, unsigned w);
void fsm_baseline_off(struct fsm *f);
void fsm_baseline_leave(struct fsm *f);
void fsm_note_rollback(struct service *s, int num, time_t wall, const char *why);
void fsm_rollout_fail(struct fsm *f, enum rb_reason reason, const char *why);
void fsm_rollout_weights(struct fsm *f, unsigned w_new);
void fsm_rollout_switched(struct fsm *f);
void fsm_rollout_shifted(struct fsm *f);
void fsm_rollout_apply(struct fsm *f);
void fsm_rollout_promote(struct fsm *f, bool full);
void fsm_rollout_ready(struct fsm *f, struct version *v);
void fsm_first_version_done(struct fsm *f, struct version *v);
void fsm_instance_ready(struct fsm *f, struct version *v, int i);
void fsm_instance_notified(struct fsm *f, struct version *v, int i);
void fsm_hook_start(struct fsm *f, enum hook_point h);
void fsm_hook_done(struct fsm *f, bool ok, const char *desc);
void fsm_on_ro_timer(struct fsm *f);
/* fsm_gates.c: latency gates of canary steps and rolling batches. */
void fsm_gates_step(struct fsm *f);
bool fsm_gates_hold(struct fsm *f);
void fsm_on_latency_sample(struct fsm *f, struct version *v, const struct fsm_lat_sample *l,
			   const char *text);
void fsm_deploy(struct fsm *f, const struct fsm_event *e);
void fsm_deploy_start(struct fsm *f);
void fsm_deploy_spawned(struct fsm *f, struct version *v, bool ok, const char *why);
bool fsm_starting(const struct service *s, const struct version *v);
int fsm_rollback(struct fsm *f, char *msg, size_t msglen);
int fsm_rollback_to(struct fsm *f, int to, struct client *c, char *msg, size_t msglen);

/* fsm_history.c: the rollback window's records and rules. */
void fsm_history_rollout_end(struct fsm *f, bool ok, const char *why, bool rolled_back);
void fsm_history_switch(struct fsm *f, int cur, int num, const char *why);
void fsm_history_adopted(struct fsm *f, int num);
int fsm_rollback_target(struct fsm *f, int to, struct client *c, struct version **instant,
			char *msg, size_t len);

/* fsm_rolling.c */
bool fsm_rolling(const struct service *s);
void fsm_rolling_deploy_opts(struct rollout *ro, const struct service_conf *c,
			     const struct deploy_opts *o);
bool fsm_rolling_begin(struct fsm *f);
void fsm_rolling_conns(struct fsm *f, struct version *v, const struct fsm_event *e);
void fsm_rolling_ready(struct fsm *f, struct version *v, int i);
void fsm_rolling_spawned(struct fsm *f, struct version *v, int i, bool ok, const char *why);
bool fsm_rolling_fail(struct fsm *f, enum rb_reason reason, const char *why);
bool fsm_rolling_exit(struct fsm *f, struct version *v, int i, const char *desc);
bool fsm_rolling_vtimer(struct fsm *f, struct version *v);
void fsm_rolling_timer(struct fsm *f);
void fsm_rolling_pause(struct fsm *f, struct client *c);
void fsm_rolling_promote(struct fsm *f, bool full);
void fsm_rolling_resume(struct fsm *f);
void fsm_rolling_restored(struct fsm *f);

/* fsm_rollretire.c: an old instance a rolling rollout retired, until it exited. */
bool fsm_roll_unsignalled(const struct instance *in);
void fsm_roll_http_drain(struct fsm *f, struct version *v, int i, int how);
void fsm_roll_retire(struct fsm *f, struct version *ov, int i, long long conns);
void fsm_roll_unretire(struct fsm *f, struct version *ov, int i);
long long fsm_roll_retire_next(struct service *s);
void fsm_roll_retire_conns(struct fsm *f, struct version *ov, const struct fsm_event *e);
void fsm_roll_retire_timer(struct fsm *f);
bool fsm_roll_left_tick(struct fsm *f, struct version *v);
void fsm_roll_left_conns(struct fsm *f, struct version *v, const struct fsm_event *e);
void fsm_roll_left_arm(struct fsm *f, struct version *v);

/* fsm_rollhold.c: the holds between rolling batches (gates, approval, confirmations). */
bool fsm_rollhold(struct fsm *f);
long long fsm_rollhold_deadline(const struct service *s);
bool fsm_rollhold_timer(struct fsm *f);
void fsm_rollhold_promote(struct fsm *f, bool full);
void fsm_rollhold_confirmed(struct fsm *f);
void fsm_rollhold_end(struct fsm *f);

/* fsm_ops.c */
bool fsm_in_rollout(struct fsm *f, struct client *c, const char *cmd);
void fsm_op_pause(struct fsm *f, struct client *c);
void fsm_op_abort(struct fsm *f, struct client *c);
void fsm_op_weight(struct fsm *f, const struct fsm_event *e);
void fsm_stop_all(struct fsm *f, bool removed, const char *why);
void fsm_restored(struct fsm *f);
void fsm_holds_restored(struct fsm *f);
void fsm_adopt_first(struct fsm *f, struct version *v, struct client *c);

/* fsm_confirm.c */
bool fsm_confirm_hold(struct fsm *f, int point, int step);
void fsm_confirm_stop(struct fsm *f);
bool fsm_hold_timer(struct fsm *f);
void fsm_on_confirmed(struct fsm *f, int point, bool ok);
void fsm_deploy_go(struct fsm *f);

/* fsm_gate.c */
bool fsm_gates_pass(const struct service *s, const struct version *v);
void fsm_on_gate(struct fsm *f, struct version *v, int g, int verdict, double value,
		 const char *text);
bool fsm_gate_hold(struct fsm *f);
bool fsm_gate_timer(struct fsm *f);

void fsm_on_check(struct fsm *f, struct version *v, int i, bool pass, const char *detail);
void fsm_on_error_sample(struct fsm *f, struct version *v, unsigned long long clients,
			 unsigned long long failed, const char *text);

#endif /* BATON_FSM_INT_H */
