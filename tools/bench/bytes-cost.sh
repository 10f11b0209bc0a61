#!/bin/bash
# SPDX-License-Identifier: MIT
# The cost of byte-counts (bpf/bytes.bpf.c), from the kernel's BPF run-time
# statistics (kernel.bpf_stats_enabled=1: run_cnt and run_time_ns of each
# program), under wrk load on loopback in a private network namespace:
#  - keep-alive requests to a service with byte-counts = yes: runs of the
#    two tracepoint programs per request and ns per run (the counted path:
#    a storage hit, a counter lookup, an atomic add);
#  - the same load to a demo server baton does not serve (port 8099): the
#    miss path every other socket of the host takes while the programs are
#    attached (one storage lookup that misses);
#  - connection per request to the service with byte-counts off, then on:
#    track's ns per run (off must be what it was: no new lookup);
#  - after a reload turning byte-counts off: the tracepoint programs are
#    detached (no link left).
# usage: unshare -n tools/bench/bytes-cost.sh BUILD_DIR [SECONDS]
set -u
B=$(cd "${1:?usage: bytes-cost.sh BUILD_DIR [SECONDS]}" && pwd)
D=${2:-5}
T=$(mktemp -d /tmp/baton-bytes-cost.XXXXXX)
PIN=/sys/fs/bpf/baton-bytes-cost-$$
CG=/baton-bytes-cost-$$
ip link set lo up
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
AGENT= OTHER=
cleanup() {
	local m d p
	[ -n "$AGENT" ] && timeout 20 "$B/baton" shutdown --stop >/dev/null 2>&1
	[ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null
	[ -n "$OTHER" ] && kill -9 "$OTHER" 2>/dev/null
	wait 2>/dev/null
	sysctl -qw kernel.bpf_stats_enabled="$old_stats"
	m=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
	if [ -n "$m" ] && [ -d "$m$CG" ]; then
		for d in $(find "$m$CG" -depth -type d); do
			for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		done
		sleep 0.2
		find "$m$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
	fi
	rm -rf "$PIN" "$T"
}
trap cleanup EXIT
export BATON_CONTROL=$T/control.sock
conf() {
	cat >"$T/web.conf" <<EOC
[agent]
control = $T/control.sock
bpf-dir = $PIN
run-dir = $T/run
cgroup-dir = $CG
[service web]
listen = 127.0.0.1:8080
exec = $B/demo-server
instances = 2
ready = notify
byte-counts = $1
EOC
}
# BYTES_KEY=0: the configuration has no byte-counts line (a build without it), phase 1 only.
if [ "${BYTES_KEY:-1}" = 0 ]; then conf no && sed -i '/^byte-counts/d' "$T/web.conf"; else conf no; fi
"$B/baton" agent -d -f "$T/web.conf" >"$T/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
"$B/demo-server" --listen 127.0.0.1:8099 >/dev/null 2>&1 &
OTHER=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8099/ && break; sleep 0.1; done
sysctl -qw kernel.bpf_stats_enabled=1

# This agent's programs, by id (other agents on the host have programs named alike).
TRACK=$(bpftool -j link show pinned "$PIN/track_link" | jq -r .prog_id)
tp_ids() { bpftool -j link show | jq -r --arg t "$1" '.[] | select(.tp_name == $t) | .prog_id'; }
# stats ID: "run_cnt run_time_ns" of that program (0 0: none).
stats() { [ -z "$1" ] && { echo "0 0"; return; }; bpftool -j prog show id "$1" | jq -r '"\(.run_cnt // 0) \(.run_time_ns // 0)"'; }
RX= TX=
snap() { echo "$(stats "$RX") $(stats "$TX") $(stats "$TRACK")"; }
# report LABEL BEFORE AFTER REQUESTS
report() {
	local b=($2) a=($3) n=$4
	awk -v l="$1" -v n="$n" -v rc=$((a[0] - b[0])) -v rt=$((a[1] - b[1])) \
		-v tc=$((a[2] - b[2])) -v tt=$((a[3] - b[3])) -v kc=$((a[4] - b[4])) -v kt=$((a[5] - b[5])) 'BEGIN {
		printf "%s: %d requests; bytes_rx %d runs (%.2f/request), %.1f ns/run; bytes_tx %d runs, %.1f ns/run; track %d runs (%.2f/request), %.1f ns/run\n",
			l, n, rc, n ? rc / n : 0, rc ? rt / rc : 0, tc, tc ? tt / tc : 0, kc, n ? kc / n : 0, kc ? kt / kc : 0 }'
}
reqs() { awk '/requests in/ {print $1}' "$1"; }
# load NAME PORT [wrk options]: D seconds of wrk, the programs' deltas reported.
load() {
	local name=$1 port=$2 s0 s1
	shift 2
	s0=$(snap)
	wrk -t1 -c20 -d"${D}s" "$@" "http://127.0.0.1:$port/" >"$T/w"
	s1=$(snap)
	report "$name" "$s0" "$s1" "$(reqs "$T/w")"
}

load "connection per request, byte-counts off" 8080 -H "Connection: close"
echo "track: $(bpftool -j prog show id "$TRACK" | jq -r '"\(.bytes_xlated) bytes xlated, \(.bytes_jited) jited"')"
[ "${BYTES_KEY:-1}" = 0 ] && exit 0
echo "tracepoint links with byte-counts off: $(tp_ids sock_recv_length | wc -l)"
conf yes
"$B/baton" reload
RX=$(tp_ids sock_recv_length) TX=$(tp_ids sock_send_length)
echo "tracepoint links with byte-counts on: $(echo $RX $TX | wc -w)"
load "connection per request, byte-counts on" 8080 -H "Connection: close"
load "keep-alive, byte-counts on (each request: the server's recv and send counted, wrk's miss)" 8080
load "keep-alive, a server baton does not serve (every run a miss)" 8099
"$B/baton" status web | grep -E "bytes|^web"
