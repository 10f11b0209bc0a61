/* SPDX-License-Identifier: MIT */
/*
 * The control protocol's requests: each JSON request checked field by field
 * (a bad one gets a one-line error and changes nothing), then handed to
 * the rollout, the data plane (pins) or the agent (reload, shutdown).
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
#include "log.h"
#include "reload.h"
#include "requests.h"
#include "exec.h"
#include "services.h"
#include "status.h"

static void req_deploy(struct client *c, struct service *s, json_t *req)
{
	json_t *argv = json_object_get(req, "argv"), *a, *jv;
	struct deploy_opts o = {.strategy = s->conf.strategy, .bake_ms = s->conf.bake_ms};
	char *args[MAX_ARGS + 1] = {NULL}, err[512];
	size_t i, n;

	jv = json_object_get(req, "adopt_pid");
	if (jv || s->conf.adopt) {
		if (!s->conf.adopt) {
			reply_err(c,
				  "deploy: %s starts its own versions (exec); --adopt-pid is for "
				  "services with adopt = yes",
				  s->conf.name);
			return;
		}
		if (!json_is_integer(jv) || json_integer_value(jv) < 2 ||
		    json_integer_value(jv) > 0x3fffffff) {
			reply_err(c,
				  "deploy: %s adopts its versions: give the new server's pid "
				  "(baton deploy %s --adopt-pid PID)",
				  s->conf.name, s->conf.name);
			return;
		}
		if (argv) {
			reply_err(c, "deploy: give either a command or --adopt-pid, not both");
			return;
		}
		o.adopt_pid = (pid_t)json_integer_value(jv);
		goto options;
	}
	if (!json_is_array(argv) || !(n = json_array_size(argv)) || n > MAX_ARGS) {
		reply_err(c, "deploy needs a command of 1..%d arguments", MAX_ARGS);
		return;
	}
	json_array_foreach(argv, i, a)
	{
		if (!json_is_string(a) || json_string_length(a) > 4096) {
			reply_err(c,
				  "deploy: every argument must be a string of at most 4096 bytes");
			return;
		}
		args[i] = (char *)json_string_value(a);
	}
	args[n] = NULL;
	if (args[0][0] != '/') {
		reply_err(c, "deploy: %s is not an absolute path", args[0]);
		return;
	}
	if (access(args[0], X_OK) < 0) {
		reply_err(c, "deploy: %s: %s", args[0], strerror(errno));
		return;
	}
options:
	jv = json_object_get(req, "strategy");
	if (jv) {
		const char *st = json_string_value(jv);

		if (st && !strcmp(st, "canary"))
			o.strategy = STRATEGY_CANARY;
		else if (st && !strcmp(st, "bluegreen"))
			o.strategy = STRATEGY_BLUEGREEN;
		else {
			reply_err(c, "deploy: strategy must be \"canary\" or \"bluegreen\"");
			return;
		}
	}
	jv = json_object_get(req, "steps");
	if (jv) {
		unsigned prev = 0;

		if (!json_is_array(jv) || !json_array_size(jv) || json_array_size(jv) > MAX_STEPS) {
			reply_err(c, "deploy: steps must be a list of 1..%d weights", MAX_STEPS);
			return;
		}
		json_array_foreach(jv, i, a)
		{
			json_int_t w = json_integer_value(a);

			if (!json_is_integer(a) || w <= (json_int_t)prev || w > WEIGHT_MAX) {
				reply_err(c, "deploy: steps must be increasing weights in basis "
					     "points, 1..10000");
				return;
			}
			o.steps[o.nsteps++] = prev = (unsigned)w;
		}
		if (prev != WEIGHT_MAX) {
			reply_err(c, "deploy: the last step must be 10000 (100%%)");
			return;
		}
	}
	jv = json_object_get(req, "bake_ms");
	if (jv) {
		if (!json_is_integer(jv) || json_integer_value(jv) < 0 ||
		    json_integer_value(jv) > 7 * 24 * 3600 * 1000LL) {
			reply_err(c, "deploy: bake_ms must be 0..604800000");
			return;
		}
		o.bake_ms = (unsigned)json_integer_value(jv);
	}
	if (deploy(s, args, &o, c, err, sizeof(err)))
		reply_err(c, "%s", err);
}

static void req_promote(struct client *c, struct service *s, json_t *req)
{
	struct fsm_event e = {.type = FE_PROMOTE, .c = c};

	e.full = json_is_true(json_object_get(req, "full"));
	fsm_feed(s, &e);
}

/* {"weights": {"2": 1000}}: version numbers to basis points; the rules check the rest. */
static void req_weight(struct client *c, struct service *s, json_t *req)
{
	json_t *ws = json_object_get(req, "weights"), *jv;
	struct fsm_event e = {.type = FE_WEIGHT, .c = c};
	char why[200];
	const char *key;

	if (!json_is_object(ws) || !json_object_size(ws)) {
		reply_err(c, "weight needs {\"weights\": {\"VERSION\": BASIS_POINTS, ...}}");
		return;
	}
	json_object_foreach(ws, key, jv)
	{
		char *end;
		long num = strtol(key, &end, 10);

		if (*end || !*key || !json_is_integer(jv) || json_integer_value(jv) < 0 ||
		    json_integer_value(jv) > WEIGHT_MAX) {
			snprintf(why, sizeof(why),
				 "weight: \"%s\": expected a version number and 0..10000 basis "
				 "points",
				 key);
			e.why = why;
			break;
		}
		if (e.nweights == FSM_MAX_WEIGHTS) {
			snprintf(why, sizeof(why), "weight: at most %d versions take weights",
				 FSM_MAX_WEIGHTS);
			e.why = why;
			break;
		}
		e.wnum[e.nweights] = (int)num;
		e.wbp[e.nweights++] = (int)json_integer_value(jv);
	}
	fsm_feed(s, &e);
}

static void req_pin(struct client *c, struct service *s, json_t *req, bool add)
{
	const char *text = json_string_value(json_object_get(req, "cidr"));
	json_t *jv = json_object_get(req, "version");
	struct steer_cidr cidr;
	char err[256], buf[64];
	struct version *v = NULL;
	int r;

	if (!text || steer_cidr_parse(text, &cidr, err, sizeof(err))) {
		reply_err(c, "%s: %s", add ? "pin" : "unpin",
			  text ? err : "needs a client CIDR such as 10.1.0.0/16 or 2001:db8::/32");
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
	if (json_is_integer(jv))
		v = version_by_num(s, json_integer_value(jv));
	if (!v || v->phase == VP_ABORTING) {
		reply_err(c, "pin: %s has no running v%lld (baton status %s lists its versions)",
			  s->conf.name, json_is_integer(jv) ? (long long)json_integer_value(jv) : 0,
			  s->conf.name);
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
	const char *cmd = NULL, *name = NULL;
	struct service *s = NULL;
	char err[512];
	json_t *jv;

	if (!json_is_object(req) || json_unpack(req, "{s:s}", "cmd", &cmd)) {
		reply_err(c, "bad request: expected a JSON object with a \"cmd\" string");
		return;
	}
	jv = json_object_get(req, "service");
	if (jv) {
		if (!json_is_string(jv)) {
			reply_err(c, "bad request: \"service\" must be a string");
			return;
		}
		name = json_string_value(jv);
		s = service_find(name);
	}
	if (!strcmp(cmd, "status")) {
		json_t *arr = json_array();
		struct service *t;
		int i;

		if (name && !s) {
			json_decref(arr);
			reply_err(c, "unknown service %s (baton status lists them)", name);
			return;
		}
		for (i = 0; (t = service_at(i)); i++)
			if (!t->gone && (!s || s == t))
				json_array_append_new(arr, status_json(t));
		reply(c, json_pack("{s:b, s:o}", "ok", 1, "services", arr));
		return;
	}
	if (c->readonly) {
		log_warnx("control: refused \"%s\" from uid %d pid %d (group %s is read-only)", cmd,
			  (int)c->uid, (int)c->pid, services_config()->agent.control_group);
		reply_err(c,
			  "permission denied: %s changes state; members of group %s may only use "
			  "status and watch (run it as root)",
			  cmd, services_config()->agent.control_group);
		return;
	}
	if (!strcmp(cmd, "reload")) {
		char msg[1024];

		if (reload(msg, sizeof(msg)))
			reply_err(c, "%s", msg);
		else
			reply(c, json_pack("{s:b, s:s}", "ok", 1, "message", msg));
		return;
	}
	if (!strcmp(cmd, "shutdown")) {
		agent_shutdown(c, json_is_true(json_object_get(req, "stop")));
		return;
	}
	{
		static const char *const known[] = {"deploy",  "rollback", "abort",
						    "promote", "pause",	   "weight",
						    "pin",     "unpin",	   "adopt"};
		size_t k;

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (!strcmp(cmd, known[k]))
				break;
		if (k == sizeof(known) / sizeof(known[0])) {
			reply_err(c,
				  "unknown command \"%s\" (known: status, deploy, rollback, abort, "
				  "promote, pause, weight, pin, unpin, adopt, reload, shutdown)",
				  cmd);
			return;
		}
	}
	if (!name) {
		reply_err(c, "%s needs a service name", cmd);
		return;
	}
	if (!s) {
		reply_err(c, "unknown service %s (baton status lists them)", name);
		return;
	}
	if (!strcmp(cmd, "rollback")) {
		struct fsm_event e = {.type = FE_ROLLBACK, .c = c};

		fsm_feed(s, &e);
	} else if (!strcmp(cmd, "deploy")) {
		req_deploy(c, s, req);
	} else if (!strcmp(cmd, "abort")) {
		struct fsm_event e = {.type = FE_ABORT, .c = c};

		fsm_feed(s, &e);
	} else if (!strcmp(cmd, "promote")) {
		req_promote(c, s, req);
	} else if (!strcmp(cmd, "pause")) {
		struct fsm_event e = {.type = FE_PAUSE, .c = c};

		fsm_feed(s, &e);
	} else if (!strcmp(cmd, "weight")) {
		req_weight(c, s, req);
	} else if (!strcmp(cmd, "pin")) {
		req_pin(c, s, req, true);
	} else if (!strcmp(cmd, "adopt")) {
		json_t *jp = json_object_get(req, "pid");

		if (!s->conf.adopt)
			reply_err(c,
				  "adopt: %s starts its own versions (exec); set adopt = yes in "
				  "[service %s] to adopt servers started outside baton",
				  s->conf.name, s->conf.name);
		else if (!json_is_integer(jp) || json_integer_value(jp) < 2 ||
			 json_integer_value(jp) > 0x3fffffff)
			reply_err(c, "adopt needs the server's pid (baton adopt %s --pid PID)",
				  s->conf.name);
		else if (adopt_first(s, (pid_t)json_integer_value(jp), c, err, sizeof(err)))
			reply_err(c, "adopt: %s", err);
	} else {
		req_pin(c, s, req, false);
	}
}
