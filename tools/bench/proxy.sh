#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 4, direct against through a proxy: what blue-green behind an L4
# proxy costs.  The same version (the demo server, 2 instances under baton,
# steered by its program) is loaded with wrk directly on 127.0.0.1:8080 and
# through HAProxy in TCP mode on 127.0.0.1:8081 (the usual front for
# blue-green today), keep-alive and with a new connection per request, with
# 50 connections (throughput; p99 at saturation) and with 1 (the latency of
# the path itself); direct and proxied runs alternate (A B B A ...), 3 of
# each, and the medians are compared.  Also the CPU the proxy burns
# per 1000 requests, against the agent's in the direct runs.
# usage: tools/bench/proxy.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
ROUNDS=${PROXY_ROUNDS:-3}
DUR=${PROXY_SECONDS:-2}

agent_conf "$T/p.conf"
service_conf web 127.0.0.1:8080 "instances = 2" "ready = notify" "backlog = 4096" >>"$T/p.conf"
start_agent "$T/p.conf" || exit 1
cat >"$T/haproxy.cfg" <<EOF
global
	pidfile $T/haproxy.pid
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend front
	bind 127.0.0.1:8081 backlog 4096
	default_backend versions
backend versions
	server web 127.0.0.1:8080
EOF
haproxy -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
HAP=$!
track_pid $HAP
wait_port 8081 10 || { log "HAProxy did not start: $(cat "$T/haproxy.log")"; exit 1; }
cmd "HAProxy 2.6 TCP mode, default threads: frontend 127.0.0.1:8081 -> server 127.0.0.1:8080 (baton's demo-server, 2 instances)"
cmd "wrk -t2 -c50 -d${DUR}s --latency URL and wrk -t1 -c1 -d${DUR}s --latency URL (each also with -H 'Connection: close'), direct :8080 and proxied :8081 alternating, $ROUNDS runs each"

: >"$T/runs.jsonl"
for load in keepalive close keepalive-1 close-1; do
	hdr=()
	conns=(-t2 -c50)
	case $load in close*) hdr=(-H 'Connection: close') ;; esac
	case $load in *-1) conns=(-t1 -c1) ;; esac
	for r in $(seq "$ROUNDS"); do
		order="direct proxy"
		[ $((r % 2)) = 0 ] && order="proxy direct"
		for target in $order; do
			port=8080
			[ "$target" = proxy ] && port=8081
			a0=$(cpu_ns "$AGENT") h0=$(cpu_ns $HAP)
			wrk "${conns[@]}" -d"${DUR}s" --timeout 5s --latency "${hdr[@]}" "http://127.0.0.1:$port/" >"$T/wrk.out" 2>&1
			a1=$(cpu_ns "$AGENT") h1=$(cpu_ns $HAP)
			jq -c --arg l $load --arg t "$target" --argjson r "$r" \
				--argjson a $((a1 - a0)) --argjson h $((h1 - h0)) \
				'. + {load: $l, target: $t, round: $r, agent_cpu_ns: $a, proxy_cpu_ns: $h}' \
				<<<"$(wrk_json "$T/wrk.out")" >>"$T/runs.jsonl"
		done
	done
done
hap_rss=$(rss_kb $HAP)
data runs "$(jq -s . "$T/runs.jsonl")"
data proxy_rss_kb "$hap_rss"

# median over the runs of one load and target
med() {
	jq -s --arg l "$1" --arg t "$2" --arg f "$3" \
		'[.[] | select(.load == $l and .target == $t) | .[$f]] | sort | .[(length - 1) / 2 | floor]' "$T/runs.jsonl"
}
ms() { fdiv "$1" 1000 2; }
for load in keepalive close; do
	what="keep-alive"
	[ $load = close ] && what="new connection per request"
	d=$(med $load direct rps) p=$(med $load proxy rps)
	dl=$(med $load direct p99_us) pl=$(med $load proxy p99_us)
	row "$what, 50 connections: requests/s (p99 at saturation), median of $ROUNDS" \
		"$(printf '%.0f/s (p99 %s ms) direct' "$d" "$(ms "$dl")")" \
		"$(printf 'through HAProxy TCP mode: %.0f/s (p99 %s ms)' "$p" "$(ms "$pl")")" \
		"$(fdiv "$d" "$p" 2)x the requests/s"
	d=$(med $load-1 direct p99_us) p=$(med $load-1 proxy p99_us)
	dr=$(med $load-1 direct rps) pr=$(med $load-1 proxy rps)
	row "$what, 1 connection: p99 latency (requests/s)" \
		"$(printf '%s ms (%.0f/s) direct' "$(ms "$d")" "$dr")" \
		"$(printf 'through HAProxy: %s ms (%.0f/s)' "$(ms "$p")" "$pr")" \
		"$(fdiv "$p" "$d" 2)x lower p99"
done
tot=$(jq -s '[.[] | select(.target == "direct") | .requests] | add' "$T/runs.jsonl")
ptot=$(jq -s '[.[] | select(.target == "proxy") | .requests] | add' "$T/runs.jsonl")
acpu=$(jq -s '[.[] | select(.target == "direct") | .agent_cpu_ns] | add' "$T/runs.jsonl")
pcpu=$(jq -s '[.[] | select(.target == "proxy") | .proxy_cpu_ns] | add' "$T/runs.jsonl")
row "CPU in the data path's middle per 1000 requests" \
	"$(printf 'agent: %s ms (RSS %s MiB)' "$(fdiv "$acpu" "$((tot * 1000))" 3)" "$(fdiv "$(rss_kb "$AGENT")" 1024 1)")" \
	"$(printf 'HAProxy: %s ms (RSS %s MiB)' "$(fdiv "$pcpu" "$((ptot * 1000))" 3)" "$(fdiv "$hap_rss" 1024 1)")" \
	"the agent is not in the data path"
bench_finish
