/* SPDX-License-Identifier: MIT */
/*
 * Reload (SIGHUP, baton reload): read the configuration again and apply the
 * difference, or refuse it whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes_user.h"
#include "dp.h"
#include "listen.h"
#include "log.h"
#include "reload.h"
#include "exec.h"
#include "httpdrain.h"
#include "services.h"

static bool listens_equal(const struct service_conf *a, const struct service_conf *b)
{
	int j;

	if (a->nlisten != b->nlisten)
		return false;
	for (j = 0; j < a->nlisten; j++)
		if (a->listen[j].len != b->listen[j].len ||
		    memcmp(&a->listen[j].ss, &b->listen[j].ss, a->listen[j].len))
			return false;
	return true;
}

/* The service's pointers into a configuration about to be freed: none are used again. */
static void conf_detach(struct service_conf *c)
{
	memset(c->argv, 0, sizeof(c->argv));
	memset(c->env, 0, sizeof(c->env));
	memset(c->health_argv, 0, sizeof(c->health_argv));
	memset(c->hook, 0, sizeof(c->hook));
	c->argc = c->nenv = 0;
}

static bool argv_equal(char *const *a, char *const *b)
{
	int i;

	for (i = 0; a[i] || b[i]; i++)
		if (!a[i] || !b[i] || strcmp(a[i], b[i]))
			return false;
	return true;
}

/* The same settings (the line a section starts on aside). */
static bool conf_same(const struct service_conf *a, const struct service_conf *b)
{
	static struct service_conf x, y; /* large: off the stack */
	int h;

	x = *a;
	y = *b;
	conf_detach(&x);
	conf_detach(&y);
	x.line = y.line = 0;
	if (memcmp(&x, &y, sizeof(x)) || !argv_equal(a->argv, b->argv) ||
	    !argv_equal(a->env, b->env) || !argv_equal(a->health_argv, b->health_argv))
		return false;
	for (h = 0; h < HOOK_COUNT; h++)
		if (!argv_equal(a->hook[h], b->hook[h]))
			return false;
	return true;
}

/*
 * Read the configuration again and apply the difference: added services
 * start, removed ones drain and stop, changed settings of the others apply
 * to what they do next; no service's traffic is touched.  A configuration
 * that is invalid, or that changes what cannot change while running, is
 * refused as a whole.  Returns 0 with a summary in msg, or -1 with why.
 */
int reload(char *msg, size_t msglen)
{
	struct config *nc = calloc(1, sizeof(*nc)), *cfg;
	struct service *s;
	struct service *match[MAX_SERVICES];
	char err[2048], added[256] = "", removed[256] = "", changed[256] = "";
	int i, k, nadd = 0, nrem = 0, nchg = 0, nsame = 0;

	if (!nc) {
		snprintf(msg, msglen, "reload: out of memory");
		return -1;
	}
	if (config_load(services_config_path(), nc, err, sizeof(err)) ||
	    services_limits_check(nc, services_config_path(), err, sizeof(err))) {
		for (char *p = err; (p = strchr(p, '\n'));)
			*p = ';';
		snprintf(msg, msglen, "reload refused, the running configuration stays: %.900s",
			 err);
		goto fail;
	}
	if (strcmp(nc->agent.control, services_config()->agent.control) ||
	    strcmp(nc->agent.bpf_dir, services_config()->agent.bpf_dir) ||
	    strcmp(nc->agent.run_dir, services_config()->agent.run_dir) ||
	    strcmp(nc->agent.control_group, services_config()->agent.control_group) ||
	    strcmp(nc->agent.cgroup_dir, services_config()->agent.cgroup_dir) ||
	    strcmp(nc->agent.metrics.text, services_config()->agent.metrics.text) ||
	    nc->agent.metrics.len != services_config()->agent.metrics.len ||
	    nc->agent.latency_off != services_config()->agent.latency_off) {
		snprintf(msg, msglen,
			 "reload refused: [agent] settings change only with a restart of the agent "
			 "(baton shutdown, then start it; services keep running)");
		goto fail;
	}
	if (!nc->nservices) {
		snprintf(msg, msglen,
			 "reload refused: the new configuration has no service "
			 "(baton shutdown --stop ends them all)");
		goto fail;
	}
	/* Check everything before changing anything. */
	if (http_drain_config_check(nc, err, sizeof(err)) ||
	    bytes_config_check(nc, err, sizeof(err))) {
		snprintf(msg, msglen, "reload refused: %.1000s", err);
		goto fail;
	}
	for (k = 0; k < nc->nservices; k++) {
		struct service *s = service_find(nc->services[k].name);
		int j;

		match[k] = s;
		if (s && s->removed) {
			snprintf(msg, msglen,
				 "reload refused: %s is still being removed; reload again once its "
				 "versions stopped",
				 s->conf.name);
			goto fail;
		}
		if (s && (!listens_equal(&s->conf, &nc->services[k]) ||
			  s->conf.adopt != nc->services[k].adopt)) {
			snprintf(
			    msg, msglen,
			    "reload refused: %s changes its listen addresses or adopt; remove the "
			    "service, reload, then add it back",
			    s->conf.name);
			goto fail;
		}
		for (j = 0; !s && !nc->services[k].adopt && j < nc->services[k].nlisten; j++)
			if (check_port_free(&nc->services[k].listen[j], err, sizeof(err))) {
				snprintf(msg, msglen, "reload refused: %s: %.1000s",
					 nc->services[k].name, err);
				goto fail;
			}
	}
	/* Removed services drain and stop; their pointers into the old configuration go. */
	for (i = 0; (s = service_at(i)); i++) {

		if (s->gone || s->removed)
			continue;
		for (k = 0; k < nc->nservices && match[k] != s; k++)
			;
		if (k < nc->nservices)
			continue;
		nrem++;
		snprintf(removed + strlen(removed), sizeof(removed) - strlen(removed), " %s",
			 s->conf.name);
		conf_detach(&s->conf);
		service_remove(s);
	}
	/* Kept services take their new settings. */
	for (k = 0; k < nc->nservices; k++) {
		struct service *s = match[k];

		if (!s)
			continue;
		if (conf_same(&s->conf, &nc->services[k])) {
			nsame++;
		} else {
			nchg++;
			snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed),
				 " %s", s->conf.name);
		}
		memcpy(&s->conf, &nc->services[k], sizeof(s->conf));
		dp_policy(s); /* the steering mode may have changed */
		/* latency, byte-counts on/off: for the versions' connections made from now. */
		for (i = 0; i < MAX_VERSIONS; i++)
			if (s->slot[i])
				dp_measure(s->slot[i]);
	}
	services_config_replace(nc);
	free(nc);
	nc = NULL;
	cfg = services_config();
	/* Added services start as at agent start. */
	for (k = 0; k < cfg->nservices; k++) {
		struct service *s;

		if (match[k])
			continue;
		s = service_add(&cfg->services[k], NULL, err, sizeof(err));
		if (s) {
			dp_policy(s);
			if (service_first(s, false, err, sizeof(err)))
				s = NULL;
		}
		snprintf(added + strlen(added), sizeof(added) - strlen(added), " %s%s",
			 cfg->services[k].name, s ? "" : " (failed to start: see the log)");
		if (!s)
			log_warnx("reload: %s: %s", cfg->services[k].name, err);
		else
			nadd++;
	}
	snprintf(msg, msglen, "reloaded: %d added%s, %d removed%s, %d changed%s, %d unchanged",
		 nadd, added, nrem, removed, nchg, changed, nsame);
	log_info("%s", msg);
	return 0;
fail:
	log_warnx("%s", msg);
	if (nc)
		config_free(nc);
	free(nc);
	return -1;
}
