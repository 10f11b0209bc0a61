/* SPDX-License-Identifier: MIT */
/*
 * Taking over from an agent that died or was stopped: versions, their
 * processes (by pid and start time) and listeners (by socket cookie, copied
 * back with pidfd_getfd), timers and the rollout, from the state file.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "checks.h"
#include "dp.h"
#include "history.h"
#include "log.h"
#include "loop.h"
#include "proc.h"
#include "restore.h"
#include "statefile.h"
#include "exec.h"
#include "versions.h"

static int pidfd_getfd(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

/*
 * Copy back, from a running instance, the listener whose socket cookie is
 * cookie: the agent's copies died with the previous agent.  Looks at fd 3
 * (and what follows: LISTEN_FDS order) first, then every fd the process has.
 */
static int listener_from(struct instance *in, __u64 cookie)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)in->pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		__u64 c = 0;
		socklen_t len = sizeof(c);
		int n, cand;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		n = atoi(de->d_name);
		cand = pidfd_getfd(in->pidfd, n);
		if (cand < 0)
			continue;
		if (!getsockopt(cand, SOL_SOCKET, SO_COOKIE, &c, &len) && c == cookie) {
			fd = cand;
			break;
		}
		close(cand);
	}
	closedir(d);
	return fd;
}

/*
 * A time of the state file is CLOCK_MONOTONIC ms: never negative, and no
 * further ahead than one timeout (unsigned ms) puts it.  Any other value is
 * a corrupt file: the restore rules' arithmetic on it would overflow
 * (t_switch + drain-delay, a deadline minus now), or a version's timer
 * would be armed for ever.
 */
static bool time_ok(long long t)
{
	return t >= 0 && t <= now_ms() + (long long)UINT_MAX;
}

static bool holds_listeners(enum vphase p)
{
	/* The agent keeps copies until the exit signal (drain_signal releases them). */
	return p == VP_STARTING || p == VP_ACTIVE || p == VP_DRAIN_DELAY || p == VP_DRAIN_WAIT;
}

/*
 * The rest of v's spawn description as the state has it; a state file
 * written before versions kept their own has none: the service's now.
 */
static void spec_restore(struct service *s, struct version *v, json_t *jv)
{
	const char *user = json_string_value(json_object_get(jv, "user"));
	const char *wd = json_string_value(json_object_get(jv, "workdir"));
	json_t *env = json_object_get(jv, "env"), *a;
	size_t k;

	snprintf(v->spec.user, sizeof(v->spec.user), "%s", user ? user : s->conf.user);
	snprintf(v->spec.workdir, sizeof(v->spec.workdir), "%s", wd ? wd : s->conf.workdir);
	if (!json_is_array(env)) {
		for (k = 0; s->conf.env[k]; k++)
			v->spec.env[k] = strdup(s->conf.env[k]);
		return;
	}
	json_array_foreach(env, k, a) if (k < MAX_ENV && json_is_string(a)) v->spec.env[k] =
	    strdup(json_string_value(a));
}

/*
 * The rollback window as the state has it.  A state file written before
 * there was one: the versions that run are remembered from now on.
 */
static void history_restore(struct service *s, json_t *js)
{
	json_t *h = json_object_get(js, "history");
	int i, n;

	if (h && history_from_json(s, h) < 0)
		log_warnx("%s: the state file's version history is malformed; starting a new one",
			  s->conf.name);
	for (n = 0; n < MAX_VERSIONS; n++) {
		struct version *v = NULL;

		/* Oldest first: the lowest number not remembered yet. */
		for (i = 0; i < MAX_VERSIONS; i++)
			if (s->slot[i] && !history_find(s, s->slot[i]->num) &&
			    (!v || s->slot[i]->num < v->num))
				v = s->slot[i];
		if (!v || history_record(s, v, 0, 0) < 0)
			return;
		history_find(s, v->num)->end = v->vslot == s->active ? VR_ACTIVE : VR_REPLACED;
		history_find(s, v->num)->served = true;
		history_find(s, v->num)->activated = v->vslot == s->active ? 2 : 1;
	}
}

static struct version *version_restore(struct service *s, json_t *jv, char *err, size_t errlen)
{
	json_t *insts = json_object_get(jv, "instances"), *ji, *a;
	struct version *v;
	size_t i, k;
	int j;

	v = version_alloc(s, err, errlen);
	if (!v)
		return NULL;
	v->num = json_integer_value(json_object_get(jv, "num"));
	v->vslot = json_integer_value(json_object_get(jv, "vslot"));
	v->phase = json_integer_value(json_object_get(jv, "phase"));
	v->weight = json_integer_value(json_object_get(jv, "weight"));
	v->placed = json_is_true(json_object_get(jv, "placed"));
	v->adopted = json_is_true(json_object_get(jv, "adopted"));
	v->t_start = json_integer_value(json_object_get(jv, "t_start"));
	v->t_switch = json_integer_value(json_object_get(jv, "t_switch"));
	v->t_signal = json_integer_value(json_object_get(jv, "t_signal"));
	v->deadline = json_integer_value(json_object_get(jv, "deadline"));
	if (v->num < 1 || v->vslot < 0 || v->vslot >= MAX_VERSIONS || s->slot[v->vslot] ||
	    (int)v->phase < VP_STARTING || v->phase > VP_ABORTING || v->weight > WEIGHT_MAX ||
	    !time_ok(v->t_start) || !time_ok(v->t_switch) || !time_ok(v->t_signal) ||
	    !time_ok(v->deadline) || !json_is_array(insts) ||
	    json_array_size(insts) > MAX_INSTANCES ||
	    !json_array_size(json_object_get(jv, "argv")) ||
	    json_array_size(json_object_get(jv, "argv")) > MAX_ARGS) {
		snprintf(err, errlen, "%s: the state file has a bad version entry", s->conf.name);
		free(v);
		return NULL;
	}
	json_array_foreach(json_object_get(jv, "argv"), k, a) v->spec.argv[k] =
	    strdup(json_string_value(a) ?: "");
	spec_restore(s, v, jv);
	v->ninst = json_array_size(insts);
	v->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->tfd < 0 || ep_add(v->tfd, &v->ev, EV_TIMER, v, 0, EPOLLIN)) {
		snprintf(err, errlen, "timerfd: %s", strerror(errno));
		version_free(v);
		return NULL;
	}
	json_array_foreach(insts, i, ji)
	{
		struct instance *in = &v->inst[i];
		json_t *cookies = json_object_get(ji, "cookies");

		in->pid = json_integer_value(json_object_get(ji, "pid"));
		in->starttime = json_integer_value(json_object_get(ji, "starttime"));
		in->ready = json_is_true(json_object_get(ji, "ready"));
		snprintf(in->exit_desc, sizeof(in->exit_desc), "%s",
			 json_string_value(json_object_get(ji, "exit")) ?: "");
		for (k = 0; k < json_array_size(cookies) && k < MAX_LISTEN; k++)
			in->cookie[k] = json_integer_value(json_array_get(cookies, k));
		if (in->ready)
			v->nready++;
		if (!json_is_true(json_object_get(ji, "alive")))
			continue;
		if (v->adopted && i > 0) {
			/* Instance 0's process holds these sockets too. */
			if (v->inst[0].alive) {
				in->alive = true;
				v->nalive++;
				for (j = 0; j < s->conf.nlisten && holds_listeners(v->phase); j++)
					if (in->cookie[j])
						in->lfd[j] =
						    listener_from(&v->inst[0], in->cookie[j]);
			}
			continue;
		}
		/* The same pid and start time: the same process, not a reused pid. */
		if (in->pid <= 1 || !in->starttime || proc_starttime(in->pid) != in->starttime ||
		    (in->pidfd = (int)syscall(SYS_pidfd_open, in->pid, 0)) < 0) {
			in->pidfd = -1;
			snprintf(in->exit_desc, sizeof(in->exit_desc), "exited while no agent ran");
			log_warnx("%s v%d: instance %d (pid %d) exited while no agent ran",
				  s->conf.name, v->num, (int)i, in->pid);
			continue;
		}
		in->alive = true;
		v->nalive++;
		ep_add(in->pidfd, &in->ev, EV_PIDFD, v, i, EPOLLIN);
		if (!holds_listeners(v->phase))
			continue;
		for (j = 0; j < s->conf.nlisten; j++) {
			if (v->adopted && !in->cookie[j])
				continue; /* this instance had no socket on that address */
			in->lfd[j] = listener_from(in, in->cookie[j]);
			if (in->lfd[j] < 0)
				log_warnx("%s v%d: instance %d (pid %d) no longer has its %s "
					  "listener",
					  s->conf.name, v->num, (int)i, in->pid,
					  s->conf.listen[j].text);
		}
	}
	/* Its cgroup is where it was: found again by name, watched, looked at. */
	version_restore_tree(v);
	s->slot[v->vslot] = v;
	return v;
}

static void kill_orphan_hook(struct service *s, json_t *jr)
{
	pid_t pid = json_integer_value(json_object_get(jr, "hook_pid"));
	unsigned long long st = json_integer_value(json_object_get(jr, "hook_starttime"));

	if (pid > 1 && st && proc_starttime(pid) == st) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		log_warnx(
		    "%s: killed the %s hook (pid %d) the previous agent left running", s->conf.name,
		    hook_name((enum hook_point)json_integer_value(json_object_get(jr, "hook"))),
		    (int)pid);
	}
}

/* The rollout the previous agent was running, as the state file has it. */
static void rollout_resume(struct service *s, json_t *jr)
{
	struct rollout *ro = &s->ro;
	json_t *a;
	size_t k;

	memset(ro, 0, sizeof(*ro));
	ro->hook_pidfd = ro->hook_execfd = -1;
	ro->newv = ro->oldv = -1;
	ro->stage = json_integer_value(json_object_get(jr, "stage"));
	if (ro->stage == RO_NONE || ro->stage > RO_ROLLING_BACK) {
		ro->stage = RO_NONE;
		return;
	}
	ro->strategy = json_integer_value(json_object_get(jr, "strategy"));
	json_array_foreach(json_object_get(jr, "steps"), k, a) if (k < MAX_STEPS)
	    ro->steps[ro->nsteps++] = json_integer_value(a);
	ro->bake_ms = json_integer_value(json_object_get(jr, "bake_ms"));
	ro->step = json_integer_value(json_object_get(jr, "step"));
	ro->paused = json_is_true(json_object_get(jr, "paused"));
	ro->manual = json_is_true(json_object_get(jr, "manual"));
	ro->bake_end = json_integer_value(json_object_get(jr, "bake_end"));
	ro->bake_left = json_integer_value(json_object_get(jr, "bake_left"));
	ro->newv = json_integer_value(json_object_get(jr, "newv"));
	ro->oldv = json_integer_value(json_object_get(jr, "oldv"));
	ro->new_num = json_integer_value(json_object_get(jr, "new_num"));
	ro->old_num = json_integer_value(json_object_get(jr, "old_num"));
	ro->t_start = json_integer_value(json_object_get(jr, "t_start"));
	ro->ready_ms = json_integer_value(json_object_get(jr, "ready_ms"));
	ro->hook = json_integer_value(json_object_get(jr, "hook"));
	/* The baseline, when it still runs (ro_base finds it by number, else there is none). */
	ro->base_num = json_integer_value(json_object_get(jr, "base_num"));
	state_holds_restore(s, json_object_get(jr, "holds"));
	/* Its deadlines past their timeouts are bounded by the rules (fsm_holds_restored). */
	if (ro->newv < -1 || ro->newv >= MAX_VERSIONS || ro->oldv < -1 ||
	    ro->oldv >= MAX_VERSIONS || !ro->nsteps || ro->step < 0 || ro->step >= ro->nsteps ||
	    ro->bake_end < 0 || ro->bake_left < 0 || ro->t_start < 0 || ro->ready_ms < 0 ||
	    s->ro_deadline < 0 || ro->confirm_deadline < 0 || ro->gate_deadline < 0 ||
	    ro->gate_step_t < 0 || ro->approve_deadline < 0) {
		log_warnx("%s: the state file has a bad rollout entry; ignoring it", s->conf.name);
		ro->stage = RO_NONE;
		ro->newv = ro->oldv = -1;
		s->ro_deadline = 0;
		return;
	}
	/* A slot that now holds another version is not the one the rollout meant. */
	if (ro->newv >= 0 && (!s->slot[ro->newv] || s->slot[ro->newv]->num != ro->new_num))
		ro->newv = -1;
	if (ro->oldv >= 0 && (!s->slot[ro->oldv] || s->slot[ro->oldv]->num != ro->old_num))
		ro->oldv = -1;
	kill_orphan_hook(s, jr);
}

/*
 * The CIDR pins the state lists, set again: the same pins when the map
 * survived, all of them again when its pin was removed.  A pin to a version
 * that is gone is dropped, as the agent drops it when a version ends.
 */
static void pins_restore(struct service *s, json_t *pins)
{
	struct steer_cidr c;
	char err[128];
	json_t *p;
	size_t k;
	int num, r;

	json_array_foreach(pins, k, p)
	{
		const char *text = json_string_value(json_object_get(p, "cidr"));

		num = json_integer_value(json_object_get(p, "version"));
		if (!text || steer_cidr_parse(text, &c, err, sizeof(err)) ||
		    !version_by_num(s, num))
			continue;
		r = dp_pin_set(s, &c, num);
		if (r)
			log_warnx("%s: cannot set its pin of %s to v%d again: %s", s->conf.name,
				  text, num, strerror(-r));
	}
}

void service_restore(struct service *s, json_t *js)
{
	struct fsm_event e = {.type = FE_RESTORED};
	json_t *jv, *lr;
	size_t k;
	int i, j, n = 0;
	char err[256];

	s->next_num = json_integer_value(json_object_get(js, "next_num"));
	s->active = json_integer_value(json_object_get(js, "active"));
	s->previous = json_integer_value(json_object_get(js, "previous"));
	if (s->next_num < 1)
		s->next_num = 1;
	lr = json_object_get(js, "last_rollback");
	if (json_is_object(lr)) {
		s->last_rollback.num = json_integer_value(json_object_get(lr, "num"));
		s->last_rollback.when = json_integer_value(json_object_get(lr, "when"));
		snprintf(s->last_rollback.why, sizeof(s->last_rollback.why), "%s",
			 json_string_value(json_object_get(lr, "why")) ?: "");
	}
	json_array_foreach(json_object_get(js, "versions"), k, jv)
	{
		if (!version_restore(s, jv, err, sizeof(err)))
			log_warnx("%s", err);
		else
			n++;
	}
	for (i = 0; i < MAX_VERSIONS; i++)
		if (s->slot[i] && s->slot[i]->num >= s->next_num)
			s->next_num = s->slot[i]->num + 1;
	if (s->active >= MAX_VERSIONS || (s->active >= 0 && !s->slot[s->active]))
		s->active = -1;
	if (s->previous >= MAX_VERSIONS || (s->previous >= 0 && !s->slot[s->previous]))
		s->previous = -1;
	log_info("%s: took over %d version(s) from the previous agent", s->conf.name, n);
	/*
	 * Counters of every version taken over, kept when the maps survived and
	 * new when their pins were removed (else the error-rate gate reads
	 * nothing), and the policy, before this agent's program takes the
	 * groups over.  The sockets map is the previous agent's, pinned again
	 * by dp_open when its pin was removed, unless it did not fit.
	 */
	for (i = 0; i < MAX_VERSIONS; i++)
		if (s->slot[i] && dp_ensure(s->slot[i]))
			log_warn("%s: cannot register its connection counters", vname(s->slot[i]));
	dp_policy(s);
	pins_restore(s, json_object_get(js, "pins"));
	/* A new sockets map (the pins were removed): every listener in it again first. */
	for (i = 0; i < MAX_VERSIONS && dp_sockets_new(); i++)
		if (s->slot[i] && s->slot[i]->placed)
			dp_place_again(s->slot[i]);
	for (j = 0; j < s->conf.nlisten; j++)
		dp_reattach(s, j);
	rollout_resume(s, json_object_get(js, "rollout"));
	history_restore(s, js);
	/* The rules decide what each phase and the rollout need now. */
	fsm_feed(s, &e);
}

int state_cookies(json_t *st, __u64 **out)
{
	json_t *js, *jv, *ji, *c;
	size_t i, k, n, m;
	int cnt = 0, cap = 0;
	__u64 *a = NULL, *na;

	json_array_foreach(json_object_get(st, "services"), i, js)
	    json_array_foreach(json_object_get(js, "versions"), k, jv)
		json_array_foreach(json_object_get(jv, "instances"), n, ji)
	{
		if (!json_is_true(json_object_get(ji, "alive")))
			continue;
		json_array_foreach(json_object_get(ji, "cookies"), m, c)
		{
			if (!json_integer_value(c))
				continue;
			if (cnt == cap) {
				cap = cap ? 2 * cap : 64;
				na = realloc(a, cap * sizeof(*a));
				if (!na) {
					free(a);
					*out = NULL;
					return 0;
				}
				a = na;
			}
			a[cnt++] = (__u64)json_integer_value(c);
		}
	}
	*out = a;
	return cnt;
}

/* The network namespace of pid as "net:[N]" into buf: 0, or -1 when it is gone. */
static int netns_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/net");
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

int state_netns_check(json_t *st, char *err, size_t errlen)
{
	json_t *js, *jv, *ji;
	size_t i, k, n;
	char mine[64], theirs[64];

	if (netns_of(0, mine, sizeof(mine)))
		return 0;
	json_array_foreach(json_object_get(st, "services"), i, js)
	{
		json_array_foreach(json_object_get(js, "versions"), k, jv)
		{
			json_array_foreach(json_object_get(jv, "instances"), n, ji)
			{
				pid_t pid = json_integer_value(json_object_get(ji, "pid"));
				unsigned long long t =
				    json_integer_value(json_object_get(ji, "starttime"));

				if (pid <= 1 || !json_is_true(json_object_get(ji, "alive")) ||
				    proc_starttime(pid) != t ||
				    netns_of(pid, theirs, sizeof(theirs)))
					continue;
				if (strcmp(mine, theirs)) {
					snprintf(
					    err, errlen,
					    "the state in this run-dir is of services in another "
					    "network namespace (%s runs pid %d in %s, this agent "
					    "is "
					    "in %s): their sockets cannot be taken over from here; "
					    "give this agent its own run-dir and bpf-dir",
					    json_string_value(json_object_get(js, "name")) ?: "?",
					    (int)pid, theirs, mine);
					return -1;
				}
			}
		}
	}
	return 0;
}
