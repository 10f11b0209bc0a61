/* SPDX-License-Identifier: MIT */
/* baton status: a service as JSON (its versions, rollout, pins, counters). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgroup.h"
#include "dp.h"
#include "fsm.h"
#include "httpstat.h"
#include "latview.h"
#include "log.h"
#include "proc.h"
#include "status.h"
#include "versions.h"

static json_t *health_json(struct version *v)
{
	json_t *arr = json_array();
	int k;

	for (k = 0; k < v->ninst; k++) {
		struct check *ck = &v->inst[k].chk;

		json_array_append_new(arr, json_pack("{s:i, s:I, s:I, s:i, s:s}", "instance", k,
						     "passes", (json_int_t)ck->passes, "failures",
						     (json_int_t)ck->failures, "failing", ck->fails,
						     "last", ck->last));
	}
	return arr;
}

/* Each Prometheus gate's last verdict on the new version, with its value. */
static json_t *gates_json(const struct service *s, const struct version *nv)
{
	json_t *arr = json_array();
	int g;

	for (g = 0; g < s->conf.ngates; g++) {
		const struct gate_state *st = &nv->gate[g];
		json_t *o = json_pack(
		    "{s:s, s:s, s:s, s:f, s:i, s:I, s:I, s:I, s:s, s:b}", "name",
		    s->conf.gate[g].name, "verdict", gate_verdict_names[st->verdict], "op",
		    gate_op_names[s->conf.gate[g].op], "threshold", s->conf.gate[g].threshold,
		    "fails_in_a_row", st->fails, "passes", (json_int_t)st->passes, "failures",
		    (json_int_t)st->failures, "inconclusive", (json_int_t)st->inconclusive, "last",
		    st->last, "dry_run", s->conf.gate_dry_run);

		json_object_set_new(o, "value",
				    st->verdict == GV_PASS || st->verdict == GV_FAIL
					? json_real(st->value)
					: json_null());
		json_array_append_new(arr, o);
	}
	return arr;
}

static const char *strategy_name(enum strategy st)
{
	return st == STRATEGY_CANARY ? "canary" : st == STRATEGY_ROLLING ? "rolling" : "bluegreen";
}

/* A rolling rollout's progress: each version's instances serving, starting, draining. */
static json_t *rolling_json(struct service *s)
{
	struct rollout *ro = &s->ro;
	struct version *vs[2] = {ro_new(s), ro_old(s)};
	int k, i, serving, starting, draining;
	json_t *j;

	j = json_pack("{s:i, s:i, s:I, s:i, s:i}", "max_surge", ro->surge, "max_unavailable",
		      ro->unavail, "pause_ms", (json_int_t)ro->pause_ms, "batch", ro->batch,
		      "retired", ro->retired);
	for (k = 0; k < 2; k++) {
		struct version *v = vs[k];

		serving = starting = draining = 0;
		for (i = 0; v && i < v->ninst; i++) {
			const struct instance *in = &v->inst[i];

			if (!in->alive)
				continue;
			if (in->retiring || (v->phase != VP_ACTIVE && v->phase != VP_STARTING))
				draining++;
			else if (!in->ready)
				starting++;
			else if (k == 1 || i < v->serve_n)
				serving++;
			else
				starting++;
		}
		json_object_set_new(j, k ? "old" : "new",
				    json_pack("{s:i, s:i, s:i}", "serving", serving, "starting",
					      starting, "draining", draining));
	}
	return j;
}

static json_t *rollout_json(struct service *s)
{
	struct rollout *ro = &s->ro;
	struct version *nv = ro_new(s);
	json_t *steps, *j;
	long long left = 0;
	int k;

	if (ro->stage == RO_NONE)
		return json_null();
	steps = json_array();
	for (k = 0; k < ro->nsteps; k++)
		json_array_append_new(steps, json_real(ro->steps[k] / 100.0));
	if (ro->paused)
		left = ro->bake_left;
	else if (ro->bake_end)
		left = ro->bake_end - now_ms() > 0 ? ro->bake_end - now_ms() : 0;
	j = json_pack("{s:s, s:s, s:i, s:o, s:i, s:i, s:o, s:b, s:b, s:I, s:I}", "stage",
		      stage_names[ro->stage], "strategy", strategy_name(ro->strategy), "version",
		      ro->new_num, "from", ro->old_num ? json_integer(ro->old_num) : json_null(),
		      "step", ro->step + 1, "nsteps", ro->nsteps, "steps", steps, "paused",
		      ro->paused, "manual", ro->manual, "bake_left_ms", (json_int_t)left,
		      "elapsed_ms", (json_int_t)(now_ms() - ro->t_start));
	json_object_set_new(j, "weight",
			    json_integer(nv && nv->phase == VP_ACTIVE ? nv->weight : 0));
	json_object_set_new(j, "bake_ms", json_integer(ro->bake_ms));
	if (ro->base_num)
		json_object_set_new(j, "baseline", json_integer(ro->base_num));
	json_object_set_new(j, "waiting_for_promote",
			    json_boolean((ro->stage == RO_STEPPING && !ro->bake_end) ||
					 (ro->stage == RO_ROLLING && ro->approve_deadline)));
	if (ro->strategy == STRATEGY_ROLLING)
		json_object_set_new(j, "rolling", rolling_json(s));
	if (ro->hook_running)
		json_object_set_new(j, "hook", json_string(hook_name(ro->hook)));
	/* Latency gates' last verdict (text) and Prometheus gates (array): each its own key. */
	if (nv && ro->stage >= RO_STEPPING && ro->stage != RO_ROLLING_BACK) {
		json_object_set_new(j, "health", health_json(nv));
		json_object_set_new(j, "errors", json_string(nv->errors_last));
		if (fsm_gates_on(&s->conf))
			json_object_set_new(j, "latency_gates", json_string(ro->gate_last));
	}
	if (nv && s->conf.ngates)
		json_object_set_new(j, "gates", gates_json(s, nv));
	if (ro->confirm)
		json_object_set_new(j, "waiting_for_webhook",
				    json_string(wh_event_names[ro->confirm]));
	if (ro->gate_hold)
		json_object_set_new(j, "waiting_for_gates", json_true());
	json_object_set_new(j, "hold", status_hold(s));
	return j;
}

/* At most this many processes of a version are listed (all are counted). */
#define TREE_LIST_MAX 256

/*
 * Every process of v's cgroup with its state (T: stopped, so a frozen
 * version shows as such) and name, their count, and the CPU time the
 * cgroup used; without a cgroup, null and the started processes only.
 */
static void tree_json(struct version *v, json_t *jv)
{
	pid_t *pids = calloc(TREE_LIST_MAX, sizeof(*pids));
	unsigned long long usec;
	json_t *arr = json_array();
	int n, k;

	n = pids ? version_tree(v, pids, TREE_LIST_MAX) : -ENOMEM;
	if (n < 0) {
		json_decref(arr);
		free(pids);
		json_object_set_new(jv, "cgroup", json_null());
		return;
	}
	for (k = 0; k < n && k < TREE_LIST_MAX; k++) {
		char st = '?', comm[32] = "";

		if (proc_state(pids[k], &st, comm, sizeof(comm)))
			continue; /* exited since the list was read */
		json_array_append_new(arr, json_pack("{s:i, s:s#, s:s}", "pid", (int)pids[k],
						     "state", &st, (size_t)1, "name", comm));
	}
	free(pids);
	{
		char path[1400];

		snprintf(path, sizeof(path), "%s/services/%s/v%d", cg_subtree(), v->svc->conf.name,
			 v->num);
		json_object_set_new(jv, "cgroup", json_string(path));
	}
	json_object_set_new(jv, "tree", arr);
	json_object_set_new(jv, "tree_count", json_integer(n));
	if (!cg_cpu_usec(v->cg_fd, &usec))
		json_object_set_new(jv, "cpu_usec", json_integer((json_int_t)usec));
	/* Only with the memory controller (hybrid hierarchies keep it on v1). */
	if (!cg_read_u64(v->cg_fd, "memory.current", &usec))
		json_object_set_new(jv, "memory_bytes", json_integer((json_int_t)usec));
	if (!cg_read_u64(v->cg_fd, "memory.peak", &usec))
		json_object_set_new(jv, "memory_peak_bytes", json_integer((json_int_t)usec));
}

/* Every pin of the service (MAX_PINS at most exist). */
json_t *status_pins(struct service *s)
{
	struct steer_cidr *cidrs = calloc(MAX_PINS, sizeof(*cidrs));
	__u32 *vers = calloc(MAX_PINS, sizeof(*vers));
	json_t *arr = json_array();
	char buf[64];
	int n, k;

	n = cidrs && vers ? dp_pin_list(s, cidrs, vers, MAX_PINS) : -ENOMEM;
	if (n < 0)
		log_warnx("%s: cannot list its pins: %s", s->conf.name, strerror(-n));
	for (k = 0; k < n; k++) {
		steer_cidr_format(&cidrs[k], buf, sizeof(buf));
		json_array_append_new(arr,
				      json_pack("{s:s, s:i}", "cidr", buf, "version", vers[k]));
	}
	free(cidrs);
	free(vers);
	return arr;
}

json_t *status_json(struct service *s)
{
	json_t *vs = json_array(), *listen = json_array(), *hist = json_array(), *j;
	struct steer_stats st;
	int i, k, jx;

	for (jx = 0; jx < s->conf.nlisten; jx++)
		json_array_append_new(listen, json_string(s->conf.listen[jx].text));
	dp_service_stats(s, &st);
	for (i = 0; i < MAX_VERSIONS; i++) {
		struct version *v = s->slot[i];
		json_t *insts, *argv;

		if (!v)
			continue;
		insts = json_array();
		argv = json_array();
		long long ic[MAX_INSTANCES];
		bool have_ic;

		for (k = 0; v->spec.argv[k]; k++)
			json_array_append_new(argv, json_string(v->spec.argv[k]));
		/* Each instance's live connections: one map read (the kernel counts them). */
		have_ic = !dp_inst_conns(v, ic);
		for (k = 0; k < v->ninst; k++) {
			json_t *p = json_pack("{s:i, s:i, s:b, s:b, s:s}", "instance", k, "pid",
					      v->inst[k].pid, "ready", v->inst[k].ready, "alive",
					      v->inst[k].alive, "exit",
					      v->inst[k].alive ? "" : v->inst[k].exit_desc);

			json_object_set_new(
			    p, "live", have_ic && ic[k] >= 0 ? json_integer(ic[k]) : json_null());
			json_array_append_new(insts, p);
		}
		struct version_counts n = {0};
		json_t *jv;

		dp_counts(v, &n);
		jv = json_pack("{s:i, s:i, s:s, s:i, s:i, s:i, s:I, s:o, s:o}", "version", v->num,
			       "slot", v->vslot, "state", phase_names[v->phase], "weight",
			       v->phase == VP_ACTIVE ? (int)v->weight : 0, "instances", v->ninst,
			       "alive", v->nalive, "age_ms", (json_int_t)(now_ms() - v->t_start),
			       "processes", insts, "command", argv);
		if (v == ro_base(s))
			json_object_set_new(jv, "baseline", json_true());
		json_object_set_new(jv, "live", json_integer(n.live));
		json_object_set_new(jv, "accepted", json_integer((json_int_t)n.accepted));
		json_object_set_new(jv, "closed", json_integer((json_int_t)n.closed));
		json_object_set_new(jv, "migrated_in", json_integer((json_int_t)n.migrated_in));
		json_object_set_new(jv, "resets", json_integer((json_int_t)n.resets));
		json_object_set_new(jv, "lost", json_integer((json_int_t)n.lost));
		json_object_set_new(jv, "signalled", json_boolean(v->t_signal != 0));
		json_object_set_new(jv, "adopted", json_boolean(v->adopted));
		argv = json_array(); /* its environment: the service's, and deploy --env over it */
		for (k = 0; v->spec.env[k]; k++)
			json_array_append_new(argv, json_string(v->spec.env[k]));
		json_object_set_new(jv, "env", argv);
		{
			/* byte-counts: the server's payload bytes; null when not counted. */
			struct byte_counts b;

			json_object_set_new(jv, "bytes",
					    dp_bytes(v, &b) ? json_null()
							    : json_pack("{s:I, s:I}", "received",
									(json_int_t)b.rx, "sent",
									(json_int_t)b.tx));
		}
		json_object_set_new(jv, "latency", latview_json(v));
		json_object_set_new(jv, "http", httpstat_json(v));
		json_object_set_new(jv, "accept_queue", json_integer(v->acceptq.queue));
		json_object_set_new(jv, "not_accepting_ms",
				    json_integer(acceptq_stalled_ms(&v->acceptq, now_ms())));
		tree_json(v, jv);
		if (v->zero_to_signal_us >= 0)
			json_object_set_new(jv, "zero_to_signal_us",
					    json_integer(v->zero_to_signal_us));
		if (v->zero_to_signal_us >= 0)
			json_object_set_new(jv, "zero_turn_cpu_us",
					    json_integer(v->zero_turn_cpu_us));
		json_array_append_new(vs, jv);
	}
	for (i = 0; i < s->nhist; i++)
		json_array_append_new(
		    hist, json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:I}", "version",
				    s->hist[i].num, "state", "stopped", "how", s->hist[i].how,
				    "accepted", (json_int_t)s->hist[i].counts.accepted, "resets",
				    (json_int_t)s->hist[i].counts.resets, "migrated_in",
				    (json_int_t)s->hist[i].counts.migrated_in, "lost",
				    (json_int_t)s->hist[i].counts.lost));
	j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "name",
		      s->conf.name, "listen", listen, "active",
		      s->active >= 0 ? json_integer(s->slot[s->active]->num) : json_null(),
		      "versions", vs, "stopped", hist, "steer", "selected", (json_int_t)st.selected,
		      "migrated", (json_int_t)st.migrated, "probes", (json_int_t)st.probes,
		      "fallback", (json_int_t)st.fallback, "dropped", (json_int_t)st.dropped,
		      "pinned", (json_int_t)st.pinned, "evicted", (json_int_t)st.evicted);
	json_object_set_new(
	    j, "steering",
	    json_string(s->conf.steering == STEER_STICKY ? "sticky" : "per-connection"));
	json_object_set_new(j, "rollout", rollout_json(s));
	json_object_set_new(j, "settings",
			    json_pack("{s:s, s:i, s:I, s:s, s:s, s:I, s:I, s:I}", "strategy",
				      strategy_name(s->conf.strategy), "instances",
				      s->conf.instances, "bake_ms", (json_int_t)s->conf.bake_ms,
				      "ready", ready_kind_name(s->conf.ready), "drain_policy",
				      s->conf.drain == DRAIN_WAIT_THEN_SIGNAL ? "wait-then-signal"
									      : "signal-then-wait",
				      "drain_delay_ms", (json_int_t)s->conf.drain_delay_ms,
				      "drain_timeout_ms", (json_int_t)s->conf.drain_timeout_ms,
				      "kill_after_ms", (json_int_t)s->conf.kill_after_ms));
	if (s->removed)
		json_object_set_new(j, "removed", json_true());
	json_object_set_new(j, "pins", status_pins(s));
	if (s->last_rollback.num) {
		char when[32];

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&s->last_rollback.when));
		json_object_set_new(j, "last_rollback",
				    json_pack("{s:i, s:s, s:s}", "version", s->last_rollback.num,
					      "at", when, "reason", s->last_rollback.why));
	} else {
		json_object_set_new(j, "last_rollback", json_null());
	}
	return j;
}
