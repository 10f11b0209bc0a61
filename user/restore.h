/* SPDX-License-Identifier: MIT */
/* Taking over a service from the state a previous agent left; see restore.c. */
#ifndef BATON_RESTORE_H
#define BATON_RESTORE_H

#include <jansson.h>

#include "model.h"

/* Versions, timers and the rollout of s from its state entry js. */
void service_restore(struct service *s, json_t *js);

#endif /* BATON_RESTORE_H */
