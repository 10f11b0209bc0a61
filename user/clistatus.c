/* SPDX-License-Identifier: MIT */
/* baton status's text view: each service's versions, processes, rollout, pins. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

/* A string field of the agent's reply, "" when it is missing or not a string. */
static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* Each Prometheus gate's last verdict on the new version, with its value and counts. */
static void print_prom_gates(json_t *ro)
{
	json_t *g;
	size_t i;

	json_array_foreach(json_object_get(ro, "gates"), i, g)
	{
		json_t *val = json_object_get(g, "value");
		char v[48] = "no value";

		if (json_is_number(val))
			snprintf(v, sizeof(v), "%g", json_number_value(val));
		printf("%-12s   gate %s: %s%s, %s %s %g (%lld passed, %lld failed, %lld "
		       "inconclusive), last: %s\n",
		       "", str(g, "name"), str(g, "verdict"),
		       json_is_true(json_object_get(g, "dry_run")) ? " (dry-run)" : "", v,
		       str(g, "op"), json_number_value(json_object_get(g, "threshold")),
		       (long long)json_integer_value(json_object_get(g, "passes")),
		       (long long)json_integer_value(json_object_get(g, "failures")),
		       (long long)json_integer_value(json_object_get(g, "inconclusive")),
		       str(g, "last")[0] ? str(g, "last") : "-");
	}
}

/* What the rollout is held for: since when, until when, the last answer or verdict. */
static void print_hold(json_t *ro)
{
	json_t *h = json_object_get(ro, "hold");

	if (!json_is_object(h))
		return;
	printf("%-12s   waiting for %s, held %.1f s", "", str(h, "what"),
	       json_integer_value(json_object_get(h, "since_ms")) / 1000.0);
	if (json_is_integer(json_object_get(h, "left_ms")))
		printf(", until %s (%.1f s left, then rolled back)", str(h, "until"),
		       json_integer_value(json_object_get(h, "left_ms")) / 1000.0);
	if (str(h, "last")[0])
		printf("; last: %s", str(h, "last"));
	printf("\n");
}

/* The rollout, pins and last rollback of one service, under its versions. */
static void print_rollout(json_t *s)
{
	json_t *ro = json_object_get(s, "rollout"), *lr = json_object_get(s, "last_rollback");
	json_t *pins = json_object_get(s, "pins"), *p, *h;
	size_t i;

	if (json_is_object(ro)) {
		long long from = json_integer_value(json_object_get(ro, "from"));
		char steps[128] = "";
		size_t off = 0;

		json_array_foreach(json_object_get(ro, "steps"), i, p) if (off < sizeof(steps) - 8)
		    off += snprintf(steps + off, sizeof(steps) - off, "%s%g", i ? "," : "",
				    json_real_value(p));
		printf("%-12s rollout v%lld -> v%lld (%s): %s", "", from,
		       (long long)json_integer_value(json_object_get(ro, "version")),
		       str(ro, "strategy"), str(ro, "stage"));
		if (json_is_object(json_object_get(ro, "rolling"))) {
			json_t *rl = json_object_get(ro, "rolling");
			json_t *n = json_object_get(rl, "new"), *o = json_object_get(rl, "old");

			printf(", v%lld %lld serving %lld starting, v%lld %lld serving %lld "
			       "draining, at %.2f%%%s",
			       (long long)json_integer_value(json_object_get(ro, "version")),
			       (long long)json_integer_value(json_object_get(n, "serving")),
			       (long long)json_integer_value(json_object_get(n, "starting")), from,
			       (long long)json_integer_value(json_object_get(o, "serving")),
			       (long long)json_integer_value(json_object_get(o, "draining")),
			       json_integer_value(json_object_get(ro, "weight")) / 100.0,
			       json_is_true(json_object_get(ro, "paused")) ? ", paused" : "");
		} else if (!strcmp(str(ro, "stage"), "shifting traffic")) {
			printf(", step %lld of %lld (%s%%) at %.2f%%",
			       (long long)json_integer_value(json_object_get(ro, "step")),
			       (long long)json_integer_value(json_object_get(ro, "nsteps")), steps,
			       json_integer_value(json_object_get(ro, "weight")) / 100.0);
			if (json_is_true(json_object_get(ro, "paused")) &&
			    json_integer_value(json_object_get(ro, "bake_ms")))
				printf(", paused (%.1f s of bake left)",
				       json_integer_value(json_object_get(ro, "bake_left_ms")) /
					   1000.0);
			else if (json_is_true(json_object_get(ro, "paused")))
				printf(", paused");
			else if (json_is_true(json_object_get(ro, "waiting_for_promote")))
				printf(", waiting for baton promote");
			else
				printf(", bake %.1f s left",
				       json_integer_value(json_object_get(ro, "bake_left_ms")) /
					   1000.0);
		}
		printf("\n");
		json_array_foreach(json_object_get(ro, "health"), i, h)
		    printf("%-12s   health of instance %lld: %lld passed, %lld failed (%lld in a "
			   "row), last: %s\n",
			   "", (long long)json_integer_value(json_object_get(h, "instance")),
			   (long long)json_integer_value(json_object_get(h, "passes")),
			   (long long)json_integer_value(json_object_get(h, "failures")),
			   (long long)json_integer_value(json_object_get(h, "failing")),
			   str(h, "last")[0] ? str(h, "last") : "-");
		if (str(ro, "errors") && str(ro, "errors")[0])
			printf("%-12s   kernel: %s\n", "", str(ro, "errors"));
		cli_print_gates(ro);
		print_prom_gates(ro);
		print_hold(ro);
	}
	json_array_foreach(pins, i, p)
	    printf("%-12s pin %s -> v%lld\n", "", str(p, "cidr"),
		   (long long)json_integer_value(json_object_get(p, "version")));
	if (json_is_object(lr))
		printf("%-12s last rollback: v%lld at %s: %s\n", "",
		       (long long)json_integer_value(json_object_get(lr, "version")), str(lr, "at"),
		       str(lr, "reason"));
}

/* On a terminal: a bar of the weight, and the state in colour (unless NO_COLOR). */
void cli_print_share(int tty, long long weight)
{
	int n = (int)((weight * 10 + 5000) / 10000), k;

	if (!tty)
		return;
	putchar(' ');
	for (k = 0; k < 10; k++)
		fputs(k < n ? "\u2588" : "\u00b7", stdout);
}

const char *cli_state_colour(int tty, const char *state)
{
	if (!tty || getenv("NO_COLOR"))
		return "";
	if (!strcmp(state, "active"))
		return "\033[32m";
	if (!strcmp(state, "draining"))
		return "\033[33m";
	if (!strcmp(state, "starting"))
		return "\033[36m";
	return "\033[31m";
}

/*
 * Every process of a version's cgroup, with its state (T: stopped), when it
 * has more than the processes baton started or one of them is not running.
 */
static void print_tree(json_t *v)
{
	json_t *tree = json_object_get(v, "tree"), *pr;
	long long n = json_integer_value(json_object_get(v, "tree_count"));
	char line[1024];
	size_t off = 0, p;
	int odd = 0;

	if (!json_is_array(tree))
		return;
	json_array_foreach(tree, p, pr)
	{
		const char *st = str(pr, "state");

		if (strcmp(st, "R") && strcmp(st, "S") && strcmp(st, "D"))
			odd++;
		if (off < sizeof(line) - 48)
			off += snprintf(line + off, sizeof(line) - off, "%s%lld %s (%s)",
					p ? ", " : "",
					(long long)json_integer_value(json_object_get(pr, "pid")),
					str(pr, "name"), st);
	}
	if (n == json_integer_value(json_object_get(v, "alive")) && !odd)
		return;
	printf("%-12s %lld process(es) in its cgroup: %s%s\n", "", n, line,
	       (size_t)n > json_array_size(tree) || off >= sizeof(line) - 48 ? ", ..." : "");
}

void cli_print_table(json_t *services)
{
	size_t i, k, p;
	json_t *s, *v, *pr;
	int tty = isatty(1);

	printf("%-12s %-8s %-10s %7s%s %8s %10s %-10s %s\n", "SERVICE", "VERSION", "STATE",
	       "WEIGHT", tty ? "           " : "", "LIVE", "ACCEPTED", "INSTANCES", "PIDS");
	json_array_foreach(services, i, s)
	{
		const char *name = str(s, "name");
		json_t *vs = json_object_get(s, "versions");
		json_t *st = json_object_get(s, "steer");

		if (!json_array_size(vs))
			printf("%-12s %-8s %-10s\n", name, "-", "none");
		json_array_foreach(vs, k, v)
		{
			char ver[16], inst[24], pids[256] = "";
			size_t off = 0;
			int ready = 0;

			snprintf(ver, sizeof(ver), "v%lld%s",
				 (long long)json_integer_value(json_object_get(v, "version")),
				 json_is_true(json_object_get(v, "baseline")) ? " base" : "");
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
			{
				const char *state = str(v, "state");
				const char *col = cli_state_colour(tty, state);

				printf("%-12s %-8s %s%-10s%s %6.1f%%", k ? "" : name, ver, col,
				       state, *col ? "\033[0m" : "",
				       json_integer_value(json_object_get(v, "weight")) / 100.0);
				cli_print_share(tty,
						json_integer_value(json_object_get(v, "weight")));
				printf(
				    " %8lld %10lld %-10s %s\n",
				    (long long)json_integer_value(json_object_get(v, "live")),
				    (long long)json_integer_value(json_object_get(v, "accepted")),
				    inst, pids);
			}
			(void)ready;
			print_tree(v);
			if (json_integer_value(json_object_get(v, "not_accepting_ms")))
				printf(
				    "%-12s not accepting: %lld connection(s) queued, none accepted "
				    "for %.1f s\n",
				    "",
				    (long long)json_integer_value(
					json_object_get(v, "accept_queue")),
				    json_integer_value(json_object_get(v, "not_accepting_ms")) /
					1000.0);
			if (json_is_object(json_object_get(v, "bytes")))
				printf("%-12s bytes received %lld, sent %lld\n", "",
				       (long long)json_integer_value(json_object_get(
					   json_object_get(v, "bytes"), "received")),
				       (long long)json_integer_value(
					   json_object_get(json_object_get(v, "bytes"), "sent")));
			cli_print_latency(v);
			cli_print_http(v);
		}
		char addrs[512] = "";
		size_t a, off = 0;
		json_t *la;

		json_array_foreach(json_object_get(s, "listen"), a, la) if (off < sizeof(addrs) - 1)
		    off += snprintf(addrs + off, sizeof(addrs) - off, "%s%s", a ? " " : "",
				    json_string_value(la));
		printf("%-12s listen %s; steered %lld, pinned %lld, migrated %lld, refused %lld",
		       "", addrs, (long long)json_integer_value(json_object_get(st, "selected")),
		       (long long)json_integer_value(json_object_get(st, "pinned")),
		       (long long)json_integer_value(json_object_get(st, "migrated")),
		       (long long)json_integer_value(json_object_get(st, "dropped")));
		/* Only when it happened: uncounted connections are worth a look. */
		if (json_integer_value(json_object_get(st, "evicted")))
			printf(", decisions evicted %lld (connections not counted)",
			       (long long)json_integer_value(json_object_get(st, "evicted")));
		printf("\n");
		print_rollout(s);
	}
}
