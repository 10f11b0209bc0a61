/* SPDX-License-Identifier: MIT */
/* The control socket: listening (agent) and connecting (CLI), JSON lines. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"

static int addr_of(const char *path, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

/* A socket file that still answers belongs to a running agent. */
int ctl_running(const char *path)
{
	struct sockaddr_un sun;
	char err[256];
	int fd, r;

	if (addr_of(path, &sun, err, sizeof(err)))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return r;
}

int ctl_listen(const char *path, gid_t gid, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, r;

	r = addr_of(path, &sun, err, errlen);
	if (r)
		return r;
	if (ctl_running(path)) {
		snprintf(err, errlen, "another agent is running on %s (stop it first)", path);
		return -EADDRINUSE;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return -errno;
	}
	old = umask(0177); /* 0600: root only; SO_PEERCRED is checked too */
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	/* control-group: its members may connect (and get read-only commands). */
	if (gid && (chown(path, 0, gid) < 0 || chmod(path, 0660) < 0)) {
		r = -errno;
		snprintf(err, errlen, "cannot give group %u access to %s: %s", (unsigned)gid, path,
			 strerror(errno));
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

int ctl_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct timeval tv = {.tv_sec = 5};
	int fd, r;

	r = addr_of(path, &sun, err, errlen);
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		if (errno == ENOENT || errno == ECONNREFUSED)
			snprintf(
			    err, errlen,
			    "agent not running (no one listens on %s; start it with: baton agent)",
			    path);
		else if (errno == EACCES)
			snprintf(err, errlen, "permission denied on %s (run as root)", path);
		else
			snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

int ctl_send(int fd, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	ssize_t n;

	if (!s)
		return -ENOMEM;
	len = strlen(s);
	s[len] = '\n'; /* json_dumps leaves the NUL; replace it, write len+1 */
	while (off < len + 1) {
		n = send(fd, s + off, len + 1 - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(s);
			return -errno;
		}
		off += n;
	}
	free(s);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

json_t *ctl_recv(int fd, char *buf, size_t buflen, size_t *have, int timeout_ms, char *err,
		 size_t errlen)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	json_error_t jerr;
	char *nl;
	json_t *j;
	ssize_t n;

	for (;;) {
		nl = memchr(buf, '\n', *have);
		if (nl) {
			size_t line = nl - buf;

			j = json_loadb(buf, line, 0, &jerr);
			memmove(buf, nl + 1, *have - line - 1);
			*have -= line + 1;
			if (!j)
				snprintf(err, errlen, "bad reply from the agent: %s", jerr.text);
			return j;
		}
		if (*have == buflen) {
			snprintf(err, errlen, "reply from the agent too long");
			return NULL;
		}
		if (deadline >= 0) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			long long left = deadline - now_ms();

			if (left <= 0 || poll(&p, 1, (int)left) == 0) {
				snprintf(err, errlen, "no reply from the agent within %d ms",
					 timeout_ms);
				errno = ETIMEDOUT;
				return NULL;
			}
		}
		n = read(fd, buf + *have, buflen - *have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "the agent closed the connection%s%s",
				 n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			return NULL;
		}
		*have += n;
	}
}
