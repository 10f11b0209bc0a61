#!/bin/bash
# SPDX-License-Identifier: MIT
# The rollout chart: new connections per second per version during a canary
# rollout (10, 50, 100%, 3 s of bake each) under loadgen's load (3000 new
# connections/s from 1024 client addresses, so that sticky steering splits
# them by weight).  baton status --json is sampled every 200 ms (accepted
# connections per version, counted in the kernel); the step changes come
# from loadgen watching the services map.  Writes bench/rollout.dat and draws
# bench/rollout.png with gnuplot; reports each step's measured share, and
# each version's CPU time, processes and memory from its cgroup.
# usage: tools/bench/rollout.sh BUILD_DIR OUT_JSON   (BENCH_OUT: where the chart goes)
. "$(dirname "$0")/common.sh"
bench_enter "$@"
RES=${BENCH_OUT:-$(cd "$(dirname "$0")/../.." && pwd)/bench}
BAKE=${ROLLOUT_BAKE:-3}
RATE=${ROLLOUT_RATE:-3000}
mkdir -p "$RES"

agent_conf "$T/r.conf"
service_conf web 127.0.0.1:8080 "instances = 2" "ready = notify" "health = http" \
	"steering = sticky" "backlog = 4096" >>"$T/r.conf"
start_agent "$T/r.conf" || exit 1
LOAD_S=$((BAKE * 3 + 8))
"$LOADGEN" conn --to 127.0.0.1:8080 --threads 2 --sources 1024 --rate "$RATE" --seconds "$LOAD_S" \
	--watch "$BPFDIR/services" >"$T/load.json" &
L=$!
track_pid $L
cmd "loadgen conn --to 127.0.0.1:8080 --threads 2 --sources 1024 --rate $RATE --watch BPFDIR/services"
cmd "baton deploy web --strategy canary --steps 10,50,100 --bake ${BAKE}s -- demo-server   (2 instances, steering = sticky, health = http); baton status --json every 200 ms"

# Sampler: realtime, then accepted per version (live and stopped ones).
(
	end=$((SECONDS + LOAD_S))
	while [ $SECONDS -lt $end ]; do
		t=$EPOCHREALTIME
		"$BATON" status web --json 2>/dev/null |
			jq -c --arg t "$t" '{t: ($t | tonumber), a: ([.[0].versions[], .[0].stopped[]] |
				map({key: "v\(.version)", value: .accepted}) | from_entries),
				r: (.[0].versions | map({key: "v\(.version)", value: {cpu_usec, memory_bytes,
				memory_peak_bytes, tree_count}}) | from_entries)}'
		sleep 0.2
	done
) >"$T/samples.jsonl" &
S=$!
track_pid $S
T0=$EPOCHREALTIME
sleep 2
"$BATON" deploy web --strategy canary --steps 10,50,100 --bake "${BAKE}s" -- "$DEMO" >"$T/deploy.log" 2>&1 ||
	log "the rollout failed: $(cat "$T/deploy.log")"
wait $L
stop_pid $S

# Rates per version between samples: t (s since T0), v1/s, v2/s.
jq -rs --argjson t0 "$T0" '
	[range(1; length) as $i | .[$i - 1] as $a | .[$i] as $b | ($b.t - $a.t) as $dt |
	 select($dt > 0) |
	 [(($a.t + $b.t) / 2 - $t0), ((($b.a.v1 // 0) - ($a.a.v1 // 0)) / $dt),
	  ((($b.a.v2 // 0) - ($a.a.v2 // 0)) / $dt)]] | .[] | map(. * 100 | round / 100) | @tsv' \
	"$T/samples.jsonl" >"$RES/rollout.dat"
# Steps: when v2's weight changed, as loadgen saw the map change.
jq -r --argjson t0 "$T0" '[.changes[] | {t: (.at - $t0), w: (.newest_weight / 100)}] |
	reduce .[] as $c ([]; if length > 0 and .[-1].w == $c.w then . else . + [$c] end) |
	.[] | select(.w > 0) | "\(.t * 1000 | round / 1000)\t\(.w)"' "$T/load.json" >"$T/steps"

# The share v2 got in each step, away from its edges (0.5 s after, until the next).
shares=$(awk -v OFS='\t' 'FNR == NR { st[++n] = $1; w[n] = $2; next }
	{ for (i = n; i >= 1; i--) if ($1 >= st[i] + 0.5 && (i == n || $1 < st[i + 1])) { a[i] += $2; b[i] += $3; break } }
	END { for (i = 1; i <= n; i++) if (a[i] + b[i] > 0) printf "%s\t%.1f\n", w[i], 100 * b[i] / (a[i] + b[i]) }' \
	"$T/steps" "$RES/rollout.dat")
data rollout "$(jq -n --rawfile steps "$T/steps" --arg shares "$shares" --argjson load "$(jq '{ok, rate, errors}' "$T/load.json")" \
	'{steps: ($steps | split("\n") | map(select(length > 0) | split("\t") | {t: (.[0] | tonumber), weight: (.[1] | tonumber)})),
	  shares: ($shares | split("\n") | map(select(length > 0) | split("\t") | {weight: (.[0] | tonumber), measured: (.[1] | tonumber)})),
	  load: $load}')"

# The chart.
{
	echo "set terminal pngcairo size 1000,500 font 'sans,10'"
	echo "# make bench PART=rollout; redraw: cd bench && gnuplot rollout.gp"
	echo "set output 'rollout.png'"
	echo "set title 'canary rollout under load: new connections/s per version (baton status --json every 200 ms)'"
	echo "set xlabel 'seconds'"
	echo "set ylabel 'new connections / s'"
	echo "set grid"
	echo "set key below"
	echo "set yrange [0:*]"
	awk -F'\t' '{ printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb \"gray40\"\n", $1, $1
		printf "set label \"v2 %s%%\" at %s, graph 0.96 offset 0.3,0 tc rgb \"gray20\"\n", $2, $1 }' "$T/steps"
	echo "plot 'rollout.dat' using 1:2 with lines lw 2 title 'v1 (old)', '' using 1:3 with lines lw 2 title 'v2 (canary)'"
} >"$RES/rollout.gp"
(cd "$RES" && gnuplot rollout.gp) 2>"$T/gnuplot.err" || log "gnuplot: $(cat "$T/gnuplot.err")"

row "canary steps 10/50/100%: v2's measured share of new connections (sticky, 1024 clients)" \
	"$(awk -F'\t' '{ printf "%s%s%%: %s%%", (NR > 1 ? ", " : ""), $1, $2 }' <<<"$shares")" "weights set" \
	"$(jq -r '"\(.errors.connect + .errors.read + .errors.write + .errors.status) failed of \(.ok) requests; chart: bench/rollout.png"' "$T/load.json")"
# Each version's resources from its cgroup (cpu.stat, memory.current and
# memory.peak where cgroup v2 has the memory controller, its processes): CPU
# time at its last sample, the largest memory and process count seen.
res=$(jq -rs '[.[].r // {} | to_entries[]] | group_by(.key)[] | .[0].key as $v | map(.value) |
	"\($v): CPU \(map(.cpu_usec // 0) | max / 1000 | round) ms, \(map(.tree_count // 0) | max) processes, memory " +
	(if (map(.memory_peak_bytes // .memory_bytes // empty) | length) > 0
	 then "peak \(map(.memory_peak_bytes // .memory_bytes // 0) | max / 1048576 * 10 | round / 10) MiB"
	 else "not measured (no memory controller in cgroup v2 here)" end)' "$T/samples.jsonl" | paste -sd ';' | sed 's/;/; /g')
data rollout_resources "$(jq -n --arg r "$res" '$r')"
row "per-version resources during that rollout, from each version's cgroup" "$res" "—" \
	"sampled with the shares; CPU time is the version's whole life up to its last sample"
bench_finish
