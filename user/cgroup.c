/* SPDX-License-Identifier: MIT */
/*
 * One cgroup v2 per version, so that baton's bounds reach every process a
 * version starts (a pre-forking master's workers, their detached
 * grandchildren), not only the pid it started:
 *
 *   <mount>/<subtree>/agent                  the agent itself (when needed)
 *   <mount>/<subtree>/services/<svc>/v<N>    every process of that version
 *
 * The subtree is the cgroup-dir key, by default the agent's own cgroup
 * (under systemd with Delegate=yes, the service's); when the agent runs in
 * the root cgroup, /baton.  cgroup v2 lets no process live in a cgroup whose
 * children get controllers, so an agent whose own cgroup is the subtree
 * moves into the agent leaf.
 *
 * Everything used here is the v2 core, present without any controller
 * (hybrid hierarchies have cgroup2 mounted with none): cgroup.procs,
 * cgroup.events (populated), cgroup.kill (Linux 5.14), cpu.stat's usage.
 *
 * Without a writable cgroup v2, cg_open says why and the caller falls back
 * to process groups (each instance leads its own session).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

#define CG_PATH 1024

static char mnt[256];		   /* the cgroup2 mount */
static char own[CG_PATH];	   /* the agent's cgroup at start, relative to mnt */
static char sub[CG_PATH];	   /* the subtree, relative to mnt */
static char svcdir[CG_PATH + 300]; /* absolute: <mnt><sub>/services */
static char controllers[256];	   /* what the services' cgroups may enable */
static bool enabled;
static int ifd = -1; /* inotify: cgroup.events of each version */

bool cg_enabled(void)
{
	return enabled;
}

const char *cg_subtree(void)
{
	return sub;
}

const char *cg_controllers(void)
{
	return controllers;
}

int cg_events_fd(void)
{
	return ifd;
}

/* The first cgroup2 mount in /proc/self/mounts. */
static int find_mount(void)
{
	char line[PATH_MAX + 256], dev[64], path[256], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %255s %63s", dev, path, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(mnt, sizeof(mnt), "%s", path);
			found = 1;
		}
	fclose(f);
	return found;
}

/* The "0::PATH" line of /proc/self/cgroup. */
static int find_own(void)
{
	char line[PATH_MAX + 16];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			if (strlen(line + 3) < sizeof(own)) {
				memcpy(own, line + 3, strlen(line + 3) + 1);
				found = 1;
			}
		}
	fclose(f);
	return found;
}

static int read_file_at(int dirfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	buf[n] = '\0';
	return (int)n;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	return 0;
}

static int mkdir_ok(const char *path)
{
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

int cg_open(const char *dir, char *note, size_t notelen)
{
	char path[sizeof(svcdir) + 64], buf[64];
	int r;

	enabled = false;
	if (dir && !strcmp(dir, CGROUP_DIR_OFF)) {
		snprintf(note, notelen, "cgroups are off (cgroup-dir = off)");
		return 1;
	}
	if (!find_mount()) {
		snprintf(note, notelen,
			 "no cgroup v2 is mounted (mount -t cgroup2 none "
			 "/sys/fs/cgroup)");
		return 1;
	}
	if (!find_own()) {
		snprintf(note, notelen, "/proc/self/cgroup has no cgroup v2 line");
		return 1;
	}
	if (dir && dir[0] && strlen(dir) < sizeof(sub))
		memcpy(sub, dir, strlen(dir) + 1);
	else if (!strcmp(own, "/"))
		snprintf(sub, sizeof(sub), "/baton");
	else
		memcpy(sub, own, sizeof(sub));
	snprintf(path, sizeof(path), "%s%s", mnt, sub);
	r = mkdir_ok(path);
	if (r) {
		snprintf(note, notelen, "cannot create the cgroup %s: %s (no delegation?)", path,
			 strerror(-r));
		return 1;
	}
	/*
	 * In its own cgroup the agent would be a process of an inner cgroup:
	 * move it to a leaf.  From the root cgroup it moves too, into the
	 * subtree it made: the listeners it makes from then on are in its
	 * cgroup, where the track program runs (track_scope), and so not on
	 * every socket of the host.
	 */
	if (!strcmp(sub, own) || !strcmp(own, "/")) {
		snprintf(path, sizeof(path), "%s%s/agent", mnt, sub);
		r = mkdir_ok(path);
		if (!r) {
			snprintf(path, sizeof(path), "%s%s/agent/cgroup.procs", mnt, sub);
			snprintf(buf, sizeof(buf), "%d", (int)getpid());
			r = write_file(path, buf);
		}
		if (r) {
			snprintf(note, notelen,
				 "cannot move the agent into %s: %s (no delegation?)", path,
				 strerror(-r));
			return 1;
		}
	}
	snprintf(svcdir, sizeof(svcdir), "%s%s/services", mnt, sub);
	r = mkdir_ok(svcdir);
	if (r) {
		snprintf(note, notelen, "cannot create the cgroup %s: %s (no delegation?)", svcdir,
			 strerror(-r));
		return 1;
	}
	/* A read-only cgroupfs lets stat and open for reading through: try a write. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", svcdir);
	r = open(path, O_WRONLY | O_CLOEXEC);
	if (r < 0) {
		snprintf(note, notelen, "cannot write %s: %s (no delegation?)", path,
			 strerror(errno));
		return 1;
	}
	close(r);
	snprintf(path, sizeof(path), "%s/cgroup.controllers", svcdir);
	r = open(path, O_RDONLY | O_CLOEXEC);
	if (r >= 0) {
		ssize_t n = read(r, controllers, sizeof(controllers) - 1);

		controllers[n > 0 ? n : 0] = '\0';
		controllers[strcspn(controllers, "\n")] = '\0';
		close(r);
	}
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd < 0) {
		snprintf(note, notelen, "inotify: %s", strerror(errno));
		return 1;
	}
	enabled = true;
	return 0;
}

int cg_pid_path(pid_t pid, char *buf, size_t len)
{
	char path[64], line[PATH_MAX + 16];
	FILE *f;
	int r = -ENOENT;

	if (!mnt[0] && !find_mount())
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			/* The root cgroup is the mount itself. */
			if ((size_t)snprintf(buf, len, "%s%s", mnt,
					     strcmp(line + 3, "/") ? line + 3 : "") < len)
				r = 0;
			break;
		}
	fclose(f);
	return r;
}

int cg_offers(const char *dir, const char *ctrl, char *where, size_t wlen)
{
	char path[sizeof(svcdir) + 32], buf[256], *p, *tok, *save;
	int fd;
	ssize_t n;

	if (dir && !strcmp(dir, CGROUP_DIR_OFF)) {
		snprintf(where, wlen, "cgroups are off (cgroup-dir = off)");
		return -1;
	}
	if (!find_mount() || !find_own()) {
		snprintf(where, wlen, "no cgroup v2 is mounted");
		return -1;
	}
	if (dir && dir[0])
		snprintf(path, sizeof(path), "%s%.*s", mnt, CG_PATH - 1, dir);
	else
		snprintf(path, sizeof(path), "%s%s", mnt, strcmp(own, "/") ? own : "");
	/* The subtree may not exist yet: its nearest ancestor offers at least as much. */
	for (;;) {
		size_t len = strlen(path);

		snprintf(path + len, sizeof(path) - len, "/cgroup.controllers");
		fd = open(path, O_RDONLY | O_CLOEXEC);
		path[len] = '\0';
		if (fd >= 0 || len <= strlen(mnt))
			break;
		p = strrchr(path, '/');
		if (!p || p - path < (ptrdiff_t)strlen(mnt))
			break;
		*p = '\0';
	}
	snprintf(where, wlen, "%s/cgroup.controllers", path);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, ctrl))
			return 1;
	return 0;
}

/* "+memory" into cgroup.subtree_control of path and of each directory below it down to leaf's
 * parent. */
static int enable_down(const char *top, const char *leaf_parent, const char *ctrl)
{
	char path[PATH_MAX], buf[64];
	size_t len = strlen(top);
	const char *p = leaf_parent + len;
	int r;

	snprintf(buf, sizeof(buf), "+%s", ctrl);
	for (;;) {
		snprintf(path, sizeof(path), "%.*s/cgroup.subtree_control", (int)(p - leaf_parent),
			 leaf_parent);
		r = write_file(path, buf);
		if (r)
			return r;
		if (!*p)
			return 0;
		p = strchr(p + 1, '/');
		if (!p)
			p = leaf_parent + strlen(leaf_parent);
	}
}

static int version_path(char *buf, size_t len, const char *svc, int num)
{
	int n = num > 0 ? snprintf(buf, len, "%s/%s/v%d", svcdir, svc, num)
			: snprintf(buf, len, "%s/%s", svcdir, svc);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cg_version_find(const char *svc, int num)
{
	char path[PATH_MAX];
	int fd;

	if (!enabled)
		return -ENOENT;
	if (version_path(path, sizeof(path), svc, num))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * The service's limits into a version's cgroup: its controllers enabled
 * from the subtree down to the service's directory first (the agent is not
 * in any of them: it lives in the agent leaf, or in the root).
 */
static int apply_limits(const char *svc, int fd, const struct cg_limits *lim, char *err,
			size_t errlen)
{
	static const char *const ctrl[] = {"memory", "cpu", "pids"};
	static const char *const file[] = {"memory.max", "cpu.max", "pids.max"};
	char top[sizeof(svcdir)], parent[PATH_MAX], val[64];
	int k, r, wfd;

	for (k = 0; k < 3; k++) {
		if (k == 0 && !lim->memory_max)
			continue;
		if (k == 1 && !lim->cpu_max_pct)
			continue;
		if (k == 2 && !lim->pids_max)
			continue;
		snprintf(top, sizeof(top), "%s%s", mnt, sub);
		version_path(parent, sizeof(parent), svc, 0);
		r = enable_down(top, parent, ctrl[k]);
		if (r) {
			snprintf(err, errlen, "cannot enable the %s controller under %s: %s",
				 ctrl[k], top, strerror(-r));
			return r;
		}
		if (k == 0)
			snprintf(val, sizeof(val), "%llu", lim->memory_max);
		else if (k == 1)
			snprintf(val, sizeof(val), "%u 100000", lim->cpu_max_pct * 1000);
		else
			snprintf(val, sizeof(val), "%u", lim->pids_max);
		wfd = openat(fd, file[k], O_WRONLY | O_CLOEXEC);
		r = wfd < 0 || write(wfd, val, strlen(val)) < 0 ? -errno : 0;
		if (wfd >= 0)
			close(wfd);
		if (r) {
			snprintf(err, errlen, "cannot set %s to %s: %s", file[k], val,
				 strerror(-r));
			return r;
		}
	}
	return 0;
}

int cg_version_make(const char *svc, int num, const struct cg_limits *lim, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd, r;

	r = version_path(path, sizeof(path), svc, 0);
	if (!r)
		r = mkdir_ok(path);
	if (r) {
		snprintf(err, errlen, "cannot create the cgroup %s/%s: %s", svcdir, svc,
			 strerror(-r));
		return r;
	}
	version_path(path, sizeof(path), svc, num);
	r = mkdir_ok(path);
	if (r) {
		snprintf(err, errlen, "cannot create the cgroup %s: %s", path, strerror(-r));
		return r;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open the cgroup %s: %s", path, strerror(-r));
		return r;
	}
	r = apply_limits(svc, fd, lim, err, errlen);
	if (r) {
		close(fd);
		return r;
	}
	/* A number is never given twice to a service; what holds it now was not baton's. */
	if (cg_populated(fd) > 0) {
		close(fd);
		snprintf(err, errlen,
			 "the cgroup %s still holds processes baton does not know; end them "
			 "(echo 1 > %s/cgroup.kill) and deploy again",
			 path, path);
		return -EBUSY;
	}
	return fd;
}

void cg_version_remove(const char *svc, int num)
{
	char path[PATH_MAX];

	if (!enabled)
		return;
	if (!version_path(path, sizeof(path), svc, num))
		rmdir(path);
	/* The service's directory goes with its last version (ENOTEMPTY otherwise). */
	if (!version_path(path, sizeof(path), svc, 0))
		rmdir(path);
}

int cg_sweep(bool (*known)(const char *svc, int num))
{
	char path[PATH_MAX];
	struct dirent *ds, *dv;
	DIR *d, *e;
	int left = 0, num;

	if (!enabled || !(d = opendir(svcdir)))
		return 0;
	while ((ds = readdir(d))) {
		if (ds->d_type != DT_DIR || ds->d_name[0] == '.')
			continue;
		if (version_path(path, sizeof(path), ds->d_name, 0) || !(e = opendir(path)))
			continue;
		while ((dv = readdir(e))) {
			if (dv->d_type != DT_DIR || dv->d_name[0] != 'v' ||
			    (num = atoi(dv->d_name + 1)) <= 0 || known(ds->d_name, num))
				continue;
			if (version_path(path, sizeof(path), ds->d_name, num) == 0 &&
			    rmdir(path) < 0 && errno == EBUSY)
				left++;
		}
		closedir(e);
		if (!version_path(path, sizeof(path), ds->d_name, 0))
			rmdir(path);
	}
	closedir(d);
	return left;
}

void cg_close(bool stop)
{
	char path[sizeof(svcdir)], pid[32];

	if (ifd >= 0)
		close(ifd);
	ifd = -1;
	if (!enabled || !stop)
		return;
	rmdir(svcdir);
	/*
	 * An agent from a cgroup of its own still lives in the agent leaf of
	 * it: that one stays.  Another subtree goes when empty, whoever made it
	 * (an agent restarted on it finds it there).
	 */
	if (!strcmp(own, "/")) {
		/* It came from the root cgroup into this subtree: back, so that all of it goes. */
		snprintf(path, sizeof(path), "%s/cgroup.procs", mnt);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (!write_file(path, pid)) {
			snprintf(path, sizeof(path), "%s%s/agent", mnt, sub);
			rmdir(path);
		}
	}
	if (strcmp(sub, own)) {
		snprintf(path, sizeof(path), "%s%s", mnt, sub);
		rmdir(path);
	}
	enabled = false;
}

int cg_procs_fd(int dirfd)
{
	int fd = openat(dirfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int cg_populated(int dirfd)
{
	char buf[256], *p;
	int r = read_file_at(dirfd, "cgroup.events", buf, sizeof(buf));

	if (r < 0)
		return r;
	p = strstr(buf, "populated ");
	if (!p)
		return -EINVAL;
	return p[10] == '1';
}

/* Each pid of cgroup.procs, to fn; returns the count, or -errno. */
static int each_pid(int dirfd, void (*fn)(pid_t pid, void *arg), void *arg)
{
	int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC), n = 0;
	char line[32];
	FILE *f;

	if (fd < 0)
		return -errno;
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		pid_t pid = (pid_t)atoi(line);

		if (pid > 0) {
			fn(pid, arg);
			n++;
		}
	}
	fclose(f);
	return n;
}

struct pidbuf {
	pid_t *pids;
	int max, n;
};

static void collect(pid_t pid, void *arg)
{
	struct pidbuf *b = arg;

	if (b->n < b->max)
		b->pids[b->n] = pid;
	b->n++;
}

int cg_pids(int dirfd, pid_t *pids, int max)
{
	struct pidbuf b = {.pids = pids, .max = max};

	return each_pid(dirfd, collect, &b);
}

static void send_sig(pid_t pid, void *arg)
{
	kill(pid, *(int *)arg);
}

int cg_signal(int dirfd, int sig)
{
	return each_pid(dirfd, send_sig, &sig);
}

/* Passes over cgroup.procs before Linux 5.14: a fork between read and kill adds one. */
#define KILL_PASSES 8

int cg_kill(int dirfd)
{
	int fd = openat(dirfd, "cgroup.kill", O_WRONLY | O_CLOEXEC), sig = SIGKILL, k, n = 0;

	if (fd >= 0) {
		k = write(fd, "1", 1) == 1 ? 0 : -errno;
		close(fd);
		return k;
	}
	if (errno != ENOENT)
		return -errno;
	for (k = 0; k < KILL_PASSES; k++) {
		n = each_pid(dirfd, send_sig, &sig);
		if (n <= 0)
			break;
	}
	return n < 0 ? n : 0;
}

int cg_cpu_usec(int dirfd, unsigned long long *usec)
{
	char buf[1024], *p;
	int r = read_file_at(dirfd, "cpu.stat", buf, sizeof(buf));

	if (r < 0)
		return r;
	p = strstr(buf, "usage_usec ");
	if (!p)
		return -EINVAL;
	*usec = strtoull(p + 11, NULL, 10);
	return 0;
}

int cg_read_u64(int dirfd, const char *name, unsigned long long *val)
{
	char buf[64], *end;
	int r = read_file_at(dirfd, name, buf, sizeof(buf));

	if (r < 0)
		return r;
	*val = strtoull(buf, &end, 10);
	return end == buf ? -EINVAL : 0;
}

int cg_read_key(int dirfd, const char *name, const char *key, unsigned long long *val)
{
	char buf[1024], *p, *end;
	size_t klen = strlen(key);
	int r = read_file_at(dirfd, name, buf, sizeof(buf));

	if (r < 0)
		return r;
	/* "key value" lines: the key at a line's start, then one space. */
	for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, klen) || p[klen] != ' ')
			continue;
		*val = strtoull(p + klen + 1, &end, 10);
		return end == p + klen + 1 ? -EINVAL : 0;
	}
	return -ENOENT;
}

int cg_watch(int dirfd)
{
	char path[64];
	int wd;

	if (ifd < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/cgroup.events", dirfd);
	wd = inotify_add_watch(ifd, path, IN_MODIFY);
	return wd < 0 ? -errno : wd;
}

void cg_unwatch(int wd)
{
	if (ifd >= 0 && wd >= 0)
		inotify_rm_watch(ifd, wd);
}

void cg_events_drain(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (ifd >= 0 && read(ifd, buf, sizeof(buf)) > 0)
		;
}
