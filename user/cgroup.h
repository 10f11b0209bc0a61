/* SPDX-License-Identifier: MIT */
/*
 * The cgroup v2 subtree baton keeps its versions in: one cgroup per version
 * (<subtree>/services/<service>/v<N>); see cgroup.c.
 */
#ifndef BATON_CGROUP_H
#define BATON_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The value of the [agent] cgroup-dir key that turns cgroups off. */
#define CGROUP_DIR_OFF "off"

/*
 * Find the cgroup v2 mount and the agent's own cgroup, make the subtree
 * (dir: the cgroup-dir key, "" for the default), and move the agent into
 * <subtree>/agent when the subtree is its own cgroup.  Returns 0 with
 * cgroups in use, or 1 with why not in note (the agent then falls back to
 * process groups); never fails the start.
 */
int cg_open(const char *dir, char *note, size_t notelen);
/* The absolute path of pid's cgroup v2, or -errno. */
int cg_pid_path(pid_t pid, char *buf, size_t len);
bool cg_enabled(void);
/* The subtree, relative to the cgroup2 mount ("/baton"), for logs. */
const char *cg_subtree(void);
/* The controllers the services' cgroups can use (cgroup.controllers of services/), or "". */
const char *cg_controllers(void);

/* A service's limits for each version's cgroup; 0: none. */
struct cg_limits {
	unsigned long long memory_max; /* bytes: memory.max */
	unsigned cpu_max_pct;	       /* percent of one CPU: cpu.max */
	unsigned pids_max;	       /* pids.max */
};

/*
 * Whether the cgroup the subtree dir (cgroup-dir; "" the default) would be,
 * or its nearest existing ancestor, offers the controller ctrl: 1, 0, or -1
 * when there is no cgroup v2 to use; where says which file was read or why.
 * Used at config load, before cg_open.
 */
int cg_offers(const char *dir, const char *ctrl, char *where, size_t wlen);
/*
 * A version's cgroup, made, with the service's limits: its directory fd, or
 * -errno with a one-line reason in err (a cgroup of that name still holding
 * processes is refused).
 */
int cg_version_make(const char *svc, int num, const struct cg_limits *lim, char *err,
		    size_t errlen);
/* A version's existing cgroup (after an agent restart): its directory fd, or -errno. */
int cg_version_find(const char *svc, int num);
/* rmdir a version's cgroup (empty), then its service's directory if that is empty too. */
void cg_version_remove(const char *svc, int num);
/* Empty cgroups of versions the state does not name: removed; the count of those left. */
int cg_sweep(bool (*known)(const char *svc, int num));
/* At shutdown --stop: remove services/ and the subtree if baton made it for itself. */
void cg_close(bool stop);

/* cgroup.procs of dirfd, opened for writing (a child writes its pid to it before exec). */
int cg_procs_fd(int dirfd);
/* 1 if any process is in the cgroup (cgroup.events "populated 1"), 0 if not, or -errno. */
int cg_populated(int dirfd);
/* Up to max pids of the cgroup; returns how many there are (may be > max), or -errno. */
int cg_pids(int dirfd, pid_t *pids, int max);
/* sig to every process of the cgroup; returns how many were signalled, or -errno. */
int cg_signal(int dirfd, int sig);
/* SIGKILL the whole cgroup (cgroup.kill; before Linux 5.14 every listed pid). 0 or -errno. */
int cg_kill(int dirfd);
/* cpu.stat usage_usec (no controller needed). 0 or -errno. */
int cg_cpu_usec(int dirfd, unsigned long long *usec);

/* A one-number file of the cgroup (memory.current, memory.peak): 0, or -errno (no controller). */
int cg_read_u64(int dirfd, const char *name, unsigned long long *val);
/* One key of a flat keyed file of the cgroup (memory.events "oom_kill"): 0, or -errno. */
int cg_read_key(int dirfd, const char *name, const char *key, unsigned long long *val);

/* Changes of cgroup.events: one inotify fd for the loop, a watch per version. */
int cg_events_fd(void);
int cg_watch(int dirfd);
void cg_unwatch(int wd);
/* Read what the inotify fd holds (the loop then looks at each version it concerns). */
void cg_events_drain(void);

#endif /* BATON_CGROUP_H */
