/* SPDX-License-Identifier: MIT */
/* Adopting servers that open their own SO_REUSEPORT listeners; see adopt.c. */
#ifndef BATON_ADOPT_H
#define BATON_ADOPT_H

#include <stddef.h>
#include <sys/types.h>

#include "model.h"

/* A version of s made of pid's own listeners (not started, not placed). */
struct version *version_adopt(struct service *s, pid_t pid, char *err, size_t errlen);
struct client;

/*
 * baton adopt: a running server becomes the service's active version, and
 * c gets the answer.  -errno with err when nothing was adopted.
 */
int adopt_first(struct service *s, pid_t pid, struct client *c, char *err, size_t errlen);

/*
 * The track links made for adopted servers' listeners (cover) that no
 * running adopted version needs any more go: after an adopted version is
 * forgotten, and once at start for links an earlier agent left.
 */
void adopt_track_prune(void);

#endif /* BATON_ADOPT_H */
