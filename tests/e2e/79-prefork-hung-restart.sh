#!/bin/bash
# SPDX-License-Identifier: MIT
# A pre-forking server whose master exits at once on SIGTERM, whose workers
# ignore it, and whose workers each leave a detached grandchild (double
# fork, own session): the version is not stopped while any of them runs,
# the agent is killed (-9) meanwhile, and the restarted agent finds v1's
# cgroup again and still kills every process of it at the bound.
# shutdown --stop removes the cgroups.
. "$(dirname "$0")/lib.sh"

[ -n "$CGMNT" ] || { echo "no cgroup v2 mounted: nothing to test"; exit 1; }
EXEC="$DEMO --workers 2 --workers-ignore-term --master-no-wait --worker-daemon" \
	write_conf "instances = 1" "ready = notify" "drain-policy = signal-then-wait" \
	"drain-timeout = 8s" "kill-after = 1s"
start_agent || exit 1
URL=http://127.0.0.1:8080/

st=$("$BATON" status web --json)
main=$(jq -r '.[0].versions[0].processes[0].pid' <<<"$st")
tree=$(jq -r '.[0].versions[0].tree[].pid' <<<"$st" | sort -n | tr '\n' ' ')
check_eq "v1's cgroup holds master, 2 workers, 2 detached grandchildren" 5 \
	"$(jq '.[0].versions[0].tree_count' <<<"$st")"
detached=0
for p in $tree; do
	[ "$(ps -o sid= -p "$p" | tr -d ' ')" != "$main" ] && detached=$((detached + 1))
done
check_eq "2 of them left the master's session (a process group kill would miss them)" 2 "$detached"

check "deploy v2" "$BATON" deploy web -- "$DEMO" --workers 2
check "v2 serves" only_version "$URL" v2 5
check "v1's master exited at its exit signal" wait_gone 5 "$main"
st=$("$BATON" status web --json)
check_eq "v1 is still listed, draining, without its master" "draining 0" \
	"$(jq -r '.[0].versions[] | select(.version == 1) | "\(.state) \(.alive)"' <<<"$st")"
check_eq "with the 4 processes its master left" 4 \
	"$(jq '.[0].versions[] | select(.version == 1) | .tree_count' <<<"$st")"
check "text status lists them" grep -q "4 process(es) in its cgroup" <<<"$("$BATON" status web)"

# The agent dies while v1 drains; the next one takes v1's cgroup over.
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
t0=$(date +%s%N)
start_agent || exit 1
st=$("$BATON" status web --json)
check_eq "the restarted agent found v1's 4 processes in its cgroup" 4 \
	"$(jq '.[0].versions[] | select(.version == 1) | .tree_count' <<<"$st")"
grep -q "v1: 0 started process(es)" "$T/agent.log" &&
	not_ok "the first agent killed v1 already: the restart came too late to test it"
left=$(for p in $tree; do running "$p" && echo "$p"; done | tr '\n' ' ')
# Bounded: drain-timeout 8 s + kill-after 1 s from the exit signal.
for _ in $(seq 150); do
	[ "$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1)] | length')" = 0 ] && break
	sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "v1 stopped after the restart (${ms} ms)" 0 \
	"$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1)] | length')"
still=0
for p in $left; do running "$p" && still=$((still + 1)); done
check_eq "every worker and grandchild of v1 was killed at the bound" 0 "$still"
grep -q "v1: 0 started process(es) and others of its tree still running after kill-after" \
	"$T/agent.log" && ok "the restarted agent sent the SIGKILL" || not_ok "no SIGKILL by the new agent"
check "v1's cgroup is gone" test ! -d "$CGMNT$CGDIR/services/web/v1"
check "v2 still serves" only_version "$URL" v2 5

"$BATON" shutdown --stop >/dev/null
wait_gone 10 "$AGENT"
check "shutdown --stop removed the cgroups" test ! -d "$CGMNT$CGDIR"
