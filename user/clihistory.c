/* SPDX-License-Identifier: MIT */
/* baton history: the versions a service remembers for baton rollback. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "config.h"
#include "control.h"

static const char *field(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* A wall-clock time of the agent's as "2026-12-04 05:30:00" (UTC), or "-". */
static const char *when(json_t *o, const char *key, char *buf, size_t len)
{
	time_t t = (time_t)json_integer_value(json_object_get(o, key));
	struct tm tm;

	if (!t || !gmtime_r(&t, &tm))
		return "-";
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

/* One version: number, how it ended, when it was deployed, its command; then how, if said. */
static void print_version(json_t *v)
{
	json_t *a, *rb = json_object_get(v, "rollback_of");
	char t1[32], cmd[512];
	size_t k, n = 0;

	cmd[0] = '\0';
	json_array_foreach(json_object_get(v, "argv"), k, a) if (n < sizeof(cmd)) n +=
	    snprintf(cmd + n, sizeof(cmd) - n, "%s%s", k ? " " : "", json_string_value(a));
	printf("v%-5lld %-12s %-19s %s\n",
	       (long long)json_integer_value(json_object_get(v, "version")), field(v, "end"),
	       when(v, "deployed", t1, sizeof(t1)), cmd);
	if (json_is_integer(rb))
		printf("       rollback of v%lld\n", (long long)json_integer_value(rb));
	if (field(v, "how")[0])
		printf("       %s\n", field(v, "how"));
}

int cmd_history(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"control", required_argument, NULL, 's'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *control = getenv("BATON_CONTROL") ? getenv("BATON_CONTROL") : DEFAULT_CONTROL;
	const char *service;
	int json = 0, c;
	size_t i;
	char err[512], *s;
	json_t *req, *r, *v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 's':
			control = optarg;
			break;
		case 'h':
			return cmd_help(1, (char *[]){"history"});
		default:
			return cmd_usage("history");
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "baton history: which service? (baton history SERVICE)\n");
		return cmd_usage("history");
	}
	service = argv[optind++];
	if (parse_service_name(service, err, sizeof(err))) {
		fprintf(stderr, "baton history: %s\n", err);
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "baton history: unexpected argument \"%s\"\n", argv[optind]);
		return cmd_usage("history");
	}
	req = json_pack("{s:s, s:s}", "cmd", "history", "service", service);
	r = cli_call(control, req, 10000);
	if (cli_check_reply("history", r))
		return 1;
	if (json) {
		s = json_dumps(json_object_get(r, "versions"), JSON_INDENT(2));
		if (s)
			printf("%s\n", s);
		free(s);
	} else {
		printf("%s: %zu version(s) remembered (keep-versions %lld), oldest first\n",
		       service, json_array_size(json_object_get(r, "versions")),
		       (long long)json_integer_value(json_object_get(r, "keep_versions")));
		printf("%-6s %-12s %-19s %s\n", "VER", "STATE", "DEPLOYED (UTC)", "COMMAND");
		json_array_foreach(json_object_get(r, "versions"), i, v) print_version(v);
	}
	json_decref(r);
	return 0;
}

/* "v3" or "3": the version number, or 0. */
static int version_arg(const char *s)
{
	char *end;
	long n;

	if (*s == 'v')
		s++;
	if (*s < '0' || *s > '9')
		return 0;
	n = strtol(s, &end, 10);
	return *end || n < 1 || n > 1000000000 ? 0 : (int)n;
}

int cmd_rollback(int argc, char **argv)
{
	static const struct option lo[] = {{"to", required_argument, NULL, 't'},
					   {"control", required_argument, NULL, 's'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	const char *control = getenv("BATON_CONTROL") ? getenv("BATON_CONTROL") : DEFAULT_CONTROL;
	const char *service = NULL;
	json_t *req, *r, *prev;
	char err[256];
	int c, to = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			to = version_arg(optarg);
			if (!to) {
				fprintf(stderr,
					"baton rollback: --to takes a version as baton history "
					"lists it (v3), not \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case 's':
			control = optarg;
			break;
		case 'h':
			return cmd_help(1, (char *[]){"rollback"});
		default:
			return cmd_usage("rollback");
		}
	}
	if (optind < argc)
		service = argv[optind++];
	if (!service) {
		fprintf(stderr, "baton rollback: which service? (see: baton status)\n");
		return cmd_usage("rollback");
	}
	if (parse_service_name(service, err, sizeof(err))) {
		fprintf(stderr, "baton rollback: %s\n", err);
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "baton rollback: unexpected argument \"%s\"\n", argv[optind]);
		return cmd_usage("rollback");
	}
	if (geteuid() != 0) {
		fprintf(stderr, "baton: must run as root to talk to the agent (sudo baton rollback "
				"...)\n");
		return 1;
	}
	req = json_pack("{s:s, s:s}", "cmd", "rollback", "service", service);
	if (to)
		json_object_set_new(req, "to", json_integer(to));
	/* A version that exited starts again: the agent bounds that rollout as a deploy's. */
	r = cli_long_call(control, req);
	if (cli_check_reply("rollback", r))
		return 1;
	if (json_object_get(r, "message")) {
		printf("%s\n", field(r, "message"));
	} else {
		prev = json_object_get(r, "previous");
		printf("%s: v%lld (v%lld started again) active (ready in %lld ms)", service,
		       (long long)json_integer_value(json_object_get(r, "version")),
		       (long long)json_integer_value(json_object_get(r, "rollback_of")),
		       (long long)json_integer_value(json_object_get(r, "ready_ms")));
		if (json_is_integer(prev))
			printf("; v%lld draining", (long long)json_integer_value(prev));
		printf("\n");
	}
	json_decref(r);
	return 0;
}
