/* SPDX-License-Identifier: MIT */
/* The CLI: each command is a client of the agent's control socket. */
#include <errno.h>
#include <getopt.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "cli.h"
#include "config.h"
#include "control.h"
#include "rollconf.h"

/* A string field of the agent's reply, "" when it is missing or not a string. */
static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

int cmd_agent(int argc, char **argv)
{
	struct agent_opts o = {.config = DEFAULT_CONFIG};
	int c;

	optind = 1;
	while ((c = getopt(argc, argv, "+df:nvh")) != -1) {
		switch (c) {
		case 'd':
			o.foreground = 1;
			break;
		case 'f':
			o.config = optarg;
			break;
		case 'n':
			o.check_only = 1;
			break;
		case 'v':
			o.verbose++;
			break;
		case 'h':
			return cmd_help(1, (char *[]){"agent"});
		default:
			return cmd_usage("agent");
		}
	}
	if (optind != argc) {
		fprintf(stderr, "baton agent: unexpected argument \"%s\"\n", argv[optind]);
		return cmd_usage("agent");
	}
	return agent_main(&o);
}

/* Common options of the client commands: -s SOCKET, --json, --stop, a service. */
struct client_opts {
	const char *control;
	const char *service;
	int json;
	int stop;
	double interval;
	long count;
	int max_args; /* positional arguments after the service this command takes */
	char *args[4];
	int nargs;
	int deploy_opts;      /* --strategy, --steps, --bake allowed */
	const char *strategy; /* as given */
	const char *steps;
	const char *bake;
	const char *max_surge, *max_unavail, *pause; /* --strategy rolling */
	int full;
	int approve;		      /* deploy --approve */
	int baseline;		      /* deploy --baseline */
	long pid;		      /* adopt --pid, deploy --adopt-pid */
	const char *env[MAX_ENV + 1]; /* deploy --env, as given (nenv may be more) */
	int nenv;
};

/*
 * Parse options anywhere among argv[0..argc) (options and the service may
 * come in any order).  want_service: 0 none, 1 optional, 2 required.
 */
static int parse_client(const char *name, int argc, char **argv, struct client_opts *o,
			int want_service)
{
	/* clang-format off */
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"stop", no_argument, NULL, 'S'},
					   {"interval", required_argument, NULL, 'n'},
					   {"count", required_argument, NULL, 'c'},
					   {"control", required_argument, NULL, 's'},
					   {"help", no_argument, NULL, 'h'},
					   {"strategy", required_argument, NULL, 'T'},
					   {"steps", required_argument, NULL, 'P'},
					   {"bake", required_argument, NULL, 'B'},
					   {"full", no_argument, NULL, 'F'},
					   {"max-surge", required_argument, NULL, 'U'},
					   {"max-unavailable", required_argument, NULL, 'V'},
					   {"pause", required_argument, NULL, 'W'},
					   {"pid", required_argument, NULL, 'p'},
					   {"adopt-pid", required_argument, NULL, 'A'},
					   {"approve", no_argument, NULL, 'Y'},
					   {"env", required_argument, NULL, 'E'},
					   {"baseline", no_argument, NULL, 'L'},
					   {NULL, 0, NULL, 0}};
	/* clang-format on */
	char err[256];
	int c;

	o->control = getenv("BATON_CONTROL") ? getenv("BATON_CONTROL") : DEFAULT_CONTROL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:hn:", lo, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'n':
			o->interval = strtod(optarg, &end);
			if (*end || !(o->interval >= 0.1 && o->interval <= 3600)) {
				fprintf(stderr,
					"baton %s: -n takes seconds from 0.1 to 3600, not \"%s\"\n",
					name, optarg);
				return 2;
			}
			break;
		case 'c':
			o->count = strtol(optarg, &end, 10);
			if (*end || o->count < 1 || o->count > 1000000) {
				fprintf(stderr, "baton %s: --count takes 1..1000000, not \"%s\"\n",
					name, optarg);
				return 2;
			}
			break;
		case 'j':
			o->json = 1;
			break;
		case 'S':
			o->stop = 1;
			break;
		case 's':
			o->control = optarg;
			break;
		case 'U':
		case 'V':
		case 'W':
			if (!o->deploy_opts) {
				fprintf(stderr,
					"baton %s: --max-surge, --max-unavailable and --pause are "
					"options of deploy\n",
					name);
				return cmd_usage(name);
			}
			*(c == 'U'   ? &o->max_surge
			  : c == 'V' ? &o->max_unavail
				     : &o->pause) = optarg;
			break;
		case 'T':
		case 'P':
		case 'B':
			if (!o->deploy_opts) {
				fprintf(stderr,
					"baton %s: --strategy, --steps and --bake are options "
					"of deploy\n",
					name);
				return cmd_usage(name);
			}
			if (c == 'T')
				o->strategy = optarg;
			else if (c == 'P')
				o->steps = optarg;
			else
				o->bake = optarg;
			break;
		case 'p':
		case 'A':
			if (strcmp(name, c == 'p' ? "adopt" : "deploy")) {
				fprintf(stderr, "baton %s: %s is an option of %s\n", name,
					c == 'p' ? "--pid" : "--adopt-pid",
					c == 'p' ? "adopt" : "deploy");
				return cmd_usage(name);
			}
			o->pid = strtol(optarg, &end, 10);
			if (*end || o->pid < 2 || o->pid > 0x3fffffff) {
				fprintf(stderr, "baton %s: %s takes a process id, not \"%s\"\n",
					name, c == 'p' ? "--pid" : "--adopt-pid", optarg);
				return 2;
			}
			break;
		case 'Y':
		case 'E':
			if (!o->deploy_opts) {
				fprintf(stderr, "baton %s: %s is an option of deploy\n", name,
					c == 'Y' ? "--approve" : "--env");
				return cmd_usage(name);
			}
			if (c == 'Y')
				o->approve = 1;
			else if (o->nenv++ < MAX_ENV)
				o->env[o->nenv - 1] = optarg;
			break;
		case 'L':
			if (!o->deploy_opts) {
				fprintf(stderr, "baton %s: --baseline is an option of deploy\n",
					name);
				return cmd_usage(name);
			}
			o->baseline = 1;
			break;
		case 'F':
			if (strcmp(name, "promote")) {
				fprintf(stderr, "baton %s: --full is an option of promote\n", name);
				return cmd_usage(name);
			}
			o->full = 1;
			break;
		case 'h':
			cmd_help(1, (char *[]){(char *)name});
			exit(0);
		default:
			return cmd_usage(name);
		}
	}
	if (optind < argc && want_service) {
		o->service = argv[optind++];
		if (parse_service_name(o->service, err, sizeof(err))) {
			fprintf(stderr, "baton %s: %s\n", name, err);
			return 2;
		}
	}
	while (optind < argc && o->nargs < o->max_args)
		o->args[o->nargs++] = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "baton %s: unexpected argument \"%s\"\n", name, argv[optind]);
		return cmd_usage(name);
	}
	if (want_service == 2 && !o->service) {
		fprintf(stderr, "baton %s: which service? (see: baton status)\n", name);
		return cmd_usage(name);
	}
	/* status and watch may be open to a control-group; the agent decides. */
	if (geteuid() != 0 && strcmp(name, "status") && strcmp(name, "watch")) {
		fprintf(stderr,
			"baton: must run as root to talk to the agent (sudo baton %s ...)\n", name);
		return 1;
	}
	return 0;
}

/*
 * Send a request, print progress lines, return the final reply (or NULL
 * after printing why; but when timeout_ms passed without a line, only
 * *timed_out is set).
 */
static json_t *call_quiet(const char *control, json_t *req, int timeout_ms, bool *timed_out)
{
	static char buf[CTL_MAX_REPLY];
	size_t have = 0;
	char err[512];
	json_t *j;
	int fd;

	fd = ctl_connect(control, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "baton: %s\n", err);
		json_decref(req);
		return NULL;
	}
	if (ctl_send(fd, req) < 0) {
		fprintf(stderr, "baton: cannot send to the agent: %s\n", strerror(errno));
		json_decref(req);
		close(fd);
		return NULL;
	}
	json_decref(req);
	for (;;) {
		j = ctl_recv(fd, buf, sizeof(buf), &have, timeout_ms, err, sizeof(err));
		if (!j) {
			/* Its caller says what a timeout means. */
			*timed_out = errno == ETIMEDOUT;
			if (!*timed_out)
				fprintf(stderr, "baton: %s\n", err);
			break;
		}
		if (json_object_get(j, "alive")) { /* the heartbeat of long_call */
			json_decref(j);
			continue;
		}
		if (json_object_get(j, "progress")) {
			fprintf(stderr, "%s\n", str(j, "progress"));
			json_decref(j);
			continue;
		}
		break;
	}
	close(fd);
	return j;
}

/* call_quiet, saying a timeout too. */
static json_t *call(const char *control, json_t *req, int timeout_ms)
{
	bool timed_out = false;
	json_t *r = call_quiet(control, req, timeout_ms, &timed_out);

	if (timed_out)
		fprintf(stderr, "baton: no reply from the agent within %d ms\n", timeout_ms);
	return r;
}

/* 0 if the reply says ok; else print its error and return 1. */
static int check_reply(const char *what, json_t *r)
{
	if (!r)
		return 1;
	if (json_is_true(json_object_get(r, "ok")))
		return 0;
	fprintf(stderr, "baton: %s: %s\n", what,
		str(r, "error")[0] ? str(r, "error") : "failed (no reason given)");
	json_decref(r);
	return 1;
}

/* For the commands in other files (clihistory.c). */
json_t *cli_call(const char *control, json_t *req, int timeout_ms)
{
	return call(control, req, timeout_ms);
}

/*
 * A request whose answer may take as long as a rollout (a deploy's bakes and
 * approvals, a rollback): the agent bounds every stage itself, so only its
 * silence is bounded here.  It is asked for a heartbeat every
 * CLI_HEARTBEAT_MS, and no line at all for BATON_AGENT_TIMEOUT seconds
 * (default CLI_AGENT_TIMEOUT_S; 0: wait as long as it takes) means it is
 * stopped or hung.  A shorter bound asks for heartbeats more often.
 */
#define CLI_HEARTBEAT_MS      5000
#define CLI_AGENT_TIMEOUT_S   60
#define CLI_AGENT_TIMEOUT_MIN 3
#define CLI_AGENT_TIMEOUT_MAX 86400

json_t *cli_long_call(const char *control, json_t *req)
{
	const char *env = getenv("BATON_AGENT_TIMEOUT");
	long s = CLI_AGENT_TIMEOUT_S;
	bool timed_out = false;
	char *end;
	json_t *r;
	long hb;

	if (env && env[0]) {
		errno = 0;
		s = strtol(env, &end, 10);
		if (errno || *end || (s > 0 && s < CLI_AGENT_TIMEOUT_MIN) || s < 0 ||
		    s > CLI_AGENT_TIMEOUT_MAX) {
			fprintf(stderr,
				"baton: BATON_AGENT_TIMEOUT=%s: want whole seconds from %d to %d, "
				"or 0 to wait as long as it takes\n",
				env, CLI_AGENT_TIMEOUT_MIN, CLI_AGENT_TIMEOUT_MAX);
			json_decref(req);
			return NULL;
		}
	}
	/* At least 3 lines within the bound, however short it is set. */
	hb = s ? s * 1000 / 4 : CLI_HEARTBEAT_MS;
	hb = hb < CTL_HEARTBEAT_MIN_MS ? CTL_HEARTBEAT_MIN_MS
	     : hb > CLI_HEARTBEAT_MS   ? CLI_HEARTBEAT_MS
				       : hb;
	json_object_set_new(req, "heartbeat_ms", json_integer(hb));
	r = call_quiet(control, req, s ? (int)(s * 1000) : -1, &timed_out);
	if (timed_out)
		fprintf(stderr,
			"baton: no word from the agent in %ld s (asked for one every %.1f s): it "
			"is stopped or hung; what it was doing goes on if it resumes (see: baton "
			"status; BATON_AGENT_TIMEOUT sets this bound)\n",
			s, hb / 1000.0);
	return r;
}

int cli_check_reply(const char *what, json_t *r)
{
	return check_reply(what, r);
}

/* The rolling options' syntax; instances are the agent's to check against. */
static int deploy_rolling_opts(const struct client_opts *o, unsigned *pause)
{
	struct roll_amount a;
	char err[256];

	if (!o->max_surge && !o->max_unavail && !o->pause)
		return 0;
	if ((o->strategy && strcmp(o->strategy, "rolling")) || o->steps || o->bake) {
		fprintf(stderr,
			"baton deploy: --max-surge, --max-unavailable and --pause belong to "
			"--strategy rolling\n");
		return 2;
	}
	if (o->max_surge && roll_amount_parse(o->max_surge, &a, err, sizeof(err))) {
		fprintf(stderr, "baton deploy: --max-surge: %s\n", err);
		return 2;
	}
	if (o->max_unavail && roll_amount_parse(o->max_unavail, &a, err, sizeof(err))) {
		fprintf(stderr, "baton deploy: --max-unavailable: %s\n", err);
		return 2;
	}
	if (o->pause && parse_duration_ms(o->pause, pause, err, sizeof(err))) {
		fprintf(stderr, "baton deploy: --pause: %s\n", err);
		return 2;
	}
	return 0;
}

int cmd_deploy(int argc, char **argv)
{
	struct client_opts o = {.deploy_opts = 1};
	json_t *args, *r, *prev, *req;
	unsigned steps[MAX_STEPS], bake, pause = 0;
	int rest, i, rc, nsteps = 0;
	char err[256];

	/* Everything after "--" is the command, options and all. */
	for (rest = 1; rest < argc && strcmp(argv[rest], "--"); rest++)
		;
	rc = parse_client("deploy", rest, argv, &o, 2);
	if (rc)
		return rc;
	rest++;
	if (o.pid && rest < argc) {
		fprintf(stderr, "baton deploy: give either --adopt-pid or a command after --, not "
				"both\n");
		return 2;
	}
	if (o.pid)
		goto send;
	if (rest >= argc) {
		fprintf(
		    stderr,
		    "baton deploy: no command given (baton deploy %s -- /path/to/server ARGS)\n",
		    o.service);
		return 2;
	}
	if (argc - rest > MAX_ARGS) {
		fprintf(stderr, "baton deploy: more than %d arguments\n", MAX_ARGS);
		return 2;
	}
	if (argv[rest][0] != '/') {
		fprintf(stderr, "baton deploy: %s: give the command as an absolute path\n",
			argv[rest]);
		return 2;
	}
	if (access(argv[rest], X_OK) < 0) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		fprintf(stderr, "baton deploy: %s: %s\n", argv[rest], err);
		return 1;
	}
send:
	if (o.strategy && strcmp(o.strategy, "canary") && strcmp(o.strategy, "bluegreen") &&
	    strcmp(o.strategy, "rolling")) {
		fprintf(stderr,
			"baton deploy: --strategy is bluegreen, canary or rolling, not \"%s\"\n",
			o.strategy);
		return 2;
	}
	rc = deploy_rolling_opts(&o, &pause);
	if (rc)
		return rc;
	if (o.baseline && o.strategy && strcmp(o.strategy, "canary")) {
		fprintf(stderr,
			"baton deploy: --baseline belongs to --strategy canary (a baseline takes "
			"a canary step's share; %s has no steps)\n",
			o.strategy);
		return 2;
	}
	if ((o.steps || o.bake || o.approve) && o.strategy && !strcmp(o.strategy, "bluegreen")) {
		fprintf(
		    stderr,
		    "baton deploy: --steps and --bake belong to --strategy canary, --approve to "
		    "canary or rolling\n");
		return 2;
	}
	if (o.steps) {
		nsteps = parse_steps(o.steps, steps, err, sizeof(err));
		if (nsteps < 0) {
			fprintf(stderr, "baton deploy: --steps: %s\n", err);
			return 2;
		}
	}
	if (o.bake && parse_duration_ms(o.bake, &bake, err, sizeof(err))) {
		fprintf(stderr, "baton deploy: --bake: %s\n", err);
		return 2;
	}
	req = json_pack("{s:s, s:s}", "cmd", "deploy", "service", o.service);
	if (cli_deploy_env(o.env, o.nenv, o.pid, req))
		return json_decref(req), 2;
	if (o.pid) {
		json_object_set_new(req, "adopt_pid", json_integer(o.pid));
	} else {
		args = json_array();
		for (i = rest; i < argc; i++)
			json_array_append_new(args, json_string(argv[i]));
		json_object_set_new(req, "argv", args);
	}
	/* --steps, --bake, --approve or --baseline alone mean a canary. */
	if (o.approve)
		json_object_set_new(req, "approve", json_true());
	if (o.baseline)
		json_object_set_new(req, "baseline", json_true());
	if (o.strategy || o.steps || o.bake || o.approve || o.baseline)
		json_object_set_new(req, "strategy",
				    json_string(o.strategy ? o.strategy : "canary"));
	if (nsteps > 0) {
		json_t *js = json_array();

		for (i = 0; i < nsteps; i++)
			json_array_append_new(js, json_integer(steps[i]));
		json_object_set_new(req, "steps", js);
	}
	if (o.bake)
		json_object_set_new(req, "bake_ms", json_integer(bake));
	/* --max-surge, --max-unavailable or --pause alone mean rolling. */
	if (o.max_surge || o.max_unavail || o.pause) {
		json_object_set_new(req, "strategy", json_string("rolling"));
		if (o.max_surge)
			json_object_set_new(req, "max_surge", json_string(o.max_surge));
		if (o.max_unavail)
			json_object_set_new(req, "max_unavailable", json_string(o.max_unavail));
		if (o.pause)
			json_object_set_new(req, "pause_ms", json_integer(pause));
	}
	r = cli_long_call(o.control, req);
	if (check_reply("deploy failed", r))
		return 1;
	prev = json_object_get(r, "previous");
	printf("%s: v%lld active (ready in %lld ms", o.service,
	       (long long)json_integer_value(json_object_get(r, "version")),
	       (long long)json_integer_value(json_object_get(r, "ready_ms")));
	if (!strcmp(str(r, "strategy"), "canary") || !strcmp(str(r, "strategy"), "rolling"))
		printf(", %s rollout %.1f s", str(r, "strategy"),
		       json_integer_value(json_object_get(r, "rollout_ms")) / 1000.0);
	printf(")");
	if (json_is_integer(prev))
		printf("; v%lld draining", (long long)json_integer_value(prev));
	printf("\n");
	json_decref(r);
	return 0;
}

/* Commands whose reply is one message: promote, pause, abort, weight, pin, unpin. */
static int simple(const char *name, json_t *req, struct client_opts *o)
{
	json_t *r;

	json_object_set_new(req, "cmd", json_string(name));
	json_object_set_new(req, "service", json_string(o->service));
	r = call(o->control, req, 10000);
	if (check_reply(name, r))
		return 1;
	printf("%s\n", str(r, "message"));
	json_decref(r);
	return 0;
}

int cmd_adopt(int argc, char **argv)
{
	struct client_opts o = {0};
	int rc = parse_client("adopt", argc, argv, &o, 2);

	if (rc)
		return rc;
	if (!o.pid) {
		fprintf(stderr, "baton adopt: which process? (baton adopt %s --pid PID)\n",
			o.service);
		return cmd_usage("adopt");
	}
	return simple("adopt", json_pack("{s:I}", "pid", (json_int_t)o.pid), &o);
}

int cmd_promote(int argc, char **argv)
{
	struct client_opts o = {0};
	int rc = parse_client("promote", argc, argv, &o, 2);

	if (rc)
		return rc;
	return simple("promote", json_pack("{s:b}", "full", o.full), &o);
}

int cmd_pause(int argc, char **argv)
{
	struct client_opts o = {0};
	int rc = parse_client("pause", argc, argv, &o, 2);

	return rc ? rc : simple("pause", json_object(), &o);
}

int cmd_abort(int argc, char **argv)
{
	struct client_opts o = {0};
	int rc = parse_client("abort", argc, argv, &o, 2);

	return rc ? rc : simple("abort", json_object(), &o);
}

/* "v2" or "2" -> 2. */
static int parse_version_arg(const char *s, long *num)
{
	char *end;

	if (*s == 'v')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	*num = strtol(s, &end, 10);
	return *end || *num < 1 || *num > 1000000000 ? -1 : 0;
}

int cmd_weight(int argc, char **argv)
{
	struct client_opts o = {.max_args = 2};
	json_t *ws;
	char err[256];
	int rc, k;

	rc = parse_client("weight", argc, argv, &o, 2);
	if (rc)
		return rc;
	if (!o.nargs) {
		fprintf(stderr, "baton weight: give a version's share, e.g. v2=10\n");
		return cmd_usage("weight");
	}
	ws = json_object();
	for (k = 0; k < o.nargs; k++) {
		char *eq = strchr(o.args[k], '='), key[24];
		unsigned bp;
		long num;

		if (eq)
			*eq = '\0';
		if (!eq || parse_version_arg(o.args[k], &num)) {
			fprintf(stderr,
				"baton weight: expected vN=PERCENT (e.g. v2=10), not \"%s\"\n",
				o.args[k]);
			json_decref(ws);
			return 2;
		}
		if (parse_percent_bp(eq + 1, &bp, err, sizeof(err))) {
			fprintf(stderr, "baton weight: v%ld: %s\n", num, err);
			json_decref(ws);
			return 2;
		}
		snprintf(key, sizeof(key), "%ld", num);
		json_object_set_new(ws, key, json_integer(bp));
	}
	return simple("weight", json_pack("{s:o}", "weights", ws), &o);
}

int cmd_pin(int argc, char **argv)
{
	struct client_opts o = {.max_args = 2};
	long num;
	int rc;

	rc = parse_client("pin", argc, argv, &o, 2);
	if (rc)
		return rc;
	if (o.nargs != 2) {
		fprintf(stderr,
			"baton pin: give a client CIDR and a version, e.g. "
			"baton pin %s 10.1.0.0/16 v2\n",
			o.service);
		return cmd_usage("pin");
	}
	if (parse_version_arg(o.args[1], &num)) {
		fprintf(stderr, "baton pin: expected a version such as v2, not \"%s\"\n",
			o.args[1]);
		return 2;
	}
	return simple("pin", json_pack("{s:s, s:I}", "cidr", o.args[0], "version", (json_int_t)num),
		      &o);
}

int cmd_unpin(int argc, char **argv)
{
	struct client_opts o = {.max_args = 1};
	int rc;

	rc = parse_client("unpin", argc, argv, &o, 2);
	if (rc)
		return rc;
	if (o.nargs != 1) {
		fprintf(stderr,
			"baton unpin: give the client CIDR of the pin, e.g. "
			"baton unpin %s 10.1.0.0/16\n",
			o.service);
		return cmd_usage("unpin");
	}
	return simple("unpin", json_pack("{s:s}", "cidr", o.args[0]), &o);
}

int cmd_reload(int argc, char **argv)
{
	struct client_opts o = {0};
	json_t *r;
	int rc;

	rc = parse_client("reload", argc, argv, &o, 0);
	if (rc)
		return rc;
	r = call(o.control, json_pack("{s:s}", "cmd", "reload"), 30000);
	if (check_reply("reload", r))
		return 1;
	printf("%s\n", str(r, "message"));
	json_decref(r);
	return 0;
}

int cmd_shutdown(int argc, char **argv)
{
	struct client_opts o = {0};
	json_t *r;
	int rc;

	rc = parse_client("shutdown", argc, argv, &o, 0);
	if (rc)
		return rc;
	r = call(o.control, json_pack("{s:s, s:b}", "cmd", "shutdown", "stop", o.stop),
		 24 * 3600 * 1000);
	if (check_reply("shutdown", r))
		return 1;
	printf("%s\n", str(r, "message"));
	json_decref(r);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct client_opts o = {0};
	json_t *req, *r;
	int rc;

	rc = parse_client("status", argc, argv, &o, 1);
	if (rc)
		return rc;
	req = json_pack("{s:s}", "cmd", "status");
	if (o.service)
		json_object_set_new(req, "service", json_string(o.service));
	r = call(o.control, req, 10000);
	if (check_reply("status", r))
		return 1;
	if (!json_is_array(json_object_get(r, "services"))) {
		fprintf(stderr,
			"baton status: the agent's reply has no list of services (is %s a "
			"baton agent of this version?)\n",
			o.control);
		json_decref(r);
		return 1;
	}
	if (o.json) {
		char *s = json_dumps(json_object_get(r, "services"), JSON_INDENT(2));

		printf("%s\n", s ? s : "[]");
		free(s);
	} else {
		cli_print_table(json_object_get(r, "services"));
	}
	json_decref(r);
	return 0;
}

/* Accepted totals of the previous frame, for accepted/s. */
struct seen {
	char key[48];
	long long accepted;
};

int cmd_watch(int argc, char **argv)
{
	struct client_opts o = {.interval = 1.0};
	static struct seen prev[256], cur[256];
	int nprev = 0, ncur, rc, tty = isatty(1);
	long frame;

	rc = parse_client("watch", argc, argv, &o, 1);
	if (rc)
		return rc;
	for (frame = 0; !o.count || frame < o.count; frame++) {
		json_t *req = json_pack("{s:s}", "cmd", "status"), *r, *svc, *v;
		size_t i, k;
		time_t now = time(NULL);
		char when[32];

		if (o.service)
			json_object_set_new(req, "service", json_string(o.service));
		r = call(o.control, req, 10000);
		if (check_reply("watch", r))
			return 1;
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
		if (tty)
			printf("\033[H\033[2J");
		printf("%s  every %.1fs\n%-12s %-8s %-10s %7s%s %8s %10s\n", when, o.interval,
		       "SERVICE", "VERSION", "STATE", "WEIGHT", tty ? "           " : "", "LIVE",
		       "ACCEPT/S");
		ncur = 0;
		json_array_foreach(json_object_get(r, "services"), i, svc)
		{
			const char *name = str(svc, "name");

			json_array_foreach(json_object_get(svc, "versions"), k, v)
			{
				long long num = json_integer_value(json_object_get(v, "version"));
				long long acc = json_integer_value(json_object_get(v, "accepted"));
				char rate[24] = "-";
				int p;

				if (ncur < 256) {
					snprintf(cur[ncur].key, sizeof(cur[ncur].key), "%s/%lld",
						 name, num);
					cur[ncur].accepted = acc;
					for (p = 0; p < nprev; p++)
						if (!strcmp(prev[p].key, cur[ncur].key))
							snprintf(rate, sizeof(rate), "%.0f",
								 (acc - prev[p].accepted) /
								     o.interval);
					ncur++;
				}
				{
					const char *state = str(v, "state");
					const char *col = cli_state_colour(tty, state);

					printf("%-12s v%-7lld %s%-10s%s %6.1f%%", k ? "" : name,
					       num, col, state, *col ? "\033[0m" : "",
					       json_integer_value(json_object_get(v, "weight")) /
						   100.0);
					cli_print_share(
					    tty, json_integer_value(json_object_get(v, "weight")));
					printf(" %8lld %10s\n",
					       (long long)json_integer_value(
						   json_object_get(v, "live")),
					       rate);
					cli_print_latency(v);
				}
			}
		}
		fflush(stdout);
		json_decref(r);
		memcpy(prev, cur, sizeof(cur[0]) * ncur);
		nprev = ncur;
		if (o.count && frame + 1 == o.count)
			break;
		usleep((useconds_t)(o.interval * 1e6));
	}
	return 0;
}
