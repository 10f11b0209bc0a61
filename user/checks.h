/* SPDX-License-Identifier: MIT */
/* Readiness and health checks, error samples; see checks.c. */
#ifndef BATON_CHECKS_H
#define BATON_CHECKS_H

#include <stdbool.h>

#include "model.h"

/* Start a readiness (for_ready) or health check of instance i, if none is in flight. */
void check_start(struct version *v, int i, bool for_ready);
/* End the check in flight: close its socket and unpin it; kill an exec check. */
void check_close(struct version *v, int i);
void checks_stop(struct version *v);
/* Bound the check in flight by health-timeout: true when it timed out (a failure). */
bool check_timed_out(struct version *v, int i, long long now);
/* The check's socket or exec process is ready. */
void on_check(struct version *v, int i);
/* The new version under rollout, every HEALTH_TICK_MS: checks and error samples. */
void health_tick(struct version *v);

/* TCP readiness: a connection through the instance's own socket. */
void probe_start(struct version *v, int i);
void probe_stop(struct version *v, int i);
void probe_check(struct version *v, int i);

#endif /* BATON_CHECKS_H */
