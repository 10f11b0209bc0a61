/* SPDX-License-Identifier: MIT */
/*
 * The rollback window: the last keep-versions versions of each service,
 * each with the spawn description it ran with (model.h: struct vrecord).
 * history.c keeps it (pure: no I/O); histjson.c turns it into JSON and back
 * for the state file and baton history.
 */
#ifndef BATON_HISTORY_H
#define BATON_HISTORY_H

#include <jansson.h>

#include "model.h"

/* dst (its old strings freed) becomes a deep copy of src: 0, or -ENOMEM (dst then empty). */
int spawn_desc_copy(struct spawn_desc *dst, const struct spawn_desc *src);
/* A version's spawn description from its command and what its service gives now. */
int spawn_desc_from_conf(struct spawn_desc *d, const struct service_conf *c, char *const *argv,
			 char *const *env);
void spawn_desc_free(struct spawn_desc *d);

/* The record of version num, or NULL. */
struct vrecord *history_find(struct service *s, int num);
/*
 * Remember v, deployed at wall (rollback_of: the version whose record it
 * was started from, or 0), and drop the oldest records beyond keep-versions
 * (never the active version's, nor a running rollout's).  0, or -ENOMEM
 * (nothing changed).
 */
int history_record(struct service *s, const struct version *v, int rollback_of, time_t wall);
/* Forget every record (the service is gone). */
void history_clear(struct service *s);

/* The window as a JSON array, oldest first (the state file and baton history --json). */
json_t *history_json(const struct service *s);
/* The window from history_json's array: 0, or -1 when an entry is malformed (s unchanged). */
int history_from_json(struct service *s, json_t *arr);

#endif /* BATON_HISTORY_H */
