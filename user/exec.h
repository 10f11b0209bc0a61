/* SPDX-License-Identifier: MIT */
/* The executor of the state machine's actions; see exec.c. */
#ifndef BATON_EXEC_H
#define BATON_EXEC_H

#include <stddef.h>
#include <sys/types.h>

#include "fsm.h"

struct client;
struct reaping;

/* Feed e to s's state machine and perform what it says (and what follows from it). */
void fsm_feed(struct service *s, const struct fsm_event *e);
/*
 * Start a new version (o NULL: the configuration's strategy).  Returns
 * -errno with err when nothing was started; 0 once the version exists,
 * whatever happens to it next (the waiting client c, if any, gets exactly
 * one final reply).
 */
int deploy(struct service *s, char *const *argv, char *const *env, const struct deploy_opts *o,
	   struct client *c, char *err, size_t errlen);
/* Events: the hook exited; the rollout timer fired. */
void on_hook(struct service *s);
void on_ro_timer(struct service *s);
/* SIGKILL a child (and its group) and reap it when its pidfd says so: never a blocking wait. */
void reap_later(pid_t pid, int pidfd);
void on_reap(struct reaping *r);
/* One bounded step of each drain-reset under way (its timer fired). */
void on_reset_tick(void);
/* End v's drain-reset, if one runs (v is signalled, back in service, or freed). */
void reset_stop(struct version *v);

#endif /* BATON_EXEC_H */
