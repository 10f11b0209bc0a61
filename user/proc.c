/* SPDX-License-Identifier: MIT */
/*
 * Starting and stopping a version's processes.  Children get their sockets
 * by the systemd socket-activation protocol (LISTEN_FDS from fd 3), a clean
 * environment, their own session (so a signal to the agent's terminal or
 * process group does not reach them), and the configured user.
 *
 * The agent runs as root with every capability; none of that may reach a
 * child.  Before execve the child clears its capability bounding set, its
 * ambient, inheritable, permitted and effective sets, locks root out of
 * regaining capabilities at exec (SECBIT_NOROOT), sets no_new_privs (no
 * setuid or file-capability binary can give any back) and umask 022.  A
 * child without a configured user therefore stays uid 0 but holds no
 * capability at all: it can touch what root owns, nothing more.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/securebits.h>

#include "config.h"
#include "proc.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define ENV_MAX (2 * MAX_ENV + 16) /* the config's, the version's, baton's own */

/* A child's file mode creation mask; the config has no key for it. */
#define CHILD_UMASK 022

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/*
 * The highest capability number this kernel knows, or -1 when
 * /proc/sys/kernel/cap_last_cap cannot be read (the child then probes until
 * PR_CAPBSET_READ says EINVAL).  Read in the parent, where stdio is safe.
 */
static int cap_last_cap(void)
{
	static int last = -2;
	FILE *f;

	if (last != -2)
		return last;
	last = -1;
	f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = -1;
		fclose(f);
	}
	return last;
}

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int proc_signal(int pidfd, int sig)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

void proc_kill_reap(pid_t pid, int pidfd)
{
	siginfo_t si;

	/* Not reaped yet, so pid still names our child and its group. */
	kill(-pid, SIGKILL);
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	/* SIGKILL cannot be caught; the wait is as long as the kernel's teardown. */
	while (waitid(P_PIDFD, pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
}

/*
 * What a child that failed before its execve wrote to its exec pipe: the
 * whole "cannot start ..." line (one write, under PIPE_BUF, made before its
 * _exit, so it is there once its pidfd is readable), into desc.  0 when
 * there is none: the exec happened (EOF) or the child was killed first.
 */
static int exec_failure(int execfd, char *desc, size_t desclen)
{
	ssize_t n;

	if (execfd < 0 || desclen < 2)
		return 0;
	n = read(execfd, desc, desclen - 1);
	if (n <= 0)
		return 0;
	desc[n] = '\0';
	return 1;
}

int proc_reap(int pidfd, int *execfd, int *status, char *desc, size_t desclen)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, pidfd, &si, WEXITED | WNOHANG) < 0)
		return -errno;
	if (!si.si_pid)
		return 0;
	if (si.si_code == CLD_EXITED) {
		*status = si.si_status;
		if (!exec_failure(execfd ? *execfd : -1, desc, desclen))
			snprintf(desc, desclen, "exited with status %d", si.si_status);
	} else {
		*status = 128 + si.si_status;
		snprintf(desc, desclen, "killed by %s%s", signal_name(si.si_status),
			 si.si_code == CLD_DUMPED ? " (core dumped)" : "");
	}
	proc_exec_close(execfd);
	return 1;
}

void proc_exec_close(int *execfd)
{
	if (execfd && *execfd >= 0) {
		close(*execfd);
		*execfd = -1;
	}
}

int proc_notify_ready(const char *msg, size_t len)
{
	static const char ready[] = "READY=1";
	const char *p = msg, *end = msg + len, *nl;
	size_t n;

	if (!msg || memchr(msg, '\0', len))
		return 0;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl ? nl : end) - p);
		if (n == sizeof(ready) - 1 && !memcmp(p, ready, n))
			return 1;
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

/*
 * In the child: report what failed to the parent over the exec pipe, as the
 * whole line proc_reap() gives for this exit, and die.  One write of less
 * than PIPE_BUF: atomic, and it cannot block on a pipe nobody has written to.
 */
static void __attribute__((noreturn))
child_fail_text(int pipefd, const char *argv0, const char *text)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "cannot start %s: %s", argv0, text);

	if (n >= (int)sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (write(pipefd, msg, n > 0 ? (size_t)n : 0) < 0) {
		/* nothing more we can do */
	}
	_exit(127);
}

/* The same, for a step that failed with errno. */
static void __attribute__((noreturn))
child_fail(const struct spawn_req *r, int pipefd, const char *what)
{
	char text[256];

	snprintf(text, sizeof(text), "%s: %s", what, strerror(errno));
	child_fail_text(pipefd, r->argv[0], text);
}

static int env_has(char *const *env, const char *prefix)
{
	size_t len = strlen(prefix);

	for (; env && *env; env++)
		if (!strncmp(*env, prefix, len))
			return 1;
	return 0;
}

/* Whether env has an entry of the name that kv ("NAME=...") has. */
static int env_named(char *const *env, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t len = eq ? (size_t)(eq - kv) + 1 : strlen(kv);

	for (; env && *env; env++)
		if (!strncmp(*env, kv, len))
			return 1;
	return 0;
}

/*
 * Empty the bounding set: after this no execve, whatever the uid or the
 * file's capabilities, can give the child a capability.  Needs CAP_SETPCAP,
 * so it comes before the uid change.  Returns 0, or -1 with errno and the
 * failing step in what.
 */
static int drop_bounding_set(int last, char *what, size_t whatlen)
{
	int cap, max = last >= 0 ? last : 63, rc;

	for (cap = 0; cap <= max; cap++) {
		rc = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (rc < 0 && errno == EINVAL && last < 0)
			break; /* past the kernel's last capability */
		if (rc < 0) {
			snprintf(what, whatlen, "read capability %d of the bounding set", cap);
			return -1;
		}
		if (rc == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			snprintf(what, whatlen, "drop capability %d from the bounding set", cap);
			return -1;
		}
	}
	return 0;
}

/* Clear the effective, permitted and inheritable sets of this process. */
static int clear_caps(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	return (int)syscall(SYS_capset, &hdr, data);
}

static void __attribute__((noreturn)) child(const struct spawn_req *r, int last_cap, int pipefd)
{
	struct passwd *pw = NULL;
	char what[96];
	char *envp[ENV_MAX + 1];
	char fds_env[32], pid_env[32], ver_env[32], inst_env[32];
	char *names_env = NULL, *notify_env = NULL, *svc_env = NULL, *user_env = NULL,
	     *home_env = NULL;
	int tmp[MAX_LISTEN];
	sigset_t all;
	int n = 0, i, fd, hi;

	/*
	 * Into the version's cgroup first, before this process can fork: from
	 * here on every descendant is born in it.  (fork, then the child's own
	 * write, rather than clone3(CLONE_INTO_CGROUP): the child runs C
	 * library code below, which glibc's fork makes safe and a raw clone3
	 * does not; and it works before Linux 5.7.)  A failure is reported
	 * through the exec pipe like any other.
	 */
	if (r->in_cgroup) {
		char me[24];
		int len = snprintf(me, sizeof(me), "%d", (int)getpid());

		if (write(r->cg_procs, me, (size_t)len) != len)
			child_fail(r, pipefd, "join the version's cgroup");
	}
	/* The agent blocks signals for its signalfd; children start clean. */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (i = 1; i < NSIG; i++)
		signal(i, SIG_DFL);
	if (setsid() < 0)
		child_fail(r, pipefd, "setsid");

	/*
	 * Lift the sockets and the error pipe above the range they go to, then
	 * place them: sockets at 3..3+N-1 (dup2 clears FD_CLOEXEC), the pipe at
	 * 3+N with FD_CLOEXEC so exec closes it, and nothing else above.
	 */
	hi = 3 + r->nfds + 1;
	for (i = 0; i < r->nfds; i++) {
		tmp[i] = fcntl(r->fds[i], F_DUPFD_CLOEXEC, hi);
		if (tmp[i] < 0)
			child_fail(r, pipefd, "dup");
	}
	fd = fcntl(pipefd, F_DUPFD_CLOEXEC, hi);
	if (fd < 0)
		child_fail(r, pipefd, "dup");
	for (i = 0; i < r->nfds; i++)
		if (dup2(tmp[i], 3 + i) < 0)
			child_fail(r, fd, "dup2");
	if (dup3(fd, 3 + r->nfds, O_CLOEXEC) < 0)
		child_fail(r, fd, "dup3");
	pipefd = 3 + r->nfds;
	if (syscall(SYS_close_range, pipefd + 1, ~0U, 0) < 0)
		child_fail(r, pipefd, "close_range");
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, 0) < 0)
		child_fail(r, pipefd, "/dev/null");
	close(fd);

	/*
	 * The user's entry, looked up here and not in the agent: an NSS
	 * lookup (LDAP, sssd) may take as long as its server does, and the
	 * agent's loop waits on nothing.  Safe after fork: the agent's other
	 * threads (logq.c, evlog.c) never call NSS, and glibc's fork leaves
	 * malloc and stdio usable in the child (initgroups below did so
	 * already).  The config checked the user exists; this is the race.
	 */
	if (r->user && r->user[0]) {
		char text[128];

		errno = 0;
		pw = getpwnam(r->user);
		if (!pw) {
			/* getpwnam(3): these errno values, or none, say "no such user". */
			if (!errno || errno == ENOENT || errno == ESRCH || errno == EBADF ||
			    errno == EPERM)
				snprintf(text, sizeof(text), "user %s does not exist", r->user);
			else
				snprintf(text, sizeof(text), "look up user %s: %s", r->user,
					 strerror(errno));
			child_fail_text(pipefd, r->argv[0], text);
		}
	}

	/*
	 * A PATH from the config or the agent replaces the default rather than
	 * sitting behind it (getenv() takes the first of two).
	 */
	if (!env_has(r->env, "PATH=") && !env_has(r->env2, "PATH="))
		envp[n++] = DEFAULT_PATH;
	/* env2 (a version's own environment, or the agent's) overrides env by name. */
	for (i = 0; r->env && r->env[i] && n < ENV_MAX - 10; i++)
		if (!env_named(r->env2, r->env[i]))
			envp[n++] = r->env[i];
	for (i = 0; r->env2 && r->env2[i] && n < ENV_MAX - 10; i++)
		envp[n++] = r->env2[i];
	snprintf(fds_env, sizeof(fds_env), "LISTEN_FDS=%d", r->nfds);
	snprintf(pid_env, sizeof(pid_env), "LISTEN_PID=%d", (int)getpid());
	snprintf(ver_env, sizeof(ver_env), "BATON_VERSION=v%d", r->version);
	snprintf(inst_env, sizeof(inst_env), "BATON_INSTANCE=%d", r->instance);
	if (r->nfds) {
		envp[n++] = fds_env;
		envp[n++] = pid_env;
		if (asprintf(&names_env, "LISTEN_FDNAMES=%s", r->fdnames ? r->fdnames : "") > 0)
			envp[n++] = names_env;
	}
	if (r->notify && asprintf(&notify_env, "NOTIFY_SOCKET=%s", r->notify) > 0)
		envp[n++] = notify_env;
	if (asprintf(&svc_env, "BATON_SERVICE=%s", r->service) > 0)
		envp[n++] = svc_env;
	envp[n++] = ver_env;
	if (r->instance >= 0)
		envp[n++] = inst_env;
	/* Like PATH: what the config sets wins, and no variable appears twice. */
	if (pw) {
		if (!env_has(r->env, "USER=") && !env_has(r->env2, "USER=") &&
		    asprintf(&user_env, "USER=%s", pw->pw_name) > 0)
			envp[n++] = user_env;
		if (!env_has(r->env, "HOME=") && !env_has(r->env2, "HOME=") &&
		    asprintf(&home_env, "HOME=%s", pw->pw_dir) > 0)
			envp[n++] = home_env;
	}
	envp[n] = NULL;

	umask(CHILD_UMASK);
	/*
	 * Privileged steps first, while CAP_SETPCAP and CAP_SETUID are still
	 * held: root gets no capabilities at execve (and cannot undo that),
	 * no ambient capability can be raised, the bounding set is empty.
	 */
	if (prctl(PR_SET_SECUREBITS,
		  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
		      SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
		  0, 0, 0) < 0)
		child_fail(r, pipefd, "set securebits (noroot, no ambient raise)");
	if (drop_bounding_set(last_cap, what, sizeof(what)) < 0)
		child_fail(r, pipefd, what);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		child_fail(r, pipefd, "clear ambient capabilities");
	if (pw) {
		if (initgroups(pw->pw_name, pw->pw_gid) < 0)
			child_fail(r, pipefd, "initgroups");
		if (setgid(pw->pw_gid) < 0)
			child_fail(r, pipefd, "setgid");
		if (setuid(pw->pw_uid) < 0)
			child_fail(r, pipefd, "setuid");
	}
	/*
	 * setuid() away from root clears permitted and effective, never
	 * inheritable, and a child without a user is still root: clear all three.
	 */
	if (clear_caps() < 0)
		child_fail(r, pipefd, "clear capabilities (capset)");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(r, pipefd, "set no_new_privs");
	/* As the child's user, so a directory it may not enter fails here. */
	if (chdir(r->workdir && r->workdir[0] ? r->workdir : "/") < 0)
		child_fail(r, pipefd, "chdir");
	execve(r->argv[0], r->argv, envp);
	child_fail(r, pipefd, "exec");
}

int proc_spawn(const struct spawn_req *r, struct spawned *out, char *err, size_t errlen)
{
	int pfd[2];
	pid_t p;
	int fd, e, last_cap = cap_last_cap();

	/* Check here what execve would fail on, so the error is a sentence. */
	if (access(r->argv[0], X_OK) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", r->argv[0], strerror(e));
		return -e;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		e = errno;
		snprintf(err, errlen, "pipe: %s", strerror(e));
		return -e;
	}
	/* Only the parent's end: the child's write must not fail for want of room. */
	if (fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0) {
		e = errno;
		close(pfd[0]);
		close(pfd[1]);
		snprintf(err, errlen, "pipe: %s", strerror(e));
		return -e;
	}
	p = fork();
	if (p < 0) {
		e = errno;
		close(pfd[0]);
		close(pfd[1]);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -e;
	}
	if (p == 0) {
		close(pfd[0]);
		child(r, last_cap, pfd[1]);
	}
	close(pfd[1]);
	fd = pidfd_open(p);
	if (fd < 0) {
		e = errno;
		/* A child cannot have been reaped yet: the wait is the kernel's teardown. */
		kill(p, SIGKILL);
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
		close(pfd[0]);
		snprintf(err, errlen, "pidfd_open: %s (baton needs Linux 5.3 or later)",
			 strerror(e));
		return -e;
	}
	/*
	 * Nothing here waits for the child's exec: what fails in it (its user,
	 * cgroup, groups, workdir, the exec itself) is on the exec pipe when
	 * proc_reap() sees it exit.
	 */
	out->pid = p;
	out->pidfd = fd;
	out->execfd = pfd[0];
	return 0;
}

/* /proc/PID/stat into buf, NUL-terminated: its length, or -1 when pid is gone. */
static ssize_t read_stat(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot; 0 if gone. */
unsigned long long proc_starttime(pid_t pid)
{
	char buf[1024], *p;
	unsigned long long t = 0;
	int k;

	if (read_stat(pid, buf, sizeof(buf)) < 0)
		return 0;
	/* The command name may hold spaces and parentheses: count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (k = 2; k < 22 && p; k++)
		p = strchr(p + 1, ' ');
	if (p)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/* State letter (R, S, D, T, t, Z...) and command name of pid, from /proc/PID/stat; -1 if gone. */
int proc_state(pid_t pid, char *state, char *comm, size_t commlen)
{
	char buf[512], *open_p, *close_p;
	size_t len;

	if (read_stat(pid, buf, sizeof(buf)) < 0)
		return -1;
	open_p = strchr(buf, '(');
	close_p = strrchr(buf, ')');
	if (!open_p || !close_p || close_p < open_p || close_p[1] != ' ' || !close_p[2])
		return -1;
	len = (size_t)(close_p - open_p - 1);
	if (len >= commlen)
		len = commlen - 1;
	memcpy(comm, open_p + 1, len);
	comm[len] = '\0';
	*state = close_p[2];
	return 0;
}

/* Parent of pid from /proc/PID/stat (field 4); -1 if gone. */
static pid_t proc_ppid(pid_t pid)
{
	char buf[512], *p;

	if (read_stat(pid, buf, sizeof(buf)) < 0)
		return -1;
	p = strrchr(buf, ')');
	if (!p || !(p = strchr(p + 2, ' ')))
		return -1;
	return (pid_t)atoi(p + 1);
}

int proc_descendants(const pid_t *roots, int nroots, pid_t *out, int max)
{
	struct dirent *de;
	pid_t *pid = NULL, *ppid = NULL, *np;
	size_t n = 0, cap = 0;
	int nout = 0, k, added;
	size_t i;
	DIR *d;

	for (k = 0; k < nroots && nout < max; k++) {
		int j;

		for (j = 0; j < nout && out[j] != roots[k]; j++)
			;
		if (j == nout && roots[k] > 1 && !kill(roots[k], 0))
			out[nout++] = roots[k];
	}
	d = opendir("/proc");
	if (!d)
		return nout;
	while ((de = readdir(d))) {
		pid_t p = (pid_t)atoi(de->d_name);

		if (p <= 1)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			np = realloc(pid, cap * sizeof(*pid));
			if (!np)
				break;
			pid = np;
			np = realloc(ppid, cap * sizeof(*ppid));
			if (!np)
				break;
			ppid = np;
		}
		pid[n] = p;
		ppid[n] = proc_ppid(p);
		n++;
	}
	closedir(d);
	/* Each pass adds the children of what is in: as many passes as the tree is deep. */
	do {
		added = 0;
		for (i = 0; i < n && nout < max; i++) {
			bool in = false, parent_in = false;

			for (k = 0; k < nout; k++) {
				in |= out[k] == pid[i];
				parent_in |= out[k] == ppid[i];
			}
			if (parent_in && !in) {
				out[nout++] = pid[i];
				added++;
			}
		}
	} while (added && nout < max);
	free(pid);
	free(ppid);
	return nout;
}
