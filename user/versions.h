/* SPDX-License-Identifier: MIT */
/* A version's sockets and processes, and the events they give; see versions.c. */
#ifndef BATON_VERSIONS_H
#define BATON_VERSIONS_H

#include <stddef.h>

#include "model.h"

/* A zeroed version of s with every fd marked absent, so version_free is always safe. */
struct version *version_alloc(struct service *s, char *err, size_t errlen);
/* A new version of s running argv: its listeners, timer and counters; not started. */
struct version *version_new(struct service *s, char *const *argv, char *err, size_t errlen);
/* Start its instances with their sockets (socket activation). */
int version_spawn(struct version *v, char *err, size_t errlen);
/* Close what v holds; the memory goes after this epoll batch (versions_bury). */
void version_free(struct version *v);
void versions_bury(void);
void signal_all(struct version *v, int sig);
/* Give up the agent's copies of v's listeners (instance only, or all with -1). */
void release_listeners(struct version *v, int only);

/* An instance is ready (readiness check, probe or READY=1): tells the state machine. */
void instance_ready(struct version *v, int i);

/* Events: an instance exited, the version's timer fired, a watched version reached 0. */
void on_exit_of(struct version *v, int i);
void on_timer(struct version *v);
void on_zero(const struct track_event *e);

#endif /* BATON_VERSIONS_H */
