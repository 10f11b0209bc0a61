/* SPDX-License-Identifier: GPL-2.0 */
/*
 * track: counts the live connections of every version baton steers.
 * Attached to the cgroup v2 root (a link, multi-attach, so other users'
 * sock_ops programs keep running).
 *
 * The steer program records its decision per 4-tuple in `decisions`.  When
 * the handshake completes (PASSIVE_ESTABLISHED: the connection exists,
 * accepted or still queued) the decision moves to `conns` and the version's
 * live count goes up, and so does its instance's (inst_live: the instance
 * whose listener steer chose).  They go down when the owner closes it (it
 * leaves ESTABLISHED / CLOSE_WAIT for FIN_WAIT1 / LAST_ACK, see
 * owner_done()), else when the socket reaches TCP_CLOSE (an abort, or a
 * half-closed connection's end); if the server side aborted it (sent a
 * RST), the version's resets go up.  When the exit of the process holding
 * a connection closes it, the version's lost goes up.  A connection
 * without a decision is not baton's and is never counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bytes.bpf.h"
#include "conns.bpf.h"
#include "latency.bpf.h"

#define AF_INET	 2
#define AF_INET6 10
/* task_struct.flags: the task is in do_exit() (include/linux/sched.h). */
#define PF_EXITING 0x00000004
/* sock.sk_shutdown: no more receiving (include/net/sock.h). */
#define RCV_SHUTDOWN 1

char LICENSE[] SEC("license") = "GPL";

static __always_inline int key_of(const struct bpf_sock_ops *skops, struct conn_key *k)
{
	k->family = skops->family;
	k->lport = (__u16)skops->local_port;
	/* remote_port holds the network-order port in its upper half. */
	k->rport = (__u16)bpf_ntohl(skops->remote_port);
	if (k->family == AF_INET) {
		k->laddr[0] = skops->local_ip4;
		k->raddr[0] = skops->remote_ip4;
		return 0;
	}
	if (k->family == AF_INET6) {
		k->laddr[0] = skops->local_ip6[0];
		k->laddr[1] = skops->local_ip6[1];
		k->laddr[2] = skops->local_ip6[2];
		k->laddr[3] = skops->local_ip6[3];
		k->raddr[0] = skops->remote_ip6[0];
		k->raddr[1] = skops->remote_ip6[1];
		k->raddr[2] = skops->remote_ip6[2];
		k->raddr[3] = skops->remote_ip6[3];
		return 0;
	}
	return -1;
}

/*
 * Measure this connection's accept wait and response times
 * (bpf/latency.bpf.c) if the agent measures its version (it made the
 * version's latency entry).  A connection left unmeasured gets no storage,
 * and the latency programs do no more than look for it.
 */
static __always_inline void latency_begin(struct bpf_sock_ops *skops, const struct conn_owner *own)
{
	struct version_key k = {.service = own->service, .version = own->version};
	struct bpf_sock *sk = skops->sk;
	struct lat_sock *ls;

	if (!sk || !bpf_map_lookup_elem(&latency, &k))
		return;
	ls = bpf_sk_storage_get(&lat_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!ls)
		return; /* out of memory: this connection is not measured */
	ls->service = own->service;
	ls->version = own->version;
	ls->req_ns = 0;
	ls->est_ns = bpf_ktime_get_ns();
}

static __always_inline void established(struct bpf_sock_ops *skops)
{
	struct conn_key k = {};
	struct conn_owner own;
	struct version_counts *c;

	if (key_of(skops, &k))
		return;
	if (decision_take(&k, &own))
		return; /* not steered by baton */
	c = counts_of(&own);
	if (!c)
		return; /* the agent has not registered this version: not counted */
	if (bpf_map_update_elem(&conns, &k, &own, BPF_NOEXIST))
		return; /* conns full or a duplicate: not counted rather than miscounted */
	__sync_fetch_and_add(&c->accepted, 1);
	__sync_fetch_and_add(&c->live, 1);
	inst_count(&own, 1);
	latency_begin(skops, &own);
	if (own.flags & OWN_BYTES)
		bytes_begin(skops, &own); /* its service counts bytes (steer's decision says) */
	/* Ask for state changes on this socket, to see its close. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/*
 * Did this side abort the connection (send a RST) as it went to TCP_CLOSE?
 *
 * A connection that ends normally passes through FIN_WAIT or LAST_ACK, so
 * only a jump straight from ESTABLISHED or CLOSE_WAIT is an abort.  The
 * kernel records every abort it did not choose itself in sk_err before
 * the state changes: a RST received (ECONNRESET, or EPIPE in CLOSE_WAIT),
 * a retransmission or keepalive timeout (ETIMEDOUT), SOCK_DESTROY as in
 * baton's drain-reset (ECONNABORTED).  When the owner closes with unread
 * data, with SO_LINGER {1, 0}, or its listener drops it from the accept
 * queue, the state changes first and sk_err is still 0.  Measured on 6.18.
 */
static __always_inline int aborted_here(const struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct tcp_sock *tp;

	if (skops->args[0] != BPF_TCP_ESTABLISHED && skops->args[0] != BPF_TCP_CLOSE_WAIT)
		return 0;
	if (!sk)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	return tp->inet_conn.icsk_inet.sk.sk_err == 0;
}

/*
 * Did the exit of the process holding this connection close it?
 *
 * A process that dies with connections open has them closed by the kernel
 * in do_exit(): its files are put (exit_files(), then the final fput in
 * exit_task_work()) after PF_EXITING is set, in the dying task's own
 * context, and tcp_close() moves each connection on to FIN_WAIT1, LAST_ACK
 * or (unread data, SO_LINGER {1, 0}) straight to CLOSE.  Only the owner's
 * close or shutdown makes those moves out of ESTABLISHED or CLOSE_WAIT,
 * and always in process context; the one exception is CLOSE, which a
 * received RST, a timeout or SOCK_DESTROY also cause, in softirq or in
 * another task.  Softirq runs in whatever task it interrupts, and on
 * loopback that is the sender's: a client process that dies with a
 * connection to us open sends its RST in its own exit.  Those closes set
 * sk_err first (see aborted_here()), so a CLOSE only counts when this side
 * aborted.  Leaving ESTABLISHED / CLOSE_WAIT happens once per connection,
 * so each is counted at most once.  Connections the process closed before
 * it died left those states before PF_EXITING was set.  Measured on 6.18
 * (tests/bpf/test_migrate.c).
 */
static __always_inline int closed_by_exit(const struct bpf_sock_ops *skops)
{
	struct task_struct *task;
	__u32 from = skops->args[0], to = skops->args[1];

	if (from != BPF_TCP_ESTABLISHED && from != BPF_TCP_CLOSE_WAIT)
		return 0;
	if (to == BPF_TCP_CLOSE) {
		if (!aborted_here(skops))
			return 0;
	} else if (to != BPF_TCP_FIN_WAIT1 && to != BPF_TCP_LAST_ACK) {
		return 0;
	}
	task = bpf_get_current_task_btf();
	return (task->flags & PF_EXITING) != 0;
}

static __always_inline void count_lost(const struct conn_owner *o)
{
	struct version_counts *c = counts_of(o);

	if (c)
		__sync_fetch_and_add(&c->lost, 1);
}

/* The agent's network namespace (SO_NETNS_COOKIE); set before load. */
const volatile __u64 netns_cookie = 0;

/*
 * Keys are 4-tuples: a socket of another namespace with the same one must
 * not meet baton's decisions or counts.  A helper call: asked only once the
 * callback is known to be one that reads or writes a map.
 */
static __always_inline int other_netns(struct bpf_sock_ops *skops)
{
	return netns_cookie && bpf_get_netns_cookie(skops) != netns_cookie;
}

/*
 * Has the owner given this connection up, as it leaves ESTABLISHED /
 * CLOSE_WAIT for FIN_WAIT1 / LAST_ACK (only its close() or shutdown()
 * makes that move, see closed_by_exit())?  close() sets sk_shutdown to
 * SHUTDOWN_MASK before the state changes (__tcp_close()); shutdown(SHUT_WR)
 * adds SEND_SHUTDOWN to what is there, and RCV_SHUTDOWN is there only if
 * the client's FIN came (CLOSE_WAIT) or the owner shut reading down
 * before.  With both, no byte can come in or go out but what is queued
 * already: the connection is done, and the version no longer serves it,
 * whether or not its process still holds the descriptor.  With
 * SEND_SHUTDOWN alone (a half-close out of ESTABLISHED: nginx's and
 * lighttpd's lingering close, a server that answers before it has read
 * the whole request) the owner still reads what the client sends, for as
 * long as the client sends: the connection stays counted until TCP_CLOSE.
 * Measured on 6.18 (tests/bpf/test_instconns.c, group "close").
 */
static __always_inline int owner_done(const struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct tcp_sock *tp;

	if (!sk)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	return (tp->inet_conn.icsk_inet.sk.sk_shutdown & RCV_SHUTDOWN) != 0;
}

/*
 * Connection k, counted, is closed: count it (resets when this side
 * aborted it at TCP_CLOSE, lost when its process's exit closed it), and
 * report its version's last.  Only the caller whose delete succeeds counts
 * the close: 0 then, else -1.
 */
static __always_inline int count_closed(struct bpf_sock_ops *skops, const struct conn_key *k)
{
	struct conn_owner own, *o;
	struct version_counts *c;

	o = bpf_map_lookup_elem(&conns, k);
	if (!o)
		return -1;
	own = *o;
	if (bpf_map_delete_elem(&conns, k))
		return -1;
	/* Before conn_leave: whoever sees live reach 0 also sees this reset. */
	if (skops->args[1] == BPF_TCP_CLOSE && aborted_here(skops)) {
		c = counts_of(&own);
		if (c)
			__sync_fetch_and_add(&c->resets, 1);
	}
	if (closed_by_exit(skops))
		count_lost(&own);
	inst_count(&own, -1);
	conn_leave(&own, 1);
	return 0;
}

/*
 * A connection left ESTABLISHED / CLOSE_WAIT for FIN_WAIT1 or LAST_ACK: if
 * the owner is done with it and it was counted, it is closed now, and its
 * later state changes (FIN_WAIT2, CLOSE, ...) have nothing left to count:
 * they no longer run this program.  That flag is the socket's, not this
 * program's: another sock_ops program that asked for state changes on
 * baton's connections stops getting them here too.
 */
static __always_inline void closing(struct bpf_sock_ops *skops)
{
	struct conn_key k = {};
	__u32 from = skops->args[0], to = skops->args[1];

	if (from != BPF_TCP_ESTABLISHED && from != BPF_TCP_CLOSE_WAIT)
		return;
	if (to != BPF_TCP_FIN_WAIT1 && to != BPF_TCP_LAST_ACK)
		return;
	if (other_netns(skops) || key_of(skops, &k) || !owner_done(skops))
		return; /* a half-close: counted at TCP_CLOSE */
	if (count_closed(skops, &k))
		return;
	bpf_sock_ops_cb_flags_set(skops,
				  skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void closed(struct bpf_sock_ops *skops)
{
	struct conn_key k = {};

	if (!key_of(skops, &k))
		count_closed(skops, &k);
}

/*
 * Runs per served connection (BPF run-time statistics, make bench): six
 * when the server closes first, as most do.  Three before the handshake
 * completes, which every sock_ops program gets and cannot turn off
 * (TIMEOUT_INIT and RWND_INIT for the request, NEEDS_ECN on the listener),
 * PASSIVE_ESTABLISHED, and the state changes once it asks for them:
 * SYN_RECV -> ESTABLISHED (the kernel sets the state after this callback),
 * then the owner's close, which turns them off again (closing()).  A
 * connection the client closes first runs once more (ESTABLISHED ->
 * CLOSE_WAIT: seven), an abort (straight to CLOSE) six too, and a
 * half-close runs on to TCP_CLOSE (FIN_WAIT1, FIN_WAIT2, CLOSE: eight, as
 * every connection did before).  Only PASSIVE_ESTABLISHED, CLOSE and a
 * move out of ESTABLISHED / CLOSE_WAIT can count; every other run returns
 * on the op and its arguments alone, before any helper call.
 */
SEC("sockops")
int track(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		if (!other_netns(skops))
			established(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] != BPF_TCP_CLOSE)
			closing(skops); /* counts only the owner's close */
		else if (!other_netns(skops))
			closed(skops);
		break;
	}
	/* sock_ops: 1 lets the socket proceed; this program only observes. */
	return 1;
}
