/* SPDX-License-Identifier: MIT */
/*
 * The state file: what a restarted agent needs to take over (which
 * processes belong to which version, phases, deadlines, socket cookies,
 * the rollout).  Taking over from it: restore.c.
 */
#ifndef BATON_STATEFILE_H
#define BATON_STATEFILE_H

#include <stddef.h>
#include <jansson.h>

void state_init(const char *run_dir);
void state_close(void);
/* Write the state file if it changed: a temporary file renamed over it, mode 0600. */
void state_save(void);
void state_remove(void);
/* The state, NULL when there is none, json_null() with err when it is unreadable. */
json_t *state_load(char *err, size_t errlen);
/* The entry of service name in st, NULL if none. */
json_t *state_service(json_t *st, const char *name);
/* The state must fit the running configuration: 0, or -1 with err. */
int state_fits(json_t *st, char *err, size_t errlen);

struct service;
/* The rollout's holds and deadlines as the state file keeps them (stateholds.c), */
json_t *state_holds(const struct service *s);
/* and back into s (a missing or malformed entry: none). */
void state_holds_restore(struct service *s, json_t *h);

#endif /* BATON_STATEFILE_H */
