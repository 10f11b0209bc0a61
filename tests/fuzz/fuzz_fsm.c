/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness: the rollout state machine driven by a random sequence
 * of events, with the executor's answers (a spawn that works or fails, a
 * hook that passes or fails, a watch that finds the version empty) also
 * chosen by the input.  After every step the invariants of fsm.h must hold
 * (fsm_check), no action may name a version after it was forgotten, and a
 * forgotten version must have left its slot.
 *
 * Input: two bytes of settings, then events of two bytes each (kind, and an
 * argument that picks a version, an instance, an answer and the time that
 * passes).
 */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "fuzz.h"
#include "history.h"
#include "log.h"

static char *cmd[] = {"/bin/true", NULL};
static struct client *const CLIENT = (struct client *)0x1;

struct run {
	struct service *s;
	long long now;
	const uint8_t *p, *end;
	struct fsm_out out;
	/* Answers the executor owes the state machine, fed after the step. */
	struct fsm_event pending[16];
	int npending;
	/* Forgotten versions, freed once the answers owed are fed (exec.c: after the batch). */
	struct version *dead[4 * FSM_MAX_ACTIONS];
	int ndead;
};

static int next(struct run *r)
{
	return r->p < r->end ? *r->p++ : 0;
}

static struct version *version_make(struct service *s, bool adopted)
{
	struct version *v;
	int i;

	for (i = 0; i < MAX_VERSIONS && s->slot[i]; i++)
		;
	if (i == MAX_VERSIONS)
		return NULL;
	v = calloc(1, sizeof(*v));
	FUZZ_CHECK(v, "out of memory");
	v->svc = s;
	v->vslot = i;
	v->num = s->next_num++;
	v->ninst = s->conf.instances;
	v->spec.argv[0] = cmd[0];
	v->adopted = adopted;
	v->zero_to_signal_us = -1;
	if (adopted) {
		/* Adopted: its process runs already. */
		for (int k = 0; k < v->ninst; k++) {
			v->inst[k].alive = true;
			v->inst[k].pid = 1000 + v->num;
		}
		v->nalive = v->ninst;
	}
	s->slot[i] = v;
	/* deploy() remembers it in the rollback window (FA_REDEPLOY starts one again). */
	FUZZ_CHECK(!history_record(s, v, 0, 1), "out of memory");
	return v;
}

static struct version *pick(struct service *s, int arg)
{
	int k, vs;

	for (k = 0; k < MAX_VERSIONS; k++) {
		vs = (arg + k) % MAX_VERSIONS;
		if (s->slot[vs])
			return s->slot[vs];
	}
	return NULL;
}

static void owe(struct run *r, struct fsm_event e)
{
	if (r->npending < (int)(sizeof(r->pending) / sizeof(r->pending[0])))
		r->pending[r->npending++] = e;
}

/* The executor's part: answers owed, forgotten versions freed once they are fed (feed()). */
static void perform(struct run *r)
{
	struct version *forgotten[FSM_MAX_ACTIONS];
	int nf = 0, i, k;

	for (i = 0; i < r->out.n; i++) {
		const struct fsm_action *a = &r->out.a[i];

		for (k = 0; k < nf; k++)
			FUZZ_CHECK(a->v != forgotten[k], "%s names v%d after it was forgotten",
				   fsm_act_names[a->type], forgotten[k]->num);
		switch (a->type) {
		case FA_SPAWN: {
			bool ok = next(r) % 8;

			for (k = 0; ok && k < a->v->ninst; k++) {
				a->v->inst[k].alive = true;
				a->v->inst[k].pid = 100 * a->v->num + k;
			}
			if (ok)
				a->v->nalive = a->v->ninst;
			owe(r, (struct fsm_event){.type = FE_SPAWNED,
						  .v = a->v,
						  .ok = ok,
						  .why = ok ? NULL : "cannot start"});
			break;
		}
		case FA_SPAWN_INST: {
			bool ok = next(r) % 8;

			if (ok) {
				a->v->inst[a->inst].alive = true;
				a->v->inst[a->inst].pid = 100 * a->v->num + a->inst;
				a->v->nalive++;
			}
			owe(r, (struct fsm_event){.type = FE_SPAWNED,
						  .v = a->v,
						  .inst = a->inst,
						  .ok = ok,
						  .why = ok ? NULL : "cannot start"});
			break;
		}
		case FA_INST_CONNS: {
			struct fsm_event e = {.type = FE_INST_CONNS, .v = a->v, .ok = next(r) % 4};

			for (k = 0; k < MAX_INSTANCES; k++)
				e.inst_conns[k] = next(r) % 5;
			owe(r, e);
			break;
		}
		case FA_ACCEPT_PROBE:
			/* Only after READY=1, for an instance not ready yet; it may never accept.
			 */
			FUZZ_CHECK(r->s->conf.ready == READY_NOTIFY &&
				       a->v->inst[a->inst].notified && !a->v->inst[a->inst].ready,
				   "accept-probe v%d/%d without READY=1", a->v->num, a->inst);
			if (next(r) % 2)
				owe(r, (struct fsm_event){
					   .type = FE_READY, .v = a->v, .inst = a->inst});
			break;
		case FA_WATCH:
			if (a->arg && next(r) % 2)
				owe(r, (struct fsm_event){.type = FE_ZERO, .v = a->v});
			break;
		case FA_RESET:
			if (next(r) % 2)
				owe(r, (struct fsm_event){.type = FE_RESET_DONE, .v = a->v});
			break;
		case FA_RUN_HOOK:
			if (!(next(r) % 4))
				owe(r, (struct fsm_event){
					   .type = FE_HOOK_DONE, .ok = false, .why = "cannot run"});
			break;
		case FA_FORGET:
			FUZZ_CHECK(r->s->slot[a->v->vslot] != a->v, "v%d forgotten in its slot",
				   a->v->num);
			FUZZ_CHECK(r->ndead < (int)(sizeof(r->dead) / sizeof(r->dead[0])),
				   "more than %d versions forgotten in one feed", r->ndead);
			r->dead[r->ndead++] = a->v;
			forgotten[nf++] = a->v;
			break;
		case FA_REDEPLOY: {
			/* exec.c: the version from the record, deployed as the rules said it may
			 * be. */
			char err[256];
			struct version *v;

			FUZZ_CHECK(history_find(r->s, (int)a->arg),
				   "redeploy of v%lld not remembered", a->arg);
			FUZZ_CHECK(!fsm_can_deploy(r->s, err, sizeof(err)),
				   "redeploy while busy: %s", err);
			v = version_make(r->s, false);
			if (v)
				owe(r, (struct fsm_event){.type = FE_DEPLOY, .v = v, .c = a->c});
			break;
		}
		case FA_DEPLOY_DONE:
		case FA_REPLY:
			FUZZ_CHECK(a->text[0] || a->ok, "%s without a reason",
				   fsm_act_names[a->type]);
			break;
		default:
			break;
		}
	}
}

/*
 * Only a version that serves, starts, or waits unsignalled (drain-delay,
 * keep-warm) may have sockets in the map: one told to exit never has.
 */
static void check_placed(const struct service *s)
{
	int i;

	for (i = 0; i < MAX_VERSIONS; i++) {
		const struct version *v = s->slot[i];

		FUZZ_CHECK(!v || !v->placed || v->phase == VP_ACTIVE || v->phase == VP_STARTING ||
			       v->phase == VP_DRAIN_DELAY,
			   "v%d placed while %s", v ? v->num : 0, v ? phase_names[v->phase] : "");
	}
}

static void feed(struct run *r, const struct fsm_event *e)
{
	const char *broken;
	int i;

	r->out.n = 0;
	r->out.overflow = false;
	fsm_step(r->s, e, r->now, &r->out);
	broken = fsm_check(r->s, &r->out);
	FUZZ_CHECK(!broken, "after %s: %s", fsm_ev_names[e->type], broken);
	check_placed(r->s);
	perform(r);
	/* The answers, in order, as exec.c's queue would give them. */
	while (r->npending) {
		struct fsm_event q = r->pending[0];

		r->npending--;
		for (i = 0; i < r->npending; i++)
			r->pending[i] = r->pending[i + 1];
		if (q.v && r->s->slot[q.v->vslot] != q.v)
			continue; /* forgotten meanwhile: exec.c skips freed versions too */
		r->out.n = 0;
		r->out.overflow = false;
		fsm_step(r->s, &q, r->now, &r->out);
		broken = fsm_check(r->s, &r->out);
		FUZZ_CHECK(!broken, "after %s: %s", fsm_ev_names[q.type], broken);
		check_placed(r->s);
		perform(r);
	}
	while (r->ndead)
		free(r->dead[--r->ndead]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct run *r = calloc(1, sizeof(*r));
	struct service *s = calloc(1, sizeof(*s));
	int a, b, c, i;

	if (!quiet) {
		log_init("fuzz_fsm", -1);
		quiet = true;
	}
	FUZZ_CHECK(r && s, "out of memory");
	r->s = s;
	r->p = data;
	r->end = data + size;
	r->now = 1000000;
	a = next(r);
	b = next(r);
	c = next(r);
	snprintf(s->conf.name, sizeof(s->conf.name), "web");
	s->conf.nlisten = 1;
	s->conf.instances = 1 + a % 3;
	s->conf.ready = (a >> 2) % 2 ? READY_HTTP : (c >> 4) % 2 ? READY_NOTIFY : READY_NONE;
	s->conf.drain = (a >> 3) % 2 ? DRAIN_WAIT_THEN_SIGNAL : DRAIN_SIGNAL_THEN_WAIT;
	s->conf.exit_signal = (a >> 4) % 2 ? SIGQUIT : SIGTERM;
	s->conf.drain_delay_ms = (a >> 5) % 2 ? 500 : 0;
	s->conf.drain_reset = (a >> 6) % 2;
	s->conf.strategy = (a >> 7) % 2 ? STRATEGY_CANARY : STRATEGY_BLUEGREEN;
	/* A third byte: rolling, max-surge 1 or 0 (then max-unavailable 1), a pause. */
	if (c % 2)
		s->conf.strategy = STRATEGY_ROLLING;
	s->conf.max_surge.n = s->conf.instances == 1 || (c >> 1) % 2;
	s->conf.max_unavail.n = !s->conf.max_surge.n || (c >> 2) % 2;
	if (s->conf.max_unavail.n >= s->conf.instances)
		s->conf.max_unavail.n = s->conf.instances - 1;
	s->conf.pause_ms = (c >> 3) % 2 ? 150 : 0;
	/* keep-warm (not with rolling, as the config parser says): the window as a timer. */
	s->conf.keep_warm = s->conf.strategy != STRATEGY_ROLLING && (c >> 4) % 2;
	s->conf.rollback_window_ms = 400;
	s->conf.keep_versions = 2 + (c >> 5) % 4;
	s->conf.ready_timeout_ms = 300;
	s->conf.drain_timeout_ms = 300;
	s->conf.kill_after_ms = 100;
	s->conf.nsteps = 3;
	s->conf.steps[0] = 500;
	s->conf.steps[1] = 5000;
	s->conf.steps[2] = WEIGHT_MAX;
	s->conf.bake_ms = b % 2 ? 200 : 0;
	s->conf.health = (b >> 1) % 2 ? HEALTH_HTTP : HEALTH_NONE;
	s->conf.max_error_bp = (b >> 2) % 2 ? 100 : ERROR_RATE_OFF;
	s->conf.max_p99_ms = (b >> 6) % 2 ? 500 : 0;
	s->conf.max_p99_ratio = (a >> 2) % 2 ? 1.5 : 0;
	s->conf.confidence_bp = 9500;
	s->conf.min_samples = 100;
	s->conf.analysis_timeout_ms = 1000;
	s->conf.hook_timeout_ms = 200;
	/* Confirmation webhooks (any of the three) and approvals. */
	s->conf.webhook_events = ((b >> 3) % 8) << WH_CONFIRM_ROLLOUT;
	s->conf.confirm_interval_ms = 100;
	s->conf.confirm_timeout_ms = 400;
	s->conf.approve = (b >> 6) % 2;
	s->conf.approval_timeout_ms = 300;
	/* A Prometheus gate (verdicts come as FE_GATE), maybe dry-run. */
	s->conf.ngates = (b >> 7) % 2;
	s->conf.gate_dry_run = (a >> 1) % 2 && (b >> 5) % 2;
	s->conf.gate_timeout_ms = 300;
	for (i = 0; i < HOOK_COUNT; i++)
		if ((b >> (3 + i)) % 2)
			s->conf.hook[i][0] = cmd[0];
	s->active = s->previous = s->starting = -1;
	s->ro.newv = s->ro.oldv = -1;
	s->next_num = 1;

	while (r->p + 1 < r->end && !s->gone) {
		int kind = next(r) % FE_COUNT, arg = next(r);
		struct fsm_event e = {.type = kind, .c = CLIENT, .wall = 1};
		struct version *v = pick(s, arg);
		char err[256];

		r->now += (arg % 16) * 25;
		e.v = v;
		e.inst = v ? (arg >> 3) % v->ninst : 0;
		switch (kind) {
		case FE_DEPLOY:
		case FE_ADOPT_FIRST:
			if (kind == FE_ADOPT_FIRST && (s->active >= 0 || s->ro.stage != RO_NONE))
				continue; /* adopt.c refuses it before */
			if (fsm_can_deploy(s, err, sizeof(err))) {
				FUZZ_CHECK(err[0] && !strchr(err, '\n'), "refusal: %s", err);
				continue;
			}
			e.v = version_make(s, kind == FE_ADOPT_FIRST || arg % 5 == 0);
			if (!e.v)
				continue;
			if (arg % 3 == 0) {
				e.have_opts = true;
				e.opts.strategy = STRATEGY_CANARY;
				e.opts.nsteps = 2;
				e.opts.steps[0] = 2000;
				e.opts.steps[1] = WEIGHT_MAX;
				e.opts.bake_ms = (arg >> 2) % 2 ? 100 : 0;
				/* --baseline: a fresh copy of the current version (exec.c's
				 * checks). */
				if ((arg >> 4) % 2 && kind == FE_DEPLOY && s->active >= 0 &&
				    !e.v->adopted && !s->slot[s->active]->adopted) {
					e.opts.baseline = true;
					e.base = version_make(s, false);
				}
			}
			break;
		case FE_EXIT:
			if (!v || !v->inst[e.inst].alive)
				continue; /* exec.c hears only the exit of a live process */
			e.why = "exited";
			break;
		case FE_CHECK:
			e.ok = arg % 3 == 0;
			e.why = "503";
			break;
		case FE_ERROR_SAMPLE:
			e.sample_clients = arg;
			e.sample_failed = arg % 4;
			e.why = "sample";
			break;
		case FE_LAT_SAMPLE:
			e.lat.n = arg % 3 ? 100 + arg : arg % 100;
			e.lat.p99_us = (arg % 5) * 200000;
			e.lat.window_ms = 1000;
			/* max-p99-ratio: the canary and its comparison, slower or not. */
			if (arg % 4) {
				static struct lat_hist win, cmp;

				memset(&win, 0, sizeof(win));
				memset(&cmp, 0, sizeof(cmp));
				win.bucket[LAT_RESPONSE][(arg * 7) % LAT_BUCKETS] = e.lat.n;
				cmp.bucket[LAT_RESPONSE][(arg * 5) % LAT_BUCKETS] = 100 + arg % 50;
				e.lat.win = &win;
				e.lat.cmp = &cmp;
				e.lat.cmp_num = 1;
				e.lat.cmp_n = 100 + arg % 50;
			}
			e.why = "latency";
			break;
		case FE_HOOK_DONE:
			e.ok = arg % 2;
			e.why = "done";
			break;
		case FE_ZERO:
			e.zero_ns = 1;
			e.now_ns = 1000;
			break;
		case FE_PROMOTE:
			e.full = arg % 2;
			break;
		case FE_WEIGHT:
			e.nweights = 1 + arg % 2;
			e.wnum[0] = s->ro.new_num;
			e.wbp[0] = (arg * 97) % (WEIGHT_MAX + 1);
			e.wnum[1] = arg % 4 ? s->ro.old_num : 99;
			e.wbp[1] = WEIGHT_MAX - e.wbp[0] + (arg % 7 == 0);
			break;
		case FE_RESTORED:
			continue; /* needs a state file's world; the unit test covers it */
		case FE_ROLLBACK:
			e.to = arg % 3 ? 0 : (arg >> 2) % 8; /* previous, or --to v0..v7 */
			break;
		case FE_GATE:
			e.v = s->ro.stage != RO_NONE ? ro_new(s) : NULL;
			e.inst = arg % 2;
			e.verdict = arg % 4;
			e.value = arg % 3;
			e.why = "gate";
			break;
		case FE_CONFIRMED:
			e.inst = WH_CONFIRM_ROLLOUT + arg % 3;
			e.ok = arg % 5 != 0;
			break;
		default:
			break;
		}
		feed(r, &e);
	}
	for (i = 0; i < MAX_VERSIONS; i++)
		free(s->slot[i]);
	history_clear(s);
	free(s);
	free(r);
	return 0;
}
