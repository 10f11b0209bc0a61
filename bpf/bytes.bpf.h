/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The map track and bytes share: a counted connection's version, for the
 * byte-counting tracepoints.  Both objects define it identically and pin it
 * by name.
 */
#ifndef BATON_BYTES_BPF_H
#define BATON_BYTES_BPF_H

#include "bytes.h"
#include "track.h"

/* byte_socks: a connection of a service with byte-counts -> its version; track creates. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct byte_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} byte_socks SEC(".maps");

/*
 * Count this connection's payload bytes (bpf/bytes.bpf.c): its service
 * has byte-counts on (steer marked its decision OWN_BYTES).  Storage made
 * here is the only thing the tracepoint programs look for.
 */
static __always_inline void bytes_begin(struct bpf_sock_ops *skops, const struct conn_owner *own)
{
	struct bpf_sock *sk = skops->sk;
	struct byte_sock *bs;

	if (!sk)
		return;
	bs = bpf_sk_storage_get(&byte_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!bs)
		return; /* out of memory: this connection's bytes are not counted */
	bs->service = own->service;
	bs->version = own->version;
}

#endif /* BATON_BYTES_BPF_H */
