/* SPDX-License-Identifier: MIT */
/* baton events: the agent's rollout event log, once or followed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void print_event(json_t *ev, int json)
{
	char *s;

	if (json) {
		s = json_dumps(ev, JSON_COMPACT);
		if (s)
			printf("%s\n", s);
		free(s);
	} else {
		/* "2026-12-04T05:30:00.123Z" shown as "2026-12-04 05:30:00" (UTC). */
		char when[24];

		snprintf(when, sizeof(when), "%.19s", field(ev, "time"));
		if (strlen(when) > 10)
			when[10] = ' ';
		printf("%s  %-15s %s\n", when, field(ev, "event"), field(ev, "text"));
	}
	fflush(stdout);
}

int cmd_events(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"json", no_argument, NULL, 'j'},	    {"follow", no_argument, NULL, 'f'},
	    {"last", required_argument, NULL, 'n'}, {"control", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0}};
	static char buf[CTL_MAX_REPLY];
	const char *control = getenv("BATON_CONTROL") ? getenv("BATON_CONTROL") : DEFAULT_CONTROL;
	const char *service = NULL;
	int json = 0, follow = 0, c, fd;
	long last = 0;
	size_t have = 0, i;
	char err[512], *end;
	json_t *req, *r, *ev;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:hfn:", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'f':
			follow = 1;
			break;
		case 'n':
			last = strtol(optarg, &end, 10);
			if (*end || last < 1 || last > 1000000) {
				fprintf(stderr,
					"baton events: --last takes 1..1000000, not \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case 's':
			control = optarg;
			break;
		case 'h':
			return cmd_help(1, (char *[]){"events"});
		default:
			return cmd_usage("events");
		}
	}
	if (optind < argc) {
		service = argv[optind++];
		if (parse_service_name(service, err, sizeof(err))) {
			fprintf(stderr, "baton events: %s\n", err);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "baton events: unexpected argument \"%s\"\n", argv[optind]);
		return cmd_usage("events");
	}
	req = json_pack("{s:s, s:b, s:I}", "cmd", "events", "follow", follow, "last",
			(json_int_t)last);
	if (service)
		json_object_set_new(req, "service", json_string(service));
	fd = ctl_connect(control, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "baton: %s\n", err);
		json_decref(req);
		return 1;
	}
	if (ctl_send(fd, req) < 0) {
		fprintf(stderr, "baton: cannot send to the agent\n");
		json_decref(req);
		close(fd);
		return 1;
	}
	json_decref(req);
	r = ctl_recv(fd, buf, sizeof(buf), &have, 10000, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "baton: %s\n", err);
		close(fd);
		return 1;
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		fprintf(stderr, "baton: events: %s\n",
			field(r, "error")[0] ? field(r, "error") : "failed (no reason given)");
		json_decref(r);
		close(fd);
		return 1;
	}
	json_array_foreach(json_object_get(r, "events"), i, ev) print_event(ev, json);
	json_decref(r);
	/* Following: every new event as the agent sends it, until it goes away. */
	while (follow) {
		r = ctl_recv(fd, buf, sizeof(buf), &have, -1, err, sizeof(err));
		if (!r) {
			fprintf(stderr, "baton: events: %s\n", err);
			close(fd);
			return 1;
		}
		ev = json_object_get(r, "event");
		if (json_is_object(ev))
			print_event(ev, json);
		json_decref(r);
	}
	close(fd);
	return 0;
}
