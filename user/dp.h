/* SPDX-License-Identifier: MIT */
/*
 * The data-plane facade: the only code that touches the BPF maps.  It
 * speaks the model (services, versions, instances) and turns it into
 * steer's and track's keys: a service's policy, a version's sockets in the
 * sockets map, its connection counts, its zero watch, its pins and probes.
 * Drain events (a watched version reached zero) come up through an fd
 * (dp_zero_fd) and are read with dp_zero_next, never as a callback.
 */
#ifndef BATON_DP_H
#define BATON_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "bytes.h"
#include "drain.h"
#include "latency.h"
#include "model.h"
#include "steer_user.h"
#include "track_user.h"

/*
 * Lock the pin directory (root's only, one agent at a time), load and pin.
 * cookies: the listeners of the services a previous agent left running, to
 * find its sockets map if its pin was removed.  0, or -errno with a
 * one-line err naming the path and the fix.
 */
int dp_open(const char *bpf_dir, const __u64 *cookies, int ncookies, char *err, size_t errlen);
/* Drop the programs; with unpin (shutdown --stop) the pins and the directory go too. */
/*
 * Where connections are counted: the track program runs for sockets made
 * in the cgroup at cgroup (the agent's, where it makes every listener), and
 * also (cover) in an adopted server's.  0 or -errno with err.
 */
int dp_track_scope(const char *cgroup, char *err, size_t errlen);
int dp_track_cover(const char *cgroup, char *err, size_t errlen);
/* The cgroups covered for adopted servers (ids, at most max), and dropping one. */
int dp_track_extra(__u64 *ids, int max);
int dp_track_uncover(__u64 id);
/*
 * [agent] latency, before dp_open: off loads nothing that runs and measures
 * no version.  On, the latency cgroup_skb programs are attached where track
 * is (scope, cover) from the first version measured on: a host that
 * measures nothing runs nothing.
 */
void dp_set_latency(bool on);
/* Measure v's latency or not, as its service's latency setting says (LATENCY_MEASURED; at
 * register, at reload). */
void dp_measure(const struct version *v);
void dp_close(bool unpin);

/* A service's groups (one per listen address) and its policy entry. */
int dp_service_add(struct service *s, char *err, size_t errlen);
void dp_service_del(struct service *s);
/* Write the service's policy from its versions' phases and weights: one map update. */
int dp_policy(struct service *s);
/* Summed steer counters of the service's groups. */
void dp_service_stats(const struct service *s, struct steer_stats *sum);

/* A version's sockets in the sockets map, all of them or one instance's (v->placed is the state
 * machine's). */
void dp_place(struct version *v);
void dp_unplace(struct version *v);
/*
 * Whether this agent's sockets map is new although services may run (their
 * pins were removed): the versions taken over must be placed again, with
 * dp_place_again, which first takes each listener out of the previous
 * agent's map.
 */
bool dp_sockets_new(void);
void dp_place_again(struct version *v);
/* Every service is restored: let the previous agent's map go. */
void dp_takeover_done(void);
void dp_unplace_instance(struct version *v, int i);
/* One instance's sockets into the map (rolling). */
void dp_place_instance(struct version *v, int i);
/* Attach steer to the reuseport group fd is in (harmless when attached). */
int dp_attach(int fd);
/* Attach this agent's program to group j of s through a short-lived member socket. */
void dp_reattach(struct service *s, int j);

/* A version's connection counters: register, read, watch for zero, reset, forget. */
int dp_register(const struct version *v);
int dp_counts(const struct version *v, struct version_counts *n);
/*
 * A version's payload bytes received and sent (byte-counts): since its
 * first registration, kept over reloads and agent restarts; -ENOTSUP when
 * its service does not count bytes.
 */
int dp_bytes(const struct version *v, struct byte_counts *b);
/* A version's latency histograms since it was registered; -ENOTSUP when not measured. */
int dp_latency(const struct version *v, struct lat_hist *h);
/* Counters of a version taken over: kept when the maps survived, new when they did not. */
int dp_ensure(const struct version *v);
int dp_watch(const struct version *v, int on);
/*
 * Live connections of each instance of v, as the kernel counts them per
 * listener slot (n[i]; -1: not running): one map read.  0 or -errno.
 */
int dp_inst_conns(const struct version *v, long long n[MAX_INSTANCES]);
/* A cursor over v's connections for track_reset_step (drain-reset). */
int dp_reset_begin(const struct version *v, struct track_reset **r);
int dp_forget(const struct version *v);
/* The fd that is readable when a watched version reached zero, and the events. */
int dp_zero_fd(void);
/* Next queued zero event: 1 with *e, 0 when there is none. */
int dp_zero_next(struct track_event *e);

/*
 * Probe pins: the agent's own check of instance i on listen address j
 * reaches exactly its socket there.  Keyed by the probe's bound source
 * address and port (getsockname), so only it matches.
 */
int dp_probe_add(const struct version *v, int i, int j, const struct sockaddr_storage *src);
int dp_probe_del(const struct version *v, int j, const struct sockaddr_storage *src);

/*
 * drain-http: a version's connections join (on) or leave (off) the drain
 * sockhash at the next passes.  The drain program is loaded at the first
 * use; -EOPNOTSUPP when it cannot be (logged once).
 */
int dp_http_drain(const struct version *v, int on);
int dp_http_drain_stats(const struct version *v, struct drain_stats *st);
/* One instance (from 0) of a version that serves on through its others. */
int dp_http_drain_inst(const struct version *v, int i, int on);
int dp_http_drain_inst_stats(const struct version *v, int i, struct drain_stats *st);
int dp_http_resteer(const struct service *s, int on);
int dp_http_resteer_stats(const struct service *s, struct drain_stats *st);
/*
 * measure-http: count (on) or stop counting (off) the status classes of
 * v's responses (its new connections join at their handshake, the others at
 * the next pass); its counts since it was turned on.
 */
int dp_http_measure(const struct version *v, int on);
int dp_http_counts(const struct version *v, struct http_counts *c);
/* One bounded step of a pass (drain_pass_step): 1 more, 0 complete, -errno. */
int dp_http_drain_step(int budget, int *changed);

int dp_probe_clear(void);
/* Recount each service's pins and probes (after a restart). */
int dp_extras_sync(void);

/* Client CIDR pins. */
int dp_pin_set(struct service *s, const struct steer_cidr *c, int num);
int dp_pin_del(struct service *s, const struct steer_cidr *c);
int dp_pin_list(const struct service *s, struct steer_cidr *out, __u32 *versions, int max);
int dp_pin_del_version(const struct version *v);

#endif /* BATON_DP_H */
