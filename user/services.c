/* SPDX-License-Identifier: MIT */
/*
 * The services: the running configuration and one entry per service (its
 * ids and groups, versions, rollout).  Services start here, from the
 * configuration or from what a previous agent left, and leave here when a
 * reload removes them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "checks.h"
#include "ctlserver.h"
#include "dp.h"
#include "history.h"
#include "log.h"
#include "proc.h"
#include "restore.h"
#include "exec.h"
#include "cgroup.h"
#include "services.h"
#include "statefile.h"
#include "versions.h"

static struct config cfg;
static char cfg_path[4096];
static struct service svc[MAX_SERVICES];
static int nsvc;

int services_limits_check(const struct config *c, const char *path, char *err, size_t errlen)
{
	static const char *const ctrl[] = {"memory", "cpu", "pids"};
	static const char *const key[] = {"memory-max", "cpu-max", "pids-max"};
	char where[1400];
	int i, k, r;

	for (i = 0; i < c->nservices; i++) {
		const struct service_conf *sc = &c->services[i];
		bool set[] = {sc->memory_max != 0, sc->cpu_max_pct != 0, sc->pids_max != 0};

		for (k = 0; k < 3; k++) {
			if (!set[k])
				continue;
			r = cg_offers(c->agent.cgroup_dir, ctrl[k], where, sizeof(where));
			if (r == 1)
				continue;
			if (r < 0)
				snprintf(
				    err, errlen,
				    "%s:%d: %s: %s needs a cgroup v2 with the %s controller: %s",
				    path, sc->line, sc->name, key[k], ctrl[k], where);
			else
				snprintf(
				    err, errlen,
				    "%s:%d: %s: %s needs the cgroup v2 %s controller, which %s "
				    "does not offer (on a hybrid hierarchy it is on cgroup v1): "
				    "remove %s, or give baton a cgroup v2 with it",
				    path, sc->line, sc->name, key[k], ctrl[k], where, key[k]);
			return -1;
		}
	}
	return 0;
}

int services_load(const char *path, char *err, size_t errlen)
{
	snprintf(cfg_path, sizeof(cfg_path), "%s", path);
	if (config_load(path, &cfg, err, errlen))
		return -1;
	if (services_limits_check(&cfg, path, err, errlen)) {
		config_free(&cfg);
		memset(&cfg, 0, sizeof(cfg));
		return -1;
	}
	return 0;
}

const char *services_config_path(void)
{
	return cfg_path;
}

struct config *services_config(void)
{
	return &cfg;
}

void services_config_replace(struct config *nc)
{
	struct config old = cfg;

	cfg = *nc;
	config_free(&old); /* nothing points into it any more */
}

struct service *service_at(int i)
{
	return i >= 0 && i < nsvc ? &svc[i] : NULL;
}

void services_client_gone(struct client *c)
{
	int i;

	for (i = 0; i < nsvc; i++)
		if (svc[i].ro.waiter == c)
			svc[i].ro.waiter = NULL;
}

/* Every version drains and stops (baton shutdown --stop): how many there are. */
int services_stop_all(void)
{
	struct fsm_event e = {.type = FE_SHUTDOWN};
	int i, vs, n = 0;

	for (i = 0; i < nsvc; i++) {
		if (svc[i].gone)
			continue;
		for (vs = 0; vs < MAX_VERSIONS; vs++)
			n += svc[i].slot[vs] != NULL;
		fsm_feed(&svc[i], &e);
	}
	return n;
}

void services_free(void)
{
	int i, j;

	for (i = 0; i < nsvc; i++) {
		for (j = 0; j < MAX_VERSIONS; j++)
			if (svc[i].slot[j])
				version_free(svc[i].slot[j]);
		history_clear(&svc[i]);
	}
	config_free(&cfg);
}

/* Whether a running version of the service svc has number num (cgroups left by others: no). */
bool services_version_known(const char *svc, int num)
{
	struct service *s = service_find(svc);

	return s && !s->gone && version_by_num(s, num);
}

bool services_empty(void)
{
	int i, vs;

	for (i = 0; i < nsvc; i++)
		for (vs = 0; vs < MAX_VERSIONS; vs++)
			if (svc[i].slot[vs])
				return false;
	return true;
}

struct service *service_find(const char *name)
{
	int i;

	for (i = 0; i < nsvc; i++)
		if (!svc[i].gone && !strcmp(svc[i].conf.name, name))
			return &svc[i];
	return NULL;
}

static bool id_used(int id)
{
	int i;

	for (i = 0; i < nsvc; i++)
		if (!svc[i].gone && svc[i].id == id)
			return true;
	return false;
}

static bool group_used(int g)
{
	int i, j;

	for (i = 0; i < nsvc; i++)
		for (j = 0; !svc[i].gone && j < svc[i].conf.nlisten; j++)
			if (svc[i].group[j] == g)
				return true;
	return false;
}

/*
 * Add a service from its configuration: the id and groups the state gives
 * it (a service taken over), or the lowest free ones.  Registers its
 * groups; starts nothing.
 */
struct service *service_add(const struct service_conf *c, json_t *js, char *err, size_t errlen)
{
	struct service *s = NULL;
	int i, j, g;

	for (i = 0; i < nsvc; i++)
		if (svc[i].gone) {
			s = &svc[i]; /* a removed service's slot */
			break;
		}
	if (!s) {
		if (nsvc == MAX_SERVICES) {
			snprintf(err, errlen, "more than %d services", MAX_SERVICES);
			return NULL;
		}
		s = &svc[nsvc];
	}
	memset(s, 0, sizeof(*s));
	memcpy(&s->conf, c, sizeof(s->conf));
	s->gone = true; /* not counted by id_used/group_used until placed */
	if (js) {
		s->id = json_integer_value(json_object_get(js, "id"));
		for (j = 0; j < c->nlisten; j++)
			s->group[j] = json_integer_value(json_object_get(
			    json_array_get(json_object_get(js, "groups"), j), "group"));
	} else {
		for (s->id = 0; s->id < MAX_SERVICES && id_used(s->id); s->id++)
			;
		for (j = 0, g = 0; j < c->nlisten; j++, g++) {
			while (g < MAX_GROUPS && group_used(g))
				g++;
			if (g == MAX_GROUPS) {
				snprintf(err, errlen, "more than %d listen addresses in all",
					 MAX_GROUPS);
				return NULL;
			}
			s->group[j] = g;
		}
		if (s->id == MAX_SERVICES) {
			snprintf(err, errlen, "more than %d services", MAX_SERVICES);
			return NULL;
		}
	}
	s->active = s->previous = s->starting = -1;
	s->ro.newv = s->ro.oldv = -1;
	s->ro.hook_pidfd = s->ro.hook_execfd = -1;
	s->next_num = 1;
	s->ro_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->ro_tfd < 0 || ep_add(s->ro_tfd, &s->ro_ev, EV_RO_TIMER, s, 0, EPOLLIN)) {
		snprintf(err, errlen, "timerfd: %s", strerror(errno));
		if (s->ro_tfd >= 0)
			close(s->ro_tfd);
		return NULL;
	}
	if (dp_service_add(s, err, errlen)) {
		ep_del(s->ro_tfd);
		close(s->ro_tfd);
		return NULL;
	}
	s->gone = false;
	if (s == &svc[nsvc])
		nsvc++;
	return s;
}

/* A service taken over, or a new one: its first version, unless it adopts. */
int service_first(struct service *s, bool taken_over, char *err, size_t errlen)
{
	if (s->active >= 0 || s->ro.stage != RO_NONE)
		return 0;
	if (s->conf.adopt) {
		log_info("%s: no version yet; waiting for: baton adopt %s --pid PID", s->conf.name,
			 s->conf.name);
		return 0;
	}
	if (taken_over)
		log_warnx("%s: no version survived; starting the configured one", s->conf.name);
	if (deploy(s, s->conf.argv, NULL, NULL, NULL, err, errlen))
		return -1;
	if (s->active < 0) {
		snprintf(err, errlen, "%s: first version failed to start: %s", s->conf.name,
			 s->last_error);
		return -1;
	}
	return 0;
}

/*
 * A service removed by a reload was still draining when the previous agent
 * died: its versions get their exit signal now (their drain bound died with
 * that agent), and are not taken over.
 */
static void removed_leftovers(json_t *st)
{
	json_t *js, *jv, *ji;
	size_t i, k, n;

	json_array_foreach(json_object_get(st, "services"), i, js)
	{
		if (!json_is_true(json_object_get(js, "removed")))
			continue;
		json_array_foreach(json_object_get(js, "versions"), k, jv)
		{
			json_array_foreach(json_object_get(jv, "instances"), n, ji)
			{
				pid_t pid = json_integer_value(json_object_get(ji, "pid"));
				unsigned long long t =
				    json_integer_value(json_object_get(ji, "starttime"));

				if (pid <= 1 || !json_is_true(json_object_get(ji, "alive")) ||
				    proc_starttime(pid) != t)
					continue;
				kill(pid, SIGTERM);
				log_warnx("%s: removed from the configuration before the agent "
					  "restarted; sent SIGTERM to pid %d",
					  json_string_value(json_object_get(js, "name")), (int)pid);
			}
		}
	}
}

int services_start(json_t *st, char *err, size_t errlen)
{
	struct service *s;
	int pass, i;

	if (st)
		removed_leftovers(st);
	/* Services taken over first: their ids and groups are fixed by the state. */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < cfg.nservices; i++) {
			json_t *js = st ? state_service(st, cfg.services[i].name) : NULL;

			if ((js != NULL) != (pass == 0))
				continue;
			if (!service_add(&cfg.services[i], js, err, errlen))
				return -1;
		}
	/* Pins of the previous agent's probes: their source ports mean nothing now. */
	dp_probe_clear();
	/* What lets steer skip the probe and pin lookups: counted again, exactly. */
	i = dp_extras_sync();
	if (i)
		log_warnx("cannot count the probe and CIDR pins: %s", strerror(-i));
	for (i = 0; i < nsvc; i++) {
		json_t *js;

		s = &svc[i];
		js = st ? state_service(st, s->conf.name) : NULL;
		if (js)
			service_restore(s, js);
		else
			dp_policy(s);
		if (service_first(s, js != NULL, err, errlen))
			return -1;
	}
	dp_takeover_done();
	return 0;
}

/* Drain and stop every version of a service that left the configuration. */
void service_remove(struct service *s)
{
	struct fsm_event e = {.type = FE_REMOVE};

	fsm_feed(s, &e);
}
