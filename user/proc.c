/* SPDX-License-Identifier: MIT */
/*
 * Starting and stopping a version's processes.  Children get their sockets
 * by the systemd socket-activation protocol (LISTEN_FDS from fd 3), a clean
 * environment, their own session (so a signal to the agent's terminal or
 * process group does not reach them), and the configured user.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "proc.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define ENV_MAX (MAX_ENV + 16)

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

int proc_reap(int pidfd, int *status, char *desc, size_t desclen)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, pidfd, &si, WEXITED | WNOHANG) < 0)
		return -errno;
	if (!si.si_pid)
		return 0;
	if (si.si_code == CLD_EXITED) {
		*status = si.si_status;
		snprintf(desc, desclen, "exited with status %d", si.si_status);
	} else {
		*status = 128 + si.si_status;
		snprintf(desc, desclen, "killed by %s%s", signal_name(si.si_status),
			 si.si_code == CLD_DUMPED ? " (core dumped)" : "");
	}
	return 1;
}

/* In the child: report errno to the parent over the exec pipe and die. */
static void __attribute__((noreturn)) child_fail(int pipefd, const char *what)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));

	if (write(pipefd, msg, n > 0 ? (size_t)n : 0) < 0) {
		/* nothing more we can do */
	}
	_exit(127);
}

static void __attribute__((noreturn))
child(const struct spawn_req *r, const struct passwd *pw, int pipefd)
{
	char *envp[ENV_MAX + 1];
	char fds_env[32], pid_env[32], ver_env[32], inst_env[32];
	char *names_env = NULL, *notify_env = NULL, *svc_env = NULL, *user_env = NULL,
	     *home_env = NULL;
	int tmp[MAX_LISTEN];
	sigset_t all;
	int n = 0, i, fd, hi;

	/* The agent blocks signals for its signalfd; children start clean. */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (i = 1; i < NSIG; i++)
		signal(i, SIG_DFL);
	if (setsid() < 0)
		child_fail(pipefd, "setsid");

	/*
	 * Lift the sockets and the error pipe above the range they go to, then
	 * place them: sockets at 3..3+N-1 (dup2 clears FD_CLOEXEC), the pipe at
	 * 3+N with FD_CLOEXEC so exec closes it, and nothing else above.
	 */
	hi = 3 + r->nfds + 1;
	for (i = 0; i < r->nfds; i++) {
		tmp[i] = fcntl(r->fds[i], F_DUPFD_CLOEXEC, hi);
		if (tmp[i] < 0)
			child_fail(pipefd, "dup");
	}
	fd = fcntl(pipefd, F_DUPFD_CLOEXEC, hi);
	if (fd < 0)
		child_fail(pipefd, "dup");
	for (i = 0; i < r->nfds; i++)
		if (dup2(tmp[i], 3 + i) < 0)
			child_fail(fd, "dup2");
	if (dup3(fd, 3 + r->nfds, O_CLOEXEC) < 0)
		child_fail(fd, "dup3");
	pipefd = 3 + r->nfds;
	if (syscall(SYS_close_range, pipefd + 1, ~0U, 0) < 0)
		child_fail(pipefd, "close_range");
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, 0) < 0)
		child_fail(pipefd, "/dev/null");
	close(fd);

	envp[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (i = 0; r->env && r->env[i] && n < ENV_MAX - 10; i++)
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
		if (asprintf(&names_env, "LISTEN_FDNAMES=%s", r->fdnames) > 0)
			envp[n++] = names_env;
	}
	if (r->notify && asprintf(&notify_env, "NOTIFY_SOCKET=%s", r->notify) > 0)
		envp[n++] = notify_env;
	if (asprintf(&svc_env, "BATON_SERVICE=%s", r->service) > 0)
		envp[n++] = svc_env;
	envp[n++] = ver_env;
	if (r->instance >= 0)
		envp[n++] = inst_env;
	if (pw) {
		if (asprintf(&user_env, "USER=%s", pw->pw_name) > 0)
			envp[n++] = user_env;
		if (asprintf(&home_env, "HOME=%s", pw->pw_dir) > 0)
			envp[n++] = home_env;
	}
	envp[n] = NULL;

	if (pw) {
		if (initgroups(pw->pw_name, pw->pw_gid) < 0)
			child_fail(pipefd, "initgroups");
		if (setgid(pw->pw_gid) < 0)
			child_fail(pipefd, "setgid");
		if (setuid(pw->pw_uid) < 0)
			child_fail(pipefd, "setuid");
	}
	if (chdir(r->workdir && r->workdir[0] ? r->workdir : "/") < 0)
		child_fail(pipefd, "chdir");
	execve(r->argv[0], r->argv, envp);
	child_fail(pipefd, "exec");
}

int proc_spawn(const struct spawn_req *r, pid_t *pid, int *pidfd, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	int pfd[2];
	char msg[256];
	ssize_t n;
	pid_t p;
	int fd;

	if (r->user && r->user[0]) {
		pw = getpwnam(r->user);
		if (!pw) {
			snprintf(err, errlen, "user %s does not exist", r->user);
			return -ENOENT;
		}
	}
	/* Check here what execve would fail on, so the error is a sentence. */
	if (access(r->argv[0], X_OK) < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", r->argv[0], strerror(e));
		return -e;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	p = fork();
	if (p < 0) {
		int e = errno;

		close(pfd[0]);
		close(pfd[1]);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -e;
	}
	if (p == 0) {
		close(pfd[0]);
		child(r, pw, pfd[1]);
	}
	close(pfd[1]);
	/* EOF: the exec succeeded (the pipe is CLOEXEC); text: what failed. */
	n = read(pfd[0], msg, sizeof(msg) - 1);
	close(pfd[0]);
	fd = pidfd_open(p);
	if (fd < 0) {
		int e = errno;

		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		snprintf(err, errlen, "pidfd_open: %s (baton needs Linux 5.3 or later)",
			 strerror(e));
		return -e;
	}
	if (n > 0) {
		msg[n] = '\0';
		waitid(P_PIDFD, fd, &(siginfo_t){0}, WEXITED);
		close(fd);
		snprintf(err, errlen, "cannot start %s: %s", r->argv[0], msg);
		return -EIO;
	}
	*pid = p;
	*pidfd = fd;
	return 0;
}
