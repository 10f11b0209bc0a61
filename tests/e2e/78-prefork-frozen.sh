#!/bin/bash
# SPDX-License-Identifier: MIT
# A pre-forking server (a master and two workers accepting on the inherited
# sockets) runs in its version's cgroup.  Every process of v1 is frozen
# (SIGSTOP) with requests queued on its listener, then v2 is deployed: at
# drain-timeout + kill-after the whole cgroup is killed (master and
# workers), every queued request is answered by v2, status lists every
# process of v1 until the last is gone and only then reports it stopped, and
# v1's cgroup is removed.
. "$(dirname "$0")/lib.sh"

[ -n "$CGMNT" ] || { echo "no cgroup v2 mounted: nothing to test"; exit 1; }
EXEC="$DEMO --workers 2" write_conf "instances = 1" "ready = notify" "drain-timeout = 1s" \
	"kill-after = 1s"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
start_agent || exit 1
metric() { curl -s --max-time 2 http://127.0.0.1:9464/metrics | awk -v m="$1{service=\"web\",version=\"v1\"}" '$1 == m {print $2}'; }
URL=http://127.0.0.1:8080/
grep -q "versions run in cgroups under $CGDIR" "$T/agent.log" &&
	ok "agent uses cgroups under $CGDIR" || not_ok "no cgroup line: $(grep -m1 cgroup "$T/agent.log")"

st=$("$BATON" status web --json)
main=$(jq -r '.[0].versions[0].processes[0].pid' <<<"$st")
tree=$(jq -r '.[0].versions[0].tree[].pid' <<<"$st" | sort -n | tr '\n' ' ')
check_eq "status lists master and 2 workers of v1" 3 "$(jq '.[0].versions[0].tree_count' <<<"$st")"
check "the master is one of them" grep -qw "$main" <<<"$tree"
check_eq "v1's cgroup as status names it" "$CGDIR/services/web/v1" \
	"$(jq -r '.[0].versions[0].cgroup' <<<"$st")"
check_eq "the kernel's list of v1's cgroup is the same" "$tree" \
	"$(sort -n "$CGMNT$CGDIR/services/web/v1/cgroup.procs" | tr '\n' ' ')"
check "cpu time of v1 is reported" jq -e '.[0].versions[0].cpu_usec >= 0' <<<"$st"
check "v1 serves (a worker answers, not the master)" \
	sh -c "curl -s --max-time 2 $URL | grep -q 'version=v1' && ! curl -s --max-time 2 $URL | grep -q 'pid=$main\$'"

check_eq "/metrics: v1 has 3 processes" 3 "$(metric baton_version_processes)"
check_eq "/metrics: none stopped" 0 "$(metric baton_version_stopped_processes)"
check "/metrics: v1's CPU seconds ($(metric baton_version_cpu_seconds_total))" \
	awk -v c="$(metric baton_version_cpu_seconds_total)" 'BEGIN {exit !(c != "" && c >= 0)}'
if grep -qw memory "$CGMNT$CGDIR/cgroup.controllers"; then
	check "/metrics: v1's memory (memory controller present)" test -n "$(metric baton_version_memory_bytes)"
else
	check_eq "/metrics: no memory figure without the memory controller" "" "$(metric baton_version_memory_bytes)"
fi

# Freeze every process of v1, then queue requests on its listener.
for p in $tree; do kill -STOP "$p"; done
check "status shows v1's processes stopped (T)" \
	jq -e '[.[0].versions[0].tree[].state] | all(. == "T")' <<<"$("$BATON" status web --json)"
check_eq "/metrics: all 3 stopped (a frozen version)" 3 "$(metric baton_version_stopped_processes)"
check "text status shows them stopped" grep -q "3 process(es) in its cgroup: .*(T)" <<<"$("$BATON" status web)"
N=20
for i in $(seq $N); do
	curl -s --max-time 20 -o "$T/q.$i" "$URL" &
	LOAD_PIDS="${LOAD_PIDS:-} $!"
done
# Bounded: every connection is in v1's accept queue (nothing accepts it).
for _ in $(seq 50); do
	q=$(ss -Hltn 'sport = :8080' | awk '$2 > 0 {s += $2} END {print s + 0}')
	[ "$q" -ge $N ] && break
	sleep 0.1
done
check_eq "all $N requests queued on v1" "$N" "$q"

"$BATON" deploy web -- "$DEMO" --workers 2 >"$T/deploy.out" 2>&1 &
DEPLOY=$!
# When the last process of v1 ended (wall clock, ms), watched every 20 ms.
(for p in $tree; do while running "$p"; do sleep 0.02; done; done; date +%s%3N >"$T/gone") &
WATCH=$!
# While any process of v1 runs, v1 must be in status (not stopped): status
# first, then the processes, so one that ends in between is not counted.
early=0
for _ in $(seq 200); do
	alive=0
	listed=$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1)] | length')
	for p in $tree; do running "$p" && alive=$((alive + 1)); done
	[ "$alive" -gt 0 ] && [ "$listed" = 0 ] && early=$((early + 1))
	[ "$alive" = 0 ] && [ "$listed" = 0 ] && break
	sleep 0.05
done
wait "$DEPLOY"
wait "$WATCH"
check_eq "v1 never shown stopped while one of its processes ran" 0 "$early"
# From v1's draining event (the agent's clock, ms) to the last process gone:
# the bound, whatever the time v2 took to start.
drained=$("$BATON" events web --json | jq -s '[.[] | select(.event == "draining" and .version == 1)][0].time_ms')
gone_ms=$(($(cat "$T/gone" 2>/dev/null || echo 0) - ${drained:-0}))
check "every process of v1 is gone at drain-timeout + kill-after after it began draining (${gone_ms} ms, want 1950..3000)" \
	test "$gone_ms" -ge 1950 -a "$gone_ms" -le 3000
check_eq "v1 is stopped in status" 0 \
	"$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1)] | length')"
grep -q "v1: .*sending SIGKILL to all its processes" "$T/agent.log" &&
	ok "agent logged the SIGKILL of v1's tree" || not_ok "no SIGKILL line for v1"

for p in $LOAD_PIDS; do wait "$p"; done
LOAD_PIDS=
v2=0
for i in $(seq $N); do grep -q '^version=v2 ' "$T/q.$i" && v2=$((v2 + 1)); done
check_eq "every queued request was answered by v2" "$N" "$v2"
check "v1's cgroup was removed" test ! -d "$CGMNT$CGDIR/services/web/v1"
check "v2's cgroup holds its 3 processes" \
	test "$(wc -l <"$CGMNT$CGDIR/services/web/v2/cgroup.procs")" = 3

"$BATON" shutdown --stop >/dev/null
wait_gone 10 "$AGENT"
check "shutdown --stop removed the cgroups" test ! -d "$CGMNT$CGDIR"
