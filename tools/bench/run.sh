#!/bin/bash
# SPDX-License-Identifier: MIT
# make bench: baton against the kernel's own reuseport, against the reloads
# people use today, and against a proxy, measured side by side in one run.
#
#   tools/bench/run.sh [BUILD_DIR] [PART[,PART...]]     (root; make bench [PART=...])
#
# Parts (each a script tools/bench/PART.sh, each runnable alone):
#   steer      1. steering overhead against the kernel's hash; program run time
#   swaps      2. failed requests during 10 swaps: baton, nginx reload, HAProxy reload, stop/start
#   switch     3. deploy's switch to 100% of new connections; last close to exit signal
#   proxy      4. direct against through HAProxy in TCP mode: requests/s, p99
#   footprint  5. agent RSS and CPU, idle and during a rollout
#   scale      6. 100,000 live connections counted exactly; 64 services; map memory
#   reset      7. status answer time while drain-reset resets 60,000 of 100,000 connections
#   rollout    chart: requests/s per version during a canary rollout (bench/rollout.png)
#   drain      8. drain-http: joining 10,000 connections, first rewritten response, CPU per rewrite
#   latency    9. latency measurement: new conns/s and keep-alive req/s on against off; run time
#   rollmem   10. peak memory of the service's processes: rolling deploy against blue-green
#   servers   11. lighttpd and nginx: failed requests in deploys with drain-http against their own reloads
#   http      12. measure-http: keep-alive requests/s of a version under analysis against one not measured
#
# Prints the table (each figure, its baseline, the ratio), the machine, and
# the commands; keeps every part's latest result in bench/results.json
# (parts run now replace theirs) and the table in bench/results.md.
set -u
ALL="steer swaps switch proxy footprint scale reset rollout drain latency rollmem servers http"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "bench: build directory '${1:-build}' not found (run make)" >&2; exit 1; }
PARTS=${2:-$ALL}
PARTS=${PARTS//,/ }
RESDIR=${BENCH_OUT:-$ROOT/bench}

[ "$(id -u)" = 0 ] || { echo "bench: must run as root (namespaces, BPF)" >&2; exit 1; }
for p in $PARTS; do
	case " $ALL " in *" $p "*) ;; *) echo "bench: unknown part '$p' (parts: $ALL)" >&2; exit 1 ;; esac
done
for t in unshare ip nstat ss jq wrk bpftool awk nginx haproxy lighttpd gnuplot timeout; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench: $t not found (tools/deps.sh bench installs it)" >&2; exit 1; }
done
for f in baton demo-server steer-bench loadgen drain-bench lat-bench http-bench; do
	[ -x "$B/$f" ] || { echo "bench: $B/$f missing (make bench builds it)" >&2; exit 1; }
done
if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/self/mounts; then
	echo "bench: mounting bpffs on /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)"
	mount -t bpf bpf /sys/fs/bpf || { echo "bench: cannot mount bpffs" >&2; exit 1; }
fi
mkdir -p "$RESDIR"
TMP=$(mktemp -d /tmp/baton-bench-run.XXXXXX)
export BENCH_RUN=baton-bench-${TMP##*.}
sweep() {
	local d
	for d in /sys/fs/bpf/"$BENCH_RUN"-*; do [ -d "$d" ] && rm -rf "$d"; done
	rm -rf "$TMP"
}
trap sweep EXIT

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit+dirty"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
machine="$(nproc) x $cpu, $mem, $os, kernel $(uname -r); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
versions="$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | sed 's/.*: //'), HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }')"

echo "bench: $machine"
echo "bench: commit $commit; parts: $PARTS"
T0=$EPOCHREALTIME
failed=
for p in $PARTS; do
	t=$EPOCHREALTIME
	echo "bench: part $p ..."
	# Every part is bounded; a part past its bound is killed with its whole PID namespace.
	if timeout -k 10 300 "$HERE/$p.sh" "$B" "$TMP/$p.json" && [ -s "$TMP/$p.json" ]; then
		jq --arg c "$commit" --arg m "$machine" --arg v "$versions" \
			'.commit = $c | .machine = $m | .software = $v' "$TMP/$p.json" >"$TMP/$p.done"
		printf 'bench: part %s done in %.0f s\n' "$p" "$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
	else
		echo "bench: part $p FAILED" >&2
		failed="$failed $p"
	fi
	for d in /sys/fs/bpf/"$BENCH_RUN"-"$p"-*; do [ -d "$d" ] && rm -rf "$d"; done
done
total=$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# Merge into results.json: parts run now replace their earlier results.
old=$RESDIR/results.json
[ -s "$old" ] && jq -e .parts "$old" >/dev/null 2>&1 || echo '{"parts": {}}' >"$old"
for p in $PARTS; do
	[ -s "$TMP/$p.done" ] || continue
	jq --slurpfile n "$TMP/$p.done" --arg p "$p" '.parts[$p] = $n[0]' "$old" >"$TMP/merged" &&
		mv "$TMP/merged" "$old"
done
jq --arg m "$machine" --arg c "$commit" --arg v "$versions" --argjson s "$total" --arg parts "$PARTS" \
	'.last_run = {machine: $m, commit: $c, software: $v, seconds: $s, parts: $parts}' \
	"$old" >"$TMP/merged" && mv "$TMP/merged" "$old"

# The table: every part in results.json, in the order above.
table() {
	echo "| part | measure | baton | baseline | ratio / note |"
	echo "|---|---|---|---|---|"
	local p
	for p in $ALL; do
		jq -r --arg p "$p" '.parts[$p] // empty | .rows[] |
			"| \($p) | \(.measure) | \(.baton) | \(.baseline) | \(.ratio) |"' "$old"
	done
}
{
	echo "Machine: $machine"
	echo "Software: $versions; baton $commit"
	echo
	table
	echo
	echo "Runs:"
	for p in $ALL; do
		jq -r --arg p "$p" '.parts[$p] // empty | "  \($p): \(.date), commit \(.commit), \(.seconds) s"' "$old"
	done
	echo "Commands:"
	for p in $ALL; do
		jq -r --arg p "$p" '.parts[$p] // empty | .commands[] | "  \($p): \(.)"' "$old"
	done
} >"$RESDIR/results.md"
echo
cat "$RESDIR/results.md"
echo
echo "bench: results in $old, table in $RESDIR/results.md$( [ -s "$RESDIR/rollout.png" ] && echo ", chart $RESDIR/rollout.png")"
echo "bench: $PARTS: ${total} s"
if [ -n "$failed" ]; then
	echo "bench: failed parts:$failed" >&2
	exit 1
fi
