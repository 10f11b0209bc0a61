/* SPDX-License-Identifier: MIT */
/* The data-plane facade over steer and track; see dp.h. */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bytes_user.h"
#include "dp.h"
#include "latency_user.h"
#include "drain_user.h"
#include "listen.h"
#include "log.h"
#include "orphan.h"
#include "services.h"

static struct steer st;
static struct track tr;
static struct latency lat = {.hist_fd = -1};
static bool lat_on = true; /* [agent] latency */
static bool lat_wanted;	   /* a version was measured: the latency programs follow track */
/* byte-counts' programs: loaded at the first version counted; 1 loaded, -1 could not be. */
static struct bytes by = {.fd = -1};
static int by_state;
/* drain-http's program: loaded at its first use; 1 loaded, -1 could not be. */
static struct drain dr;
static int dr_state;

/* Zero events read from track's ring buffer, handed out by dp_zero_next. */
static struct track_event *zq;
static size_t zq_len, zq_cap, zq_head;

static void zero_queue(void *ctx, const struct track_event *e)
{
	(void)ctx;
	if (zq_len == zq_cap) {
		size_t cap = zq_cap ? zq_cap * 2 : 64;
		struct track_event *n = realloc(zq, cap * sizeof(*n));

		if (!n) {
			/* The version's drain-timeout still ends its drain. */
			log_warnx("out of memory: a version's zero event was dropped");
			return;
		}
		zq = n;
		zq_cap = cap;
	}
	zq[zq_len++] = *e;
}

/* The pin directory, locked while this agent runs (flock, as libxdp and tubular do). */
static int dir_fd = -1;
static char dir_path[256];

/*
 * Only root may own the pin directory and write to it: anyone else could
 * replace a pinned map or link between two agents.  Created 0700 when
 * missing; one agent at a time.
 */
static int dir_lock(const char *bpf_dir, char *err, size_t errlen)
{
	struct stat sb;

	if (mkdir(bpf_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", bpf_dir, strerror(errno));
		return -errno;
	}
	dir_fd = open(bpf_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dir_fd < 0 || fstat(dir_fd, &sb) < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot open %s: %s (bpf-dir must be a directory)", bpf_dir,
			 strerror(errno));
		if (dir_fd >= 0)
			close(dir_fd);
		dir_fd = -1;
		return r;
	}
	if (sb.st_uid != 0 || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen,
			 "%s is owned by uid %u with mode %04o: only root may own and write the "
			 "pin directory (remove it, or: chown root: %s && chmod 700 %s)",
			 bpf_dir, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777), bpf_dir,
			 bpf_dir);
		close(dir_fd);
		dir_fd = -1;
		return -EPERM;
	}
	if (flock(dir_fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;

		snprintf(err, errlen,
			 "another baton agent uses the pin directory %s (stop it first: baton "
			 "shutdown, or give this agent another bpf-dir)",
			 bpf_dir);
		close(dir_fd);
		dir_fd = -1;
		return r;
	}
	snprintf(dir_path, sizeof(dir_path), "%s", bpf_dir);
	return 0;
}

/* The previous agent's sockets map when its pin is gone (see orphan.c), and whether ours is new. */
static struct orphan orph = {.fd = -1};
static bool sockets_new;

/*
 * With the sockets pin gone while services run, take the previous agent's
 * map over: pinned again, it is the one this agent loads with, and every
 * listener stays where it is.  A map of another size cannot be: its
 * listeners move into the new one as each service is restored.
 */
static void sockets_takeover(const char *bpf_dir, const __u64 *cookies, int n)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/sockets", bpf_dir);
	if (!access(path, F_OK))
		return; /* pinned: reused as it is */
	sockets_new = true;
	if (orphan_find(&orph, cookies, n))
		return;
	if (orph.max_entries == SOCKARRAY_SIZE && !bpf_obj_pin(orph.fd, path)) {
		log_info("took over the previous agent's sockets map (map id %u, %d of its "
			 "listeners), whose pin was removed",
			 orph.id, orph.n);
		sockets_new = false;
		orphan_close(&orph);
		return;
	}
	log_warnx("the previous agent's sockets map (map id %u) has %u slots, not %u: its %d "
		  "listeners move into a new map as each service is restored",
		  orph.id, orph.max_entries, (unsigned)SOCKARRAY_SIZE, orph.n);
}

int dp_open(const char *bpf_dir, const __u64 *cookies, int ncookies, char *err, size_t errlen)
{
	int r = dir_lock(bpf_dir, err, errlen);

	if (r)
		return r;
	sockets_takeover(bpf_dir, cookies, ncookies);
	log_libbpf_quiet(true);
	r = steer_open(&st, bpf_dir, err, errlen);
	if (r) {
		log_libbpf_quiet(false);
		close(dir_fd);
		dir_fd = -1;
		return r;
	}
	r = track_open(&tr, bpf_dir, false, zero_queue, NULL, err, errlen);
	if (!r) {
		char lerr[256];

		/* Without it the services run as before, unmeasured: a warning, not a failure. */
		if (latency_open(&lat, bpf_dir, lat_on, lerr, sizeof(lerr)))
			log_warnx("latency is not measured: %s", lerr);
		else if (!lat_on)
			log_info("latency is not measured (latency = off)");
	}
	log_libbpf_quiet(false);
	if (r) {
		steer_close(&st);
		close(dir_fd);
		dir_fd = -1;
	}
	return r;
}

void dp_set_latency(bool on)
{
	lat_on = on;
}

/* The latency cgroup_skb programs run where track does, and nowhere else. */
static void latency_follow_track(void)
{
	__u64 ids[1 + TRACK_MAX_EXTRA];
	char err[256];
	int n;

	if (!lat_wanted)
		return;
	n = track_cgroups(&tr, ids, 1 + TRACK_MAX_EXTRA);
	if (latency_follow(&lat, ids, n, err, sizeof(err)))
		log_warnx("response times are not measured on some listeners: %s", err);
}

int dp_track_scope(const char *cgroup, char *err, size_t errlen)
{
	int r = track_scope(&tr, cgroup, err, errlen);

	if (!r)
		latency_follow_track();
	return r;
}

int dp_track_cover(const char *cgroup, char *err, size_t errlen)
{
	int r = track_cover(&tr, cgroup, err, errlen);

	if (!r)
		latency_follow_track();
	return r;
}

int dp_track_extra(__u64 *ids, int max)
{
	return track_extra(&tr, ids, max);
}

int dp_track_uncover(__u64 id)
{
	int r = track_uncover(&tr, id);

	if (!r)
		latency_follow_track();
	return r;
}

void dp_close(bool unpin)
{
	int r;

	orphan_close(&orph);
	if (dr_state > 0)
		drain_close(&dr);
	dr_state = 0;
	if (by_state > 0)
		bytes_close(&by);
	by_state = 0;
	latency_close(&lat);
	track_close(&tr);
	steer_close(&st);
	free(zq);
	zq = NULL;
	zq_len = zq_cap = zq_head = 0;
	if (dir_fd < 0)
		return;
	/*
	 * Nothing runs any more: the maps and the track link go with their pins
	 * (the link detaches once its last pin and fd are gone).
	 */
	if (unpin) {
		r = steer_unpin(dir_path);
		if (r)
			log_warnx("cannot remove the pins in %s: %s", dir_path, strerror(-r));
		else
			log_info("removed the pins in %s; the track program is detached", dir_path);
	}
	close(dir_fd);
	dir_fd = -1;
}

int dp_zero_fd(void)
{
	return track_ring_fd(&tr);
}

int dp_zero_next(struct track_event *e)
{
	if (zq_head == zq_len) {
		zq_head = zq_len = 0;
		track_ring_consume(&tr);
		if (!zq_len)
			return 0;
	}
	*e = zq[zq_head++];
	return 1;
}

int dp_service_add(struct service *s, char *err, size_t errlen)
{
	int j;

	for (j = 0; j < s->conf.nlisten; j++)
		if (steer_add_group(&st, (struct sockaddr *)&s->conf.listen[j].ss, s->id,
				    s->group[j])) {
			snprintf(err, errlen, "%s: cannot register %s: %s", s->conf.name,
				 s->conf.listen[j].text, strerror(errno));
			while (j--)
				steer_del_group(&st, (struct sockaddr *)&s->conf.listen[j].ss);
			return -1;
		}
	return 0;
}

void dp_service_del(struct service *s)
{
	int j;

	for (j = 0; j < s->conf.nlisten; j++)
		steer_del_group(&st, (struct sockaddr *)&s->conf.listen[j].ss);
	steer_del_service(&st, s->id);
}

void dp_service_stats(const struct service *s, struct steer_stats *sum)
{
	struct steer_stats g;
	int j;

	memset(sum, 0, sizeof(*sum));
	for (j = 0; j < s->conf.nlisten; j++)
		if (!steer_group_stats(&st, s->group[j], &g)) {
			sum->selected += g.selected;
			sum->probes += g.probes;
			sum->migrated += g.migrated;
			sum->fallback += g.fallback;
			sum->dropped += g.dropped;
			sum->pinned += g.pinned;
			sum->evicted += g.evicted;
		}
}

void dp_unplace_instance(struct version *v, int i)
{
	struct service *s = v->svc;
	int j;

	for (j = 0; j < s->conf.nlisten; j++)
		steer_remove(&st, steer_slot(s->group[j], v->vslot, i));
}

int dp_attach(int fd)
{
	return steer_attach(&st, fd);
}

static int bytes_ready(void)
{
	char err[300];

	if (by_state)
		return by_state > 0 ? 0 : -EOPNOTSUPP;
	/* The agent checked the kernel at start and at reload (bytes_config_check). */
	if (bytes_open(&by, dir_path, err, sizeof(err))) {
		log_warnx("byte-counts: %s; bytes are not counted", err);
		by_state = -1;
		return -EOPNOTSUPP;
	}
	by_state = 1;
	return 0;
}

/*
 * The tracepoint programs run for every recvmsg/sendmsg of the host:
 * attached while some version of a service with byte-counts runs, and
 * only then.  v is being registered (live: not in its slot yet) or
 * forgotten (not live: maybe still in it).
 */
static void bytes_follow(const struct version *v, bool live)
{
	struct service *s;
	char err[300];
	bool any = live && v->svc->conf.byte_counts;
	int i, j;

	for (i = 0; (s = service_at(i)) && !any; i++)
		for (j = 0; j < MAX_VERSIONS && !any; j++)
			any = !s->gone && s->conf.byte_counts && s->slot[j] && s->slot[j] != v;
	if (by_state <= 0 || (!any && !by.rx))
		return;
	if (bytes_attach(&by, any, err, sizeof(err)))
		log_warnx("byte-counts: %s; bytes are not counted", err);
	else if (any != (by.rx != NULL))
		log_warnx("byte-counts: the tracepoint programs did not follow the setting");
}

/* byte-counts on: count v's bytes (kept if counted already); off: forget them. */
static void bytes_measure(const struct version *v)
{
	if (v->svc->conf.byte_counts && !bytes_ready())
		bytes_register(&by, v->svc->id, v->num, false);
	else if (by_state > 0)
		bytes_forget(&by, v->svc->id, v->num);
	bytes_follow(v, true);
}

int dp_bytes(const struct version *v, struct byte_counts *b)
{
	if (by_state <= 0 || !v->svc->conf.byte_counts)
		return -ENOTSUP;
	return bytes_read(&by, v->svc->id, v->num, b);
}

void dp_measure(const struct version *v)
{
	bytes_measure(v);
	/* Registered: track gives its new connections latency state; else none. */
	if (lat_on && LATENCY_MEASURED(&v->svc->conf)) {
		latency_register(&lat, v->svc->id, v->num);
		/* The programs run from the first version measured on (none: no cost at all). */
		if (!lat_wanted) {
			lat_wanted = true;
			latency_follow_track();
		}
	} else {
		latency_forget(&lat, v->svc->id, v->num);
	}
}

int dp_register(const struct version *v)
{
	/* A new version's bytes start at zero, whatever an earlier one of its number left. */
	if (by_state > 0)
		bytes_forget(&by, v->svc->id, v->num);
	dp_measure(v);
	return track_register(&tr, v->svc->id, v->num);
}

int dp_ensure(const struct version *v)
{
	/* A restarted agent measures from now: its histograms start empty. */
	dp_measure(v);
	return track_ensure(&tr, v->svc->id, v->num);
}

int dp_latency(const struct version *v, struct lat_hist *h)
{
	return latency_read(&lat, v->svc->id, v->num, h);
}

int dp_counts(const struct version *v, struct version_counts *n)
{
	return track_counts(&tr, v->svc->id, v->num, n);
}

int dp_inst_conns(const struct version *v, long long n[MAX_INSTANCES])
{
	int i, r = track_inst_live(&tr, v->svc->id, v->num, n);

	if (r)
		return r;
	for (i = 0; i < MAX_INSTANCES; i++)
		if (i >= v->ninst || !v->inst[i].alive)
			n[i] = -1;
	return 0;
}

int dp_watch(const struct version *v, int on)
{
	return track_watch(&tr, v->svc->id, v->num, on);
}

int dp_reset_begin(const struct version *v, struct track_reset **r)
{
	return track_reset_begin(&tr, v->svc->id, v->num, r);
}

int dp_forget(const struct version *v)
{
	latency_forget(&lat, v->svc->id, v->num);
	if (by_state > 0) {
		bytes_forget(&by, v->svc->id, v->num);
		bytes_follow(v, false);
	}
	return track_forget(&tr, v->svc->id, v->num);
}

static int drain_ready(void)
{
	char err[300];

	if (dr_state)
		return dr_state > 0 ? 0 : -EOPNOTSUPP;
	if (drain_open(&dr, dir_path, err, sizeof(err))) {
		log_warnx("drain-http: %s; versions drain without it", err);
		dr_state = -1;
		return -EOPNOTSUPP;
	}
	dr_state = 1;
	return 0;
}

int dp_http_drain(const struct version *v, int on)
{
	int r = drain_ready();

	return r ? r : drain_version(&dr, v->svc->id, v->num, on);
}

int dp_http_drain_stats(const struct version *v, struct drain_stats *s)
{
	int r = drain_ready();

	return r ? r : drain_stats(&dr, v->svc->id, v->num, s);
}

int dp_http_drain_inst(const struct version *v, int i, int on)
{
	int r = drain_ready();

	return r ? r : drain_inst(&dr, v->svc->id, v->num, i, on);
}

int dp_http_drain_inst_stats(const struct version *v, int i, struct drain_stats *s)
{
	if (dr_state <= 0)
		return -EOPNOTSUPP;
	return drain_inst_stats(&dr, v->svc->id, v->num, i, s);
}

int dp_http_resteer(const struct service *s, int on)
{
	int r = drain_ready();

	return r ? r : drain_resteer(&dr, s->id, on);
}

int dp_http_resteer_stats(const struct service *s, struct drain_stats *st)
{
	if (dr_state <= 0)
		return -EOPNOTSUPP;
	return drain_resteer_stats(&dr, s->id, st);
}

int dp_http_measure(const struct version *v, int on)
{
	__u64 ids[1 + TRACK_MAX_EXTRA];
	char err[300];
	int r, n, i, fd;

	if (!on) {
		if (dr_state <= 0)
			return 0;
		return drain_measure(&dr, v->svc->id, v->num, 0);
	}
	r = drain_ready();
	if (r)
		return r;
	/* New connections join at their handshake wherever track counts them. */
	n = track_cgroups(&tr, ids, 1 + TRACK_MAX_EXTRA);
	for (i = 0; i < n; i++) {
		fd = cgroup_open_id(ids[i]);
		if (fd < 0) {
			log_warnx("measure-http: cannot open a cgroup track counts in: %s; its "
				  "connections join at the next pass",
				  strerror(-fd));
			continue;
		}
		if (drain_measure_attach(&dr, ids[i], fd, err, sizeof(err)))
			log_warnx("measure-http: %s; connections join at the next pass", err);
		close(fd);
	}
	return drain_measure(&dr, v->svc->id, v->num, 1);
}

int dp_http_counts(const struct version *v, struct http_counts *c)
{
	if (dr_state <= 0)
		return -EOPNOTSUPP;
	return drain_http_counts(&dr, v->svc->id, v->num, c);
}

int dp_http_drain_step(int budget, int *changed)
{
	*changed = 0;
	if (dr_state <= 0)
		return -EOPNOTSUPP;
	return drain_pass_step(&dr, budget, changed);
}

int dp_probe_add(const struct version *v, int i, int j, const struct sockaddr_storage *src)
{
	return steer_probe_add(&st, v->svc->id, v->svc->group[j], (const struct sockaddr *)src,
			       v->vslot, i);
}

int dp_probe_del(const struct version *v, int j, const struct sockaddr_storage *src)
{
	return steer_probe_del(&st, v->svc->id, v->svc->group[j], (const struct sockaddr *)src);
}

int dp_probe_clear(void)
{
	return steer_probe_clear(&st);
}

int dp_extras_sync(void)
{
	return steer_extras_sync(&st);
}

/* Unique across services, so a cache of one service's pins never matches another's. */
static unsigned pins_epoch;

int dp_pin_set(struct service *s, const struct steer_cidr *c, int num)
{
	s->pins_gen = ++pins_epoch;
	return steer_pin_set(&st, s->id, c, num);
}

int dp_pin_del(struct service *s, const struct steer_cidr *c)
{
	s->pins_gen = ++pins_epoch;
	return steer_pin_del(&st, s->id, c);
}

int dp_pin_list(const struct service *s, struct steer_cidr *out, __u32 *versions, int max)
{
	return steer_pin_list(&st, s->id, out, versions, max);
}

int dp_pin_del_version(const struct version *v)
{
	v->svc->pins_gen = ++pins_epoch;
	return steer_pin_del_version(&st, v->svc->id, v->num);
}

int dp_policy(struct service *s)
{
	/* byte-counts: steer marks the decisions, and track gives those connections storage. */
	struct steer_service p = {.mode = s->conf.steering,
				  .flags = s->conf.byte_counts ? STEER_F_BYTES : 0};
	int i, r;

	for (i = 0; i < MAX_VERSIONS; i++) {
		struct version *v = s->slot[i];

		if (!v)
			continue;
		p.v[i].version = v->num;
		/* rolling: only the new version's ready prefix takes clients */
		p.v[i].instances = v->serve_n ? v->serve_n : v->ninst;
		switch (v->phase) {
		case VP_STARTING:
			p.v[i].state = VSTATE_STARTING;
			break;
		case VP_ACTIVE:
			p.v[i].state = VSTATE_ACTIVE;
			p.v[i].weight = v->weight;
			break;
		default:
			p.v[i].state = VSTATE_DRAINING;
			break;
		}
	}
	r = steer_set_service(&st, s->id, &p);
	if (r)
		log_warnx("%s: cannot update the steering policy: %s", s->conf.name, strerror(-r));
	return r;
}

void dp_place(struct version *v)
{
	struct service *s = v->svc;
	int i, j, r;

	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < s->conf.nlisten; j++) {
			if (v->inst[i].lfd[j] < 0)
				continue;
			r = steer_place(&st, steer_slot(s->group[j], v->vslot, i),
					v->inst[i].lfd[j]);
			if (r)
				log_warnx("%s: cannot place instance %d's socket: %s", vname(v), i,
					  strerror(-r));
		}
}

void dp_place_instance(struct version *v, int i)
{
	struct service *s = v->svc;
	int j, r;

	for (j = 0; j < s->conf.nlisten; j++) {
		if (v->inst[i].lfd[j] < 0)
			continue;
		r = steer_place(&st, steer_slot(s->group[j], v->vslot, i), v->inst[i].lfd[j]);
		if (r)
			log_warnx("%s: cannot place instance %d's socket: %s", vname(v), i,
				  strerror(-r));
	}
}

bool dp_sockets_new(void)
{
	return sockets_new;
}

void dp_place_again(struct version *v)
{
	struct service *s = v->svc;
	int i, j;

	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < s->conf.nlisten; j++)
			if (v->inst[i].lfd[j] >= 0 && orphan_evict(&orph, v->inst[i].cookie[j]) &&
			    orph.fd >= 0)
				log_warnx("%s: instance %d's %s listener was not in the previous "
					  "agent's map",
					  vname(v), i, s->conf.listen[j].text);
	dp_place(v);
}

void dp_takeover_done(void)
{
	orphan_close(&orph);
}

void dp_unplace(struct version *v)
{
	struct service *s = v->svc;
	int i, j;

	for (i = 0; i < v->ninst; i++)
		for (j = 0; j < s->conf.nlisten; j++)
			steer_remove(&st, steer_slot(s->group[j], v->vslot, i));
}

/*
 * Attach this agent's program to a group, through a listener of a version
 * taken over (the copies restore.c got back), or, when there is none, a
 * short-lived member socket.  Not a member when it can be helped: a
 * listener that joins the group goes first in the IPv4 lookup list, and
 * when it closes, a SYN whose lookup already picked it runs steer with a
 * closed socket whose port reads 0; steer finds no group for port 0 and
 * refuses the client.  Without a listener copy nothing is placed, so no
 * client could be served anyway.
 */
void dp_reattach(struct service *s, int j)
{
	char err[256];
	int fd, r, i, k;

	for (i = 0; i < MAX_VERSIONS; i++)
		for (k = 0; s->slot[i] && k < s->slot[i]->ninst; k++)
			if (s->slot[i]->inst[k].lfd[j] >= 0) {
				r = steer_attach(&st, s->slot[i]->inst[k].lfd[j]);
				if (r)
					log_warnx("%s: cannot reattach the steer program to %s: %s",
						  s->conf.name, s->conf.listen[j].text,
						  strerror(-r));
				return;
			}
	fd = make_listener(&s->conf, j, err, sizeof(err));
	if (fd < 0) {
		log_warnx("%s: cannot reattach the steer program to %s: %s", s->conf.name,
			  s->conf.listen[j].text, err);
		return;
	}
	/*
	 * The program chooses only sockets in the map, so this member never
	 * gets a connection; closing it migrates nothing.
	 */
	r = steer_attach(&st, fd);
	if (r)
		log_warnx("%s: cannot reattach the steer program to %s: %s", s->conf.name,
			  s->conf.listen[j].text, strerror(-r));
	close(fd);
}
