/* SPDX-License-Identifier: MIT */
/* Taking over a service from the state a previous agent left; see restore.c. */
#ifndef BATON_RESTORE_H
#define BATON_RESTORE_H

#include <jansson.h>

#include "model.h"

/* Versions, timers and the rollout of s from its state entry js. */
void service_restore(struct service *s, json_t *js);

/*
 * Every process the state names runs in this agent's network namespace:
 * 0, or -1 with err (refused, as adoption refuses such a process).
 */
int state_netns_check(json_t *st, char *err, size_t errlen);
/*
 * The socket cookies of every listener of the state's live instances, in
 * a malloc'd array at *out (NULL when none): how many.
 */
int state_cookies(json_t *st, __u64 **out);

#endif /* BATON_RESTORE_H */
