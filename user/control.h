/* SPDX-License-Identifier: MIT */
#ifndef BATON_CONTROL_H
#define BATON_CONTROL_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

/* Control protocol: one JSON object per line each way, over a unix socket. */
#define CTL_MAX_LINE (64 * 1024)
/* A reply (status of many services) may be longer than a request: the agent buffers it. */
#define CTL_MAX_REPLY (16 * 1024 * 1024)
/* A client must finish a request line within this time. */
#define CTL_READ_TIMEOUT_MS 5000
/* Requests per client: a burst of CTL_BURST, then CTL_RATE per second. */
#define CTL_BURST 20
#define CTL_RATE  10
/*
 * A client waiting for a long request (a deploy's bake, a rollback) may put
 * "heartbeat_ms" in it: the agent then sends {"alive":true} at that interval
 * while the client has no request half read, so the client can tell a
 * stopped or hung agent from a long wait.
 */
#define CTL_HEARTBEAT_MIN_MS 1000
#define CTL_HEARTBEAT_MAX_MS 60000

int ctl_running(const char *path);
/* Listen on path, mode 0600 (root), or 0660 owned by group gid when gid is not 0. */
int ctl_listen(const char *path, gid_t gid, char *err, size_t errlen);
int ctl_connect(const char *path, char *err, size_t errlen);
/* Write one JSON object and a newline (blocking, bounded by SO_SNDTIMEO). */
int ctl_send(int fd, json_t *msg);
/* Read one line into a JSON object, waiting at most timeout_ms (-1: no bound; errno
 * ETIMEDOUT when it ran out). */
json_t *ctl_recv(int fd, char *buf, size_t buflen, size_t *have, int timeout_ms, char *err,
		 size_t errlen);

#endif /* BATON_CONTROL_H */
