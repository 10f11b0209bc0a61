/* SPDX-License-Identifier: MIT */
/*
 * The sd_notify socket children report readiness on (READY=1), checked by
 * SCM_CREDENTIALS: only an instance of ours is heard.  And the agent's own
 * READY=1 to systemd.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "proc.h"
#include "services.h"
#include "versions.h"

static int notifyfd = -1;
static char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static long long notify_warned; /* last "not a baton child" warning, ms */
static struct evsrc ev_notify;

const char *notify_path(void)
{
	return path;
}

void notify_remove(void)
{
	if (path[0])
		unlink(path);
}

void notify_close(void)
{
	if (notifyfd >= 0)
		close(notifyfd);
	notifyfd = -1;
}

void on_notify(void)
{
	char buf[4096 + 1], cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct ucred *cred = NULL;
	struct cmsghdr *cm;
	ssize_t n;
	struct service *s;
	int k, i, vs;

	for (k = 0; k < 64; k++) {
		mh.msg_controllen = sizeof(cbuf);
		n = recvmsg(notifyfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return;
		if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			log_warnx("notify: dropped an oversized message");
			continue;
		}
		buf[n] = '\0';
		cred = NULL;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS)
				cred = (struct ucred *)CMSG_DATA(cm);
		if (!cred) {
			log_warnx("notify: dropped a message without credentials");
			continue;
		}
		/* Only a child of ours may report; the pid tells which instance. */
		for (i = 0; (s = service_at(i)); i++)
			for (vs = 0; vs < MAX_VERSIONS; vs++) {
				struct version *v = s->slot[vs];
				int in;

				if (!v)
					continue;
				for (in = 0; in < v->ninst; in++)
					if (v->inst[in].alive && v->inst[in].pid == cred->pid) {
						if (proc_notify_ready(buf, (size_t)n))
							instance_notified(v, in);
						goto next;
					}
			}
		/* Anyone may send to the socket: say so, but not more than once a second. */
		if (now_ms() - notify_warned >= 1000) {
			log_warnx("notify: dropped a message from pid %d, not a baton child",
				  cred->pid);
			notify_warned = now_ms();
		}
	next:;
	}
}

int notify_open(const char *run_dir, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int one = 1, fd;

	if (snprintf(path, sizeof(path), "%s/notify.sock", run_dir) >= (int)sizeof(path)) {
		snprintf(err, errlen, "run-dir too long for a socket path: %s", run_dir);
		return -1;
	}
	strcpy(sun.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(err, errlen, "notify socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Children may run as another user; the pid check decides who is heard. */
	chmod(path, 0666);
	notifyfd = fd;
	ep_add(fd, &ev_notify, EV_NOTIFY, NULL, 0, EPOLLIN);
	return 0;
}

/* Tell systemd (Type=notify) the agent is up: READY=1 on $NOTIFY_SOCKET. */
void notify_systemd(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		return;
	strcpy(sun.sun_path, path);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
		log_warn("cannot notify systemd on %s", path);
	close(fd);
}
