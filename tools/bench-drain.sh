#!/bin/bash
# SPDX-License-Identifier: MIT
# Drain latency: the time from a draining version's last connection closing
# (kernel time, at the close) to baton sending it its exit signal
# (wait-then-signal).  Runs N deploys in a private network namespace; each
# old version holds one connection, closed by the client after the switch.
# Prints p50/p99/max and writes them to BUILD/bench-drain.json.
# usage: tools/bench-drain.sh [BUILD_DIR] [N]
set -u
B=$(cd "${1:-build}" && pwd)
N=${2:-100}
[ "$(id -u)" = 0 ] || { echo "bench-drain: must run as root" >&2; exit 1; }
if [ -z "${BENCH_NS:-}" ]; then
	BENCH_NS=1 exec unshare -n "$0" "$@"
fi
ip link set lo up
T=$(mktemp -d /tmp/baton-bench.XXXXXX)
ID=bench-$$
BPFDIR=/sys/fs/bpf/baton-$ID
export BATON_CONTROL=$T/control.sock
AGENT=
cleanup() {
	local p f
	[ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null
	for f in /proc/[0-9]*/environ; do
		p=${f#/proc/}; p=${p%/environ}
		{ tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qx "BENCH_ID=$ID" && kill -9 "$p" 2>/dev/null
	done
	[ -d "$BPFDIR" ] && rm -rf "$BPFDIR"
	rm -rf "$T"
}
trap cleanup EXIT
cat >"$T/b.conf" <<CONF
[agent]
control = $T/control.sock
bpf-dir = $BPFDIR
run-dir = $T/run
[service b]
listen = 127.0.0.1:8080
exec = $B/demo-server --idle-ms 600000
environment = BENCH_ID=$ID
instances = 1
drain-policy = wait-then-signal
drain-timeout = 10s
kill-after = 1s
CONF
"$B/baton" agent -d -f "$T/b.conf" >"$T/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 100); do "$B/baton" status >/dev/null 2>&1 && break; sleep 0.1; done
for i in $(seq "$N"); do
	exec 5<>/dev/tcp/127.0.0.1/8080
	printf 'GET / HTTP/1.1\r\nHost: b\r\n\r\n' >&5
	"$B/baton" deploy b -- "$B/demo-server" --idle-ms 600000 >/dev/null 2>&1 ||
		{ echo "bench-drain: deploy $i failed" >&2; exit 1; }
	exec 5>&-
	for _ in $(seq 200); do
		[ "$(grep -c 'last connection closed; signalled' "$T/agent.log")" -ge "$i" ] && break
		sleep 0.01
	done
done
sed -n 's/.*last connection closed; signalled \([0-9]*\) us later/\1/p' "$T/agent.log" |
	sort -n >"$T/us"
n=$(wc -l <"$T/us")
pct() { awk -v p="$1" -v n="$n" 'NR == int((n - 1) * p / 100) + 1 {print; exit}' "$T/us"; }
p50=$(pct 50) p99=$(pct 99) max=$(tail -1 "$T/us")
printf 'drain: last close -> exit signal, %d drains\n  p50 %6d us\n  p99 %6d us\n  max %6d us\n' \
	"$n" "$p50" "$p99" "$max"
printf '{"drains": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n' "$n" "$p50" "$p99" "$max" \
	>"$B/bench-drain.json"
if [ "$n" -ne "$N" ] || [ "$p99" -ge 5000 ]; then
	echo "bench-drain: target missed (want $N drains, p99 < 5000 us)"
	exit 1
fi
echo "bench-drain: p99 under 5 ms"
