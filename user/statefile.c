/* SPDX-License-Identifier: MIT */
/* The state file under run-dir: written after every loop turn that changed it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "history.h"
#include "log.h"
#include "proc.h"
#include "services.h"
#include "statefile.h"
#include "status.h"

/*
 * The pinned maps keep steering and counting while no agent runs; the
 * state file keeps what only the agent knew: which processes belong to
 * which version, each version's phase and deadlines, the listeners' socket
 * cookies (to find them again in the children), and the rollout.  Times
 * are CLOCK_MONOTONIC milliseconds, which mean the same to every process
 * until the next boot (which also empties /run and bpffs).
 */
#define STATE_FORMAT 1

static char run_dir[256];
static char *state_last; /* the state file's content as last written */
/* Each service's CIDR pins as last read from the map, by service id. */
static struct {
	unsigned gen;
	json_t *j;
} pins_cache[MAX_SERVICES];

void state_init(const char *dir)
{
	snprintf(run_dir, sizeof(run_dir), "%s", dir);
}

void state_close(void)
{
	int i;

	free(state_last);
	state_last = NULL;
	for (i = 0; i < MAX_SERVICES; i++) {
		json_decref(pins_cache[i].j);
		pins_cache[i].j = NULL;
	}
}

static json_t *state_version(struct version *v)
{
	json_t *insts = json_array(), *argv = json_array(), *j;
	int i, k;

	for (k = 0; v->spec.argv[k]; k++)
		json_array_append_new(argv, json_string(v->spec.argv[k]));
	for (i = 0; i < v->ninst; i++) {
		struct instance *in = &v->inst[i];
		json_t *cookies = json_array();

		for (k = 0; k < v->svc->conf.nlisten; k++)
			json_array_append_new(cookies, json_integer((json_int_t)in->cookie[k]));
		json_array_append_new(
		    insts, json_pack("{s:i, s:I, s:b, s:b, s:s, s:o}", "pid", in->pid, "starttime",
				     (json_int_t)in->starttime, "ready", in->ready, "alive",
				     in->alive, "exit", in->exit_desc, "cookies", cookies));
	}
	j = json_pack("{s:i, s:i, s:i, s:i, s:b, s:b, s:I, s:I, s:I, s:I, s:o, s:o}", "num", v->num,
		      "vslot", v->vslot, "phase", v->phase, "weight", v->weight, "placed",
		      v->placed, "adopted", v->adopted, "t_start", (json_int_t)v->t_start,
		      "t_switch", (json_int_t)v->t_switch, "t_signal", (json_int_t)v->t_signal,
		      "deadline", (json_int_t)v->deadline, "argv", argv, "instances", insts);
	/* The rest of its spawn description: an older state file has none (restore.c). */
	json_object_set_new(j, "env", json_array());
	for (k = 0; v->spec.env[k]; k++)
		json_array_append_new(json_object_get(j, "env"), json_string(v->spec.env[k]));
	json_object_set_new(j, "user", json_string(v->spec.user));
	json_object_set_new(j, "workdir", json_string(v->spec.workdir));
	return j;
}

static json_t *state_rollout(struct service *s)
{
	struct rollout *ro = &s->ro;
	json_t *steps = json_array(), *j;
	bool hook = ro->hook_running && ro->hook_pidfd > 0;
	int k;

	for (k = 0; k < ro->nsteps; k++)
		json_array_append_new(steps, json_integer(ro->steps[k]));
	j = json_pack("{s:i, s:i, s:o, s:i, s:i, s:b, s:b, s:I, s:I, s:i, s:i, s:i, s:i, s:I, "
		      "s:I, s:i, s:i, s:I}",
		      "stage", ro->stage, "strategy", ro->strategy, "steps", steps, "bake_ms",
		      ro->bake_ms, "step", ro->step, "paused", ro->paused, "manual", ro->manual,
		      "bake_end", (json_int_t)ro->bake_end, "bake_left", (json_int_t)ro->bake_left,
		      "newv", ro->newv, "oldv", ro->oldv, "new_num", ro->new_num, "old_num",
		      ro->old_num, "t_start", (json_int_t)ro->t_start, "ready_ms",
		      (json_int_t)ro->ready_ms, "hook", ro->hook, "hook_pid",
		      hook ? ro->hook_pid : 0, "hook_starttime",
		      (json_int_t)(hook ? proc_starttime(ro->hook_pid) : 0));
	if (j && ro->base_num)
		json_object_set_new(j, "base_num", json_integer(ro->base_num));
	if (j)
		json_object_set_new(j, "holds", state_holds(s));
	return j;
}

static char *state_text(void)
{
	json_t *svcs = json_array(), *root;
	struct service *s;
	char *text;
	int i, k;

	for (i = 0; (s = service_at(i)); i++) {
		json_t *vs, *groups, *j;

		/*
		 * The CIDR pins, read from the map only when they changed: if the
		 * pins are removed, a restarted agent sets them again.
		 */
		if (s->id >= 0 && s->id < MAX_SERVICES &&
		    (!pins_cache[s->id].j || pins_cache[s->id].gen != s->pins_gen)) {
			json_decref(pins_cache[s->id].j);
			pins_cache[s->id].j = status_pins(s);
			pins_cache[s->id].gen = s->pins_gen;
		}

		if (s->gone)
			continue;
		vs = json_array();
		groups = json_array();
		for (k = 0; k < s->conf.nlisten; k++)
			json_array_append_new(groups, json_pack("{s:s, s:i}", "listen",
								s->conf.listen[k].text, "group",
								s->group[k]));
		for (k = 0; k < MAX_VERSIONS; k++)
			if (s->slot[k])
				json_array_append_new(vs, state_version(s->slot[k]));
		j = json_pack("{s:s, s:b, s:i, s:o, s:i, s:i, s:i, s:o, s:o}", "name", s->conf.name,
			      "removed", s->removed, "id", s->id, "groups", groups, "next_num",
			      s->next_num, "active", s->active, "previous", s->previous, "versions",
			      vs, "rollout", state_rollout(s));
		if (s->id >= 0 && s->id < MAX_SERVICES && json_array_size(pins_cache[s->id].j))
			json_object_set_new(j, "pins", json_deep_copy(pins_cache[s->id].j));
		json_object_set_new(j, "history", history_json(s));
		if (s->last_rollback.num)
			json_object_set_new(j, "last_rollback",
					    json_pack("{s:i, s:I, s:s}", "num",
						      s->last_rollback.num, "when",
						      (json_int_t)s->last_rollback.when, "why",
						      s->last_rollback.why));
		json_array_append_new(svcs, j);
	}
	root = json_pack("{s:i, s:i, s:o}", "format", STATE_FORMAT, "agent_pid", (int)getpid(),
			 "services", svcs);
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

/* Write the state file if it changed: a temporary file renamed over it, mode 0600. */
void state_save(void)
{
	char path[300], tmp[310];
	char *text = state_text();
	size_t len;
	bool ok;
	int fd;

	if (!text)
		return;
	if (state_last && !strcmp(state_last, text)) {
		free(text);
		return;
	}
	snprintf(path, sizeof(path), "%s/state.json", run_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	len = strlen(text);
	ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
	/* Closed on every path: a failed write is tried again at every loop turn. */
	if (fd >= 0 && close(fd) < 0)
		ok = false;
	if (!ok || rename(tmp, path) < 0) {
		log_warn("cannot write the state file %s", path);
		if (fd >= 0)
			unlink(tmp);
		free(text);
		return;
	}
	free(state_last);
	state_last = text;
}

void state_remove(void)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/state.json", run_dir);
	unlink(path);
}

/*
 * Take over the services the previous agent left.  Returns 1 when there was
 * a state to take over, 0 when there was none, -1 with err when it does not
 * fit this configuration.
 */
json_t *state_load(char *err, size_t errlen)
{
	char path[300];
	json_error_t je;
	json_t *st;

	snprintf(path, sizeof(path), "%s/state.json", run_dir);
	if (access(path, F_OK) < 0)
		return NULL;
	st = json_load_file(path, 0, &je);
	if (!st || json_integer_value(json_object_get(st, "format")) != STATE_FORMAT ||
	    !json_is_array(json_object_get(st, "services"))) {
		snprintf(err, errlen,
			 "%.200s is unreadable or from another baton version (%.100s); if no "
			 "services are running, remove it",
			 path, st ? "unknown format" : je.text);
		json_decref(st);
		return json_null();
	}
	return st;
}

/* Is listen address j of service s in the state as the same group? */
json_t *state_service(json_t *st, const char *name)
{
	json_t *js;
	size_t i;

	json_array_foreach(json_object_get(st, "services"), i, js)
	{
		if (!json_is_true(json_object_get(js, "removed")) &&
		    !strcmp(json_string_value(json_object_get(js, "name")) ?: "", name))
			return js;
	}
	return NULL;
}

/*
 * The state a previous agent left must fit the configuration: every
 * service it ran is still configured, on the same listen addresses (ids and
 * groups key the maps, and are taken over from the state).
 */
int state_fits(json_t *st, char *err, size_t errlen)
{
	const struct config *cfg = services_config();
	json_t *js, *jg;
	size_t i, k;
	int c;

	json_array_foreach(json_object_get(st, "services"), i, js)
	{
		const char *name = json_string_value(json_object_get(js, "name")) ?: "?";
		json_t *groups = json_object_get(js, "groups");
		json_int_t id = json_integer_value(json_object_get(js, "id"));
		bool same;

		if (json_is_true(json_object_get(js, "removed")))
			continue; /* services_start ends what is left of it */
		for (c = 0; c < cfg->nservices && strcmp(cfg->services[c].name, name); c++)
			;
		if (c == cfg->nservices) {
			snprintf(
			    err, errlen,
			    "service %s is running but not in this configuration: add it back, "
			    "or stop it first (baton shutdown --stop with the old configuration)",
			    name);
			return -1;
		}
		same = id >= 0 && id < MAX_SERVICES &&
		       json_array_size(groups) == (size_t)cfg->services[c].nlisten;
		json_array_foreach(groups, k, jg) if (same) same =
		    !strcmp(json_string_value(json_object_get(jg, "listen")) ?: "",
			    cfg->services[c].listen[k].text) &&
		    json_integer_value(json_object_get(jg, "group")) >= 0 &&
		    json_integer_value(json_object_get(jg, "group")) < MAX_GROUPS;
		if (!same) {
			snprintf(
			    err, errlen,
			    "service %s runs on other listen addresses than this configuration "
			    "gives it: restore them, or stop it first (baton shutdown --stop)",
			    name);
			return -1;
		}
	}
	return 0;
}
