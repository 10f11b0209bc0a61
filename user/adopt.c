/* SPDX-License-Identifier: MIT */
/*
 * Adoption: a server that opens its own SO_REUSEPORT listeners (nginx with
 * reuseport, HAProxy) becomes a version.  Its listeners are copied with
 * pidfd_getfd(2) and placed like baton's own; its process is watched
 * through a pidfd.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "adopt.h"
#include "cgroup.h"
#include "sockcg.h"
#include "dp.h"
#include "exec.h"
#include "history.h"
#include "log.h"
#include "proc.h"
#include "services.h"
#include "versions.h"

/* ---- adopting servers that open their own SO_REUSEPORT listeners ---------------- */

#define ADOPT_MAX_PIDS	256
#define ADOPT_MAX_SOCKS (MAX_INSTANCES * MAX_LISTEN)
/* Listeners of every adopted version looked at by adopt_track_prune. */
#define ADOPT_PRUNE_MAX (4 * ADOPT_MAX_SOCKS)

struct adopted_sock {
	int fd;
	int j; /* listen address index */
	__u64 cookie;
};

/* pid and its descendants (nginx: the master and its workers), at most max. */
static int process_tree(pid_t pid, pid_t *out, int max)
{
	int n = 0, k;

	out[n++] = pid;
	for (k = 0; k < n && n < max; k++) {
		char path[64], buf[4096];
		ssize_t len;
		char *p, *end;
		int fd;

		/* Children of the main thread; nginx and most servers fork from it. */
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)out[k], (int)out[k]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (p = buf; n < max; p = end) {
			long c = strtol(p, &end, 10);

			if (end == p)
				break;
			out[n++] = (pid_t)c;
		}
	}
	return n;
}

static bool same_addr(const struct sockaddr_storage *a, const struct listen_addr *la)
{
	if (a->ss_family != la->ss.ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)&la->ss;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	{
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&la->ss;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
}

/*
 * Copy the listening sockets of pid (and its descendants) that are on the
 * service's listen addresses.  Returns how many, or -1 with err naming what
 * is wrong and what to do.
 */
static int adopt_collect(struct service *s, pid_t pid, struct adopted_sock *out, int max, char *err,
			 size_t errlen)
{
	const struct service_conf *c = &s->conf;
	pid_t pids[ADOPT_MAX_PIDS];
	char path[64], a[64], b[64];
	int np, k, n = 0, j;
	ssize_t la, lb;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	la = readlink(path, a, sizeof(a) - 1);
	lb = readlink("/proc/self/ns/net", b, sizeof(b) - 1);
	if (la < 0) {
		snprintf(err, errlen, "no process %d (%s)", (int)pid, strerror(errno));
		return -1;
	}
	if (lb < 0 || la != lb || memcmp(a, b, la)) {
		snprintf(err, errlen,
			 "process %d is in another network namespace: its sockets cannot join "
			 "this agent's reuseport groups (run the agent in that namespace)",
			 (int)pid);
		return -1;
	}
	np = process_tree(pid, pids, ADOPT_MAX_PIDS);
	/*
	 * The agent holds copies of the listeners it serves: adopted, they would
	 * make a version of the agent, and its drain would signal and kill it
	 * (and, for a process that runs it, every process of the tree).
	 */
	for (k = 0; k < np; k++)
		if (pids[k] == getpid()) {
			snprintf(err, errlen,
				 "process %d is %s: give the pid of the server to adopt", (int)pid,
				 k ? "an ancestor of this agent (the agent is in its process tree)"
				   : "this agent");
			return -1;
		}
	for (k = 0; k < np; k++) {
		int pidfd = (int)syscall(SYS_pidfd_open, pids[k], 0);
		struct dirent *de;
		DIR *d;

		if (pidfd < 0) {
			if (!k) {
				snprintf(err, errlen, "cannot open process %d: %s", (int)pid,
					 errno == EPERM ? "not permitted (run the agent as root)"
							: strerror(errno));
				return -1;
			}
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pids[k]);
		d = opendir(path);
		while (d && (de = readdir(d))) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			int fd, on = 0, i;
			__u64 cookie = 0;
			struct stat st;

			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
			if (fd < 0) {
				if (errno == EPERM && !k) {
					snprintf(
					    err, errlen,
					    "cannot copy process %d's sockets: not permitted "
					    "(pidfd_getfd needs root; check Yama ptrace_scope)",
					    (int)pid);
					closedir(d);
					close(pidfd);
					goto fail;
				}
				continue;
			}
			len = sizeof(on);
			if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
			    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on) {
				close(fd);
				continue;
			}
			len = sizeof(ss);
			if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
				close(fd);
				continue;
			}
			for (j = 0; j < c->nlisten && !same_addr(&ss, &c->listen[j]); j++)
				;
			len = sizeof(cookie);
			getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
			for (i = 0; i < n && out[i].cookie != cookie; i++)
				;
			if (j == c->nlisten || i < n) {
				close(fd); /* another address, or a socket already seen */
				continue;
			}
			len = sizeof(on);
			on = 0;
			getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len);
			if (!on) {
				snprintf(err, errlen,
					 "process %d listens on %s without SO_REUSEPORT: baton's "
					 "sockets cannot join it (nginx: listen ... reuseport)",
					 (int)pids[k], c->listen[j].text);
				close(fd);
				closedir(d);
				close(pidfd);
				goto fail;
			}
			if (st.st_uid != geteuid()) {
				snprintf(
				    err, errlen,
				    "process %d's socket on %s belongs to uid %u: a reuseport "
				    "group is one owner's, and baton's sockets are uid %u's (let "
				    "the server open its listeners as root, as nginx's master "
				    "does)",
				    (int)pids[k], c->listen[j].text, (unsigned)st.st_uid,
				    (unsigned)geteuid());
				close(fd);
				closedir(d);
				close(pidfd);
				goto fail;
			}
			if (n == max) {
				snprintf(err, errlen,
					 "process %d has more than %d listeners on %s's addresses",
					 (int)pid, MAX_INSTANCES, c->name);
				close(fd);
				closedir(d);
				close(pidfd);
				goto fail;
			}
			out[n].fd = fd;
			out[n].j = j;
			out[n].cookie = cookie;
			n++;
		}
		if (d)
			closedir(d);
		close(pidfd);
	}
	for (j = 0; j < c->nlisten; j++) {
		for (k = 0; k < n && out[k].j != j; k++)
			;
		if (k == n) {
			snprintf(
			    err, errlen,
			    "process %d has no listening socket on %s (see: ss -ltnp; the server "
			    "must listen on every address of [service %s])",
			    (int)pid, c->listen[j].text, c->name);
			goto fail;
		}
	}
	return n;
fail:
	for (k = 0; k < n; k++)
		close(out[k].fd);
	return -1;
}

/* The command line of pid as argv, for status. */
static void argv_of(pid_t pid, char **argv)
{
	char path[64], buf[4096];
	ssize_t len;
	int fd, n = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	len = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (len <= 0) {
		argv[0] = strdup("(adopted)");
		return;
	}
	buf[len] = '\0';
	for (p = buf; p < buf + len && n < MAX_ARGS; p += strlen(p) + 1)
		argv[n++] = strdup(p);
}

/*
 * The track program on the cgroup at path.  The root cgroup (a socket unit's
 * listeners made by a PID 1 that lives there) puts it on every TCP socket
 * of the host again: allowed, since those connections must be counted, but
 * said.
 */
static int cover(const char *path, char *err, size_t errlen)
{
	char root[PATH_MAX];

	if (!cgroup2_root(root, sizeof(root)) && !strcmp(path, root))
		log_warnx("an adopted listener was made in the root cgroup (%s): the track program "
			  "runs for every TCP socket of the host; make the listeners in a "
			  "cgroup of their own (a service's, or a slice) to limit it",
			  root);
	return dp_track_cover(path, err, errlen);
}

/*
 * The track program must run where the listeners were made: connections
 * accepted from a listener belong to its cgroup.  The kernel says which
 * (sock_diag); that is not always the server's own cgroup (systemd makes a
 * socket unit's listeners in PID 1's, and a process may move after making
 * them).  Where the kernel does not say, the server's cgroup, as before.
 */
static int cover_listeners(const struct service_conf *c, pid_t pid,
			   const struct adopted_sock *socks, int n, char *err, size_t errlen)
{
	__u64 cookies[ADOPT_MAX_SOCKS], ids[ADOPT_MAX_SOCKS];
	char path[PATH_MAX];
	int k, i, r, covered = 0;

	for (k = 0; k < n; k++)
		cookies[k] = socks[k].cookie;
	sock_cgroup_ids(cookies, n, ids);
	for (k = 0; k < n; k++) {
		for (i = 0; i < k && ids[i] != ids[k]; i++)
			;
		if (!ids[k] || i < k)
			continue;
		r = cgroup_path_of(ids[k], path, sizeof(path));
		if (r) {
			snprintf(
			    err, errlen,
			    "cannot open the cgroup (id %llu) that process %d's listener on %s "
			    "was made in: %s",
			    (unsigned long long)ids[k], (int)pid, c->listen[socks[k].j].text,
			    strerror(-r));
			return -1;
		}
		if (cover(path, err, errlen))
			return -1;
		covered++;
	}
	for (k = 0; k < n && ids[k]; k++)
		;
	if (k == n && covered)
		return 0;
	/* Some listener's cgroup unknown: its server's, as a rule. */
	path[0] = '\0';
	if (cg_pid_path(pid, path, sizeof(path)) || cover(path, err, errlen)) {
		if (!path[0])
			snprintf(err, errlen, "cannot read the cgroup v2 of process %d", (int)pid);
		return -1;
	}
	return 0;
}

/* Cookies of the listeners of every adopted version still running (at most max). */
static int adopted_cookies(__u64 *cookies, int max)
{
	socklen_t len = sizeof(__u64);
	struct service *s;
	int i, k, j, n = 0;

	for (i = 0; (s = service_at(i)); i++)
		for (k = 0; k < MAX_VERSIONS; k++) {
			struct version *v = s->slot[k];

			if (!v || v->freed || !v->adopted)
				continue;
			for (j = 0; j < v->ninst * s->conf.nlisten && n < max; j++) {
				int fd = v->inst[j / s->conf.nlisten].lfd[j % s->conf.nlisten];

				len = sizeof(__u64);
				if (fd >= 0 &&
				    !getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookies[n], &len))
					n++;
			}
		}
	return n;
}

/* Is the cgroup at path the one at top or below it? */
static bool at_or_below(const char *path, const char *top)
{
	size_t n = strlen(top);

	return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

void adopt_track_prune(void)
{
	__u64 extra[TRACK_MAX_EXTRA], cookies[ADOPT_PRUNE_MAX], ids[ADOPT_PRUNE_MAX];
	char top[PATH_MAX], p[PATH_MAX];
	int ne = dp_track_extra(extra, TRACK_MAX_EXTRA), n = 0, i, j;
	bool keep;

	if (!ne)
		return;
	n = adopted_cookies(cookies, ADOPT_PRUNE_MAX);
	if (n == ADOPT_PRUNE_MAX)
		return; /* some not looked at: every link stays */
	if (n)
		sock_cgroup_ids(cookies, n, ids);
	for (j = 0; j < n; j++)
		if (!ids[j])
			return; /* a listener's cgroup unknown: every link stays */
	for (i = 0; i < ne; i++) {
		/* A removed cgroup (no path) has no sockets left to count. */
		keep = false;
		if (!cgroup_path_of(extra[i], top, sizeof(top)))
			for (j = 0; j < n && !keep; j++)
				keep =
				    ids[j] == extra[i] ||
				    (!cgroup_path_of(ids[j], p, sizeof(p)) && at_or_below(p, top));
		if (!keep && !dp_track_uncover(extra[i]))
			log_info(
			    "the track program left cgroup id %llu: no adopted listener there any "
			    "more",
			    (unsigned long long)extra[i]);
	}
}

/*
 * A version made of a running server's own listeners: instance k holds the
 * k-th socket of each listen address; the process (instance 0's pid) is
 * the one signalled, and its exit ends every instance.
 */
struct version *version_adopt(struct service *s, pid_t pid, char *err, size_t errlen)
{
	struct adopted_sock socks[ADOPT_MAX_SOCKS];
	int count[MAX_LISTEN] = {0};
	struct version *v;
	int n, vslot, i, k;

	for (vslot = 0; vslot < MAX_VERSIONS && s->slot[vslot]; vslot++)
		;
	if (vslot == MAX_VERSIONS) {
		snprintf(err, errlen,
			 "%s has %d versions still running (draining); wait for them to exit",
			 s->conf.name, MAX_VERSIONS);
		return NULL;
	}
	for (i = 0; i < MAX_VERSIONS; i++)
		for (k = 0; s->slot[i] && k < s->slot[i]->ninst; k++)
			if (s->slot[i]->inst[k].alive && s->slot[i]->inst[k].pid == pid) {
				snprintf(err, errlen, "process %d is already %s", (int)pid,
					 vname(s->slot[i]));
				return NULL;
			}
	n = adopt_collect(s, pid, socks, ADOPT_MAX_SOCKS, err, errlen);
	if (n < 0)
		return NULL;
	if (cover_listeners(&s->conf, pid, socks, n, err, errlen)) {
		for (k = 0; k < n; k++)
			close(socks[k].fd);
		return NULL;
	}
	v = version_alloc(s, err, errlen);
	if (!v) {
		for (k = 0; k < n; k++)
			close(socks[k].fd);
		return NULL;
	}
	v->vslot = vslot;
	v->num = s->next_num;
	v->adopted = true;
	for (k = 0; k < n; k++) {
		i = count[socks[k].j]++;
		if (i >= MAX_INSTANCES) {
			close(socks[k].fd);
			continue;
		}
		v->inst[i].lfd[socks[k].j] = socks[k].fd;
		v->inst[i].cookie[socks[k].j] = socks[k].cookie;
		if (i + 1 > v->ninst)
			v->ninst = i + 1;
	}
	argv_of(pid, v->spec.argv);
	v->inst[0].pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	v->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->inst[0].pidfd < 0 || v->tfd < 0 || ep_add(v->tfd, &v->ev, EV_TIMER, v, 0, EPOLLIN) ||
	    dp_register(v) < 0) {
		snprintf(err, errlen, "cannot watch process %d: %s", (int)pid, strerror(errno));
		version_free(v);
		return NULL;
	}
	for (i = 0; i < v->ninst; i++) {
		v->inst[i].pid = pid;
		v->inst[i].starttime = proc_starttime(pid);
		v->inst[i].alive = true;
	}
	v->nalive = v->ninst;
	adopted_tree_note(v);
	ep_add(v->inst[0].pidfd, &v->inst[0].ev, EV_PIDFD, v, 0, EPOLLIN);
	log_info("%s: adopted process %d: %d listener(s) on %d address(es)", vname(v), (int)pid, n,
		 s->conf.nlisten);
	s->next_num++;
	s->slot[vslot] = v;
	return v;
}

/*
 * baton adopt: a running server becomes the service's active version.  Its
 * sockets are placed and the policy written before the program is
 * attached, so from the first steered connection on, every choice is one
 * of its sockets: nothing is refused during the takeover.
 */
int adopt_first(struct service *s, pid_t pid, struct client *c, char *err, size_t errlen)
{
	struct fsm_event e = {.type = FE_ADOPT_FIRST, .c = c};

	if (s->active >= 0 || s->ro.stage != RO_NONE) {
		snprintf(
		    err, errlen,
		    "%s already has %s; adopt a new build with: baton deploy %s --adopt-pid PID",
		    s->conf.name,
		    s->active >= 0 ? vname(s->slot[s->active]) : "a deploy in progress",
		    s->conf.name);
		return -EBUSY;
	}
	e.v = version_adopt(s, pid, err, errlen);
	if (!e.v)
		return -EINVAL;
	log_info("%s: adopting process %d as v%d", s->conf.name, (int)pid, e.v->num);
	if (history_record(s, e.v, 0, time(NULL)) < 0)
		log_warnx("%s: out of memory: not remembered for baton history", vname(e.v));
	fsm_feed(s, &e);
	return 0;
}
