/* SPDX-License-Identifier: MIT */
/* Prometheus metrics: GET /metrics on [agent] metrics, never blocking the loop. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dp.h"
#include "loop.h"
#include "httpstat.h"
#include "latview.h"
#include "evlog.h"
#include "logq.h"
#include "fsm.h"
#include "metrics.h"
#include "versions.h"
#include "services.h"

#ifndef BATON_VERSION_STR
#define BATON_VERSION_STR "0.1.0"
#endif

#define METRICS_CLIENTS	   16
#define METRICS_TIMEOUT_MS 2000

struct mclient {
	int fd;
	long long t0;
	size_t len;
	char buf[1024];
	char *out; /* the answer, sent as the socket takes it */
	size_t out_len, out_off;
	struct evsrc ev;
};

static int metricsfd = -1;
static struct evsrc ev_metrics;

static struct mclient *mclients[METRICS_CLIENTS];
/* Closed in this epoll batch, freed after it (each client is closed once). */
static struct mclient *mclient_dead[METRICS_CLIENTS];
static int nmclient_dead;

static void mclient_close(struct mclient *m)
{
	int i;

	ep_del(m->fd);
	close(m->fd);
	m->fd = -1;
	free(m->out);
	m->out = NULL;
	for (i = 0; i < METRICS_CLIENTS; i++)
		if (mclients[i] == m) {
			mclients[i] = NULL;
			mclient_dead[nmclient_dead++] = m;
		}
}

void metrics_put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

static void metric_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One drain-http counter per service that has drain-http (offset of its field in the service). */
/* Prometheus gates of each rollout under way: the last value, and verdicts by kind. */
static void gate_metrics(FILE *f)
{
	struct service *s;
	struct version *nv;
	int i, g;

	metric_head(f, "baton_gate_value", "gauge",
		    "The last value of each Prometheus gate's query on the version under rollout.");
	for (i = 0; (s = service_at(i)); i++) {
		nv = s->gone || s->ro.stage == RO_NONE ? NULL : ro_new(s);
		for (g = 0; nv && g < s->conf.ngates; g++)
			if (nv->gate[g].verdict == GV_PASS || nv->gate[g].verdict == GV_FAIL) {
				fputs("baton_gate_value{service=\"", f);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"%d\",gate=\"", nv->num);
				metrics_put_label(f, s->conf.gate[g].name);
				fprintf(f, "\"} %.17g\n", nv->gate[g].value);
			}
	}
	metric_head(f, "baton_gate_verdicts", "gauge",
		    "Verdicts of each Prometheus gate on the version under rollout, by verdict.");
	for (i = 0; (s = service_at(i)); i++) {
		nv = s->gone || s->ro.stage == RO_NONE ? NULL : ro_new(s);
		for (g = 0; nv && g < s->conf.ngates; g++) {
			unsigned long n[] = {nv->gate[g].passes, nv->gate[g].failures,
					     nv->gate[g].inconclusive};
			static const char *const vn[] = {"pass", "fail", "inconclusive"};
			int k;

			for (k = 0; k < 3; k++) {
				fputs("baton_gate_verdicts{service=\"", f);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"%d\",gate=\"", nv->num);
				metrics_put_label(f, s->conf.gate[g].name);
				fprintf(f, "\",verdict=\"%s\"} %lu\n", vn[k], n[k]);
			}
		}
	}
	metric_head(f, "baton_latency_gate_windows", "gauge",
		    "Windows the built-in gates (max-p99, max-p99-ratio, max-accept-wait-p99, "
		    "min-success-rate, max-error-ratio) judged on the version under rollout, by "
		    "verdict.");
	for (i = 0; (s = service_at(i)); i++) {
		static const char *const vn[] = {"pass", "fail", "inconclusive"};
		int k;

		nv = s->gone || s->ro.stage == RO_NONE ? NULL : ro_new(s);
		if (!nv || !fsm_gates_on(&s->conf))
			continue;
		for (k = 0; k < 3; k++) {
			fputs("baton_latency_gate_windows{service=\"", f);
			metrics_put_label(f, s->conf.name);
			fprintf(f, "\",version=\"%d\",verdict=\"%s\"} %lu\n", nv->num, vn[k],
				s->ro.gate_windows[k]);
		}
	}
}

static void drain_http_metric(FILE *f, const char *name, const char *help, size_t off)
{
	struct service *s;
	int i;

	metric_head(f, name, "counter", help);
	for (i = 0; (s = service_at(i)); i++)
		if (!s->gone && s->conf.drain_http) {
			fprintf(f, "%s{service=\"", name);
			metrics_put_label(f, s->conf.name);
			fprintf(f, "\"} %llu\n", *(unsigned long long *)((char *)s + off));
		}
}

static char *metrics_text(size_t *len)
{
	static const char *const result_names[] = {"completed", "rolled_back", "failed"};
	struct version_counts n;
	struct steer_stats st;
	struct service *s;
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	int i, k, j;

	if (!f)
		return NULL;
	metric_head(f, "baton_info", "gauge", "The baton agent's build.");
	fprintf(f, "baton_info{version=\"%s\"} 1\n", BATON_VERSION_STR);
	metric_head(f, "baton_loop_turn_cpu_max_seconds", "gauge",
		    "The most CPU time one turn of the agent's event loop took since it started.");
	fprintf(f, "baton_loop_turn_cpu_max_seconds %.6f\n", loop_turn_max_us() / 1e6);
	metric_head(f, "baton_events_dropped_total", "counter",
		    "Events the event log's file missed: its writer was too slow and the queue "
		    "in memory full.");
	fprintf(f, "baton_events_dropped_total %llu\n", evlog_dropped());
	metric_head(f, "baton_log_lines_dropped_total", "counter",
		    "Log lines stderr missed: it was not read fast enough and the queue in memory "
		    "was full.");
	fprintf(f, "baton_log_lines_dropped_total %llu\n", logq_dropped());

	/* Per version, from the kernel's counters. */
	static const struct {
		const char *name, *type, *help;
	} vm[] = {
	    {"baton_version_live_connections", "gauge",
	     "Connections of the version established and not closed (accepted or queued)."},
	    {"baton_version_accepted_connections_total", "counter",
	     "Connections of the version that completed the handshake."},
	    {"baton_version_closed_connections_total", "counter",
	     "Connections of the version closed."},
	    {"baton_version_migrated_in_connections_total", "counter",
	     "Connections moved to the version from a closing listener."},
	    {"baton_version_resets_total", "counter",
	     "Connections the version's server side aborted with a RST."},
	    {"baton_version_lost_connections_total", "counter",
	     "Connections closed because the process holding them exited."},
	    {"baton_version_weight_ratio", "gauge",
	     "Share of new connections the version takes by weight, 0 to 1."},
	};
	for (k = 0; k < (int)(sizeof(vm) / sizeof(vm[0])); k++) {
		metric_head(f, vm[k].name, vm[k].type, vm[k].help);
		for (i = 0; (s = service_at(i)); i++)
			for (j = 0; j < MAX_VERSIONS; j++) {
				struct version *v = s->slot[j];
				unsigned long long val = 0;

				if (!v || s->gone)
					continue;
				memset(&n, 0, sizeof(n));
				dp_counts(v, &n);
				switch (k) {
				case 0:
					val = n.live > 0 ? (unsigned long long)n.live : 0;
					break;
				case 1:
					val = n.accepted;
					break;
				case 2:
					val = n.closed;
					break;
				case 3:
					val = n.migrated_in;
					break;
				case 4:
					val = n.resets;
					break;
				case 5:
					val = n.lost;
					break;
				}
				fprintf(f, "%s{service=\"", vm[k].name);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\"", v->num);
				if (k == 0)
					fprintf(f, ",state=\"%s\"", phase_names[v->phase]);
				if (k == 6)
					fprintf(f, "} %.4f\n",
						v->phase == VP_ACTIVE
						    ? v->weight / (double)WEIGHT_MAX
						    : 0.0);
				else
					fprintf(f, "} %llu\n", val);
			}
	}

	/* Per version, from the byte-counts programs (services without it have no line). */
	static const char *const bm[][2] = {
	    {"baton_version_bytes_received_total",
	     "Payload bytes the version's server read from its connections (byte-counts)."},
	    {"baton_version_bytes_sent_total",
	     "Payload bytes the version's server wrote to its connections (byte-counts)."},
	};
	for (k = 0; k < 2; k++) {
		metric_head(f, bm[k][0], "counter", bm[k][1]);
		for (i = 0; (s = service_at(i)); i++)
			for (j = 0; j < MAX_VERSIONS; j++) {
				struct version *v = s->slot[j];
				struct byte_counts b;

				if (!v || s->gone || dp_bytes(v, &b))
					continue;
				fprintf(f, "%s{service=\"", bm[k][0]);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\"} %llu\n", v->num,
					(unsigned long long)(k ? b.tx : b.rx));
			}
	}

	/* Per version, from its cgroup (versions without one have no line). */
	static const char *const tm[][3] = {
	    {"baton_version_processes", "gauge",
	     "Processes in the version's cgroup (the ones baton started and all their "
	     "descendants)."},
	    {"baton_version_stopped_processes", "gauge",
	     "Processes of the version's cgroup that are stopped (SIGSTOP: a frozen version)."},
	    {"baton_version_cpu_seconds_total", "counter",
	     "CPU time used by every process the version ran (cgroup cpu.stat usage_usec)."},
	    {"baton_version_memory_bytes", "gauge",
	     "Memory the version's cgroup uses (memory.current; with the memory controller)."},
	    {"baton_version_memory_peak_bytes", "gauge",
	     "Most memory the version's cgroup used (memory.peak; with the memory controller)."},
	};
	for (k = 0; k < 5; k++) {
		metric_head(f, tm[k][0], tm[k][1], tm[k][2]);
		for (i = 0; (s = service_at(i)); i++)
			for (j = 0; j < MAX_VERSIONS; j++) {
				struct version *v = s->slot[j];
				struct tree_stats ts;

				if (!v || s->gone || version_tree_stats(v, &ts) ||
				    (k == 2 && !ts.have_cpu) || (k == 3 && !ts.have_mem) ||
				    (k == 4 && !ts.have_mem_peak))
					continue;
				fprintf(f, "%s{service=\"", tm[k][0]);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\"} ", v->num);
				if (k == 2)
					fprintf(f, "%.6f\n", ts.cpu_usec / 1e6);
				else if (k >= 3)
					fprintf(f, "%llu\n", k == 3 ? ts.mem : ts.mem_peak);
				else
					fprintf(f, "%d\n", k ? ts.stopped : ts.procs);
			}
	}

	/* Per service, from the steering program. */
	static const char *const sm[][2] = {
	    {"baton_steer_selected_total", "New connections placed by weight."},
	    {"baton_steer_pinned_total", "New connections placed by a client pin."},
	    {"baton_steer_migrated_total", "Requests of a closing listener placed on a live one."},
	    {"baton_steer_fallback_total",
	     "Placements where the chosen socket was gone and another live one was used."},
	    {"baton_steer_dropped_total", "New connections refused: no live socket."},
	    {"baton_steer_evicted_total",
	     "Pending decisions replaced before their handshake completed (each such "
	     "connection is not counted)."},
	};
	for (k = 0; k < 6; k++) {
		metric_head(f, sm[k][0], "counter", sm[k][1]);
		for (i = 0; (s = service_at(i)); i++) {
			if (s->gone)
				continue;
			dp_service_stats(s, &st);
			fprintf(f, "%s{service=\"", sm[k][0]);
			metrics_put_label(f, s->conf.name);
			fprintf(f, "\"} %llu\n",
				(unsigned long long)(k == 0   ? st.selected
						     : k == 1 ? st.pinned
						     : k == 2 ? st.migrated
						     : k == 3 ? st.fallback
						     : k == 4 ? st.dropped
							      : st.evicted));
		}
	}
	/* Per version, whether it accepts (acceptq.c). */
	metric_head(f, "baton_version_accept_queue", "gauge",
		    "Connections waiting in the accept queues of the version's listeners.");
	for (i = 0; (s = service_at(i)); i++)
		for (j = 0; j < MAX_VERSIONS && !s->gone; j++)
			if (s->slot[j]) {
				fputs("baton_version_accept_queue{service=\"", f);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\"} %u\n", s->slot[j]->num,
					s->slot[j]->acceptq.queue);
			}
	metric_head(f, "baton_version_not_accepting_seconds", "gauge",
		    "How long the version has had connections queued and accepted none "
		    "(0: it accepts).");
	for (i = 0; (s = service_at(i)); i++)
		for (j = 0; j < MAX_VERSIONS && !s->gone; j++)
			if (s->slot[j]) {
				fputs("baton_version_not_accepting_seconds{service=\"", f);
				metrics_put_label(f, s->conf.name);
				fprintf(f, "\",version=\"v%d\"} %.3f\n", s->slot[j]->num,
					acceptq_stalled_ms(&s->slot[j]->acceptq, now_ms()) /
					    1000.0);
			}
	latview_metrics(f);
	httpstat_metrics(f);
	metric_head(f, "baton_rollouts_total", "counter", "Deploys that ended, by result.");
	for (i = 0; (s = service_at(i)); i++)
		for (k = 0; k < RR_COUNT && !s->gone; k++) {
			fputs("baton_rollouts_total{service=\"", f);
			metrics_put_label(f, s->conf.name);
			fprintf(f, "\",result=\"%s\"} %lu\n", result_names[k], s->rollouts[k]);
		}
	metric_head(f, "baton_rollbacks_total", "counter",
		    "Rollbacks to the previous version, by reason.");
	for (i = 0; (s = service_at(i)); i++)
		for (k = 0; k < RB_COUNT && !s->gone; k++) {
			fputs("baton_rollbacks_total{service=\"", f);
			metrics_put_label(f, s->conf.name);
			fprintf(f, "\",reason=\"%s\"} %lu\n", rb_names[k], s->rollbacks[k]);
		}
	gate_metrics(f);
	drain_http_metric(f, "baton_drain_closed_by_client_total",
			  "drain-http: connections of drained versions that their clients closed "
			  "during the drain.",
			  offsetof(struct service, drain_closed_by_client));
	drain_http_metric(f, "baton_drain_idle_closed_total",
			  "drain-http: connections still open (idle) when a drain ended, closed "
			  "by the server's exit.",
			  offsetof(struct service, drain_idle_closed));
	drain_http_metric(
	    f, "baton_drain_rewritten_total",
	    "drain-http: responses of drained versions rewritten to Connection: close.",
	    offsetof(struct service, drain_rewritten));
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * Send what the socket takes now; the rest when it is writable again.  A
 * scraper that stops reading holds only its own slot, until
 * METRICS_TIMEOUT_MS (never the loop).
 */
static void mclient_flush(struct mclient *m)
{
	ssize_t r;

	while (m->out_off < m->out_len) {
		r = send(m->fd, m->out + m->out_off, m->out_len - m->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			ep_mod(m->fd, &m->ev, EPOLLOUT);
			return;
		}
		if (r <= 0)
			break;
		m->out_off += r;
	}
	shutdown(m->fd, SHUT_WR);
	mclient_close(m);
}

static void mclient_answer(struct mclient *m)
{
	char head[256], *body = NULL;
	size_t blen = 0;
	const char *status = "200 OK";
	int hl;

	if (strncmp(m->buf, "GET /metrics ", 13) && strncmp(m->buf, "GET /metrics?", 13)) {
		status = strncmp(m->buf, "GET ", 4) ? "405 Method Not Allowed" : "404 Not Found";
		body = strdup("baton serves GET /metrics only\n");
		blen = body ? strlen(body) : 0;
	} else {
		body = metrics_text(&blen);
		if (!body)
			status = "500 Internal Server Error";
	}
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		      status, blen);
	m->out = malloc(hl + blen);
	if (!m->out) {
		free(body);
		mclient_close(m);
		return;
	}
	memcpy(m->out, head, hl);
	if (blen)
		memcpy(m->out + hl, body, blen);
	free(body);
	m->out_len = hl + blen;
	m->out_off = 0;
	mclient_flush(m);
}

void on_metrics_client(struct mclient *m)
{
	ssize_t r;

	if (m->fd < 0)
		return;
	if (m->out) {
		mclient_flush(m);
		return;
	}
	r = read(m->fd, m->buf + m->len, sizeof(m->buf) - 1 - m->len);
	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		mclient_close(m);
		return;
	}
	m->len += r;
	m->buf[m->len] = '\0';
	if (strstr(m->buf, "\r\n\r\n") || strstr(m->buf, "\n\n") || m->len == sizeof(m->buf) - 1)
		mclient_answer(m);
}

void on_metrics(void)
{
	long long t = now_ms();
	int fd, i;

	for (;;) {
		fd = accept4(metricsfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* At most METRICS_CLIENTS at once; slow ones are dropped to make room. */
		for (i = 0; i < METRICS_CLIENTS; i++)
			if (mclients[i] && t - mclients[i]->t0 > METRICS_TIMEOUT_MS)
				mclient_close(mclients[i]);
		for (i = 0; i < METRICS_CLIENTS && mclients[i]; i++)
			;
		if (i == METRICS_CLIENTS) {
			close(fd);
			continue;
		}
		mclients[i] = calloc(1, sizeof(*mclients[i]));
		if (!mclients[i]) {
			close(fd);
			continue;
		}
		mclients[i]->fd = fd;
		mclients[i]->t0 = t;
		ep_add(fd, &mclients[i]->ev, EV_METRICS_CLIENT, mclients[i], 0, EPOLLIN);
	}
}

/* Free metrics clients closed in this batch. */
void metrics_bury(void)
{
	while (nmclient_dead)
		free(mclient_dead[--nmclient_dead]);
}

int metrics_open(const struct listen_addr *la, char *err, size_t errlen)
{
	int one = 1, fd;

	fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&la->ss, la->len) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "metrics %s: %s (choose another address, or metrics = off)",
			 la->text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	metricsfd = fd;
	ep_add(fd, &ev_metrics, EV_METRICS, NULL, 0, EPOLLIN);
	return 0;
}

void metrics_close(void)
{
	int i;

	for (i = 0; i < METRICS_CLIENTS; i++)
		if (mclients[i])
			mclient_close(mclients[i]);
	metrics_bury();
	if (metricsfd >= 0)
		close(metricsfd);
	metricsfd = -1;
}
