/* SPDX-License-Identifier: MIT */
/* Listening sockets of a service's addresses; see listen.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

int make_listener(const struct service_conf *c, int j, char *err, size_t errlen)
{
	const struct listen_addr *la = &c->listen[j];
	int one = 1, fd;

	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", la->text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (la->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		snprintf(err, errlen, "listen %s: setsockopt: %s", la->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)&la->ss, la->len) < 0) {
		snprintf(err, errlen, "listen %s: bind: %s", la->text, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, c->backlog) < 0) {
		snprintf(err, errlen, "listen %s: %s", la->text, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Refuse an address someone else listens on.  A plain bind (no
 * SO_REUSEPORT) fails on any listener there, so this also catches a process
 * whose SO_REUSEPORT socket our sockets would silently join.
 */
int check_port_free(const struct listen_addr *la, char *err, size_t errlen)
{
	int one = 1, fd, r = 0;
	unsigned port;

	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		/* Nothing was checked: say so rather than pass. */
		snprintf(err, errlen, "listen %s: cannot check the address: socket: %s", la->text,
			 strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (la->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&la->ss, la->len) < 0) {
		port = la->ss.ss_family == AF_INET
			   ? ntohs(((struct sockaddr_in *)&la->ss)->sin_port)
			   : ntohs(((struct sockaddr_in6 *)&la->ss)->sin6_port);
		if (errno == EADDRINUSE)
			snprintf(err, errlen,
				 "listen %s: address in use by another process (see: ss -ltnp "
				 "'sport = :%u'; stop it or choose another port)",
				 la->text, port);
		else
			snprintf(err, errlen, "listen %s: %s", la->text, strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}
