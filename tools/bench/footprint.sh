#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 5, the agent's footprint: its resident memory, and its CPU (the
# scheduler's exact run time of all its threads) while idle, while its
# service takes 2000 new connections/s, and during a canary rollout
# (10, 50, 100% with 1 s of bake, HTTP health checks every second) under
# that load.
# usage: tools/bench/footprint.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
IDLE=${FOOTPRINT_IDLE:-4}

agent_conf "$T/f.conf"
service_conf web 127.0.0.1:8080 "instances = 2" "ready = notify" "health = http" \
	"health-interval = 1s" "backlog = 4096" >>"$T/f.conf"
start_agent "$T/f.conf" || exit 1
sleep 0.5
# cpu_during SECONDS: the agent's CPU time over a window, in ns.
cpu_during() {
	local c0
	c0=$(cpu_ns "$AGENT")
	sleep "$1"
	echo $(($(cpu_ns "$AGENT") - c0))
}
rss0=$(rss_kb "$AGENT")
idle=$(cpu_during "$IDLE")
cmd "idle: the agent with one service (2 demo-server instances), ${IDLE}s"

"$LOADGEN" conn --to 127.0.0.1:8080 --threads 2 --sources 256 --rate 2000 --seconds 20 >"$T/load.json" &
L=$!
track_pid $L
cmd "loadgen conn --to 127.0.0.1:8080 --threads 2 --sources 256 --rate 2000"
sleep 0.5
busy=$(cpu_during "$IDLE")
cmd "under load, no rollout: ${IDLE}s"

c0=$(cpu_ns "$AGENT")
t0=$EPOCHREALTIME
"$BATON" deploy web --strategy canary --steps 10,50,100 --bake 1s -- "$DEMO" >"$T/deploy.log" 2>&1 ||
	log "the rollout failed: $(cat "$T/deploy.log")"
t1=$EPOCHREALTIME
roll=$(($(cpu_ns "$AGENT") - c0))
cmd "baton deploy web --strategy canary --steps 10,50,100 --bake 1s -- demo-server   (under the same load)"
rss1=$(rss_kb "$AGENT") hwm=$(hwm_kb "$AGENT")
stop_pid $L INT
rsecs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
inst_rss=$(for p in $(marked_pids); do rss_kb "$p"; done | sort -n | tail -1)

pct_core() { awk -v ns="$1" -v s="$2" 'BEGIN { printf "%.3f", ns / 1e9 / s * 100 }'; }
data footprint "$(jq -n --argjson rss0 "$rss0" --argjson rss1 "$rss1" --argjson hwm "$hwm" \
	--argjson idle "$idle" --argjson busy "$busy" --argjson roll "$roll" --argjson secs "$IDLE" \
	--argjson rsecs "$rsecs" --argjson inst "${inst_rss:-0}" \
	'{rss_kb: $rss0, rss_after_rollout_kb: $rss1, peak_rss_kb: $hwm, idle_cpu_ns: $idle,
	  loaded_cpu_ns: $busy, window_s: $secs, rollout_cpu_ns: $roll, rollout_s: $rsecs,
	  demo_instance_rss_kb: $inst}')"
row "agent resident memory (one service)" "$(fdiv "$rss0" 1024 1) MiB; after a rollout $(fdiv "$rss1" 1024 1) MiB, peak $(fdiv "$hwm" 1024 1) MiB" \
	"one demo-server instance: $(fdiv "${inst_rss:-0}" 1024 1) MiB" "—"
row "agent CPU, idle (${IDLE} s)" "$(fdiv "$idle" 1000000 2) ms = $(pct_core "$idle" "$IDLE")% of a core" "—" "—"
row "agent CPU, 2000 new connections/s, no rollout (${IDLE} s)" "$(fdiv "$busy" 1000000 2) ms = $(pct_core "$busy" "$IDLE")% of a core" "—" "the kernel counts; the agent is not woken"
row "agent CPU, canary rollout 10/50/100% under that load" "$(fdiv "$roll" 1000000 1) ms over ${rsecs} s = $(pct_core "$roll" "$rsecs")% of a core" "—" "start, health checks, 3 steps, drain"
bench_finish
