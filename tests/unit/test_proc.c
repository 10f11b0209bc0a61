/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of user/proc.c: what a child started by proc_spawn() holds once
 * it runs, read back from /proc/PID/{status,fd,environ}: its uid, gids and
 * supplementary groups, no capability in any set (bounding set included),
 * no_new_privs, umask 022, exactly fds 0-2 plus its listening sockets, and
 * exactly the environment baton gives it.  Also: proc_spawn() returns
 * without waiting for the child's exec, and failures of the child's setup
 * come back as one line when it is reaped.  And proc_notify_ready() on
 * sd_notify messages.  Needs root (it starts children as nobody).
 *
 * gcc -std=gnu11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -fsanitize=address,undefined \
 *     -Iinclude -Iuser -o /tmp/test_proc tests/unit/test_proc.c user/proc.c \
 *     user/config.c -linih -lcmocka
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/types.h>

#include <cmocka.h>

#include "config.h"
#include "proc.h"

#define TEST_USER   "nobody"
#define NOTIFY_PATH "/run/baton-test/notify.sock"
#define NO_CAPS	    "0000000000000000"
#define MAX_FDS	    64
#define MAX_VARS    64
#define LEAKED_FD   40 /* an fd left open without FD_CLOEXEC */

/* The child of the running test, killed and reaped by its teardown. */
static pid_t kid = -1;
static int kid_pidfd = -1;
static int kid_execfd = -1;
static int socks[2] = {-1, -1};
static char tmpdir[PATH_MAX];
static char err[512];

/* ---- helpers ----------------------------------------------------------- */

static int listener(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

/*
 * Wait until the child sits in sleep(1)'s nanosleep: the dynamic loader of
 * the new program opens files of its own (fd 3) before that.  Bounded.
 */
static void wait_sleeping(pid_t pid)
{
	char path[64], line[256];
	long nr = -1;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (i = 0; i < 300; i++) {
		FILE *f = fopen(path, "re");

		nr = -1;
		if (f) {
			if (fgets(line, sizeof(line), f))
				nr = strtol(line, NULL, 10);
			fclose(f);
		}
		if (nr == SYS_clock_nanosleep || nr == SYS_nanosleep)
			return;
		usleep(10000);
	}
	fail_msg("child %d not in nanosleep after 3 s (syscall %ld)", (int)pid, nr);
}

/* Start r's child as kid, returning at once: 0, or proc_spawn's error (err says it). */
static int spawn_nowait(const struct spawn_req *r)
{
	struct spawned sp;
	int rc;

	memset(err, 0, sizeof(err));
	rc = proc_spawn(r, &sp, err, sizeof(err));
	if (rc) {
		kid = -1;
		kid_pidfd = kid_execfd = -1;
		return rc;
	}
	kid = sp.pid;
	kid_pidfd = sp.pidfd;
	kid_execfd = sp.execfd;
	return 0;
}

static int spawn(const struct spawn_req *r)
{
	int rc = spawn_nowait(r);

	if (!rc)
		wait_sleeping(kid);
	return rc;
}

/* Wait (bounded) for kid to exit and reap it: proc_reap's description in err, its status. */
static int reap_kid(void)
{
	struct pollfd p = {.fd = kid_pidfd, .events = POLLIN};
	int status = -1;

	if (poll(&p, 1, 5000) != 1)
		fail_msg("child %d still runs after 5 s", (int)kid);
	memset(err, 0, sizeof(err));
	assert_int_equal(proc_reap(kid_pidfd, &kid_execfd, &status, err, sizeof(err)), 1);
	assert_int_equal(kid_execfd, -1); /* closed by the reap */
	close(kid_pidfd);
	kid = -1;
	kid_pidfd = -1;
	return status;
}

static int kid_teardown(void **state)
{
	int i;

	(void)state;
	if (kid > 0)
		proc_kill_reap(kid, kid_pidfd);
	if (kid_pidfd >= 0)
		close(kid_pidfd);
	proc_exec_close(&kid_execfd);
	kid = -1;
	kid_pidfd = -1;
	for (i = 0; i < 2; i++) {
		if (socks[i] >= 0)
			close(socks[i]);
		socks[i] = -1;
	}
	return 0;
}

/* The value of "Name:\tvalue" in /proc/PID/status, without the line end. */
static void status_field(pid_t pid, const char *name, char *out, size_t outlen)
{
	char path[64], line[512];
	size_t len = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) || line[len] != ':')
			continue;
		snprintf(out, outlen, "%s", line + len + 1 + strspn(line + len + 1, " \t"));
		out[strcspn(out, "\n")] = '\0';
		fclose(f);
		return;
	}
	fclose(f);
	fail_msg("/proc/%d/status has no %s line", (int)pid, name);
}

#define assert_status(pid, name, want)                                                             \
	do {                                                                                       \
		char v_[512];                                                                      \
		status_field(pid, name, v_, sizeof(v_));                                           \
		if (strcmp(v_, want))                                                              \
			fail_msg("%s of the child: \"%s\", wanted \"%s\"", name, v_, want);        \
	} while (0)

static void assert_no_caps(pid_t pid)
{
	assert_status(pid, "CapInh", NO_CAPS);
	assert_status(pid, "CapPrm", NO_CAPS);
	assert_status(pid, "CapEff", NO_CAPS);
	assert_status(pid, "CapBnd", NO_CAPS);
	assert_status(pid, "CapAmb", NO_CAPS);
	assert_status(pid, "NoNewPrivs", "1");
	assert_status(pid, "Umask", "0022");
}

static void assert_ids(pid_t pid, uid_t uid, gid_t gid)
{
	char want[128];

	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", uid, uid, uid, uid);
	assert_status(pid, "Uid", want);
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", gid, gid, gid, gid);
	assert_status(pid, "Gid", want);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The child's supplementary groups, sorted; returns how many. */
static int child_groups(pid_t pid, int *g, int max)
{
	char v[512], *p, *end;
	int n = 0;

	status_field(pid, "Groups", v, sizeof(v));
	for (p = v; *p;) {
		long x = strtol(p, &end, 10);

		if (end == p)
			break;
		assert_true(n < max);
		g[n++] = (int)x;
		p = end + strspn(end, " ");
	}
	qsort(g, n, sizeof(*g), cmp_int);
	return n;
}

/* The child's open fds, sorted; returns how many. */
static int child_fds(pid_t pid, int *fds, int max)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		assert_true(n < max);
		fds[n++] = atoi(de->d_name);
	}
	closedir(d);
	qsort(fds, n, sizeof(*fds), cmp_int);
	return n;
}

static void assert_fds_exactly(pid_t pid, int count)
{
	int fds[MAX_FDS], n, i;

	n = child_fds(pid, fds, MAX_FDS);
	for (i = 0; i < n && i < count; i++)
		if (fds[i] != i)
			fail_msg("child fd %d open where fd %d was expected", fds[i], i);
	if (n != count)
		fail_msg("child has %d fds open (highest %d), wanted exactly 0..%d", n,
			 n ? fds[n - 1] : -1, count - 1);
}

static void fd_target(pid_t pid, int fd, char *out, size_t outlen)
{
	char path[64];
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	len = readlink(path, out, outlen - 1);
	assert_true(len > 0);
	out[len] = '\0';
}

/* The child's fd is the same socket as our fd: same inode. */
static void assert_same_socket(pid_t pid, int child_fd, int our_fd)
{
	char target[128], want[64];
	struct stat st;

	assert_int_equal(fstat(our_fd, &st), 0);
	snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)st.st_ino);
	fd_target(pid, child_fd, target, sizeof(target));
	if (strcmp(target, want))
		fail_msg("child fd %d is %s, wanted %s", child_fd, target, want);
}

/* The child's environment, sorted; returns how many; *buf to free. */
static int child_environ(pid_t pid, char **vars, int max, char **buf)
{
	char path[64];
	size_t cap = 65536, len = 0;
	ssize_t r;
	int fd, n = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	*buf = calloc(1, cap + 1);
	assert_non_null(*buf);
	while ((r = read(fd, *buf + len, cap - len)) > 0)
		len += r;
	close(fd);
	assert_true(len < cap);
	for (p = *buf; p < *buf + len; p += strlen(p) + 1) {
		assert_true(n < max);
		vars[n++] = p;
	}
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* want: NULL-terminated; compared as sets, duplicates count. */
static void assert_environ(pid_t pid, const char **want)
{
	char *got[MAX_VARS], *buf;
	const char *exp[MAX_VARS];
	int n, m = 0, i;

	n = child_environ(pid, got, MAX_VARS, &buf);
	while (want[m]) {
		assert_true(m < MAX_VARS);
		exp[m] = want[m];
		m++;
	}
	qsort(got, n, sizeof(*got), cmp_str);
	qsort(exp, m, sizeof(*exp), cmp_str);
	for (i = 0; i < n || i < m; i++) {
		const char *g = i < n ? got[i] : "(nothing)", *e = i < m ? exp[i] : "(nothing)";

		if (strcmp(g, e)) {
			print_error("child environment (%d variables):\n", n);
			for (int k = 0; k < n; k++)
				print_error("  %s\n", got[k]);
			free(buf);
			fail_msg("variable %d: got \"%s\", wanted \"%s\"", i, g, e);
		}
	}
	free(buf);
}

static char *const sleep_argv[] = {"/bin/sleep", "30", NULL};

/* ---- a child with a user and two sockets -------------------------------- */

static void spawn_user_child(void)
{
	/* MODE in both: env2's (a version's own environment) wins, once. */
	static char *const env[] = {"FOO=bar baz", "MODE=config", NULL};
	static char *const env2[] = {"EXTRA=1", "MODE=deploy", NULL};
	struct spawn_req r = {
	    .argv = sleep_argv,
	    .env = env,
	    .env2 = env2,
	    .nfds = 2,
	    .fdnames = "http:https",
	    .notify = NOTIFY_PATH,
	    .service = "web",
	    .version = 3,
	    .instance = 1,
	    .user = TEST_USER,
	};
	int leak, rc;

	socks[0] = listener();
	socks[1] = listener();
	r.fds = socks;
	/* An fd the agent forgot to mark close-on-exec must not reach the child. */
	leak = open("/dev/null", O_RDONLY);
	assert_true(leak >= 0);
	assert_int_equal(dup2(leak, LEAKED_FD), LEAKED_FD);
	close(leak);
	rc = spawn(&r);
	close(LEAKED_FD);
	if (rc)
		fail_msg("proc_spawn: %s", err);
	assert_true(kid > 0);
	assert_true(kid_pidfd >= 0);
}

static void user_child_ids_and_groups(void **state)
{
	struct passwd *pw = getpwnam(TEST_USER);
	gid_t want[64];
	int wantn = 64, got[64], n, i;
	int wanti[64];

	(void)state;
	assert_non_null(pw);
	assert_int_not_equal(pw->pw_uid, 0);
	spawn_user_child();
	assert_ids(kid, pw->pw_uid, pw->pw_gid);

	/* Supplementary groups: the user's own, as the group database says; none of ours. */
	assert_true(getgrouplist(pw->pw_name, pw->pw_gid, want, &wantn) >= 0);
	for (i = 0; i < wantn; i++)
		wanti[i] = (int)want[i];
	qsort(wanti, wantn, sizeof(*wanti), cmp_int);
	n = child_groups(kid, got, 64);
	assert_int_equal(n, wantn);
	for (i = 0; i < n; i++) {
		assert_int_equal(got[i], wanti[i]);
		assert_int_not_equal(got[i], 0);
	}
}

static void user_child_no_privileges(void **state)
{
	(void)state;
	spawn_user_child();
	assert_no_caps(kid);
}

static void user_child_fds(void **state)
{
	char target[128];

	(void)state;
	spawn_user_child();
	assert_fds_exactly(kid, 5);
	fd_target(kid, 0, target, sizeof(target));
	assert_string_equal(target, "/dev/null");
	assert_same_socket(kid, 3, socks[0]);
	assert_same_socket(kid, 4, socks[1]);
}

static void user_child_environ(void **state)
{
	struct passwd *pw = getpwnam(TEST_USER);
	char pid_var[32], home_var[300];
	const char *want[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	    "FOO=bar baz",
	    "EXTRA=1",
	    "MODE=deploy",
	    "LISTEN_FDS=2",
	    pid_var,
	    "LISTEN_FDNAMES=http:https",
	    "NOTIFY_SOCKET=" NOTIFY_PATH,
	    "BATON_SERVICE=web",
	    "BATON_VERSION=v3",
	    "BATON_INSTANCE=1",
	    "USER=" TEST_USER,
	    home_var,
	    NULL,
	};

	(void)state;
	assert_non_null(pw);
	snprintf(home_var, sizeof(home_var), "HOME=%s", pw->pw_dir);
	spawn_user_child();
	snprintf(pid_var, sizeof(pid_var), "LISTEN_PID=%d", (int)kid);
	assert_environ(kid, want);
}

/* The config's PATH, HOME and USER replace baton's, and none appears twice. */
static void user_child_config_env_wins(void **state)
{
	static char *const env[] = {"HOME=/srv/web", "PATH=/opt/web/bin:/usr/bin", NULL};
	static char *const env2[] = {"USER=web-deploy", NULL};
	struct spawn_req r = {
	    .argv = sleep_argv,
	    .env = env,
	    .env2 = env2,
	    .service = "web",
	    .version = 2,
	    .instance = -1,
	    .user = TEST_USER,
	};
	const char *want[] = {
	    "HOME=/srv/web",	 "PATH=/opt/web/bin:/usr/bin", "USER=web-deploy",
	    "BATON_SERVICE=web", "BATON_VERSION=v2",	       NULL,
	};

	(void)state;
	if (spawn(&r))
		fail_msg("proc_spawn: %s", err);
	assert_environ(kid, want);
}

/* ---- a child without a user: root, but with nothing else ---------------- */

static void root_child(void **state)
{
	static char *const env[] = {"PATH=/opt/bin:/usr/bin:/bin", NULL};
	struct spawn_req r = {
	    .argv = sleep_argv,
	    .env = env,
	    .service = "web",
	    .version = 1,
	    .instance = -1,
	};
	const char *want[] = {
	    "PATH=/opt/bin:/usr/bin:/bin",
	    "BATON_SERVICE=web",
	    "BATON_VERSION=v1",
	    NULL,
	};

	(void)state;
	if (spawn(&r))
		fail_msg("proc_spawn: %s", err);
	assert_ids(kid, 0, 0);
	assert_no_caps(kid);
	assert_fds_exactly(kid, 3);
	/* The config's PATH replaces the default one; no LISTEN_*, no BATON_INSTANCE. */
	assert_environ(kid, want);
}

/* A root child that execs again (a shell running the server) gains nothing. */
static void root_child_execs_again(void **state)
{
	static char *const argv[] = {"/bin/sh", "-c", "exec /bin/sleep 30", NULL};
	struct spawn_req r = {.argv = argv, .service = "web", .version = 1, .instance = -1};

	(void)state;
	if (spawn(&r))
		fail_msg("proc_spawn: %s", err);
	assert_ids(kid, 0, 0);
	assert_no_caps(kid);
}

/* ---- failures come back as one line ------------------------------------- */

static int tmp_setup(void **state)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/baton-test-proc.XXXXXX", base);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int tmp_teardown(void **state)
{
	char path[PATH_MAX + 16];

	kid_teardown(state);
	snprintf(path, sizeof(path), "%s/private", tmpdir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/root-only", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

/*
 * What fails in the child is not proc_spawn's error: the child exits 127
 * and its reap says, in one line, what the user is told.
 */
static void assert_one_line_failure(const struct spawn_req *r, const char *want)
{
	int rc = spawn_nowait(r), status;

	if (rc)
		fail_msg("proc_spawn returned %d (\"%s\"): the child's failure is its exit", rc,
			 err);
	status = reap_kid();
	if (status != 127 || strcmp(err, want))
		fail_msg("reaped with status %d, \"%s\"; wanted 127 and \"%s\"", status, err, want);
}

/* The workdir is entered as the child's user. */
static void workdir_denied_to_user(void **state)
{
	char dir[PATH_MAX + 16];
	struct spawn_req r = {.argv = sleep_argv, .service = "web", .instance = -1};

	(void)state;
	snprintf(dir, sizeof(dir), "%s/private", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	r.user = TEST_USER;
	r.workdir = dir;
	assert_one_line_failure(&r, "cannot start /bin/sleep: chdir: Permission denied");
}

/* root may execute it (the parent's access() check passes), the user may not. */
static void exec_denied_to_user(void **state)
{
	char path[PATH_MAX + 16], want[PATH_MAX + 64];
	char *argv[] = {path, NULL};
	struct spawn_req r = {.argv = argv, .service = "web", .instance = -1, .user = TEST_USER};
	int fd;

	(void)state;
	assert_int_equal(chmod(tmpdir, 0755), 0);
	snprintf(path, sizeof(path), "%s/root-only", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
	close(fd);
	snprintf(want, sizeof(want), "cannot start %s: exec: Permission denied", path);
	assert_one_line_failure(&r, want);
}

/* A user gone since the config was checked: looked up in the child, said at its exit. */
static void user_gone(void **state)
{
	struct spawn_req r = {.argv = sleep_argv,
			      .service = "web",
			      .instance = -1,
			      .user = "baton-test-no-such-user"};

	(void)state;
	assert_one_line_failure(
	    &r, "cannot start /bin/sleep: user baton-test-no-such-user does not exist");
}

/* What the agent can tell before the fork is still proc_spawn's own error, and no child. */
static void not_executable_refused(void **state)
{
	static char *const argv[] = {"/nonexistent/baton-test", NULL};
	struct spawn_req r = {.argv = argv, .service = "web", .instance = -1};

	(void)state;
	assert_int_equal(spawn_nowait(&r), -ENOENT);
	assert_string_equal(err, "/nonexistent/baton-test: No such file or directory");
	assert_int_equal(kid, -1);
}

/*
 * proc_spawn never waits for the child: here the child blocks before its
 * exec, writing its pid to a "cgroup.procs" that is a full pipe, as it
 * would on a stuck cgroup write (or an NSS lookup, or a chdir into a hung
 * mount).  proc_spawn returns at once; the child runs until killed, and its
 * reap then says it was killed, not that it could not start.
 */
static void spawn_does_not_wait(void **state)
{
	struct spawn_req r = {.argv = sleep_argv, .service = "web", .instance = -1};
	struct timespec t0, t1;
	char fill[4096];
	int full[2], status = 0, rc;
	long long ms;

	(void)state;
	memset(fill, 'x', sizeof(fill));
	assert_int_equal(pipe2(full, O_CLOEXEC | O_NONBLOCK), 0);
	while (write(full[1], fill, sizeof(fill)) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	/* Blocking again: the child's write of its pid waits for room that never comes. */
	assert_int_equal(fcntl(full[1], F_SETFL, 0), 0);
	r.in_cgroup = true;
	r.cg_procs = full[1];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = spawn_nowait(&r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(full[1]);
	if (rc)
		fail_msg("proc_spawn: %s", err);
	ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (ms > 500)
		fail_msg("proc_spawn took %lld ms with a child blocked before its exec", ms);
	/* Still blocked a while later: it had not failed and gone either. */
	usleep(200000);
	assert_int_equal(proc_reap(kid_pidfd, &kid_execfd, &status, err, sizeof(err)), 0);
	assert_true(kid_execfd >= 0);
	assert_int_equal(proc_signal(kid_pidfd, SIGKILL), 0);
	status = reap_kid();
	close(full[0]);
	assert_int_equal(status, 128 + SIGKILL);
	assert_string_equal(err, "killed by SIGKILL");
}

/*
 * A hardening step that fails is reported, and nothing starts: from a
 * process without CAP_SETPCAP in its effective set, setting securebits fails.
 */
static void hardening_failure_reported(void **state)
{
	int pfd[2], status;
	char buf[512];
	ssize_t n;
	pid_t p;

	(void)state;
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
		struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
		struct spawn_req r = {.argv = sleep_argv, .service = "web", .instance = -1};
		struct spawned sp;
		struct pollfd pl;
		int rc, st;

		close(pfd[0]);
		if (syscall(SYS_capget, &hdr, d) < 0)
			_exit(2);
		d[CAP_TO_INDEX(CAP_SETPCAP)].effective &= ~CAP_TO_MASK(CAP_SETPCAP);
		if (syscall(SYS_capset, &hdr, d) < 0)
			_exit(3);
		rc = proc_spawn(&r, &sp, buf, sizeof(buf));
		if (rc == 0) {
			/* It fails in the child: its reap says so, status 127. */
			pl = (struct pollfd){.fd = sp.pidfd, .events = POLLIN};
			if (poll(&pl, 1, 5000) != 1) {
				proc_kill_reap(sp.pid, sp.pidfd);
				snprintf(buf, sizeof(buf), "started anyway");
				rc = -1;
			} else if (proc_reap(sp.pidfd, &sp.execfd, &st, buf, sizeof(buf)) != 1 ||
				   st != 127) {
				rc = -1;
			}
		}
		if (write(pfd[1], buf, strlen(buf)) < 0)
			_exit(4);
		_exit(rc == 0 ? 0 : 1);
	}
	close(pfd[1]);
	n = read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	assert_int_equal(waitpid(p, &status, 0), p);
	buf[n > 0 ? n : 0] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    strcmp(buf, "cannot start /bin/sleep: set securebits (noroot, no ambient raise): "
			"Operation not permitted"))
		fail_msg("without CAP_SETPCAP: status 0x%x, \"%s\"", status, buf);
}

/* ---- sd_notify messages ------------------------------------------------ */

static int ready(const char *msg)
{
	return proc_notify_ready(msg, strlen(msg));
}

static void notify_ready_accepts(void **state)
{
	(void)state;
	assert_int_equal(ready("READY=1"), 1);
	assert_int_equal(ready("READY=1\n"), 1);
	assert_int_equal(ready("STATUS=up\nREADY=1"), 1);
	assert_int_equal(ready("READY=1\nSTATUS=serving\n"), 1);
	assert_int_equal(ready("\n\nREADY=1\n\n"), 1);
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(proc_notify_ready("READY=1garbage", 7), 1);
}

static void notify_ready_rejects(void **state)
{
	(void)state;
	assert_int_equal(ready(""), 0);
	assert_int_equal(ready("READY=0"), 0);
	assert_int_equal(ready("READY=10"), 0);
	assert_int_equal(ready("READY=1 "), 0);
	assert_int_equal(ready("READY=1\r\n"), 0);
	assert_int_equal(ready("NOTREADY=1"), 0);
	assert_int_equal(ready("STATUS=READY=1"), 0);
	assert_int_equal(ready("XREADY=1\nSTATUS=ok"), 0);
	assert_int_equal(ready("READY="), 0);
	assert_int_equal(proc_notify_ready("READY=1", 6), 0);
	assert_int_equal(proc_notify_ready("READY=1\0", 8), 0);
	assert_int_equal(proc_notify_ready("STATUS=a\0b\nREADY=1", 19), 0);
	assert_int_equal(proc_notify_ready(NULL, 0), 0);
}

/*
 * Give this process inheritable and ambient capabilities, as an agent started
 * with them would have: without proc.c's clearing they would survive the
 * setuid() and execve() into the child.
 */
static int leak_caps(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, d) < 0)
		return -1;
	d[CAP_TO_INDEX(CAP_NET_BIND_SERVICE)].inheritable |= CAP_TO_MASK(CAP_NET_BIND_SERVICE);
	d[CAP_TO_INDEX(CAP_NET_RAW)].inheritable |= CAP_TO_MASK(CAP_NET_RAW);
	if (syscall(SYS_capset, &hdr, d) < 0)
		return -1;
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0);
}

int main(void)
{
	const struct CMUnitTest user_tests[] = {
	    cmocka_unit_test_teardown(user_child_ids_and_groups, kid_teardown),
	    cmocka_unit_test_teardown(user_child_no_privileges, kid_teardown),
	    cmocka_unit_test_teardown(user_child_fds, kid_teardown),
	    cmocka_unit_test_teardown(user_child_environ, kid_teardown),
	    cmocka_unit_test_teardown(user_child_config_env_wins, kid_teardown),
	};
	const struct CMUnitTest root_tests[] = {
	    cmocka_unit_test_teardown(root_child, kid_teardown),
	    cmocka_unit_test_teardown(root_child_execs_again, kid_teardown),
	};
	const struct CMUnitTest fail_tests[] = {
	    cmocka_unit_test_setup_teardown(workdir_denied_to_user, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(exec_denied_to_user, tmp_setup, tmp_teardown),
	    cmocka_unit_test_teardown(user_gone, kid_teardown),
	    cmocka_unit_test_teardown(not_executable_refused, kid_teardown),
	    cmocka_unit_test_teardown(spawn_does_not_wait, kid_teardown),
	    cmocka_unit_test(hardening_failure_reported),
	};
	const struct CMUnitTest notify_tests[] = {
	    cmocka_unit_test(notify_ready_accepts),
	    cmocka_unit_test(notify_ready_rejects),
	};
	int failed = 0;

	if (geteuid() != 0) {
		fprintf(stderr, "test_proc: must run as root (it starts children as %s)\n",
			TEST_USER);
		return 1;
	}
	/* Not 022, so a child's Umask of 0022 shows that proc.c set it. */
	umask(077);
	if (leak_caps() < 0) {
		perror("test_proc: raising inheritable and ambient capabilities");
		return 1;
	}
	failed += cmocka_run_group_tests_name("child as a user", user_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("child as root", root_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("failures", fail_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("proc_notify_ready", notify_tests, NULL, NULL);
	return failed ? 1 : 0;
}
