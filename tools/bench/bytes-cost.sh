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
conf yes
"$B/baton" agent -d -f "$T/web.conf" >"$T/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
"$B/demo-server" --listen 127.0.0.1:8099 >/dev/null 2>&1 &
OTHER=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8099/ && break; sleep 0.1; done
sysctl -qw kernel.bpf_stats_enabled=1

# stats NAME: "run_cnt run_time_ns" of the loaded program of that name (0 0: none).
stats() { bpftool -j prog show | jq -r --arg n "$1" '[.[] | select(.name == $n)] | if length == 0 then "0 0" else "\(map(.run_cnt // 0) | add) \(map(.run_time_ns // 0) | add)" end'; }
snap() { echo "$(stats bytes_rx) $(stats bytes_tx) $(stats track)"; }
# report LABEL BEFORE AFTER REQUESTS
report() {
	local b=($2) a=($3) n=$4
	awk -v l="$1" -v n="$n" -v rc=$((a[0] - b[0])) -v rt=$((a[1] - b[1])) \
		-v tc=$((a[2] - b[2])) -v tt=$((a[3] - b[3])) -v kc=$((a[4] - b[4])) -v kt=$((a[5] - b[5])) 'BEGIN {
		printf "%s: %d requests; bytes_rx %d runs, %.1f ns/run; bytes_tx %d runs, %.1f ns/run; track %d runs, %.1f ns/run\n",
			l, n, rc, rc ? rt / rc : 0, tc, tc ? tt / tc : 0, kc, kc ? kt / kc : 0 }'
}
reqs() { awk '/requests in/ {print $1}' "$1"; }

s0=$(snap)
wrk -t1 -c20 -d"${D}s" http://127.0.0.1:8080/ >"$T/w1"
s1=$(snap)
report "keep-alive, byte-counts on" "$s0" "$s1" "$(reqs "$T/w1")"
wrk -t1 -c20 -d"${D}s" http://127.0.0.1:8099/ >"$T/w2"
s2=$(snap)
report "keep-alive, a server baton does not serve (miss path)" "$s1" "$s2" "$(reqs "$T/w2")"
wrk -t1 -c20 -d"${D}s" -H "Connection: close" http://127.0.0.1:8080/ >"$T/w3"
s3=$(snap)
report "connection per request, byte-counts on" "$s2" "$s3" "$(reqs "$T/w3")"
conf no
"$B/baton" reload
echo "tracepoint links after byte-counts off: $(bpftool -j link show | jq '[.[] | select(.tp_name == "sock_recv_length" or .tp_name == "sock_send_length")] | length')"
s4=$(snap)
wrk -t1 -c20 -d"${D}s" -H "Connection: close" http://127.0.0.1:8080/ >"$T/w4"
s5=$(snap)
report "connection per request, byte-counts off" "$s4" "$s5" "$(reqs "$T/w4")"
echo "track: $(bpftool -j prog show | jq -r '.[] | select(.name == "track") | "\(.bytes_xlated) bytes xlated, \(.bytes_jited) jited"' | tail -1)"
