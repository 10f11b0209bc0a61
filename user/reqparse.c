/* SPDX-License-Identifier: MIT */
/*
 * The control protocol's request parser: JSON in, a checked request out, or
 * a one-line error.  Pure: no service lookup, no file, no clock, so that the
 * control fuzzer runs every command through it.  What needs the agent's
 * state (the service exists, the caller may change it, the file is
 * executable) is requests.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reqparse.h"
#include "rollconf.h"

static const char *const cmd_names[RC_COUNT] = {
    [RC_STATUS] = "status",   [RC_RELOAD] = "reload",	  [RC_SHUTDOWN] = "shutdown",
    [RC_DEPLOY] = "deploy",   [RC_ROLLBACK] = "rollback", [RC_ABORT] = "abort",
    [RC_PROMOTE] = "promote", [RC_PAUSE] = "pause",	  [RC_WEIGHT] = "weight",
    [RC_PIN] = "pin",	      [RC_UNPIN] = "unpin",	  [RC_ADOPT] = "adopt",
    [RC_EVENTS] = "events",   [RC_HISTORY] = "history",
};

int request_parse(json_t *req, struct request *r, char *err, size_t errlen)
{
	const char *cmd = NULL;
	json_t *jv;
	int k;

	memset(r, 0, sizeof(*r));
	r->cmd = RC_UNKNOWN;
	if (!json_is_object(req) || json_unpack(req, "{s:s}", "cmd", &cmd)) {
		snprintf(err, errlen, "bad request: expected a JSON object with a \"cmd\" string");
		return -1;
	}
	r->name = cmd;
	jv = json_object_get(req, "service");
	if (jv) {
		if (!json_is_string(jv)) {
			snprintf(err, errlen, "bad request: \"service\" must be a string");
			return -1;
		}
		r->service = json_string_value(jv);
	}
	for (k = 0; k < RC_COUNT; k++)
		if (!strcmp(cmd, cmd_names[k]))
			r->cmd = k;
	r->stop = json_is_true(json_object_get(req, "stop"));
	r->full = json_is_true(json_object_get(req, "full"));
	r->follow = json_is_true(json_object_get(req, "follow"));
	jv = json_object_get(req, "last");
	if (r->cmd == RC_EVENTS && jv) {
		if (!json_is_integer(jv) || json_integer_value(jv) < 0 ||
		    json_integer_value(jv) > 1000000) {
			snprintf(err, errlen, "bad request: \"last\" must be 0..1000000 events");
			return -1;
		}
		r->last = (int)json_integer_value(jv);
	}
	jv = json_object_get(req, "to");
	if (r->cmd == RC_ROLLBACK && jv) {
		if (!json_is_integer(jv) || json_integer_value(jv) < 1 ||
		    json_integer_value(jv) > 1000000000) {
			snprintf(err, errlen,
				 "bad request: \"to\" must be a version number (3 for v3)");
			return -1;
		}
		r->to = (int)json_integer_value(jv);
	}
	return 0;
}

/* max_surge, max_unavailable ("2", "25%") and pause_ms, checked against instances. */
static int request_rolling(json_t *req, const struct service_conf *conf, struct deploy_opts *o,
			   char *err, size_t errlen)
{
	struct roll_amount su = conf->max_surge, un = conf->max_unavail;
	json_t *js = json_object_get(req, "max_surge"),
	       *ju = json_object_get(req, "max_unavailable");
	json_t *jp = json_object_get(req, "pause_ms");
	char msg[200];

	o->pause_ms = conf->pause_ms;
	if ((js || ju || jp) && o->strategy != STRATEGY_ROLLING) {
		snprintf(err, errlen,
			 "deploy: max-surge, max-unavailable and pause belong to "
			 "strategy rolling");
		return -1;
	}
	if (o->strategy != STRATEGY_ROLLING)
		return 0;
	if ((js && (!json_is_string(js) ||
		    roll_amount_parse(json_string_value(js), &su, msg, sizeof(msg)) < 0)) ||
	    (ju && (!json_is_string(ju) ||
		    roll_amount_parse(json_string_value(ju), &un, msg, sizeof(msg)) < 0))) {
		snprintf(err, errlen,
			 "deploy: max_surge and max_unavailable are a count or a "
			 "percentage as a string (\"1\", \"25%%\")");
		return -1;
	}
	if (jp) {
		if (!json_is_integer(jp) || json_integer_value(jp) < 0 ||
		    json_integer_value(jp) > 24 * 3600 * 1000LL) {
			snprintf(err, errlen, "deploy: pause_ms must be 0..86400000");
			return -1;
		}
		o->pause_ms = (unsigned)json_integer_value(jp);
	}
	if (roll_resolve(conf->instances, su, un, &o->max_surge, &o->max_unavail, msg,
			 sizeof(msg)) < 0) {
		snprintf(err, errlen, "deploy: %s: %s", conf->name, msg);
		return -1;
	}
	return 0;
}

/* deploy's "env": ["KEY=VALUE", ...] into env (pointing into req), checked as the CLI does. */
static int request_env(json_t *req, char **env, char *err, size_t errlen)
{
	json_t *je = json_object_get(req, "env"), *a;
	const char *kv[MAX_ENV];
	size_t len[MAX_ENV], i;
	char msg[256];

	env[0] = NULL;
	if (!je)
		return 0;
	if (!json_is_array(je)) {
		snprintf(err, errlen, "deploy: env must be a list of \"KEY=VALUE\" strings");
		return -1;
	}
	if (json_array_size(je) > MAX_ENV) {
		env_list_check(NULL, NULL, MAX_ENV + 1, msg, sizeof(msg));
		snprintf(err, errlen, "deploy: %s", msg);
		return -1;
	}
	json_array_foreach(je, i, a)
	{
		if (!json_is_string(a)) {
			snprintf(err, errlen,
				 "deploy: env must be a list of \"KEY=VALUE\" strings");
			return -1;
		}
		kv[i] = json_string_value(a);
		len[i] = json_string_length(a);
	}
	if (env_list_check(kv, len, (int)json_array_size(je), msg, sizeof(msg))) {
		snprintf(err, errlen, "deploy: %s", msg);
		return -1;
	}
	for (i = 0; i < json_array_size(je); i++)
		env[i] = (char *)kv[i];
	env[i] = NULL;
	return 0;
}

int request_deploy(json_t *req, const struct service_conf *conf, char **args, char **env,
		   struct deploy_opts *o, char *err, size_t errlen)
{
	json_t *argv = json_object_get(req, "argv"), *a, *jv;
	size_t i, n;

	memset(o, 0, sizeof(*o));
	o->strategy = conf->strategy;
	o->bake_ms = conf->bake_ms;
	o->approve = conf->approve;
	args[0] = NULL;
	env[0] = NULL;
	jv = json_object_get(req, "adopt_pid");
	if (jv || conf->adopt) {
		if (!conf->adopt) {
			snprintf(err, errlen,
				 "deploy: %s starts its own versions (exec); --adopt-pid is for "
				 "services with adopt = yes",
				 conf->name);
			return -1;
		}
		if (!json_is_integer(jv) || json_integer_value(jv) < 2 ||
		    json_integer_value(jv) > 0x3fffffff) {
			snprintf(err, errlen,
				 "deploy: %s adopts its versions: give the new server's pid "
				 "(baton deploy %s --adopt-pid PID)",
				 conf->name, conf->name);
			return -1;
		}
		if (argv) {
			snprintf(err, errlen,
				 "deploy: give either a command or --adopt-pid, not both");
			return -1;
		}
		if (json_object_get(req, "env")) {
			snprintf(err, errlen,
				 "deploy: --env is for versions baton starts; an adopted server "
				 "keeps the environment it was started with (leave --env out)");
			return -1;
		}
		o->adopt_pid = (pid_t)json_integer_value(jv);
		goto options;
	}
	if (!json_is_array(argv) || !(n = json_array_size(argv)) || n > MAX_ARGS) {
		snprintf(err, errlen, "deploy needs a command of 1..%d arguments", MAX_ARGS);
		return -1;
	}
	json_array_foreach(argv, i, a)
	{
		if (!json_is_string(a) || json_string_length(a) > 4096 ||
		    strlen(json_string_value(a)) != json_string_length(a)) {
			snprintf(err, errlen,
				 "deploy: every argument must be a string of at most 4096 bytes");
			args[0] = NULL;
			return -1;
		}
		args[i] = (char *)json_string_value(a);
	}
	args[n] = NULL;
	if (args[0][0] != '/') {
		/* The path is the client's: only its printable start is echoed. */
		snprintf(err, errlen, "deploy: %.200s is not an absolute path", args[0]);
		for (char *p = err; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = '?';
		return -1;
	}
	if (request_env(req, env, err, errlen) < 0) {
		args[0] = NULL;
		return -1;
	}
options:
	jv = json_object_get(req, "strategy");
	if (jv) {
		const char *st = json_string_value(jv);

		if (st && !strcmp(st, "canary"))
			o->strategy = STRATEGY_CANARY;
		else if (st && !strcmp(st, "bluegreen"))
			o->strategy = STRATEGY_BLUEGREEN;
		else if (st && !strcmp(st, "rolling"))
			o->strategy = STRATEGY_ROLLING;
		else {
			snprintf(
			    err, errlen,
			    "deploy: strategy must be \"canary\", \"bluegreen\" or \"rolling\"");
			return -1;
		}
	}
	if (request_rolling(req, conf, o, err, errlen) < 0)
		return -1;
	jv = json_object_get(req, "steps");
	if (jv) {
		unsigned prev = 0;

		if (!json_is_array(jv) || !json_array_size(jv) || json_array_size(jv) > MAX_STEPS) {
			snprintf(err, errlen, "deploy: steps must be a list of 1..%d weights",
				 MAX_STEPS);
			return -1;
		}
		json_array_foreach(jv, i, a)
		{
			json_int_t w = json_integer_value(a);

			if (!json_is_integer(a) || w <= (json_int_t)prev || w > WEIGHT_MAX) {
				snprintf(err, errlen,
					 "deploy: steps must be increasing weights in basis "
					 "points, 1..10000");
				return -1;
			}
			o->steps[o->nsteps++] = prev = (unsigned)w;
		}
		if (prev != WEIGHT_MAX) {
			snprintf(err, errlen, "deploy: the last step must be 10000 (100%%)");
			return -1;
		}
	}
	jv = json_object_get(req, "approve");
	if (jv) {
		if (!json_is_boolean(jv)) {
			snprintf(err, errlen, "deploy: approve must be true or false");
			return -1;
		}
		o->approve = json_is_true(jv);
	}
	jv = json_object_get(req, "baseline");
	if (jv && !json_is_boolean(jv)) {
		snprintf(err, errlen, "deploy: baseline must be true or false");
		return -1;
	}
	if (json_is_true(jv) && o->strategy != STRATEGY_CANARY) {
		snprintf(err, errlen,
			 "deploy: --baseline needs --strategy canary (a baseline takes a canary "
			 "step's share; %s has no steps)",
			 o->strategy == STRATEGY_ROLLING ? "rolling" : "bluegreen");
		return -1;
	}
	/* baseline = yes is the canary's default: another strategy asked for goes without. */
	o->baseline = jv ? json_is_true(jv) : conf->baseline && o->strategy == STRATEGY_CANARY;
	if (o->baseline && o->adopt_pid) {
		snprintf(err, errlen,
			 "deploy: %s adopts its versions, which baton cannot start again: no "
			 "--baseline (remove it, or baseline = yes)",
			 conf->name);
		return -1;
	}
	jv = json_object_get(req, "bake_ms");
	if (jv) {
		if (!json_is_integer(jv) || json_integer_value(jv) < 0 ||
		    json_integer_value(jv) > 7 * 24 * 3600 * 1000LL) {
			snprintf(err, errlen, "deploy: bake_ms must be 0..604800000");
			return -1;
		}
		o->bake_ms = (unsigned)json_integer_value(jv);
	}
	return 0;
}

int request_weights(json_t *req, struct fsm_event *e, char *why, size_t whylen, char *err,
		    size_t errlen)
{
	json_t *ws = json_object_get(req, "weights"), *jv;
	const char *key;

	if (!json_is_object(ws) || !json_object_size(ws)) {
		snprintf(err, errlen,
			 "weight needs {\"weights\": {\"VERSION\": BASIS_POINTS, ...}}");
		return -1;
	}
	json_object_foreach(ws, key, jv)
	{
		char *end;
		long num = strtol(key, &end, 10);

		if (*end || !*key || num < 0 || num > 0x7fffffff || !json_is_integer(jv) ||
		    json_integer_value(jv) < 0 || json_integer_value(jv) > WEIGHT_MAX) {
			snprintf(why, whylen,
				 "weight: \"%.40s\": expected a version number and 0..10000 basis "
				 "points",
				 key);
			for (char *p = why; *p; p++)
				if ((unsigned char)*p < 0x20)
					*p = '?';
			e->why = why;
			return 0;
		}
		if (e->nweights == FSM_MAX_WEIGHTS) {
			snprintf(why, whylen, "weight: at most %d versions take weights",
				 FSM_MAX_WEIGHTS);
			e->why = why;
			return 0;
		}
		e->wnum[e->nweights] = (int)num;
		e->wbp[e->nweights++] = (int)json_integer_value(jv);
	}
	return 0;
}

int request_pin(json_t *req, bool add, struct steer_cidr *cidr, long long *num, char *err,
		size_t errlen)
{
	const char *text = json_string_value(json_object_get(req, "cidr"));
	json_t *jv = json_object_get(req, "version");
	char perr[256];

	if (!text || steer_cidr_parse(text, cidr, perr, sizeof(perr))) {
		snprintf(err, errlen, "%s: %s", add ? "pin" : "unpin",
			 text ? perr : "needs a client CIDR such as 10.1.0.0/16 or 2001:db8::/32");
		return -1;
	}
	*num = json_is_integer(jv) ? (long long)json_integer_value(jv) : 0;
	return 0;
}

int request_adopt(json_t *req, const struct service_conf *conf, pid_t *pid, char *err,
		  size_t errlen)
{
	json_t *jp = json_object_get(req, "pid");

	if (!conf->adopt) {
		snprintf(err, errlen,
			 "adopt: %s starts its own versions (exec); set adopt = yes in "
			 "[service %s] to adopt servers started outside baton",
			 conf->name, conf->name);
		return -1;
	}
	if (!json_is_integer(jp) || json_integer_value(jp) < 2 ||
	    json_integer_value(jp) > 0x3fffffff) {
		snprintf(err, errlen, "adopt needs the server's pid (baton adopt %s --pid PID)",
			 conf->name);
		return -1;
	}
	*pid = (pid_t)json_integer_value(jp);
	return 0;
}
