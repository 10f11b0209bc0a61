#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 1, steering overhead: new connections per second (connect, request,
# close) through one reuseport group of 2 versions x 2 instances, with no
# program (the kernel's hash) against baton's steer program at 50/50 sticky
# canary weights with 1000 CIDR pins loaded, and against steer + track (the
# agent's whole data path; track attached to the cgroup the listeners were
# made in, the clients outside it, as under the agent).  tools/bench/steer-bench.c does the work, in one
# process, so only the attached program differs between windows; see there.
# Also the programs' own run time per run (BPF run-time statistics).
# usage: tools/bench/steer.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"

ROUNDS=${STEER_ROUNDS:-2000}
SECONDS_PER=${STEER_SECONDS:-0.02}
args=(--rounds "$ROUNDS" --seconds "$SECONDS_PER" --warmup 0.005 --clients 4 --sources 256 --pins 1000)
cmd "steer-bench ${args[*]}   (in a private netns; each round one window per mode, the modes' order cycling through every permutation)"
log "$ROUNDS rounds of 3 x ${SECONDS_PER}s windows"
if ! "$B/steer-bench" "${args[@]}" --pin-dir "$BPFDIR" --json "$T/steer.json" --raw "$T/steer-rounds.json" 2>"$T/steer.log"; then
	cat "$T/steer.log" >&2
	exit 1
fi
r=$T/steer.json
data steer "$(cat "$r")"

# steer-bench gives a 95% confidence interval of each median ratio (order
# statistics; every round's figures are in steer-rounds.json).
ci() {
	jq -r --arg m "$1" '.[$m].ratio_ci95 | "\(.[0]) \(.[1])"' "$r"
}
k=$(jq '.kernel.median_rate' "$r")
for m in steer full; do
	rate=$(jq ".$m.median_rate" "$r")
	ratio=$(jq ".$m.median_ratio" "$r")
	cpu=$(jq ".$m.median_cpu_ratio" "$r")
	read -r lo hi <<<"$(ci $m)"
	# Both rows' target is 0.98: steer alone, and the whole path (issue 15).
	verdict=$(awk -v lo="$lo" -v hi="$hi" 'BEGIN {
		if (lo >= 0.98) print "met"; else if (hi < 0.98) print "MISSED";
		else print "not resolved: the interval spans 0.98" }')
	verdict="; target >= 0.98: $verdict"
	if [ $m = steer ]; then
		what="new conns/s, 2 versions x 2 instances, 50/50 canary, 1000 pins: steer program"
	else
		what="same, steer + track (sock_ops counting: the agent's whole data path)"
	fi
	data "${m}_ratio_ci95" "[$lo, $hi]"
	row "$what" "$(printf '%.0f/s' "$rate")" "$(printf 'kernel reuseport hash, no program: %.0f/s' "$k")" \
		"$(printf '%.3f (95%% CI %.3f-%.3f%s); CPU per connection ratio %.3f' "$ratio" "$lo" "$hi" "$verdict" "$cpu")"
done
row "steer program run time (BPF run-time stats)" \
	"$(jq -r '.bpf_stats.steer_ns_per_run | "\(.) ns/run, 1 run/conn"' "$r")" \
	"$(jq -r '"\(.kernel.median_cpu_us) us CPU per connection (kernel hash)"' "$r")" \
	"$(jq -r '(.bpf_stats.steer_ns_per_run / 1000 / .kernel.median_cpu_us * 100 * 100 | round / 100 | tostring) + "% of a connection"' "$r")"
row "track program run time (BPF run-time stats)" \
	"$(jq -r '.bpf_stats | "\(.track_ns_per_run) ns/run, \(.track_runs_per_conn) runs/conn = \(.track_ns_per_conn) ns/conn"' "$r")" \
	"$(jq -r '"\(.kernel.median_cpu_us) us CPU per connection (kernel hash)"' "$r")" \
	"$(jq -r '(.bpf_stats.track_ns_per_conn / 1000 / .kernel.median_cpu_us * 100 * 100 | round / 100 | tostring) + "% of a connection"' "$r")"
row "track runs for connections to a server baton does not serve (outside its cgroup)" \
	"$(jq -r '.bpf_stats | "\(.track_runs_unserved) runs for \(.unserved_conns) connections"' "$r")" \
	"target: 0 (issue 15)" \
	"$(jq -r '.bpf_stats | if .track_runs_unserved == 0 then "met" elif .track_runs_unserved < 0 then "not measured" else "MISSED" end' "$r")"
bench_finish
