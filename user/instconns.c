/* SPDX-License-Identifier: MIT */
/*
 * Each instance's live connections, from procfs (instconns.h): one pass over
 * /proc/net/tcp and tcp6 for the inodes of established sockets on the
 * service's ports, then each instance's /proc/PID/fd.  Bounded: at most
 * INODES_MAX sockets are looked at, and it runs once per retired instance.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "instconns.h"

#define INODES_MAX (1 << 18)
#define TCP_ESTABLISHED_ST 0x01
#define TCP_CLOSE_WAIT_ST  0x08

struct inodes {
	unsigned long *ino;
	size_t n;
};

static bool port_of(const struct service_conf *c, unsigned port)
{
	int j;

	for (j = 0; j < c->nlisten; j++) {
		const struct sockaddr_storage *ss = &c->listen[j].ss;
		unsigned p = ss->ss_family == AF_INET6
				 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
				 : ntohs(((const struct sockaddr_in *)ss)->sin_port);

		if (p == port)
			return true;
	}
	return false;
}

/* Lines: "sl local_address(hex:port) rem_address st tx:rx tr:when retrnsmt uid timeout inode". */
static void scan(const char *path, const struct service_conf *c, struct inodes *set)
{
	char line[512], local[64];
	unsigned port, st;
	unsigned long ino;
	FILE *fp = fopen(path, "re");

	if (!fp)
		return;
	if (!fgets(line, sizeof(line), fp)) {
		fclose(fp);
		return;
	}
	while (set->n < INODES_MAX && fgets(line, sizeof(line), fp)) {
		char *colon;

		if (sscanf(line, " %*u: %63s %*s %x %*s %*s %*s %*u %*u %lu", local, &st, &ino) != 3)
			continue;
		colon = strrchr(local, ':');
		if (!colon || sscanf(colon + 1, "%x", &port) != 1)
			continue;
		if ((st == TCP_ESTABLISHED_ST || st == TCP_CLOSE_WAIT_ST) && ino && port_of(c, port))
			set->ino[set->n++] = ino;
	}
	fclose(fp);
}

static int cmp_ino(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

static long long count_pid(pid_t pid, const struct inodes *set)
{
	char dir[64], path[384], link[64];
	struct dirent *de;
	long long n = 0;
	unsigned long ino;
	ssize_t len;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1 &&
		    bsearch(&ino, set->ino, set->n, sizeof(ino), cmp_ino))
			n++;
	}
	closedir(d);
	return n;
}

int instance_conns(const struct version *v, long long n[MAX_INSTANCES])
{
	const struct service_conf *c = &v->svc->conf;
	struct inodes set = {.ino = malloc(INODES_MAX * sizeof(unsigned long))};
	int i;

	if (!set.ino)
		return -ENOMEM;
	scan("/proc/net/tcp", c, &set);
	scan("/proc/net/tcp6", c, &set);
	qsort(set.ino, set.n, sizeof(set.ino[0]), cmp_ino);
	for (i = 0; i < MAX_INSTANCES; i++)
		n[i] = i < v->ninst && v->inst[i].alive ? count_pid(v->inst[i].pid, &set) : -1;
	free(set.ino);
	return 0;
}
