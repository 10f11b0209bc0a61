/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness: one control-socket request line.  The agent cuts its
 * input at the first newline and hands the line to json_loadb(); the strings
 * of a request then reach the validators below (deploy steps, weights, pins,
 * durations, listen addresses, signals, service names, commands).  Each
 * validator gets the raw line and every string (keys too) of the parsed
 * request, and must either accept a value in its documented range or reject
 * it with a one-line message.  The whole request also goes through the
 * request parser (reqparse.c) for every command.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>
#include <linux/types.h>

#include "config.h"
#include "control.h"
#include "fuzz.h"
#include "reqparse.h"
#include "steer_user.h"

static void check_cidr(const char *s)
{
	struct steer_cidr c;
	char err[256];
	int rc, i, bits;

	memset(err, 0, sizeof(err));
	rc = steer_cidr_parse(s, &c, err, sizeof(err));
	fuzz_check_err("steer_cidr_parse", rc, err, sizeof(err));
	if (rc)
		return;
	FUZZ_CHECK(c.family == AF_INET || c.family == AF_INET6, "family %d", c.family);
	bits = c.family == AF_INET ? 32 : 128;
	FUZZ_CHECK(c.len >= 0 && c.len <= bits, "%s: /%d", s, c.len);
	/* Host bits are zero, and so is everything past an IPv4 address. */
	for (i = c.len; i < 128; i++)
		FUZZ_CHECK(!(c.addr[i / 8] & (0x80 >> (i % 8))), "%s: bit %d set", s, i);
}

static void check_string(const char *s)
{
	unsigned steps[MAX_STEPS + 1], bp, ms;
	char *argv[MAX_ARGS + 1];
	struct listen_addr la;
	char err[256];
	int rc, i, sig;

	memset(err, 0, sizeof(err));
	rc = parse_steps(s, steps, err, sizeof(err));
	fuzz_check_err("parse_steps", rc, err, sizeof(err));
	FUZZ_CHECK(rc == -1 || (rc >= 1 && rc <= MAX_STEPS), "parse_steps returned %d", rc);
	for (i = 0; i < rc; i++)
		FUZZ_CHECK(steps[i] > (i ? steps[i - 1] : 0) && steps[i] <= WEIGHT_MAX,
			   "\"%s\": step %d is %u", s, i, steps[i]);
	if (rc > 0)
		FUZZ_CHECK(steps[rc - 1] == WEIGHT_MAX, "\"%s\": last step %u", s, steps[rc - 1]);

	memset(err, 0, sizeof(err));
	rc = parse_percent_bp(s, &bp, err, sizeof(err));
	fuzz_check_err("parse_percent_bp", rc, err, sizeof(err));
	if (!rc)
		FUZZ_CHECK(bp <= WEIGHT_MAX, "\"%s\": %u bp", s, bp);

	memset(err, 0, sizeof(err));
	rc = parse_duration_ms(s, &ms, err, sizeof(err));
	fuzz_check_err("parse_duration_ms", rc, err, sizeof(err));

	memset(err, 0, sizeof(err));
	rc = parse_listen(s, &la, err, sizeof(err));
	fuzz_check_err("parse_listen", rc, err, sizeof(err));
	if (!rc) {
		FUZZ_CHECK(la.ss.ss_family == AF_INET || la.ss.ss_family == AF_INET6, "family %d",
			   la.ss.ss_family);
		FUZZ_CHECK(la.len > 0 && la.len <= sizeof(la.ss), "len %u", (unsigned)la.len);
		FUZZ_CHECK(memchr(la.text, '\0', sizeof(la.text)), "text not terminated");
	}

	memset(err, 0, sizeof(err));
	rc = parse_signal(s, &sig, err, sizeof(err));
	fuzz_check_err("parse_signal", rc, err, sizeof(err));
	if (!rc)
		FUZZ_CHECK(sig > 0 && sig < 65, "\"%s\": signal %d", s, sig);

	memset(err, 0, sizeof(err));
	rc = parse_service_name(s, err, sizeof(err));
	fuzz_check_err("parse_service_name", rc, err, sizeof(err));
	if (!rc)
		FUZZ_CHECK(strlen(s) < NAME_MAX_LEN, "name of %zu bytes accepted", strlen(s));

	memset(err, 0, sizeof(err));
	rc = split_command(s, argv, MAX_ARGS, err, sizeof(err));
	fuzz_check_err("split_command", rc, err, sizeof(err));
	FUZZ_CHECK(rc == -1 || (rc >= 1 && rc <= MAX_ARGS), "split_command returned %d", rc);
	if (rc > 0) {
		FUZZ_CHECK(!argv[rc], "argv not NULL-terminated");
		free_argv(argv);
	}

	check_cidr(s);
}

/*
 * The request parser, as requests.c runs it: the envelope, then the fields
 * of every command, for a service that starts its versions and one that
 * adopts them.  Whatever it accepts is in its documented range.
 */
static void check_request(json_t *req)
{
	static struct service_conf confs[2];
	char err[512], why[200], *args[MAX_ARGS + 1], *env[MAX_ENV + 1];
	struct deploy_opts o;
	struct steer_cidr cidr;
	struct request r;
	long long num;
	pid_t pid;
	int rc, k, i;

	memset(err, 0, sizeof(err));
	rc = request_parse(req, &r, err, sizeof(err));
	fuzz_check_err("request_parse", rc, err, sizeof(err));
	if (rc)
		return;
	FUZZ_CHECK(r.name && r.cmd <= RC_UNKNOWN, "command %d", r.cmd);
	for (k = 0; k < 2; k++) {
		struct service_conf *c = &confs[k];
		struct fsm_event e = {.type = FE_WEIGHT};

		snprintf(c->name, sizeof(c->name), "web");
		c->adopt = k;
		c->bake_ms = 1000;
		memset(err, 0, sizeof(err));
		rc = request_deploy(req, c, args, env, &o, err, sizeof(err));
		fuzz_check_err("request_deploy", rc, err, sizeof(err));
		if (!rc) {
			FUZZ_CHECK(k ? o.adopt_pid >= 2 : args[0] && args[0][0] == '/',
				   "deploy accepted without a command or pid");
			FUZZ_CHECK(o.nsteps >= 0 && o.nsteps <= MAX_STEPS, "%d steps", o.nsteps);
			for (i = 0; i < o.nsteps; i++)
				FUZZ_CHECK(o.steps[i] > (i ? o.steps[i - 1] : 0) &&
					       o.steps[i] <= WEIGHT_MAX,
					   "step %d is %u", i, o.steps[i]);
			if (o.nsteps)
				FUZZ_CHECK(o.steps[o.nsteps - 1] == WEIGHT_MAX, "last step %u",
					   o.steps[o.nsteps - 1]);
			FUZZ_CHECK(o.bake_ms <= 7 * 24 * 3600 * 1000U, "bake %u", o.bake_ms);
			for (i = 0; env[i]; i++)
				FUZZ_CHECK(i < MAX_ENV && strchr(env[i], '=') > env[i] &&
					       strlen(env[i]) <= DEPLOY_ENV_LEN,
					   "env entry %d", i);
		}
		memset(err, 0, sizeof(err));
		rc = request_adopt(req, c, &pid, err, sizeof(err));
		fuzz_check_err("request_adopt", rc, err, sizeof(err));
		if (!rc)
			FUZZ_CHECK(pid >= 2 && pid <= 0x3fffffff, "pid %d", (int)pid);
		memset(err, 0, sizeof(err));
		memset(why, 0, sizeof(why));
		rc = request_weights(req, &e, why, sizeof(why), err, sizeof(err));
		fuzz_check_err("request_weights", rc, err, sizeof(err));
		if (!rc && e.why)
			fuzz_check_err("request_weights (entry)", -1, why, sizeof(why));
		for (i = 0; !rc && i < e.nweights; i++)
			FUZZ_CHECK(e.wbp[i] >= 0 && e.wbp[i] <= WEIGHT_MAX && e.wnum[i] >= 0,
				   "v%d gets %d bp", e.wnum[i], e.wbp[i]);
		memset(err, 0, sizeof(err));
		rc = request_pin(req, k, &cidr, &num, err, sizeof(err));
		fuzz_check_err("request_pin", rc, err, sizeof(err));
	}
}

static void walk(json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_STRING:
		check_string(json_string_value(j));
		break;
	case JSON_ARRAY:
		json_array_foreach(j, i, v) walk(v);
		break;
	case JSON_OBJECT:
		json_object_foreach(j, key, v)
		{
			check_string(key);
			walk(v);
		}
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t len = nl ? (size_t)(nl - (const char *)data) : size;
	json_error_t jerr;
	json_t *req;
	char *line;

	/* The agent never parses more than one buffer of it. */
	if (len > CTL_MAX_LINE)
		return 0;
	req = json_loadb((const char *)data, len, 0, &jerr);
	if (req) {
		check_request(req);
		walk(req);
		json_decref(req);
	} else {
		FUZZ_CHECK(memchr(jerr.text, '\0', sizeof(jerr.text)), "jansson error text");
	}
	line = strndup((const char *)data, len);
	if (!line)
		abort();
	check_string(line);
	free(line);
	return 0;
}
