/* SPDX-License-Identifier: MIT */
/* Each version's latency as the agent shows and judges it; see latview.c. */
#ifndef BATON_LATVIEW_H
#define BATON_LATVIEW_H

#include <stdio.h>
#include <jansson.h>

#include "model.h"

/* Every version's histograms are read this often; status shows the last such interval. */
#define LAT_TICK_MS 1000

/* Start the display tick (EV_LATENCY). */
void latview_start(void);
/* EV_LATENCY: read every version, keep its last interval. */
void on_latency_tick(void);
/* The gate window of the version under rollout, every health-interval (checks.c). */
void latview_gate_sample(struct version *v);
/* status --json: the last interval's counts and quantiles, or null when not measured. */
json_t *latview_json(const struct version *v);
/* /metrics: each version's histograms since it started (or the agent did). */
void latview_metrics(FILE *f);

#endif /* BATON_LATVIEW_H */
