/* SPDX-License-Identifier: MIT */
/* Prometheus gates as performed (promgate.c); their rules are fsm_gate.c's. */
#ifndef BATON_PROMGATE_H
#define BATON_PROMGATE_H

#include <stddef.h>

#include "model.h"

/* The version under rollout, every HEALTH_TICK_MS: queries that are due. */
void promgate_tick(struct version *v, long long now);
/* Ask [agent] prometheus once, from the loop; a warning in the log if it does not answer. */
void promgate_probe(void);
/*
 * baton agent -n: ask prometheus (blocking, at most 2 s; not from the
 * loop).  0, or -1 with a one-line warning in msg.
 */
int promgate_check(const char *prom, char *msg, size_t len);

#endif /* BATON_PROMGATE_H */
