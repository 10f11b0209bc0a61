/* SPDX-License-Identifier: MIT */
/* Whether each version accepts (see acceptq.h). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "acceptq.h"
#include "dp.h"
#include "log.h"
#include "loop.h"
#include "services.h"

static int tfd = -1;
static struct evsrc tev;

/* The connections waiting in v's listeners' accept queues. */
static unsigned queued(const struct version *v)
{
	const struct service_conf *c = &v->svc->conf;
	unsigned n = 0;
	int k, j;

	for (k = 0; k < v->ninst; k++)
		for (j = 0; j < c->nlisten; j++) {
			struct tcp_info ti;
			socklen_t len = sizeof(ti);

			if (v->inst[k].lfd[j] >= 0 &&
			    !getsockopt(v->inst[k].lfd[j], IPPROTO_TCP, TCP_INFO, &ti, &len) &&
			    ti.tcpi_state == TCP_LISTEN)
				n += ti.tcpi_unacked;
		}
	return n;
}

void acceptq_start(void)
{
	tfd = ep_ticker(&tev, EV_ACCEPTQ, NULL, 0, ACCEPTQ_TICK_MS, "accept queues");
}

void on_acceptq_tick(void)
{
	long long now = now_ms();
	struct service *s;
	uint64_t n;
	int i, j;

	if (read(tfd, &n, sizeof(n)) < 0)
		return;
	for (i = 0; (s = service_at(i)); i++)
		for (j = 0; j < MAX_VERSIONS; j++) {
			struct version *v = s->slot[j];
			struct version_counts c = {0};
			long long ms;

			if (!v || v->freed)
				continue;
			dp_counts(v, &c);
			acceptq_update(&v->acceptq, queued(v), c.accepted, now);
			ms = acceptq_stalled_ms(&v->acceptq, now);
			if (ms >= ACCEPTQ_WARN_MS && !v->acceptq.warned) {
				log_warnx(
				    "%s: not accepting: %u connection(s) queued, none accepted "
				    "for %.1f s",
				    vname(v), v->acceptq.queue, ms / 1000.0);
				v->acceptq.warned = true;
			} else if (!ms && v->acceptq.warned) {
				log_info("%s: accepting again", vname(v));
				v->acceptq.warned = false;
			}
		}
}
