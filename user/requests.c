/* SPDX-License-Identifier: MIT */
/*
 * The control protocol's requests: each JSON request parsed and checked
 * (reqparse.c; a bad one gets a one-line error and changes nothing), then
 * handed to the state machine, the data plane (pins) or the agent (reload,
 * shutdown).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adopt.h"
#include "agent.h"
#include "ctlserver.h"
#include "dp.h"
#include "events.h"
#include "log.h"
#include "loop.h"
#include "reload.h"
#include "reqparse.h"
#include "requests.h"
#include "exec.h"
#include "history.h"
#include "services.h"
#include "status.h"

static void req_deploy(struct client *c, struct service *s, json_t *req)
{
	char *args[MAX_ARGS + 1], *env[MAX_ENV + 1], err[512];
	struct deploy_opts o;

	if (request_deploy(req, &s->conf, args, env, &o, err, sizeof(err))) {
		reply_err(c, "%s", err);
		return;
	}
	if (!o.adopt_pid && access(args[0], X_OK) < 0) {
		reply_err(c, "deploy: %.200s: %s", args[0], strerror(errno));
		return;
	}
	if (deploy(s, args, env, &o, c, err, sizeof(err)))
		reply_err(c, "%s", err);
}

/* {"weights": {"2": 1000}}: version numbers to basis points; the rules check the rest. */
static void req_weight(struct client *c, struct service *s, json_t *req)
{
	struct fsm_event e = {.type = FE_WEIGHT, .c = c};
	char why[200], err[200];

	if (request_weights(req, &e, why, sizeof(why), err, sizeof(err))) {
		reply_err(c, "%s", err);
		return;
	}
	fsm_feed(s, &e);
}

static void req_pin(struct client *c, struct service *s, json_t *req, bool add)
{
	struct steer_cidr cidr;
	struct version *v = NULL;
	char err[400], buf[64];
	long long num;
	int r;

	if (request_pin(req, add, &cidr, &num, err, sizeof(err))) {
		reply_err(c, "%s", err);
		return;
	}
	steer_cidr_format(&cidr, buf, sizeof(buf));
	if (!add) {
		r = dp_pin_del(s, &cidr);
		if (r == -ENOENT)
			reply_err(c, "unpin: %s has no pin for %s (baton status %s lists them)",
				  s->conf.name, buf, s->conf.name);
		else if (r)
			reply_err(c, "unpin: %s", strerror(-r));
		else
			reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", "pin removed"));
		if (!r)
			log_info("%s: unpinned %s", s->conf.name, buf);
		return;
	}
	if (num)
		v = version_by_num(s, num);
	if (!v || v->phase == VP_ABORTING) {
		reply_err(c, "pin: %s has no running v%lld (baton status %s lists its versions)",
			  s->conf.name, num, s->conf.name);
		return;
	}
	if (v->phase != VP_ACTIVE && v->phase != VP_STARTING) {
		/* It takes no new connections again, so a pin to it would never apply. */
		reply_err(c,
			  "pin: %s is draining and takes no new connections (pin to an active "
			  "version; baton rollback %s gives traffic back to it while it can)",
			  vname(v), s->conf.name);
		return;
	}
	r = dp_pin_set(s, &cidr, v->num);
	if (r) {
		reply_err(c, "pin: %s%s", strerror(-r),
			  r == -E2BIG || r == -ENOSPC ? " (too many pins; remove some)" : "");
		return;
	}
	log_info("%s: clients in %s pinned to v%d", s->conf.name, buf, v->num);
	snprintf(err, sizeof(err), "clients in %s go to v%d%s", buf, v->num,
		 v->phase == VP_ACTIVE ? "" : " once it is active (until then: by weight)");
	reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", err));
}

void handle_request(struct client *c, json_t *req)
{
	struct fsm_event e = {.c = c};
	struct service *s = NULL;
	struct request r;
	char err[512];
	pid_t pid;

	if (request_parse(req, &r, err, sizeof(err))) {
		reply_err(c, "%s", err);
		return;
	}
	if (r.service)
		s = service_find(r.service);
	if (r.cmd == RC_STATUS) {
		json_t *arr = json_array();
		struct service *t;
		int i;

		if (r.service && !s) {
			json_decref(arr);
			reply_err(c, "unknown service %s (baton status lists them)", r.service);
			return;
		}
		for (i = 0; (t = service_at(i)); i++)
			if (!t->gone && (!s || s == t))
				json_array_append_new(arr, status_json(t));
		reply(c, json_pack("{s:b, s:o, s:{s:f}}", "ok", 1, "services", arr, "agent",
				   "loop_turn_cpu_max_ms", loop_turn_max_us() / 1000.0));
		return;
	}
	if (r.cmd == RC_HISTORY) {
		/* Read-only, as status. */
		if (!r.service)
			reply_err(c, "history needs a service name (baton history SERVICE)");
		else if (!s)
			reply_err(c, "unknown service %s (baton status lists them)", r.service);
		else
			reply(c, json_pack("{s:b, s:s, s:i, s:o}", "ok", 1, "service", s->conf.name,
					   "keep_versions", s->conf.keep_versions, "versions",
					   history_json(s)));
		return;
	}
	if (r.cmd == RC_EVENTS) {
		/* Read-only, as status; a service removed since keeps its events. */
		if (r.service && !s && !events_has(r.service))
			reply_err(c, "unknown service %s (baton status lists them)", r.service);
		else
			events_request(c, r.service, r.last, r.follow);
		return;
	}
	if (c->readonly) {
		log_warnx("control: refused \"%s\" from uid %d pid %d (group %s is read-only)",
			  r.name, (int)c->uid, (int)c->pid, services_config()->agent.control_group);
		reply_err(c,
			  "permission denied: %s changes state; members of group %s may only use "
			  "status, watch and events (run it as root)",
			  r.name, services_config()->agent.control_group);
		return;
	}
	switch (r.cmd) {
	case RC_RELOAD: {
		char msg[1024];

		if (reload(msg, sizeof(msg)))
			reply_err(c, "%s", msg);
		else
			reply_ok(c, msg);
		return;
	}
	case RC_SHUTDOWN:
		agent_shutdown(c, r.stop);
		return;
	case RC_UNKNOWN:
		reply_err(c,
			  "unknown command \"%s\" (known: status, deploy, rollback, abort, "
			  "promote, pause, weight, pin, unpin, adopt, events, history, reload, "
			  "shutdown)",
			  r.name);
		return;
	default:
		break;
	}
	if (!r.service) {
		reply_err(c, "%s needs a service name", r.name);
		return;
	}
	if (!s) {
		reply_err(c, "unknown service %s (baton status lists them)", r.service);
		return;
	}
	switch (r.cmd) {
	case RC_DEPLOY:
		req_deploy(c, s, req);
		return;
	case RC_WEIGHT:
		req_weight(c, s, req);
		return;
	case RC_PIN:
	case RC_UNPIN:
		req_pin(c, s, req, r.cmd == RC_PIN);
		return;
	case RC_ADOPT:
		if (request_adopt(req, &s->conf, &pid, err, sizeof(err)))
			reply_err(c, "%s", err);
		else if (adopt_first(s, pid, c, err, sizeof(err)))
			reply_err(c, "adopt: %s", err);
		return;
	case RC_ROLLBACK:
		e.type = FE_ROLLBACK;
		e.to = r.to;
		break;
	case RC_ABORT:
		e.type = FE_ABORT;
		break;
	case RC_PAUSE:
		e.type = FE_PAUSE;
		break;
	case RC_PROMOTE:
		e.type = FE_PROMOTE;
		e.full = r.full;
		break;
	default:
		return;
	}
	fsm_feed(s, &e);
}
