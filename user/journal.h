/* SPDX-License-Identifier: MIT */
/*
 * journald's native protocol: one datagram per log line on its socket
 * (/run/systemd/journal/socket), KEY=VALUE lines (a value with a newline in
 * the binary form: KEY, '\n', its length as 64-bit little endian, the
 * value, '\n'), so that an event's fields (SERVICE=, EVENT=, VERSION=, ...)
 * can be matched with journalctl.  Sent with MSG_DONTWAIT: a journal that
 * does not keep up gets no wait; the caller writes the line to stderr as
 * before instead.
 */
#ifndef BATON_JOURNAL_H
#define BATON_JOURNAL_H

#include <stdbool.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Connect to the journal's socket at path: 0, or -errno (the caller keeps stderr). */
int journal_open(const char *path);
/*
 * The agent's lines to the journal's socket when stderr is the journal
 * (BATON_JOURNAL_SOCKET, or JOURNAL_SOCKET): 0, or -errno (stderr as before).
 */
int journal_for_log(void);
void journal_close(void);
bool journal_on(void);
/*
 * One entry: PRIORITY, SYSLOG_IDENTIFIER, MESSAGE and fields ("KEY=VALUE",
 * KEY of A-Z, 0-9 and _, not first), n of them.  0, or -errno (-EAGAIN: the
 * journal's queue is full; nothing was sent).
 */
int journal_send(int prio, const char *ident, const char *msg, const char *const *fields, int n);

#endif /* BATON_JOURNAL_H */
