/* SPDX-License-Identifier: MIT */
/* The rollout event log; see events.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctlserver.h"
#include "events.h"
#include "evlog.h"
#include "log.h"
#include "loop.h"

static struct event ring[EVENTS_MEM];
static int r_head, r_len; /* oldest at r_head */
static unsigned long long next_seq = 1;
static char path[300], path_old[310];
static bool file_on;	    /* evlog.c writes the file */
static struct evsrc ev_out; /* its pipe, watched for EPOLLOUT while lines wait */
static bool out_added, out_armed;
static struct client *followers[MAX_CLIENTS];
static char follow_service[MAX_CLIENTS][64]; /* "" all */
static void (*listener)(const struct event *ev);

void events_listen(void (*fn)(const struct event *ev))
{
	listener = fn;
}

json_t *event_json(const struct event *ev)
{
	char when[40];
	time_t t = ev->time_ms / 1000;
	struct tm tm;
	json_t *j;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03dZ",
		 (int)(ev->time_ms % 1000));
	j = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s}", "seq", (json_int_t)ev->seq, "time", when,
		      "time_ms", (json_int_t)ev->time_ms, "service", ev->service, "event", ev->kind,
		      "text", ev->text);
	if (!j)
		return NULL;
	if (ev->version)
		json_object_set_new(j, "version", json_integer(ev->version));
	if (ev->previous)
		json_object_set_new(j, "previous_version", json_integer(ev->previous));
	if (ev->weight >= 0)
		json_object_set_new(j, "weight", json_integer(ev->weight));
	if (ev->nsteps || ev->step) /* a rolling batch: its number, no count */
		json_object_set_new(j, "step", json_integer(ev->step));
	if (ev->nsteps)
		json_object_set_new(j, "steps", json_integer(ev->nsteps));
	if (ev->reason[0])
		json_object_set_new(j, "reason", json_string(ev->reason));
	return j;
}

/* One line each, in the file, the log and a chat message. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			*s = ' ';
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
	one_line(dst);
}

/* An event read back from the file: false when the line is not one (cut by a crash). */
static bool event_from_json(json_t *j, struct event *ev)
{
	json_t *jv;

	memset(ev, 0, sizeof(*ev));
	ev->weight = -1;
	if (!json_is_object(j) || !json_is_integer(json_object_get(j, "seq")) ||
	    !json_is_string(json_object_get(j, "event")) ||
	    !json_is_string(json_object_get(j, "service")))
		return false;
	ev->seq = (unsigned long long)json_integer_value(json_object_get(j, "seq"));
	ev->time_ms = json_integer_value(json_object_get(j, "time_ms"));
	copy_str(ev->service, sizeof(ev->service),
		 json_string_value(json_object_get(j, "service")));
	copy_str(ev->kind, sizeof(ev->kind), json_string_value(json_object_get(j, "event")));
	copy_str(ev->text, sizeof(ev->text), json_string_value(json_object_get(j, "text")));
	copy_str(ev->reason, sizeof(ev->reason), json_string_value(json_object_get(j, "reason")));
	ev->version = (int)json_integer_value(json_object_get(j, "version"));
	ev->previous = (int)json_integer_value(json_object_get(j, "previous_version"));
	if ((jv = json_object_get(j, "weight")) && json_is_integer(jv))
		ev->weight = (int)json_integer_value(jv);
	ev->step = (int)json_integer_value(json_object_get(j, "step"));
	ev->nsteps = (int)json_integer_value(json_object_get(j, "steps"));
	return true;
}

static struct event *ring_push(void)
{
	struct event *ev;

	if (r_len == EVENTS_MEM) {
		r_head = (r_head + 1) % EVENTS_MEM;
		r_len--;
	}
	ev = &ring[(r_head + r_len++) % EVENTS_MEM];
	memset(ev, 0, sizeof(*ev));
	return ev;
}

static void load_file(const char *p)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f = fopen(p, "re");

	if (!f)
		return;
	while ((n = getline(&line, &cap, f)) > 0) {
		json_t *j = json_loadb(line, n, 0, NULL);
		struct event ev;

		if (j && event_from_json(j, &ev) && ev.seq >= next_seq) {
			*ring_push() = ev;
			next_seq = ev.seq + 1;
		}
		json_decref(j);
	}
	free(line);
	fclose(f);
}

int events_open(const char *run_dir)
{
	int r;

	snprintf(path, sizeof(path), "%s/events.jsonl", run_dir);
	snprintf(path_old, sizeof(path_old), "%s.1", path);
	r_head = r_len = 0;
	next_seq = 1;
	load_file(path_old);
	load_file(path);
	r = evlog_open(path, path_old, EVENTS_FILE_MAX);
	if (r)
		log_warnx("cannot start the event log's writer for %s: %s; events go to the log "
			  "only",
			  path, strerror(-r));
	file_on = !r;
	out_added = out_armed = false;
	return r;
}

void events_close(void)
{
	if (out_added)
		ep_del(evlog_fd());
	out_added = out_armed = false;
	if (file_on)
		evlog_close(EVENTS_CLOSE_WAIT_MS);
	file_on = false;
}

/* Watch the writer's pipe for room while lines wait in memory, not otherwise. */
static void watch_out(void)
{
	bool want = file_on && evlog_pending();

	if (want == out_armed)
		return;
	if (!out_added) {
		if (ep_add(evlog_fd(), &ev_out, EV_EVENTS_OUT, NULL, 0, EPOLLOUT))
			return; /* no loop yet: the next event tries again */
		out_added = true;
	} else {
		ep_mod(evlog_fd(), &ev_out, want ? EPOLLOUT : 0);
	}
	out_armed = want;
}

void on_events_out(void)
{
	evlog_flush();
	watch_out();
}

void events_remove(void)
{
	if (path[0])
		unlink(path);
	if (path_old[0])
		unlink(path_old);
}

/* One line to the file's writer (evlog.c): never a write(2) to the file in the loop. */
static void persist(const struct event *ev)
{
	json_t *j = event_json(ev);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	size_t len;

	json_decref(j);
	if (!s || !file_on) {
		free(s);
		return;
	}
	len = strlen(s);
	s[len] = '\n'; /* json_dumps's NUL becomes the newline: one line, handed over whole */
	evlog_push(s, len + 1);
	free(s);
	watch_out();
}

static bool follows(int k, const struct event *ev)
{
	return followers[k] && (!follow_service[k][0] || !strcmp(follow_service[k], ev->service));
}

/*
 * The log line of an event; in the journal (journal.c) with its fields too:
 * journalctl SERVICE=web EVENT=rolled-back.
 */
static void journal_fields(const struct event *ev)
{
	char f[8][400];
	const char *fp[8];
	int n = 0, k;

	snprintf(f[n++], sizeof(f[0]), "SERVICE=%s", ev->service);
	snprintf(f[n++], sizeof(f[0]), "EVENT=%s", ev->kind);
	snprintf(f[n++], sizeof(f[0]), "SEQ=%llu", ev->seq);
	if (ev->version)
		snprintf(f[n++], sizeof(f[0]), "VERSION=%d", ev->version);
	if (ev->previous)
		snprintf(f[n++], sizeof(f[0]), "PREVIOUS_VERSION=%d", ev->previous);
	if (ev->weight >= 0)
		snprintf(f[n++], sizeof(f[0]), "WEIGHT=%d", ev->weight);
	if (ev->reason[0])
		snprintf(f[n++], sizeof(f[0]), "REASON=%s", ev->reason);
	for (k = 0; k < n; k++)
		fp[k] = f[k];
	log_fields(6, fp, n,
		   "event: service=%s event=%s version=%d previous=%d weight=%d seq=%llu "
		   "reason=\"%s\" text=\"%s\"",
		   ev->service, ev->kind, ev->version, ev->previous, ev->weight, ev->seq,
		   ev->reason, ev->text);
}

static void record(struct event *in)
{
	struct event *ev;
	struct timespec ts;
	int k;

	clock_gettime(CLOCK_REALTIME, &ts);
	in->seq = next_seq++;
	in->time_ms = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
	ev = ring_push();
	*ev = *in;
	journal_fields(ev);
	persist(ev);
	for (k = 0; k < MAX_CLIENTS; k++)
		if (follows(k, ev))
			reply(followers[k], json_pack("{s:o}", "event", event_json(ev)));
	if (listener)
		listener(ev);
}

static struct event *new_event(struct event *ev, const char *service, const char *kind, int version)
{
	memset(ev, 0, sizeof(*ev));
	copy_str(ev->service, sizeof(ev->service), service);
	copy_str(ev->kind, sizeof(ev->kind), kind);
	ev->version = version;
	ev->weight = -1;
	return ev;
}

void events_add(const char *service, const char *kind, int version, const char *fmt, ...)
{
	struct event ev;
	va_list ap;

	new_event(&ev, service, kind, version);
	va_start(ap, fmt);
	vsnprintf(ev.text, sizeof(ev.text), fmt, ap);
	va_end(ap);
	one_line(ev.text);
	record(&ev);
}

/* ---- what a step of the state machine did ---------------------------------------- */

static unsigned new_weight(const struct service *s)
{
	const struct version *nv = ro_new((struct service *)s);

	return nv ? nv->weight : 0;
}

void events_before(const struct service *s, const struct fsm_event *e, struct ev_snap *snap)
{
	const struct version *act = s->active >= 0 ? s->slot[s->active] : NULL;
	int i;

	memset(snap, 0, sizeof(*snap));
	snap->stage = s->ro.stage;
	snap->step = s->ro.step;
	snap->batch = s->ro.batch;
	snap->paused = s->ro.paused;
	snap->w_new = s->ro.stage != RO_NONE ? new_weight(s) : 0;
	snap->new_num = s->ro.new_num;
	snap->old_num = s->ro.old_num;
	snap->active_num = act ? act->num : 0;
	memcpy(snap->rollouts, s->rollouts, sizeof(snap->rollouts));
	memcpy(snap->rollbacks, s->rollbacks, sizeof(snap->rollbacks));
	for (i = 0; i < MAX_VERSIONS; i++) {
		snap->slot[i] = s->slot[i];
		snap->num[i] = s->slot[i] ? s->slot[i]->num : 0;
		snap->phase[i] = s->slot[i] ? s->slot[i]->phase : VP_STARTING;
	}
	snap->bad_intervals = e->v && !e->v->freed ? e->v->bad_intervals : 0;
	if (e->type == FE_GATE && e->v && !e->v->freed && e->inst >= 0 && e->inst < MAX_GATES)
		snap->gate_prev = e->v->gate[e->inst].verdict;
	snprintf(snap->last_error, sizeof(snap->last_error), "%s", s->last_error);
}

static bool draining(enum vphase p)
{
	return p == VP_DRAIN_DELAY || p == VP_DRAIN_WAIT || p == VP_DRAINING ||
	       p == VP_TERMINATING || p == VP_KILLED;
}

static const char *deploy_done_text(const struct fsm_out *out)
{
	int i;

	for (i = 0; i < out->n; i++)
		if (out->a[i].type == FA_DEPLOY_DONE && !out->a[i].ok)
			return out->a[i].text;
	return NULL;
}

static void rollout_event(const struct service *s, const struct ev_snap *snap, const char *kind,
			  struct event *ev)
{
	new_event(ev, s->conf.name, kind, s->ro.new_num);
	ev->previous = s->ro.old_num;
	(void)snap;
}

static void ev_gate(const struct service *s, const struct fsm_event *e, const struct ev_snap *snap)
{
	const struct version *v = e->v;
	struct event ev;

	if (!v || v->freed)
		return;
	/* Prometheus gates: every failing verdict, and each change to another verdict. */
	if (e->type == FE_GATE && e->inst >= 0 && e->inst < s->conf.ngates &&
	    v->gate[e->inst].verdict != GV_NONE &&
	    (v->gate[e->inst].verdict == GV_FAIL ||
	     (int)v->gate[e->inst].verdict != snap->gate_prev)) {
		const struct gate_state *st = &v->gate[e->inst];

		new_event(&ev, s->conf.name, "gate", v->num);
		copy_str(ev.reason, sizeof(ev.reason), e->why);
		if (st->verdict == GV_FAIL)
			snprintf(ev.text, sizeof(ev.text), "%s: v%d gate %s (%d of %d in a row)%s",
				 s->conf.name, v->num, ev.reason, st->fails,
				 s->conf.health_threshold,
				 s->conf.gate_dry_run ? " (dry-run)" : "");
		else
			snprintf(ev.text, sizeof(ev.text), "%s: v%d gate %s", s->conf.name, v->num,
				 ev.reason);
		record(&ev);
	}
	if (e->type == FE_CHECK && !e->ok) {
		new_event(&ev, s->conf.name, "gate", v->num);
		copy_str(ev.reason, sizeof(ev.reason), e->why);
		snprintf(ev.text, sizeof(ev.text),
			 "%s: v%d health check failed on instance %d (%d of %d in a row): %s",
			 s->conf.name, v->num, e->inst,
			 e->inst >= 0 && e->inst < v->ninst ? v->inst[e->inst].chk.fails : 0,
			 s->conf.health_threshold, ev.reason);
		record(&ev);
	}
	if (e->type == FE_ERROR_SAMPLE && v->bad_intervals != snap->bad_intervals) {
		bool bad = v->bad_intervals > snap->bad_intervals;

		new_event(&ev, s->conf.name, "gate", v->num);
		copy_str(ev.reason, sizeof(ev.reason), e->why);
		if (bad)
			snprintf(
			    ev.text, sizeof(ev.text),
			    "%s: v%d error gate fails: %s, above max-error-rate %.2f%% (%d of %d "
			    "in a row)",
			    s->conf.name, v->num, ev.reason, s->conf.max_error_bp / 100.0,
			    v->bad_intervals, s->conf.health_threshold);
		else
			snprintf(ev.text, sizeof(ev.text), "%s: v%d error gate passes again: %s",
				 s->conf.name, v->num, ev.reason);
		record(&ev);
	}
}

/* An instance of a version in service (not one draining) exited. */
static void ev_crash(const struct service *s, const struct fsm_event *e, const struct ev_snap *snap)
{
	struct event ev;
	int i;

	for (i = 0; i < MAX_VERSIONS && e->type == FE_EXIT; i++)
		if (snap->slot[i] && e->v == snap->slot[i] &&
		    (snap->phase[i] == VP_ACTIVE || snap->phase[i] == VP_STARTING)) {
			new_event(&ev, s->conf.name, "crashed", snap->num[i]);
			copy_str(ev.reason, sizeof(ev.reason), e->why ? e->why : "exited");
			snprintf(ev.text, sizeof(ev.text), "%s: v%d instance %d %s", s->conf.name,
				 snap->num[i], e->inst, ev.reason);
			record(&ev);
		}
}

static void ev_versions(const struct service *s, const struct ev_snap *snap)
{
	struct event ev;
	int i, k;

	for (i = 0; i < MAX_VERSIONS; i++) {
		const struct version *v = s->slot[i];

		if (!snap->slot[i])
			continue;
		if (v == snap->slot[i] && draining(v->phase) && !draining(snap->phase[i])) {
			new_event(&ev, s->conf.name, "draining", v->num);
			snprintf(ev.text, sizeof(ev.text),
				 "%s: v%d takes no new connections and drains", s->conf.name,
				 v->num);
			record(&ev);
		}
		if (v != snap->slot[i]) {
			const char *how = "stopped";

			for (k = s->nhist - 1; k >= 0 && s->hist[k].num != snap->num[i]; k--)
				;
			if (k >= 0)
				how = s->hist[k].how;
			new_event(&ev, s->conf.name,
				  draining(snap->phase[i]) ? "drained" : "stopped", snap->num[i]);
			copy_str(ev.reason, sizeof(ev.reason), how);
			snprintf(ev.text, sizeof(ev.text), "%s: v%d stopped: %s", s->conf.name,
				 snap->num[i], ev.reason);
			record(&ev);
		}
	}
}

static void ev_rollout(const struct service *s, const struct fsm_event *e,
		       const struct ev_snap *snap, const struct fsm_out *out)
{
	const struct rollout *ro = &s->ro;
	const struct version *nv;
	const char *why;
	struct event ev;
	int r;

	if (e->type == FE_DEPLOY && e->v && ro->new_num == e->v->num) {
		rollout_event(s, snap, "rollout-start", &ev);
		if (ro->strategy == STRATEGY_CANARY) {
			char *p = ev.reason;
			int k;

			for (k = 0; k < ro->nsteps; k++)
				p += snprintf(p, sizeof(ev.reason) - (p - ev.reason), "%s%.2f%%",
					      k ? "," : "", ro->steps[k] / 100.0);
		}
		if (ro->strategy == STRATEGY_ROLLING)
			snprintf(ev.reason, sizeof(ev.reason), "max-surge %d, max-unavailable %d",
				 ro->surge, ro->unavail);
		if (ro->old_num)
			snprintf(ev.text, sizeof(ev.text),
				 "%s: rollout of v%d over v%d begins (%s%s%s)", s->conf.name,
				 ro->new_num, ro->old_num,
				 ro->strategy == STRATEGY_CANARY    ? "canary, steps "
				 : ro->strategy == STRATEGY_ROLLING ? "rolling, "
								    : "blue-green",
				 ev.reason, "");
		else
			snprintf(ev.text, sizeof(ev.text), "%s: first version v%d starts",
				 s->conf.name, ro->new_num);
		ev.reason[0] = 0;
		ev.nsteps = ro->nsteps;
		record(&ev);
	}
	if (ro->stage == RO_STEPPING && new_weight(s) != snap->w_new &&
	    new_weight(s) < WEIGHT_MAX) {
		rollout_event(s, snap, "step", &ev);
		ev.weight = (int)new_weight(s);
		ev.step = ro->step + 1;
		ev.nsteps = ro->nsteps;
		if (ro->manual)
			snprintf(ev.text, sizeof(ev.text),
				 "%s: v%d takes %.2f%% of new connections (set by hand)",
				 s->conf.name, ro->new_num, ev.weight / 100.0);
		else
			snprintf(ev.text, sizeof(ev.text),
				 "%s: v%d takes %.2f%% of new connections (step %d of %d)",
				 s->conf.name, ro->new_num, ev.weight / 100.0, ev.step, ev.nsteps);
		record(&ev);
	}
	/* Rolling: one step event per batch, as it starts. */
	if (ro->stage == RO_ROLLING && ro->batch != snap->batch &&
	    (nv = ro_new((struct service *)s))) {
		rollout_event(s, snap, "step", &ev);
		ev.weight = (int)new_weight(s);
		ev.step = ro->batch;
		snprintf(ev.text, sizeof(ev.text),
			 "%s: batch %d of v%d starts (%d of %d instance(s) serving, %.2f%% of new "
			 "connections)",
			 s->conf.name, ro->batch, ro->new_num, nv->serve_n, nv->ninst,
			 ev.weight / 100.0);
		record(&ev);
	}
	if (ro->stage == RO_STEPPING && ro->paused && !snap->paused) {
		rollout_event(s, snap, "paused", &ev);
		ev.weight = (int)new_weight(s);
		snprintf(ev.text, sizeof(ev.text), "%s: rollout of v%d paused at %.2f%%",
			 s->conf.name, ro->new_num, ev.weight / 100.0);
		record(&ev);
	}
	/* The new version took all new connections from an old one. */
	if (snap->stage != RO_NONE && snap->old_num && snap->new_num == ro->new_num &&
	    s->active >= 0 && s->slot[s->active]->num == ro->new_num &&
	    snap->active_num != ro->new_num) {
		rollout_event(s, snap, "promoted", &ev);
		ev.weight = WEIGHT_MAX;
		snprintf(ev.text, sizeof(ev.text),
			 "%s: v%d takes all new connections; v%d is "
			 "switched out",
			 s->conf.name, ro->new_num, ro->old_num);
		record(&ev);
	}
	for (r = 0; r < RB_COUNT && s->rollbacks[r] == snap->rollbacks[r]; r++)
		;
	if (s->rollouts[RR_ROLLED_BACK] != snap->rollouts[RR_ROLLED_BACK]) {
		rollout_event(s, snap, "rolled-back", &ev);
		copy_str(ev.reason, sizeof(ev.reason), s->last_rollback.why);
		snprintf(ev.text, sizeof(ev.text), "%s: rolled back from v%d to v%d (%s): %s",
			 s->conf.name, ro->new_num, ro->old_num, r < RB_COUNT ? rb_names[r] : "?",
			 ev.reason);
		record(&ev);
	} else if (e->type == FE_ROLLBACK && snap->stage == RO_NONE && s->active >= 0 &&
		   s->slot[s->active]->num != snap->active_num) {
		new_event(&ev, s->conf.name, "rolled-back", snap->active_num);
		ev.previous = s->slot[s->active]->num;
		snprintf(ev.reason, sizeof(ev.reason), "baton rollback");
		snprintf(ev.text, sizeof(ev.text),
			 "%s: rolled back from v%d to v%d by baton rollback", s->conf.name,
			 snap->active_num, ev.previous);
		record(&ev);
	}
	if (s->rollouts[RR_FAILED] != snap->rollouts[RR_FAILED]) {
		why = deploy_done_text(out);
		if (!why && strcmp(s->last_error, snap->last_error))
			why = s->last_error;
		rollout_event(s, snap, "failed", &ev);
		copy_str(ev.reason, sizeof(ev.reason), why ? why : "");
		snprintf(ev.text, sizeof(ev.text), "%s: rollout of v%d failed: %s", s->conf.name,
			 ro->new_num, ev.reason);
		record(&ev);
	}
	if (s->rollouts[RR_COMPLETED] != snap->rollouts[RR_COMPLETED]) {
		rollout_event(s, snap, "completed", &ev);
		ev.weight = WEIGHT_MAX;
		snprintf(ev.text, sizeof(ev.text), "%s: rollout of v%d complete", s->conf.name,
			 ro->new_num);
		record(&ev);
	}
}

void events_after(const struct service *s, const struct fsm_event *e, const struct ev_snap *snap,
		  const struct fsm_out *out)
{
	if (e->type == FE_RESTORED) {
		struct event ev;
		const struct version *act = s->active >= 0 ? s->slot[s->active] : NULL;

		new_event(&ev, s->conf.name, "agent-restart", act ? act->num : 0);
		snprintf(ev.text, sizeof(ev.text), "%s: taken over by a restarted agent%s%s",
			 s->conf.name, act ? "; active: " : "", act ? vname(act) : "");
		record(&ev);
	}
	ev_gate(s, e, snap);
	ev_crash(s, e, snap);
	ev_rollout(s, e, snap, out);
	ev_versions(s, snap);
}

/* ---- baton events ---------------------------------------------------------------- */

bool events_has(const char *service)
{
	int i;

	for (i = 0; i < r_len; i++)
		if (!strcmp(ring[(r_head + i) % EVENTS_MEM].service, service))
			return true;
	return false;
}

void events_client_gone(struct client *c)
{
	int k;

	for (k = 0; k < MAX_CLIENTS; k++)
		if (followers[k] == c)
			followers[k] = NULL;
}

void events_request(struct client *c, const char *service, int last, bool follow)
{
	json_t *arr = json_array();
	int i, n = 0, k, from = 0;

	if (last > 0) {
		for (i = r_len - 1; i >= 0 && n < last; i--)
			if (!service || !strcmp(ring[(r_head + i) % EVENTS_MEM].service, service))
				n++;
		from = i + 1;
	}
	for (i = from; i < r_len; i++) {
		const struct event *ev = &ring[(r_head + i) % EVENTS_MEM];

		if (!service || !strcmp(ev->service, service))
			json_array_append_new(arr, event_json(ev));
	}
	reply(c, json_pack("{s:b, s:o, s:b}", "ok", 1, "events", arr, "follow", follow));
	if (!follow || c->closed)
		return;
	for (k = 0; k < MAX_CLIENTS && followers[k] && followers[k] != c; k++)
		;
	if (k == MAX_CLIENTS)
		return; /* as many followers as clients: cannot happen */
	followers[k] = c;
	snprintf(follow_service[k], sizeof(follow_service[k]), "%s", service ? service : "");
}
