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

#define DEFAULT_CONFIG	  "/etc/baton/baton.conf"
#define DEFAULT_CONTROL	  "/run/baton/control.sock"
#define BATON_VERSION_STR "0.1.0"

struct help {
	const char *name;
	const char *usage;
	const char *text;
};

static const struct help helps[] = {
    {"agent", "baton agent [-d] [-n] [-v|-vv] [-f FILE]",
     "Run the node agent: load the steering program, start every service in FILE\n"
     "(default " DEFAULT_CONFIG ") and serve the control socket.\n"
     "  -f FILE  configuration file\n"
     "  -d       stay in the foreground, log to stderr (the agent never forks;\n"
     "           -d is accepted for the usual daemon convention)\n"
     "  -n       check the configuration, print \"configuration OK\" and exit\n"
     "  -v, -vv  more logging (-vv adds libbpf's own messages)\n"
     "SIGTERM or SIGINT ends the agent and leaves services running, steered as last\n"
     "programmed; `baton shutdown --stop` stops them first."},
    {"deploy", "baton deploy SERVICE [-s SOCKET] -- COMMAND [ARG...]",
     "Start COMMAND as the next version of SERVICE with the service's instance count,\n"
     "wait until every instance is ready, move all new connections to it in one map\n"
     "update, and drain the version it replaces.  Exits 0 when the new version is\n"
     "active; non-zero with the reason when it failed (the old version keeps all\n"
     "traffic)."},
    {"status", "baton status [SERVICE] [--json] [-s SOCKET]",
     "Show each service's versions: state, weight, instances and pids, and the\n"
     "steering counters.  --json prints the agent's answer for scripts."},
    {"watch", "baton watch [SERVICE] [-n SECONDS] [--count N] [-s SOCKET]",
     "Refresh a per-version view every SECONDS (default 1): state, weight, live\n"
     "connections, and connections accepted per second since the last refresh.\n"
     "Runs until interrupted, or for N refreshes with --count N."},
    {"rollback", "baton rollback SERVICE [-s SOCKET]",
     "Give all new connections back to the previous version while it is still\n"
     "running and has not been told to exit (see drain-delay); abort a deploy in\n"
     "progress.  Fails, naming why, when the previous version is gone."},
    {"shutdown", "baton shutdown [--stop] [-s SOCKET]",
     "End the agent.  Without --stop, services keep running and steering stays as\n"
     "programmed.  With --stop every version is drained and stopped first."},
    {"help", "baton help [COMMAND]", "Show help for every command, or for one."},
    {"version", "baton version", "Print baton's version."},
};

int cmd_help(int argc, char **argv)
{
	size_t i;

	if (argc >= 1 && argv) {
		for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
			if (!strcmp(argv[0], helps[i].name)) {
				printf("usage: %s\n\n%s\n", helps[i].usage, helps[i].text);
				return 0;
			}
		fprintf(stderr, "baton: no help for \"%s\" (see: baton help)\n", argv[0]);
		return 2;
	}
	printf("baton: hot-swap local service binaries with zero dropped connections\n\n"
	       "usage:\n");
	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		printf("  %s\n", helps[i].usage);
	printf("\nThe control socket is %s unless -s SOCKET or $BATON_CONTROL says\n"
	       "otherwise.  baton help COMMAND explains one command.\n",
	       DEFAULT_CONTROL);
	return 0;
}

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("baton %s\n", BATON_VERSION_STR);
	return 0;
}

static int usage_of(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		if (!strcmp(name, helps[i].name))
			fprintf(stderr, "usage: %s\n", helps[i].usage);
	return 2;
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
			return usage_of("agent");
		}
	}
	if (optind != argc) {
		fprintf(stderr, "baton agent: unexpected argument \"%s\"\n", argv[optind]);
		return usage_of("agent");
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
};

/*
 * Parse options anywhere among argv[0..argc) (options and the service may
 * come in any order).  want_service: 0 none, 1 optional, 2 required.
 */
static int parse_client(const char *name, int argc, char **argv, struct client_opts *o,
			int want_service)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"stop", no_argument, NULL, 'S'},
					   {"interval", required_argument, NULL, 'n'},
					   {"count", required_argument, NULL, 'c'},
					   {"control", required_argument, NULL, 's'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
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
		case 'h':
			cmd_help(1, (char *[]){(char *)name});
			exit(0);
		default:
			return usage_of(name);
		}
	}
	if (optind < argc && want_service) {
		o->service = argv[optind++];
		if (parse_service_name(o->service, err, sizeof(err))) {
			fprintf(stderr, "baton %s: %s\n", name, err);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "baton %s: unexpected argument \"%s\"\n", name, argv[optind]);
		return usage_of(name);
	}
	if (want_service == 2 && !o->service) {
		fprintf(stderr, "baton %s: which service? (see: baton status)\n", name);
		return usage_of(name);
	}
	if (geteuid() != 0) {
		fprintf(stderr,
			"baton: must run as root to talk to the agent (sudo baton %s ...)\n", name);
		return 1;
	}
	return 0;
}

/* Send a request, print progress lines, return the final reply (or NULL). */
static json_t *call(const char *control, json_t *req, int timeout_ms)
{
	static char buf[CTL_MAX_LINE];
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
			fprintf(stderr, "baton: %s\n", err);
			break;
		}
		if (json_object_get(j, "progress")) {
			fprintf(stderr, "%s\n", json_string_value(json_object_get(j, "progress")));
			json_decref(j);
			continue;
		}
		break;
	}
	close(fd);
	return j;
}

/* 0 if the reply says ok; else print its error and return 1. */
static int check_reply(const char *what, json_t *r)
{
	if (!r)
		return 1;
	if (json_is_true(json_object_get(r, "ok")))
		return 0;
	fprintf(stderr, "baton: %s: %s\n", what,
		json_string_value(json_object_get(r, "error")) ?: "failed (no reason given)");
	json_decref(r);
	return 1;
}

int cmd_deploy(int argc, char **argv)
{
	struct client_opts o = {0};
	json_t *args, *r, *prev;
	int rest, i, rc;
	char err[256];

	/* Everything after "--" is the command, options and all. */
	for (rest = 1; rest < argc && strcmp(argv[rest], "--"); rest++)
		;
	rc = parse_client("deploy", rest, argv, &o, 2);
	if (rc)
		return rc;
	rest++;
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
	args = json_array();
	for (i = rest; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	/* The agent bounds the deploy by ready-timeout; this only guards a hung agent. */
	r = call(o.control,
		 json_pack("{s:s, s:s, s:o}", "cmd", "deploy", "service", o.service, "argv", args),
		 24 * 3600 * 1000);
	if (check_reply("deploy failed", r))
		return 1;
	prev = json_object_get(r, "previous");
	printf("%s: v%lld active (ready in %lld ms)", o.service,
	       (long long)json_integer_value(json_object_get(r, "version")),
	       (long long)json_integer_value(json_object_get(r, "ready_ms")));
	if (json_is_integer(prev))
		printf("; v%lld draining", (long long)json_integer_value(prev));
	printf("\n");
	json_decref(r);
	return 0;
}

int cmd_rollback(int argc, char **argv)
{
	struct client_opts o = {0};
	json_t *r;
	int rc;

	rc = parse_client("rollback", argc, argv, &o, 2);
	if (rc)
		return rc;
	r = call(o.control, json_pack("{s:s, s:s}", "cmd", "rollback", "service", o.service),
		 10000);
	if (check_reply("rollback", r))
		return 1;
	printf("%s\n", json_string_value(json_object_get(r, "message")));
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
	printf("%s\n", json_string_value(json_object_get(r, "message")));
	json_decref(r);
	return 0;
}

static void print_table(json_t *services)
{
	size_t i, k, p;
	json_t *s, *v, *pr;

	printf("%-12s %-8s %-10s %7s %8s %10s %-10s %s\n", "SERVICE", "VERSION", "STATE", "WEIGHT",
	       "LIVE", "ACCEPTED", "INSTANCES", "PIDS");
	json_array_foreach(services, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));
		json_t *vs = json_object_get(s, "versions");
		json_t *st = json_object_get(s, "steer");

		if (!json_array_size(vs))
			printf("%-12s %-8s %-10s\n", name, "-", "none");
		json_array_foreach(vs, k, v)
		{
			char ver[16], inst[24], pids[256] = "";
			size_t off = 0;
			int ready = 0;

			snprintf(ver, sizeof(ver), "v%lld",
				 (long long)json_integer_value(json_object_get(v, "version")));
			json_array_foreach(json_object_get(v, "processes"), p, pr)
			{
				if (json_is_true(json_object_get(pr, "ready")))
					ready++;
				if (json_is_true(json_object_get(pr, "alive")) &&
				    off < sizeof(pids) - 12)
					off += snprintf(pids + off, sizeof(pids) - off, "%s%lld",
							off ? "," : "",
							(long long)json_integer_value(
							    json_object_get(pr, "pid")));
			}
			snprintf(inst, sizeof(inst), "%lld/%lld",
				 (long long)json_integer_value(json_object_get(v, "alive")),
				 (long long)json_integer_value(json_object_get(v, "instances")));
			printf("%-12s %-8s %-10s %6.1f%% %8lld %10lld %-10s %s\n", k ? "" : name,
			       ver, json_string_value(json_object_get(v, "state")),
			       json_integer_value(json_object_get(v, "weight")) / 100.0,
			       (long long)json_integer_value(json_object_get(v, "live")),
			       (long long)json_integer_value(json_object_get(v, "accepted")), inst,
			       pids);
			(void)ready;
		}
		char addrs[512] = "";
		size_t a, off = 0;
		json_t *la;

		json_array_foreach(json_object_get(s, "listen"), a, la) if (off < sizeof(addrs) - 1)
		    off += snprintf(addrs + off, sizeof(addrs) - off, "%s%s", a ? " " : "",
				    json_string_value(la));
		printf("%-12s listen %s; steered %lld, migrated %lld, refused %lld\n", "", addrs,
		       (long long)json_integer_value(json_object_get(st, "selected")),
		       (long long)json_integer_value(json_object_get(st, "migrated")),
		       (long long)json_integer_value(json_object_get(st, "dropped")));
	}
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
	if (o.json) {
		char *s = json_dumps(json_object_get(r, "services"), JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
	} else {
		print_table(json_object_get(r, "services"));
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
		printf("%s  every %.1fs\n%-12s %-8s %-10s %7s %8s %10s\n", when, o.interval,
		       "SERVICE", "VERSION", "STATE", "WEIGHT", "LIVE", "ACCEPT/S");
		ncur = 0;
		json_array_foreach(json_object_get(r, "services"), i, svc)
		{
			const char *name = json_string_value(json_object_get(svc, "name"));

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
				printf("%-12s v%-7lld %-10s %6.1f%% %8lld %10s\n", k ? "" : name,
				       num, json_string_value(json_object_get(v, "state")),
				       json_integer_value(json_object_get(v, "weight")) / 100.0,
				       (long long)json_integer_value(json_object_get(v, "live")),
				       rate);
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
