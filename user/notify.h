/* SPDX-License-Identifier: MIT */
/* The sd_notify socket of the children, and the agent's own to systemd; see notify.c. */
#ifndef BATON_NOTIFY_H
#define BATON_NOTIFY_H

#include <stddef.h>

/* Bind run_dir/notify.sock and watch it: 0, or -1 with err. */
int notify_open(const char *run_dir, char *err, size_t errlen);
void notify_close(void);
/* Remove the socket's path (the agent stops for good). */
void notify_remove(void);
/* The path children get as NOTIFY_SOCKET. */
const char *notify_path(void);
void on_notify(void);
/* Tell systemd (Type=notify) the agent's state: READY=1 on $NOTIFY_SOCKET. */
void notify_systemd(const char *msg);

#endif /* BATON_NOTIFY_H */
