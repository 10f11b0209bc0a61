#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 10, memory of a deploy: the peak of the summed resident memory of the
# service's processes (every process of the service: the agent's children,
# VmRSS sampled every 20 ms) during a blue-green deploy and during a rolling
# one (max-surge 1, max-unavailable 0) of the same service (instances = 4,
# demo-server), in the same run, each from its start until the replaced
# version exited, under light keep-alive load.  Expected ratio about
# (instances + 1) / (2 instances) = 0.625: a rolling deploy never runs more
# than instances + 1 processes, blue-green runs two whole copies.
# (memory.peak of the versions' cgroups would count page cache too, and
# needs the memory controller on cgroup v2, which hybrid hosts do not have.)
# usage: tools/bench/rollmem.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
N=4

agent_conf "$T/m.conf"
service_conf web 127.0.0.1:8080 "instances = $N" "ready = notify" "health = none" \
	"drain-policy = signal-then-wait" "drain-timeout = 5s" "backlog = 4096" >>"$T/m.conf"
start_agent "$T/m.conf" || exit 1
wrk -t1 -c8 -d120s http://127.0.0.1:8080/ >"$T/wrk.out" 2>&1 &
W=$!
track_pid $W
cmd "wrk -t1 -c8 -d120s http://127.0.0.1:8080/   (during both deploys)"
sleep 1

# sample OUT: until $T/stop, every 20 ms: the number of the service's processes
# and their summed VmRSS (KiB); one line each.
sample() {
	python3 - "$BENCH_ID" "$T/stop" >"$1" <<'PY'
import glob, os, sys, time
mark, stop = ("BENCH_ID=" + sys.argv[1]).encode(), sys.argv[2]
end = time.monotonic() + 120
while time.monotonic() < end and not os.path.exists(stop):
    n = kb = 0
    for d in glob.glob("/proc/[0-9]*"):
        try:
            if mark not in open(d + "/environ", "rb").read().split(b"\0"):
                continue
            for line in open(d + "/status"):
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
                    n += 1
        except OSError:
            pass
    print(n, kb, flush=True)
    time.sleep(0.02)
PY
}

# measure NAME DEPLOY-ARGS...: deploy, wait until one version is left, peak "PROCS KIB".
measure() {
	local name=$1 s
	shift
	rm -f "$T/stop"
	sample "$T/$name.samples" &
	s=$!
	track_pid $s
	# python starts slowly on a loaded machine: deploy once it samples.
	for _ in $(seq 200); do
		[ -s "$T/$name.samples" ] && break
		sleep 0.05
	done
	"$BATON" deploy web "$@" -- "$DEMO" >"$T/deploy.$name" 2>&1 || log "$name deploy failed: $(cat "$T/deploy.$name")"
	cmd "baton deploy web $* -- demo-server"
	for _ in $(seq 300); do
		[ "$("$BATON" status web --json | jq '.[0].versions | length')" = 1 ] && break
		sleep 0.05
	done
	sleep 0.2
	touch "$T/stop"
	wait $s
	awk 'BEGIN { p = k = 0 } { if ($1 > p) p = $1; if ($2 > k) k = $2 } END { print p, k }' "$T/$name.samples"
}

read -r bg_procs bg_kb <<<"$(measure bluegreen --strategy bluegreen)"
read -r roll_procs roll_kb <<<"$(measure rolling --strategy rolling --max-surge 1 --max-unavailable 0)"
stop_pid $W INT
nsamp=$(($(wc -l <"$T/bluegreen.samples") + $(wc -l <"$T/rolling.samples")))
ratio=$(fdiv "$roll_kb" "$bg_kb" 3)
expect=$(fdiv $((N + 1)) $((2 * N)) 3)
data rollmem "$(jq -n --argjson n $N --argjson bgp "$bg_procs" --argjson bgk "$bg_kb" \
	--argjson rp "$roll_procs" --argjson rk "$roll_kb" --argjson s "$nsamp" \
	'{instances: $n, bluegreen_peak_procs: $bgp, bluegreen_peak_rss_kb: $bgk,
	  rolling_peak_procs: $rp, rolling_peak_rss_kb: $rk, samples: $s}')"
row "peak memory of the service's processes during a deploy ($N instances)" \
	"rolling: $(fdiv "$roll_kb" 1024 1) MiB, $roll_procs processes at most" \
	"blue-green: $(fdiv "$bg_kb" 1024 1) MiB, $bg_procs processes at most" \
	"$ratio (expected about (n+1)/2n = $expect)"
bench_finish
