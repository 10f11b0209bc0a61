/* SPDX-License-Identifier: MIT */
/* baton status: a version's latency line and the rollout's latency gates, from status JSON. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "cli.h"
#include "lathist.h"

static long long num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void one(const char *what, json_t *s)
{
	char a[24], b[24], c[24];

	printf("%s p50 %s p90 %s p99 %s (%lld)", what, lat_fmt(num(s, "p50_us"), a, sizeof(a)),
	       lat_fmt(num(s, "p90_us"), b, sizeof(b)), lat_fmt(num(s, "p99_us"), c, sizeof(c)),
	       num(s, "count"));
}

void cli_print_latency(json_t *v)
{
	json_t *l = json_object_get(v, "latency"), *r, *a;

	if (!json_is_object(l))
		return;
	r = json_object_get(l, "response");
	a = json_object_get(l, "accept_wait");
	if (!num(r, "count") && !num(a, "count"))
		return;
	printf("%-12s last %.0f s: ", "", num(l, "interval_ms") / 1000.0);
	one("response", r);
	if (num(a, "count")) {
		printf("; ");
		one("accept wait", a);
	}
	printf("\n");
}

void cli_print_http(json_t *v)
{
	json_t *h = json_object_get(v, "http");

	if (!json_is_object(h))
		return;
	printf("%-12s http (measure-http): %lld responses, success %.1f%%: 2xx %lld 3xx %lld 4xx "
	       "%lld 5xx %lld; 1xx %lld, unparseable %lld\n",
	       "", num(h, "responses"), json_number_value(json_object_get(h, "success_pct")),
	       num(h, "2xx"), num(h, "3xx"), num(h, "4xx"), num(h, "5xx"), num(h, "1xx"),
	       num(h, "other"));
}

void cli_print_gates(json_t *ro)
{
	json_t *g = json_object_get(ro, "latency_gates");

	if (json_is_string(g) && json_string_value(g)[0])
		printf("%-12s   latency gates: %s\n", "", json_string_value(g));
}
