/* SPDX-License-Identifier: MIT */
/* A version's sockets and processes, and the events they give; see versions.c. */
#ifndef BATON_VERSIONS_H
#define BATON_VERSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "model.h"

/* A zeroed version of s with every fd marked absent, so version_free is always safe. */
struct version *version_alloc(struct service *s, char *err, size_t errlen);
/* A new version of s running argv: its listeners, timer and counters; not started. */
/* argv and env (deploy --env, overriding the service's environment = lines; NULL: none)
   are copied into the version. */
struct version *version_new(struct service *s, char *const *argv, char *const *env, char *err,
			    size_t errlen);
/* As version_new, started as spec (a record of the rollback window) says. */
struct version *version_new_spec(struct service *s, const struct spawn_desc *spec, char *err,
				 size_t errlen);
/* Start its instances with their sockets (socket activation). */
int version_spawn(struct version *v, char *err, size_t errlen);
int version_spawn_one(struct version *v, int i, char *err, size_t errlen);
void signal_one(struct version *v, int i, int sig);
/* Close what v holds; the memory goes after this epoll batch (versions_bury). */
void version_free(struct version *v);
void versions_bury(void);
void signal_all(struct version *v, int sig);
/*
 * sig to every process of v's tree: its cgroup (SIGKILL: cgroup.kill), or
 * its instances' process groups; an adopted server's own process only.
 */
void signal_tree(struct version *v, int sig);
/*
 * SIGKILL to one instance's tree: its process, its process group (a
 * spawned instance leads its own session) and every process below it now
 * (one scan of /proc).  The version's cgroup holds every instance, so it
 * is not used: the other instances serve on.
 */
void kill_inst_tree(struct version *v, int i);
/* An adopted version: remember the processes of its tree now (the kill-after bound kills them). */
void adopted_tree_note(struct version *v);
/* v's cgroup: made (a new version) or found again (restart); 0 also without cgroups. */
int version_cgroup_open(struct version *v, bool make, char *err, size_t errlen);
/* A version taken over: its cgroup found again, and whether its tree still runs. */
void version_restore_tree(struct version *v);
/* The version ended: its cgroup goes. */
void version_cgroup_remove(struct version *v);
/* Every pid of v's cgroup (up to max); the count, or -ENOENT without a cgroup. */
int version_tree(struct version *v, pid_t *pids, int max);
/* The tree of v is empty (a cgroup event, an exit, a deadline): tell the state machine. */
void tree_check(struct version *v);
/* At most this many processes of a version are looked at for their state. */
#define TREE_STATS_MAX 256

struct tree_stats {
	int procs;		     /* processes in its cgroup */
	int stopped;		     /* of them stopped (T: SIGSTOP, a frozen version) */
	unsigned long long cpu_usec; /* CPU time of every process it ran (cpu.stat) */
	bool have_cpu;
	/* With the memory controller only: memory.current and memory.peak. */
	unsigned long long mem, mem_peak;
	bool have_mem, have_mem_peak;
};

/* Figures of v's cgroup: 0, or -ENOENT without one. */
int version_tree_stats(struct version *v, struct tree_stats *ts);
/* The cgroup.events watch fired: look at every version's. */
void on_cgroup_events(void);
/* Give up the agent's copies of v's listeners (instance only, or all with -1). */
void release_listeners(struct version *v, int only);

/* An instance is ready (readiness check, probe or READY=1): tells the state machine. */
void instance_ready(struct version *v, int i);
/*
 * Instance i's listeners, made again where the agent gave up its copies (a
 * retired instance of a rolling rollout that starts again): 0, or -errno with err.
 */
int version_listeners(struct version *v, int i, char *err, size_t errlen);
/* READY=1 from instance i (FE_NOTIFIED): ready once it also accepts (fsm_rollout.c). */
void instance_notified(struct version *v, int i);

/* Events: an instance exited, the version's timer fired, a watched version reached 0. */
void on_exit_of(struct version *v, int i);
/*
 * ready = none: after FA_SPAWN, whether FE_SPAWNED waits for every
 * instance's exec (on_exec feeds it then, on_timer a failure at
 * ready-timeout): true when it does.
 */
bool version_spawn_waits(struct version *v);
void on_exec(struct version *v, int i);
void on_timer(struct version *v);
void on_zero(const struct track_event *e);

#endif /* BATON_VERSIONS_H */
