/* SPDX-License-Identifier: MIT */
/*
 * measure-http as the agent runs it: which versions are under analysis and
 * counted, their counts for status and /metrics.  The gates are
 * fsm_gates.c's, fed by latview.c.
 */
#ifndef BATON_HTTPSTAT_H
#define BATON_HTTPSTAT_H

#include <stdio.h>
#include <jansson.h>

#include "model.h"

/*
 * The version v is compared with by max-p99-ratio or max-error-ratio: its
 * rollout's fresh baseline, else the active version; NULL when none.
 */
struct version *http_compared_with(struct version *v);
/* Count exactly s's versions under analysis (before a policy takes effect), read their counts. */
void httpstat_sync(struct service *s);
/* Every LAT_TICK_MS: httpstat_sync of every service, and passes for connections made before. */
void httpstat_tick(void);
/* v leaves the analysis now (it is freed): its final counts logged. */
void httpstat_leave(struct version *v);
/* status --json: v's counts since counting began, or null when not counted. */
json_t *httpstat_json(const struct version *v);
/* /metrics: baton_version_http_responses_total per class of each counted version. */
void httpstat_metrics(FILE *f);

#endif /* BATON_HTTPSTAT_H */
