#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 9, latency: the cost of measuring response times (bpf/latency.bpf.c,
# docs/latency.md), from tools/bench/lat-bench.c in one process, as ratios of
# one run (rounds of short windows, the modes' order cycling):
#  - new connections/s with latency on (steer + track + latency) against the
#    kernel's hash, and against steer + track with latency off;
#  - keep-alive requests/s with latency on against off;
#  - the programs' run time (BPF run-time stats) per connection and per
#    request; on a socket of the same cgroup baton does not count; and how
#    often they ran for a socket of another cgroup (the host's other
#    servers: must be never).
#  - keep-alive requests/s of a version not measured (latency = off or auto
#    without a gate) while the programs are attached for another one;
# usage: tools/bench/latency.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
ROUNDS=${LAT_ROUNDS:-300}
SECONDS_PER=${LAT_SECONDS:-0.05}
args=(--rounds "$ROUNDS" --seconds "$SECONDS_PER" --warmup 0.01 --clients 4)
cmd "lat-bench ${args[*]}   (in a private netns; each round one window per mode)"
log "$ROUNDS rounds of 3 + 2 windows of ${SECONDS_PER}s"
"$B/lat-bench" "${args[@]}" --pin-dir "$BPFDIR" --json "$T/lat.json" 2>"$T/err" ||
	{ log "lat-bench failed: $(cat "$T/err")"; exit 1; }
cat "$T/err" >&2
data latency "$(cat "$T/lat.json")"
g() { jq -r ".$1" "$T/lat.json"; }
ratio() { # NAME: "median (95% CI lo-hi); target >= 0.97: met / MISSED / not resolved"
	local m lo hi
	m=$(g "$1.median") lo=$(g "$1.ci95[0]") hi=$(g "$1.ci95[1]")
	awk -v m="$m" -v lo="$lo" -v hi="$hi" -v t="${2:-}" 'BEGIN {
		printf "%.3f (95%% CI %.3f-%.3f)", m, lo, hi
		if (t != "") {
			v = lo >= t ? "met" : hi < t ? "MISSED" : "not resolved: the interval spans " t
			printf "; target >= %s: %s", t, v
		}
	}'
}
row "new conns/s, steer + track + latency measured" "$(g conn.lat)/s" \
	"kernel reuseport hash, no program: $(g conn.kernel)/s" "$(ratio conn.lat_kernel 0.97)"
row "same, against steer + track with latency = off" "$(g conn.lat)/s" "$(g conn.full)/s" \
	"$(ratio conn.lat_full 0.97)"
row "keep-alive requests/s, latency on against off" "$(g keepalive.on)/s" \
	"$(g keepalive.off)/s" "$(ratio keepalive.on_off 0.97)"
row "keep-alive requests/s of a version not measured while another is, against latency off" \
	"-" "-" "$(ratio keepalive.miss_off 0.97)"
row "latency programs' run time per new connection (BPF run-time stats)" \
	"$(g stats.conn.ns) ns ($(g stats.conn.rx_runs) in x $(g stats.conn.rx_ns_per_run) ns, $(g stats.conn.tx_runs) out x $(g stats.conn.tx_ns_per_run) ns)" "-" "-"
row "latency programs' run time per keep-alive request" \
	"$(g stats.keepalive.ns) ns ($(g stats.keepalive.rx_runs) in x $(g stats.keepalive.rx_ns_per_run) ns, $(g stats.keepalive.tx_runs) out x $(g stats.keepalive.tx_ns_per_run) ns)" "-" "-"
row "recv/send on a socket of baton's cgroup it does not count: added per call" \
	"in $(g stats.uncounted_same_cgroup.rx_ns_per_run) ns, out $(g stats.uncounted_same_cgroup.tx_ns_per_run) ns" \
	"$(g stats.uncounted_same_cgroup.round_trips) round trips" "target <= 50 ns (program run time only)"
row "recv/send on any other socket of the host: programs run" \
	"$(g stats.other_cgroup.runs) times" "$(g stats.other_cgroup.round_trips) round trips" \
	"0 ns added (the kernel skips cgroups without programs)"
bench_finish
