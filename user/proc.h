/* SPDX-License-Identifier: MIT */
#ifndef BATON_PROC_H
#define BATON_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spawn_req {
	char *const *argv;   /* argv[0] is an absolute path */
	char *const *env;    /* extra "KEY=VALUE" from the config, NULL-terminated */
	char *const *env2;   /* more "KEY=VALUE": the version's own (deploy --env) or the agent's
				(hooks, checks); a name in both is env2's; or NULL */
	const int *fds;	     /* listening sockets, passed as fds 3.. */
	int nfds;	     /* 0: not a server (a hook or a check): no LISTEN_* variables */
	const char *fdnames; /* LISTEN_FDNAMES, ':'-separated */
	const char *notify;  /* NOTIFY_SOCKET path */
	const char *service;
	int version;
	int instance;	     /* -1: not an instance: no BATON_INSTANCE */
	const char *user;    /* "" or NULL: keep the agent's */
	const char *workdir; /* "" or NULL: / */
	bool in_cgroup;	     /* join the cgroup whose cgroup.procs is cg_procs before exec */
	int cg_procs;
};

/* A child proc_spawn() started. */
struct spawned {
	pid_t pid;
	int pidfd;  /* readable once it exits */
	int execfd; /* its exec pipe's read end (non-blocking, close-on-exec): for proc_reap() */
};

/*
 * Start one child and return at once: it never waits for the child.  What
 * the agent can tell now (argv[0] not executable, no pipe, no fork, no
 * pidfd) is -errno with a one-line reason in err, and no child.  Else 0 and
 * out: what fails in the child before its execve (its user, cgroup, groups,
 * workdir, the exec) is written to its exec pipe before it exits 127, and
 * proc_reap() describes that exit as "cannot start ARGV0: WHAT FAILED".
 * The caller keeps execfd until proc_reap() closes it, or closes it with
 * proc_exec_close() when it kills the child without reaping it.
 */
int proc_spawn(const struct spawn_req *r, struct spawned *out, char *err, size_t errlen);
int proc_signal(int pidfd, int sig);
/*
 * SIGKILL a child and its process group (it leads its own session), then
 * reap it: a hook or check whose result no longer matters.
 */
void proc_kill_reap(pid_t pid, int pidfd);
/*
 * Reap an exited child by pidfd; returns 1 with a description, 0 if it still
 * runs, -errno.  With execfd (from proc_spawn, or NULL / -1: not known, as
 * for a child of an earlier agent), a child that never reached its execve is
 * "cannot start ...", its status 127; at 1, *execfd is closed and set to -1.
 */
int proc_reap(int pidfd, int *execfd, int *status, char *desc, size_t desclen);
/* Close *execfd if open and set it to -1. */
void proc_exec_close(int *execfd);
/*
 * Whether an sd_notify datagram of len bytes (not NUL-terminated) says the
 * sender is ready: 1 if one of its newline-separated assignments is exactly
 * "READY=1", else 0.  A message holding a NUL byte is not text: 0.
 */
int proc_notify_ready(const char *msg, size_t len);
/* Start time of pid (/proc/PID/stat field 22): tells a process from a reused pid; 0 if gone. */
unsigned long long proc_starttime(pid_t pid);

/* State letter (R, S, D, T, Z...) and command name of pid; 0, or -1 when it is gone. */
int proc_state(pid_t pid, char *state, char *comm, size_t commlen);

/*
 * The processes of roots (those still running) and all their descendants
 * now, from one scan of /proc: up to max into out; returns the count.
 */
int proc_descendants(const pid_t *roots, int nroots, pid_t *out, int max);

#endif /* BATON_PROC_H */
