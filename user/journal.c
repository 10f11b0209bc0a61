/* SPDX-License-Identifier: MIT */
/* journald's native protocol, without blocking; see journal.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

#define JOURNAL_ENTRY_MAX 8192 /* bytes of one entry; longer values are cut */

static int jfd = -1;

int journal_open(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	journal_close();
	jfd = fd;
	return 0;
}

void journal_close(void)
{
	if (jfd >= 0)
		close(jfd);
	jfd = -1;
}

bool journal_on(void)
{
	return jfd >= 0;
}

static bool key_ok(const char *k, size_t len)
{
	size_t i;

	if (!len || k[0] == '_' || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (i = 0; i < len; i++)
		if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

/* KEY=VALUE, or the binary form when the value has a newline; false when it does not fit. */
static bool put(char *buf, size_t *off, const char *key, size_t klen, const char *val)
{
	size_t vlen = strlen(val), need = klen + vlen + 10;
	uint64_t le = vlen;
	int i;

	if (*off + need > JOURNAL_ENTRY_MAX)
		return false;
	memcpy(buf + *off, key, klen);
	*off += klen;
	if (!strchr(val, '\n')) {
		buf[(*off)++] = '=';
	} else {
		buf[(*off)++] = '\n';
		for (i = 0; i < 8; i++)
			buf[(*off)++] = (char)((le >> (8 * i)) & 0xff);
	}
	memcpy(buf + *off, val, vlen);
	*off += vlen;
	buf[(*off)++] = '\n';
	return true;
}

int journal_send(int prio, const char *ident, const char *msg, const char *const *fields, int n)
{
	char buf[JOURNAL_ENTRY_MAX], p[4];
	size_t off = 0;
	const char *eq;
	int k;

	if (jfd < 0)
		return -ENOTCONN;
	snprintf(p, sizeof(p), "%d", prio & 7);
	if (!put(buf, &off, "PRIORITY", 8, p) || !put(buf, &off, "SYSLOG_IDENTIFIER", 17, ident) ||
	    !put(buf, &off, "MESSAGE", 7, msg))
		return -EMSGSIZE;
	for (k = 0; k < n; k++) {
		eq = strchr(fields[k], '=');
		/* A malformed field is left out: the entry still goes. */
		if (eq && key_ok(fields[k], (size_t)(eq - fields[k])))
			put(buf, &off, fields[k], (size_t)(eq - fields[k]), eq + 1);
	}
	if (send(jfd, buf, off, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

int journal_for_log(void)
{
	const char *path = getenv("BATON_JOURNAL_SOCKET");
	int r;

	if (!log_stderr_is_journal())
		return -ENOTCONN;
	r = journal_open(path && path[0] ? path : JOURNAL_SOCKET);
	if (!r)
		log_set_sink(journal_send);
	return r;
}
