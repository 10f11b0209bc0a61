#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 6, scale.
#  - 100,000 concurrent live connections to one service (2 demo-server
#    instances) from 16 client addresses: baton status's live count against
#    the kernel's established sockets (ss), with all of them open and after
#    they close; the agent's memory and CPU meanwhile.
#  - 64 services on one agent (one instance each): time until all are ready,
#    every one answering, the agent's memory, a deploy of the last one.
#  - Map memory of each agent (bpftool map show: bytes_memlock).
# usage: tools/bench/scale.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
CONNS=${SCALE_CONNS:-100000}
SERVICES=${SCALE_SERVICES:-64}
sysctl -qw net.ipv4.tcp_max_syn_backlog=8192
# One fd per connection on each side.  Raise the limit when we may
# (CAP_SYS_RESOURCE); otherwise, under the hard limit, split the clients over
# several processes and the connections over more server instances.
ulimit -n $((CONNS + 65536)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
PER=$(($(ulimit -n) - 4096))
NPROC=$(((CONNS + PER - 1) / PER))
INST=$((NPROC < 2 ? 2 : NPROC + 1))
[ $INST -gt 32 ] && { log "fd limit $(ulimit -n) too low for $CONNS connections"; exit 1; }

# map_memlock: total bytes_memlock of the maps pinned in BPFDIR, and the largest.
map_memlock() {
	local f
	for f in "$BPFDIR"/*; do
		bpftool -j map show pinned "$f" 2>/dev/null
	done | jq -s 'map(select(.name != null)) | {total: (map(.bytes_memlock) | add),
		maps: (map({(.name): .bytes_memlock}) | add),
		entries: (map({(.name): .max_entries}) | add)}'
}
live_sum() { "$BATON" status --json 2>/dev/null | jq '[.[].versions[].live] | add // 0'; }
established() { ss -Htn state established '( sport = :8080 )' 2>/dev/null | wc -l; }

# ---- 100k live connections ---------------------------------------------------------
agent_conf "$T/s.conf"
service_conf web 127.0.0.1:8080 "instances = $INST" "ready = notify" "backlog = 4096" >>"$T/s.conf"
sed -i "s|^exec = .*|exec = $DEMO --idle-ms 600000|" "$T/s.conf"
start_agent "$T/s.conf" || exit 1
rss0=$(rss_kb "$AGENT")
mkfifo "$T/hold.in"
c0=$(cpu_ns "$AGENT")
t0=$EPOCHREALTIME
HOLDERS=''
for k in $(seq "$NPROC"); do
	n=$((k < NPROC ? PER : CONNS - PER * (NPROC - 1)))
	# Every holder reads the FIFO: closing its write end releases them all.
	"$LOADGEN" hold --to 127.0.0.1:8080 --count "$n" --sources 16 --src "127.3.$k.1" --window 1000 \
		--seconds 120 <"$T/hold.in" >"$T/hold.$k" 2>"$T/hold.$k.err" &
	HOLDERS="$HOLDERS $!"
done
# shellcheck disable=SC2086 # one word per pid
track_pid $HOLDERS
exec 7>"$T/hold.in"
cmd "$NPROC x loadgen hold --to 127.0.0.1:8080 --count $PER --sources 16 --window 1000 ($CONNS in all; fd limit $(ulimit -n) per process); service: $INST demo-server instances, --idle-ms 600000"
end=$((SECONDS + 90))
while [ $SECONDS -lt $end ]; do
	done_n=0
	for k in $(seq "$NPROC"); do [ -s "$T/hold.$k" ] && done_n=$((done_n + 1)); done
	[ $done_n = "$NPROC" ] && break
	sleep 0.2
done
t1=$EPOCHREALTIME
open_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
est=$(cat "$T"/hold.[0-9]* 2>/dev/null | jq -s '[.[].established] | add // 0')
log "$est connections established in ${open_s}s"
# The servers accept what is queued; then both counts must agree exactly.
live='' ss_n='' exact=false
end=$((SECONDS + 20))
while [ $SECONDS -lt $end ]; do
	ss_n=$(established)
	live=$(live_sum)
	[ "$live" = "$ss_n" ] && [ "$ss_n" -ge "${est:-0}" ] && { exact=true; break; }
	sleep 0.5
done
log "live $live, ss $ss_n"
cpu_open=$(($(cpu_ns "$AGENT") - c0))
rss1=$(rss_kb "$AGENT")
mem100k=$(map_memlock)
# Status with 100k connections: how long one call takes.
s0=$EPOCHREALTIME
"$BATON" status >/dev/null
status_ms=$(awk -v a="$s0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1e3 }')
# Release them all; live must come back to 0, exactly.
exec 7>&-
t2=$EPOCHREALTIME
live_end='' zero=false
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
	live_end=$(live_sum)
	[ "$live_end" = 0 ] && { zero=true; break; }
	sleep 0.2
done
close_s=$(awk -v a="$t2" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
ss_end=$(established)
for h in $HOLDERS; do stop_pid "$h"; done
data conns "$(jq -n --argjson want "$CONNS" --argjson est "${est:-0}" --argjson live "${live:-null}" \
	--argjson ss "${ss_n:-null}" --argjson exact $exact --argjson open_s "$open_s" \
	--argjson live_end "${live_end:-null}" --argjson ss_end "${ss_end:-null}" --argjson zero $zero \
	--argjson close_s "$close_s" --argjson rss0 "$rss0" --argjson rss1 "$rss1" \
	--argjson cpu "$cpu_open" --argjson status_ms "$status_ms" --argjson maps "$mem100k" \
	'{wanted: $want, established: $est, live: $live, ss_established: $ss, exact: $exact,
	  open_seconds: $open_s, live_after_close: $live_end, ss_after_close: $ss_end,
	  back_to_zero: $zero, close_seconds: $close_s, agent_rss_kb: $rss0,
	  agent_rss_with_conns_kb: $rss1, agent_cpu_ns_while_opening: $cpu,
	  status_ms: $status_ms, map_memlock: $maps}')"
row "live connections tracked, $CONNS opened" \
	"baton status: $live live ($([ $exact = true ] && echo exact || echo NOT exact))" \
	"kernel (ss, established): $ss_n" \
	"$(fdiv "${live:-0}" "${ss_n:-0}" 4); after close: live $live_end, ss $ss_end in ${close_s}s"
row "agent with $CONNS live connections" \
	"RSS $(fdiv "$rss1" 1024 1) MiB (idle $(fdiv "$rss0" 1024 1) MiB); CPU $(fdiv "$cpu_open" 1000000 1) ms while they opened (${open_s}s); status in ${status_ms} ms" \
	"—" "counted in the kernel"
stop_agent

# ---- 64 services ---------------------------------------------------------------
# 64 instances report READY=1 at once on the agent's datagram socket.  A new
# namespace queues 10 datagrams per unix socket (net.unix.max_dgram_qlen);
# the demo server sends without blocking and gives up on EAGAIN, so most of
# them would never be ready.  Hosts with systemd run with 512: so do we.
sysctl -qw net.unix.max_dgram_qlen=512
agent_conf "$T/m.conf"
for i in $(seq 0 $((SERVICES - 1))); do
	service_conf "s$i" "127.0.0.1:$((9000 + i))" "instances = 1" "ready = notify" >>"$T/m.conf"
done
cmd "$SERVICES services s0..s$((SERVICES - 1)) on 127.0.0.1:9000.., 1 demo-server instance each, ready = notify; sysctl net.unix.max_dgram_qlen=512"
t0=$EPOCHREALTIME
start_agent "$T/m.conf" 30 || exit 1
ready_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
ok=0
for i in $(seq 0 $((SERVICES - 1))); do
	exec 5<>"/dev/tcp/127.0.0.1/$((9000 + i))" 2>/dev/null || continue
	printf 'GET / HTTP/1.0\r\n\r\n' >&5
	read -r -t 2 line <&5 && case $line in "HTTP/1."?" 200"*) ok=$((ok + 1)) ;; esac
	exec 5>&-
done
rss64=$(rss_kb "$AGENT")
mem64=$(map_memlock)
s0=$EPOCHREALTIME
"$BATON" deploy "s$((SERVICES - 1))" -- "$DEMO" >"$T/deploy64.log" 2>&1 || log "deploy failed: $(cat "$T/deploy64.log")"
deploy_ms=$(awk -v a="$s0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1e3 }')
s0=$EPOCHREALTIME
"$BATON" status >/dev/null
status64_ms=$(awk -v a="$s0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1e3 }')
idle64=$(c0=$(cpu_ns "$AGENT"); sleep 2; echo $(($(cpu_ns "$AGENT") - c0)))
data services "$(jq -n --argjson n "$SERVICES" --argjson ok "$ok" --argjson ready "$ready_s" \
	--argjson rss "$rss64" --argjson maps "$mem64" --argjson deploy "$deploy_ms" \
	--argjson status "$status64_ms" --argjson idle "$idle64" \
	'{services: $n, answering: $ok, all_ready_seconds: $ready, agent_rss_kb: $rss,
	  map_memlock: $maps, deploy_ms: $deploy, status_ms: $status, idle_cpu_ns_2s: $idle}')"
row "$SERVICES services on one agent" \
	"$ok/$SERVICES answering; all ready in ${ready_s}s; RSS $(fdiv "$rss64" 1024 1) MiB; deploy of one ${deploy_ms} ms; status ${status64_ms} ms; idle CPU $(fdiv "$idle64" 1000000 2) ms/2s" \
	"—" "—"
row "BPF map memory (bytes_memlock, all pinned maps)" \
	"$(jq -r '"\(.total / 1048576 * 10 | round / 10) MiB, of which conns \(.maps.conns / 1048576 * 10 | round / 10) MiB (preallocated for \(.entries.conns) connections)"' <<<"$mem100k")" \
	"$(jq -r '"with \('"$SERVICES"') services: \(.total / 1048576 * 10 | round / 10) MiB"' <<<"$mem64")" \
	"independent of load: sized by the limits in include/"
bench_finish
