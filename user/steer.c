/* SPDX-License-Identifier: MIT */
/*
 * Loads bpf/steer.bpf.c and programs its maps: open -> pin root -> load ->
 * attach per reuseport group.  The program itself is never pinned: each
 * group holds a reference to it, so steering survives the agent.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "steer.skel.h"
#include "steer_user.h"

int bpffs_check(const char *dir)
{
	struct statfs sfs;

	if (statfs(dir, &sfs) < 0)
		return -errno;
	if (sfs.f_type != BPF_FS_MAGIC)
		return -ENODEV;
	return 0;
}

/* The directory above the pin dir must be bpffs; the pin dir is ours to make. */
static int pin_dir_prepare(const char *pin_dir, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	char *slash;
	int r;

	if (strlen(pin_dir) >= sizeof(parent) || pin_dir[0] != '/') {
		snprintf(err, errlen, "bpf pin directory must be an absolute path: %s", pin_dir);
		return -EINVAL;
	}
	strcpy(parent, pin_dir);
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	r = bpffs_check(parent);
	if (r == -ENODEV || r == -ENOENT) {
		snprintf(err, errlen, "bpffs not mounted at %s (mount -t bpf bpf %s)", parent,
			 parent);
		return -ENODEV;
	}
	if (r) {
		snprintf(err, errlen, "cannot check %s: %s", parent, strerror(-r));
		return r;
	}
	if (mkdir(pin_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", pin_dir, strerror(errno));
		return r;
	}
	return 0;
}

int pin_mismatch(struct bpf_object *obj, char *buf, size_t len)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj)
	{
		const char *path = bpf_map__pin_path(m);
		struct bpf_map_info info = {};
		__u32 ilen = sizeof(info);
		struct stat sb;
		int fd;

		if (!path || lstat(path, &sb) < 0)
			continue; /* not pinned (yet): created by this load */
		fd = bpf_obj_get(path);
		if (fd < 0) {
			snprintf(buf, len, "%s is not a pinned map (%s)", path,
				 S_ISDIR(sb.st_mode) ? "a directory" : strerror(errno));
			return -EINVAL;
		}
		if (bpf_obj_get_info_by_fd(fd, &info, &ilen) || info.type != bpf_map__type(m) ||
		    info.key_size != bpf_map__key_size(m) ||
		    info.value_size != bpf_map__value_size(m) ||
		    (info.max_entries != bpf_map__max_entries(m) &&
		     bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF &&
		     bpf_map__type(m) != BPF_MAP_TYPE_PERF_EVENT_ARRAY)) {
			snprintf(buf, len,
				 "%s is not the map this build needs (type %u, key %u, "
				 "value %u, %u entries; want %u, %u, %u, %u)",
				 path, info.type, info.key_size, info.value_size, info.max_entries,
				 bpf_map__type(m), bpf_map__key_size(m), bpf_map__value_size(m),
				 bpf_map__max_entries(m));
			close(fd);
			return -EINVAL;
		}
		close(fd);
	}
	return 0;
}

int steer_open(struct steer *st, const char *pin_dir, char *err, size_t errlen)
{
	char bad[384];
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct steer_bpf *skel;
	int r;

	memset(st, 0, sizeof(*st));
	st->prog_fd = -1;
	r = pin_dir_prepare(pin_dir, err, errlen);
	if (r)
		return r;
	skel = steer_bpf__open_opts(&opts);
	if (!skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the steer program: %s", strerror(errno));
		return r;
	}
	r = steer_bpf__load(skel);
	if (r) {
		if (pin_mismatch(skel->obj, bad, sizeof(bad)))
			snprintf(err, errlen,
				 "cannot load the steer program: %s (remove the pins: rm -r %s, "
				 "then restart)",
				 bad, pin_dir);
		else if (r == -EINVAL)
			snprintf(
			    err, errlen,
			    "cannot load the steer program: the maps pinned in %s do not match "
			    "this build (remove them with: rm -r %s, then restart)",
			    pin_dir, pin_dir);
		else if (r == -EPERM)
			snprintf(err, errlen,
				 "cannot load the steer program: not permitted (run as root)");
		else
			snprintf(
			    err, errlen,
			    "cannot load the steer program: %s (the kernel needs sk_reuseport "
			    "with migration, 5.14 or later; -v shows libbpf's messages, -vv the "
			    "verifier log)",
			    strerror(-r));
		steer_bpf__destroy(skel);
		return r;
	}
	st->skel = skel;
	st->prog_fd = bpf_program__fd(skel->progs.steer);
	st->sockets_fd = bpf_map__fd(skel->maps.sockets);
	st->groups_fd = bpf_map__fd(skel->maps.groups);
	st->services_fd = bpf_map__fd(skel->maps.services);
	st->probes_fd = bpf_map__fd(skel->maps.probe_srcs);
	st->stats_fd = bpf_map__fd(skel->maps.steer_stats);
	st->pins_fd = bpf_map__fd(skel->maps.pins);
	st->extras_fd = bpf_map__fd(skel->maps.extras);
	return 0;
}

void steer_close(struct steer *st)
{
	if (st->skel)
		steer_bpf__destroy(st->skel);
	memset(st, 0, sizeof(*st));
	st->prog_fd = -1;
}

/* Remove every pin in the directory (maps, the track link), then the directory. */
int steer_unpin(const char *pin_dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(pin_dir);
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
			if (unlink(path) < 0)
				r = -errno;
		}
	closedir(d);
	if (rmdir(pin_dir) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int steer_group_key_from(const struct sockaddr *sa, struct steer_group_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		k->family = AF_INET;
		k->port = ntohs(sin->sin_port);
		memcpy(&k->addr[0], &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		k->family = AF_INET6;
		k->port = ntohs(sin6->sin6_port);
		memcpy(k->addr, &sin6->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static int map_update(int fd, const void *k, const void *v)
{
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

static int map_delete(int fd, const void *k)
{
	if (bpf_map_delete_elem(fd, k) && errno != ENOENT)
		return -errno;
	return 0;
}

int steer_add_group(struct steer *st, const struct sockaddr *sa, __u32 service, __u32 group)
{
	struct steer_group_key k;
	struct steer_group v = {.service = service, .group = group};
	int r;

	if (group >= MAX_GROUPS)
		return -ERANGE;
	r = steer_group_key_from(sa, &k);
	return r ? r : map_update(st->groups_fd, &k, &v);
}

int steer_del_group(struct steer *st, const struct sockaddr *sa)
{
	struct steer_group_key k;
	int r = steer_group_key_from(sa, &k);

	return r ? r : map_delete(st->groups_fd, &k);
}

int steer_place(struct steer *st, __u32 slot, int fd)
{
	__u64 v = (__u64)fd;

	__u64 cookie, there;
	socklen_t len = sizeof(cookie);
	int r;

	if (slot >= SOCKARRAY_SIZE)
		return -ERANGE;
	r = map_update(st->sockets_fd, &slot, &v);
	/* A socket is in one sockets map slot at most: EBUSY when it is there already. */
	if (r == -EBUSY && !getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) &&
	    !bpf_map_lookup_elem(st->sockets_fd, &slot, &there) && there == cookie)
		return 0;
	return r;
}

int steer_remove(struct steer *st, __u32 slot)
{
	return map_delete(st->sockets_fd, &slot);
}

int steer_attach(struct steer *st, int fd)
{
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &st->prog_fd,
		       sizeof(st->prog_fd)) < 0)
		return -errno;
	return 0;
}

int steer_set_service(struct steer *st, __u32 service, const struct steer_service *p)
{
	return map_update(st->services_fd, &service, p);
}

int steer_get_service(struct steer *st, __u32 service, struct steer_service *p)
{
	return bpf_map_lookup_elem(st->services_fd, &service, p) ? -errno : 0;
}

int steer_del_service(struct steer *st, __u32 service)
{
	return map_delete(st->services_fd, &service);
}

/* Add d (+1 or -1) to a service's probes or pins count; the agent is the only writer. */
static int extras_add(struct steer *st, __u32 service, int dprobes, int dpins)
{
	struct steer_extras e;

	if (service >= MAX_SERVICES)
		return 0; /* no entry: the program looks everything up */
	if (bpf_map_lookup_elem(st->extras_fd, &service, &e))
		return -errno;
	if (dprobes < 0 && (__u32)-dprobes > e.probes)
		e.probes = 0;
	else
		e.probes += dprobes;
	if (dpins < 0 && (__u32)-dpins > e.pins)
		e.pins = 0;
	else
		e.pins += dpins;
	return map_update(st->extras_fd, &service, &e);
}

int steer_extras_get(struct steer *st, __u32 service, struct steer_extras *e)
{
	return bpf_map_lookup_elem(st->extras_fd, &service, e) ? -errno : 0;
}

int steer_probe_key_from(__u32 group, const struct sockaddr *src, struct steer_probe_key *k)
{
	__u32 a[4] = {0};
	__u16 port;

	memset(k, 0, sizeof(*k));
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)src;

		a[0] = sin->sin_addr.s_addr;
		port = ntohs(sin->sin_port);
		steer_probe_key_init(k, group, STEER_AF_INET, a, port);
	} else if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)src;

		port = ntohs(sin6->sin6_port);
		/* An IPv4 client of a dual-stack listener: steer sees it as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(a, &sin6->sin6_addr.s6_addr[12], 4);
			steer_probe_key_init(k, group, STEER_AF_INET, a, port);
		} else {
			memcpy(a, &sin6->sin6_addr, 16);
			steer_probe_key_init(k, group, STEER_AF_INET6, a, port);
		}
	} else {
		return -EAFNOSUPPORT;
	}
	/* Unbound: no connection comes from port 0 or a wildcard address. */
	if (!port || (!a[0] && !a[1] && !a[2] && !a[3]))
		return -EINVAL;
	return 0;
}

int steer_probe_add(struct steer *st, __u32 service, __u32 group, const struct sockaddr *src,
		    __u32 vslot, __u32 instance)
{
	struct steer_probe_key k;
	struct steer_probe v = {.vslot = vslot, .instance = instance}, old;
	int r, fresh;

	r = steer_probe_key_from(group, src, &k);
	if (r)
		return r;
	fresh = bpf_map_lookup_elem(st->probes_fd, &k, &old) != 0;
	/* Count first: the program must never skip a probe that is in the map. */
	if (fresh) {
		r = extras_add(st, service, 1, 0);
		if (r)
			return r;
	}
	r = map_update(st->probes_fd, &k, &v);
	if (r && fresh)
		extras_add(st, service, -1, 0);
	return r;
}

int steer_probe_del(struct steer *st, __u32 service, __u32 group, const struct sockaddr *src)
{
	struct steer_probe_key k;
	int r = steer_probe_key_from(group, src, &k);

	if (r)
		return r;
	if (bpf_map_delete_elem(st->probes_fd, &k))
		return errno == ENOENT ? 0 : -errno;
	return extras_add(st, service, -1, 0);
}

int steer_probe_clear(struct steer *st)
{
	struct steer_probe_key k, next;
	int n = 0;

	/* Deleting the key just read keeps get_next_key from the first one again. */
	while (!bpf_map_get_next_key(st->probes_fd, NULL, &next) && n < MAX_PROBES * 2) {
		k = next;
		if (bpf_map_delete_elem(st->probes_fd, &k))
			return -errno;
		n++;
	}
	return n;
}

int steer_group_stats(struct steer *st, __u32 group, struct steer_stats *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct steer_stats *per;
	int i;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc(ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(st->stats_fd, &group, per)) {
		int r = -errno;

		free(per);
		return r;
	}
	for (i = 0; i < ncpu; i++) {
		sum->selected += per[i].selected;
		sum->probes += per[i].probes;
		sum->migrated += per[i].migrated;
		sum->fallback += per[i].fallback;
		sum->dropped += per[i].dropped;
		sum->pinned += per[i].pinned;
		sum->evicted += per[i].evicted;
	}
	free(per);
	return 0;
}

_Static_assert(AF_INET == STEER_AF_INET && AF_INET6 == STEER_AF_INET6, "steer.h's families");

static int cidr_maxlen(int family)
{
	return family == AF_INET ? 32 : family == AF_INET6 ? 128 : -1;
}

/* out = the first len bits of in (nbytes long), the rest zero. */
static void cidr_mask(const __u8 *in, int len, int nbytes, __u8 *out)
{
	int i, bits;

	for (i = 0; i < nbytes; i++) {
		bits = len - 8 * i;
		if (bits >= 8)
			out[i] = in[i];
		else if (bits <= 0)
			out[i] = 0;
		else
			out[i] = in[i] & (__u8)(0xff << (8 - bits));
	}
}

int steer_cidr_format(const struct steer_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if (cidr_maxlen(c->family) < 0 || c->len < 0 || c->len > cidr_maxlen(c->family))
		return -EINVAL;
	if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
		return -errno;
	n = snprintf(buf, len, "%s/%d", a, c->len);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return 0;
}

#define CIDR_EXPECTED "expected an address or CIDR like 10.1.0.0/16 or 2001:db8::/32"

int steer_cidr_parse(const char *s, struct steer_cidr *c, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN];
	char want[INET6_ADDRSTRLEN + 8];
	struct steer_cidr net;
	const char *slash, *p;
	size_t hlen;
	int maxlen;

	memset(c, 0, sizeof(*c));
	if (!s || !*s) {
		snprintf(err, errlen, "empty client CIDR (%s)", CIDR_EXPECTED);
		return -1;
	}
	/* Echoed in one-line errors: no control characters (a newline splits them). */
	for (const unsigned char *q = (const unsigned char *)s; *q; q++)
		if (*q < 0x20 || *q == 0x7f) {
			snprintf(err, errlen, "value contains a control character (0x%02x)", *q);
			return -1;
		}
	slash = strchr(s, '/');
	hlen = slash ? (size_t)(slash - s) : strlen(s);
	if (!hlen || hlen >= sizeof(host)) {
		snprintf(err, errlen, "'%.64s' is not an address (%s)", s, CIDR_EXPECTED);
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
	} else {
		snprintf(err, errlen, "'%.64s' is not an IPv4 or IPv6 address (%s)", host,
			 CIDR_EXPECTED);
		return -1;
	}
	maxlen = cidr_maxlen(c->family);
	c->len = maxlen;
	if (slash) {
		p = slash + 1;
		/* Decimal digits only, no sign, no leading zero, at most 3 of them. */
		if (!*p || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p) ||
		    (p[0] == '0' && p[1])) {
			snprintf(err, errlen, "'%.64s': prefix length must be a number 0..%d", s,
				 maxlen);
			return -1;
		}
		c->len = atoi(p);
		if (c->len > maxlen) {
			snprintf(err, errlen,
				 "'%.64s': prefix length /%d is more than %s allows (%d)", s,
				 c->len, c->family == AF_INET ? "IPv4" : "IPv6", maxlen);
			return -1;
		}
	}
	net = *c;
	cidr_mask(c->addr, c->len, sizeof(c->addr), net.addr);
	if (memcmp(net.addr, c->addr, sizeof(c->addr))) {
		if (steer_cidr_format(&net, want, sizeof(want)))
			want[0] = '\0';
		snprintf(err, errlen, "%.64s has host bits set (did you mean %s?)", s, want);
		return -1;
	}
	return 0;
}

/* A pin key for c, or -EINVAL for a CIDR no pin may have (see steer_user.h). */
static int pin_key(__u32 service, const struct steer_cidr *c, struct steer_pin_key *k)
{
	static const __u8 v4mapped[16] = {[10] = 0xff, [11] = 0xff};
	__u8 net[16];
	__u32 a[4];
	int maxlen = cidr_maxlen(c->family);

	if (maxlen < 0 || c->len < 0 || c->len > maxlen)
		return -EINVAL;
	cidr_mask(c->addr, c->len, sizeof(net), net);
	if (memcmp(net, c->addr, sizeof(net)))
		return -EINVAL; /* host bits set */
	if (c->family == AF_INET6 && c->len < 96) {
		cidr_mask(v4mapped, c->len, sizeof(net), net);
		if (!memcmp(net, c->addr, sizeof(net)))
			return -EINVAL; /* would also catch every IPv4 client */
	}
	memset(k, 0, sizeof(*k));
	memcpy(a, c->addr, sizeof(a));
	steer_pin_key_init(k, service, c->family == AF_INET ? STEER_AF_INET : STEER_AF_INET6, a,
			   c->len);
	return 0;
}

/* The CIDR a pins key stands for (IPv4-mapped prefixes of /96 or more are IPv4). */
static int pin_key_cidr(const struct steer_pin_key *k, struct steer_cidr *c)
{
	static const __u8 v4mapped[12] = {[10] = 0xff, [11] = 0xff};
	__u32 bits;

	if (k->prefixlen < STEER_PIN_SERVICE_BITS || k->prefixlen > STEER_PIN_MAX_PREFIX)
		return -EINVAL;
	bits = k->prefixlen - STEER_PIN_SERVICE_BITS;
	memset(c, 0, sizeof(*c));
	if (bits >= STEER_PIN_V4MAPPED_BITS && !memcmp(k->addr, v4mapped, sizeof(v4mapped))) {
		c->family = AF_INET;
		c->len = bits - STEER_PIN_V4MAPPED_BITS;
		memcpy(c->addr, &k->addr[12], 4);
		return 0;
	}
	c->family = AF_INET6;
	c->len = bits;
	memcpy(c->addr, k->addr, 16);
	return 0;
}

int steer_pin_set(struct steer *st, __u32 service, const struct steer_cidr *c, __u32 version)
{
	struct steer_pin_key k;
	struct steer_pin v = {.version = version};
	int r;

	if (!version)
		return -EINVAL;
	r = pin_key(service, c, &k);
	if (r)
		return r;
	/*
	 * Count first: the program must never skip a pin that is in the map.
	 * Whether the pin is new is what BPF_NOEXIST says: a lookup in the
	 * trie would find a shorter pin that covers it.
	 */
	r = extras_add(st, service, 0, 1);
	if (r)
		return r;
	if (!bpf_map_update_elem(st->pins_fd, &k, &v, BPF_NOEXIST))
		return 0;
	r = errno == EEXIST ? map_update(st->pins_fd, &k, &v) : -errno;
	extras_add(st, service, 0, -1); /* replaced, or not added */
	return r;
}

int steer_pin_del(struct steer *st, __u32 service, const struct steer_cidr *c)
{
	struct steer_pin_key k;
	int r = pin_key(service, c, &k);

	if (r)
		return r;
	if (bpf_map_delete_elem(st->pins_fd, &k))
		return -errno;
	return extras_add(st, service, 0, -1);
}

/*
 * Call fn for each pin of service, in trie order.  Bounded by the map size:
 * a pin deleted under us makes get_next_key start over, and the bound ends
 * that instead of looping.  fn returns nonzero to stop.
 */
static int pin_walk(struct steer *st, __u32 service,
		    int (*fn)(const struct steer_pin_key *k, const struct steer_pin *v, void *arg),
		    void *arg)
{
	struct steer_pin_key k, next;
	struct steer_pin v;
	int i;

	for (i = 0; i <= MAX_PINS; i++) {
		if (bpf_map_get_next_key(st->pins_fd, i ? &k : NULL, &next))
			return errno == ENOENT ? 0 : -errno;
		k = next;
		if (k.service != service || k.prefixlen < STEER_PIN_SERVICE_BITS)
			continue;
		if (bpf_map_lookup_elem(st->pins_fd, &k, &v))
			continue; /* deleted since */
		if (fn(&k, &v, arg))
			return 0;
	}
	return 0;
}

struct pin_list_arg {
	struct steer_cidr *out;
	__u32 *versions;
	int max, n;
};

static int pin_list_one(const struct steer_pin_key *k, const struct steer_pin *v, void *arg)
{
	struct pin_list_arg *a = arg;

	if (a->n >= a->max)
		return 1;
	if (pin_key_cidr(k, &a->out[a->n]))
		return 0;
	a->versions[a->n] = v->version;
	a->n++;
	return 0;
}

int steer_pin_list(struct steer *st, __u32 service, struct steer_cidr *out, __u32 *versions,
		   int max)
{
	struct pin_list_arg a = {.out = out, .versions = versions, .max = max};
	int r;

	if (max <= 0)
		return 0;
	r = pin_walk(st, service, pin_list_one, &a);
	return r ? r : a.n;
}

struct pin_match_arg {
	__u32 version;
	struct steer_pin_key *keys;
	int n;
};

static int pin_match_one(const struct steer_pin_key *k, const struct steer_pin *v, void *arg)
{
	struct pin_match_arg *a = arg;

	if (v->version == a->version && a->n < MAX_PINS)
		a->keys[a->n++] = *k;
	return 0;
}

int steer_pin_del_version(struct steer *st, __u32 service, __u32 version)
{
	struct pin_match_arg a = {.version = version};
	int i, r, n = 0;

	/* Collect first: deleting while walking would restart the walk. */
	a.keys = calloc(MAX_PINS, sizeof(*a.keys));
	if (!a.keys)
		return -ENOMEM;
	r = pin_walk(st, service, pin_match_one, &a);
	for (i = 0; !r && i < a.n; i++) {
		if (!bpf_map_delete_elem(st->pins_fd, &a.keys[i]))
			n++;
		else if (errno != ENOENT)
			r = -errno;
	}
	free(a.keys);
	if (n) {
		int e = extras_add(st, service, 0, -n);

		if (!r)
			r = e;
	}
	return r ? r : n;
}

int steer_extras_sync(struct steer *st)
{
	struct steer_extras e[MAX_SERVICES];
	__u32 service_of[MAX_GROUPS];
	struct steer_group_key gk, gnext;
	struct steer_probe_key pk, pnext;
	struct steer_pin_key nk, nnext;
	struct steer_group g;
	__u32 i;
	int n;

	memset(e, 0, sizeof(e));
	for (i = 0; i < MAX_GROUPS; i++)
		service_of[i] = MAX_SERVICES;
	/* Each walk is bounded by its map's size (a concurrent delete restarts it). */
	for (n = 0; n <= MAX_GROUPS; n++) {
		if (bpf_map_get_next_key(st->groups_fd, n ? &gk : NULL, &gnext))
			break;
		gk = gnext;
		if (!bpf_map_lookup_elem(st->groups_fd, &gk, &g) && g.group < MAX_GROUPS)
			service_of[g.group] = g.service;
	}
	for (n = 0; n <= MAX_PROBES; n++) {
		if (bpf_map_get_next_key(st->probes_fd, n ? &pk : NULL, &pnext))
			break;
		pk = pnext;
		/* A probe of a group no service has can match nothing. */
		if (pk.group < MAX_GROUPS && service_of[pk.group] < MAX_SERVICES)
			e[service_of[pk.group]].probes++;
	}
	for (n = 0; n <= MAX_PINS; n++) {
		if (bpf_map_get_next_key(st->pins_fd, n ? &nk : NULL, &nnext))
			break;
		nk = nnext;
		if (nk.service < MAX_SERVICES)
			e[nk.service].pins++;
	}
	for (i = 0; i < MAX_SERVICES; i++) {
		int r = map_update(st->extras_fd, &i, &e[i]);

		if (r)
			return r;
	}
	return 0;
}
