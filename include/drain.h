/* SPDX-License-Identifier: MIT */
/*
 * ABI between bpf/drain.bpf.c (iter/tcp + sk_msg) and user/drain.c: the
 * kernel-assisted HTTP drain (drain-http = close).  A draining version's
 * connections join a sockhash whose sk_msg program makes the next HTTP/1.x
 * response of each carry "Connection: close".
 *
 * The scan of a response's head is a pure per-byte step (drain_scan_step),
 * run by the BPF program under bpf_loop and by the unit test directly.
 */
#ifndef BATON_DRAIN_H
#define BATON_DRAIN_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "track.h"

/* Bytes of a response's first write that are scanned for its head (power of 2). */
#ifndef DRAIN_SCAN_MAX
#define DRAIN_SCAN_MAX 2048
#endif
_Static_assert((DRAIN_SCAN_MAX & (DRAIN_SCAN_MAX - 1)) == 0, "DRAIN_SCAN_MAX: a power of 2");

/* Responses up to this size leave the program in one piece (see drain_msg). */
#ifndef DRAIN_LINEAR_MAX
#define DRAIN_LINEAR_MAX 16384
#endif

/* Connections in the drain sockhash at once. */
#ifndef DRAIN_MAX_SOCKS
#define DRAIN_MAX_SOCKS 65536
#endif

/* Instances drained one by one at once (drain_insts). */
#ifndef DRAIN_MAX_INSTS
#define DRAIN_MAX_INSTS 1024
#endif

/* The header inserted when a response has no Connection header. */
#define DRAIN_HDR     "Connection: close\r\n"
#define DRAIN_HDR_LEN 19

/* Where one connection is (its sk_storage, written by the iterator and sk_msg). */
enum drain_state {
	DS_WAIT = 1,	/* waiting for the next response's first write */
	DS_HEADERS = 2, /* a response's head continues in later writes */
	DS_DONE = 3,	/* rewritten, already closing, or upgraded (101): left alone */
};

#define DF_INSERTED 1 /* "Connection: close" inserted into this response */
#define DF_COUNTED  2 /* this response is counted in rewritten */

/* Why a connection joined. */
enum drain_why {
	DW_DRAIN = 0,	/* its version drains (drain_versions) */
	DW_RESTEER = 1, /* its client now maps to another version (drain_resteer) */
	DW_INST = 2,	/* its instance left its version's serving set (drain_insts) */
	DW_MEASURE = 3, /* only its responses' status is counted (http_versions: measure-http) */
};

/* Bytes of a status line that tell its class: "HTTP/1.1 200". */
#define HTTP_SL_LEN 12

struct drain_sk {
	__u64 rx_mark; /* tcp bytes_received at the last response start (or at joining) */
	__u32 state;   /* enum drain_state */
	__u32 flags;   /* DF_* of the response in DS_HEADERS */
	__u32 service;
	__u32 version;
	__u32 why;  /* enum drain_why */
	__u32 inst; /* DW_INST: its instance + 1 (as conn_owner.inst) */
	/* measure-http: the status line of the response under way, as it arrives */
	__u8 sl[16]; /* its first HTTP_SL_LEN bytes */
	__u8 sl_len; /* bytes in sl */
	__u8 sl_on;  /* 1: collecting (a response began, its class is not known yet) */
	__u16 pad2;
	__u32 pad3;
};

/*
 * drain_insts' key: one instance of a version that goes on serving through
 * its others (a rolling rollout retired it); inst as conn_owner.inst.
 */
struct drain_inst_key {
	__u32 service;
	__u32 version;
	__u32 inst;
	__u32 pad; /* 0 */
};

/*
 * measure-http: the status classes of the responses of a version under
 * analysis (http_versions; the agent adds and removes entries).  A
 * response is counted once, when the first HTTP_SL_LEN bytes of the
 * first write after new request bytes arrived are seen.
 */
enum http_class {
	HC_1XX = 0, /* informational (100 Continue, 101): not a final response */
	HC_2XX,
	HC_3XX,
	HC_4XX,
	HC_5XX,
	HC_OTHER, /* not "HTTP/1.x DDD": TLS, HTTP/2, garbage */
	HC_COUNT,
};

struct http_counts {
	__u64 n[HC_COUNT];
	__u64 joined; /* connections that joined to be measured */
};

/*
 * The class of a status line from its first len bytes (len <= HTTP_SL_LEN):
 * -1 while every byte so far fits "HTTP/1.x DDD" but fewer than
 * HTTP_SL_LEN arrived, else an enum http_class.  Pure (BPF and tests).
 */
static inline int http_status_class(const __u8 *b, __u32 len)
{
	__u32 i;
	int ok;

	for (i = 0; i < HTTP_SL_LEN && i < len; i++) {
		__u8 c = b[i];

		switch (i) {
		case 0:
			ok = c == 'H';
			break;
		case 1:
		case 2:
			ok = c == 'T';
			break;
		case 3:
			ok = c == 'P';
			break;
		case 4:
			ok = c == '/';
			break;
		case 5:
			ok = c == '1';
			break;
		case 6:
			ok = c == '.';
			break;
		case 8:
			ok = c == ' ';
			break;
		case 9:
			ok = c >= '1' && c <= '5';
			break;
		default: /* 7, 10, 11 */
			ok = c >= '0' && c <= '9';
			break;
		}
		if (!ok)
			return HC_OTHER;
	}
	if (len < HTTP_SL_LEN)
		return -1;
	return HC_1XX + (b[9] - '1');
}

/*
 * drain_versions: the versions being drained with drain-http (the agent
 * adds and removes them) and what the programs did to their connections.
 */
struct drain_stats {
	__u64 joined;	 /* connections put into the sockhash */
	__u64 left;	 /* taken out again (the version went back into service) */
	__u64 rewritten; /* responses that now carry Connection: close */
	__u64 kept;	 /* responses that already closed, or upgraded (101): untouched */
	__u64 not_http;	 /* first writes after a request that were not an HTTP/1.x status line */
	__u64 partial;	 /* HTTP/1.x first writes without a whole status line: untouched */
};

/*
 * Sticky steering's version for a client now, as bpf/steer.bpf.c picks it
 * by weight (pins aside): the version number, or 0 when no version has
 * weight.  family and raddr as in struct conn_key (the server's view); an
 * IPv4-mapped client of a dual-stack listener counts as IPv4, as in steer.
 * Pure: the iterator and the tests compute the same.
 */
static inline void drain_client_addr(__u32 family, const __u32 raddr[4], __u32 *sfamily,
				     __u32 addr[4])
{
	__u32 i;

	/* ::ffff:a.b.c.d, network byte order: the third word is 00 00 ff ff */
	if (family == 10 && !raddr[0] && !raddr[1] && raddr[2] == __builtin_bswap32(0xffff)) {
		*sfamily = STEER_AF_INET;
		addr[0] = raddr[3];
		addr[1] = addr[2] = addr[3] = 0;
		return;
	}
	*sfamily = family == 10 ? STEER_AF_INET6 : STEER_AF_INET;
	for (i = 0; i < 4; i++)
		addr[i] = *sfamily == STEER_AF_INET && i ? 0 : raddr[i];
}

static inline __u32 drain_sticky_version(const struct steer_service *pol, __u32 family,
					 const __u32 raddr[4])
{
	__u32 sfamily, addr[4], slot;

	drain_client_addr(family, raddr, &sfamily, addr);
	slot = steer_pick_version(pol, steer_addr_point(sfamily, addr));
	return slot < MAX_VERSIONS ? pol->v[slot].version : 0;
}

/* ---- the scan of a response head -------------------------------------------- */

#define DC_CLOSE     1 /* a Connection header names close */
#define DC_KEEPALIVE 2 /* ... names keep-alive (at ka_off, 10 bytes) */
#define DC_OTHER     4 /* ... names another token */

struct drain_scan {
	__u32 sl_end; /* offset after the status line's LF; 0: not seen (preset 1: a later write) */
	__u32 hdr_end;	/* offset after the blank line ending the head; 0: not seen */
	__u32 ka_off;	/* offset of a keep-alive token in a Connection header */
	__u32 tok_off;	/* offset of the current value token */
	__u16 line_len; /* bytes of the current line so far */
	__u8 name;	/* 0: matching "connection:", 1: another header, 2: in its value */
	__u8 conn;	/* DC_* */
	__u8 tok_len;
	__u8 tok_close; /* the token so far matches "close" */
	__u8 tok_ka;	/* ... "keep-alive" */
	__u8 cr;	/* the line so far is exactly "\r" */
};

static inline __u8 drain_lower(__u8 c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static inline void drain_tok_end(struct drain_scan *s)
{
	if (s->tok_len == 5 && s->tok_close)
		s->conn |= DC_CLOSE;
	else if (s->tok_len == 10 && s->tok_ka) {
		s->conn |= DC_KEEPALIVE;
		s->ka_off = s->tok_off;
	} else if (s->tok_len)
		s->conn |= DC_OTHER;
	s->tok_len = 0;
}

/*
 * The byte at index i of a string of up to 16 bytes packed little-endian in
 * two words: no static arrays, which the BPF object would have to place in
 * .rodata (and clang may merge with others).
 */
#define DRAIN_W(a, b, c, d, e, f, g, h)                                                            \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |   \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

static inline __u8 drain_char(__u64 lo, __u64 hi, __u32 i)
{
	return (__u8)((i < 8 ? lo : hi) >> ((i & 7) * 8));
}

/* "connection:", "close", "keep-alive" */
#define DRAIN_NAME_LO  DRAIN_W('c', 'o', 'n', 'n', 'e', 'c', 't', 'i')
#define DRAIN_NAME_HI  DRAIN_W('o', 'n', ':', 0, 0, 0, 0, 0)
#define DRAIN_CLOSE_LO DRAIN_W('c', 'l', 'o', 's', 'e', 0, 0, 0)
#define DRAIN_KA_LO    DRAIN_W('k', 'e', 'e', 'p', '-', 'a', 'l', 'i')
#define DRAIN_KA_HI    DRAIN_W('v', 'e', 0, 0, 0, 0, 0, 0)

/*
 * One byte c at offset i of a response head: 1 when the head ended (the
 * blank line), else 0.  Lines are LF-terminated (a CR before it is part of
 * the line end); header names are matched at the start of a line within
 * one write.
 */
static inline int drain_scan_step(struct drain_scan *s, __u32 i, __u8 c)
{
	__u8 l = drain_lower(c);

	if (c == '\n') {
		if (s->name == 2)
			drain_tok_end(s);
		if (s->sl_end && (s->line_len == 0 || (s->line_len == 1 && s->cr))) {
			s->hdr_end = i + 1;
			return 1;
		}
		if (!s->sl_end)
			s->sl_end = i + 1;
		s->line_len = 0;
		s->name = 0;
		s->cr = 0;
		return 0;
	}
	s->cr = s->line_len == 0 && c == '\r';
	if (s->line_len < 0xffff)
		s->line_len++;
	if (!s->sl_end)
		return 0; /* the status line */
	if (s->name == 0) {
		if (s->line_len > 11 ||
		    l != drain_char(DRAIN_NAME_LO, DRAIN_NAME_HI, s->line_len - 1u))
			s->name = 1;
		else if (s->line_len == 11) {
			s->name = 2;
			s->tok_len = 0;
		}
		return 0;
	}
	if (s->name != 2)
		return 0;
	if (c == ',' || c == ' ' || c == '\t' || c == '\r') {
		drain_tok_end(s);
		return 0;
	}
	if (!s->tok_len) {
		s->tok_off = i;
		s->tok_close = 1;
		s->tok_ka = 1;
	}
	if (s->tok_len >= 5 || l != drain_char(DRAIN_CLOSE_LO, 0, s->tok_len))
		s->tok_close = 0;
	if (s->tok_len >= 10 || l != drain_char(DRAIN_KA_LO, DRAIN_KA_HI, s->tok_len))
		s->tok_ka = 0;
	if (s->tok_len < 0xff)
		s->tok_len++;
	return 0;
}

#endif /* BATON_DRAIN_H */
