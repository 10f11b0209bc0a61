#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent started inside a cgroup of its own (as systemd starts it with
# Delegate=yes), with that cgroup as its subtree: it moves itself into the
# agent leaf (no process may stay in a cgroup whose children get
# controllers), runs each version under services/, and a restarted agent,
# started in the same cgroup again, does the same and takes the versions
# over; shutdown --stop removes services/.
. "$(dirname "$0")/lib.sh"

[ -n "$CGMNT" ] || { echo "no cgroup v2 mounted: nothing to test"; exit 1; }
mkdir "$CGMNT$CGDIR" || { not_ok "cannot create $CGMNT$CGDIR"; exit 1; }
CGROUP_DIR=$CGDIR write_conf "instances = 2" "ready = notify"
# start_in_own: the agent, started in $CGDIR itself (the unit's cgroup).
start_in_own() {
	sh -c "echo \$\$ >'$CGMNT$CGDIR/cgroup.procs' && exec '$BATON' agent -d -f '$T/web.conf'" \
		>>"$T/agent.log" 2>&1 &
	AGENT=$!
	disown "$AGENT"
	local out
	for _ in $(seq 100); do
		out=$("$BATON" status --json 2>/dev/null) && [ -n "$out" ] &&
			jq -e 'all(.[].versions[].processes[]; .ready) and all(.[]; .active != null)' \
				<<<"$out" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}
check "the agent starts in its own cgroup" start_in_own
check_eq "it moved itself into the agent leaf" "0::$CGDIR/agent" "$(cat /proc/$AGENT/cgroup | grep '^0::')"
check_eq "nothing is left in its own cgroup" "" "$(cat "$CGMNT$CGDIR/cgroup.procs")"
check_eq "v1's 2 instances are in services/web/v1" "$(version_pids 1 | sort -n | tr '\n' ' ')" \
	"$(sort -n "$CGMNT$CGDIR/services/web/v1/cgroup.procs" | tr '\n' ' ')"

kill -9 "$AGENT"
wait_gone 5 "$AGENT"
check "a new agent, in the same cgroup, takes over" start_in_own
check_eq "it too is in the agent leaf" "0::$CGDIR/agent" "$(cat /proc/$AGENT/cgroup | grep '^0::')"
check_eq "and found v1's cgroup" 2 \
	"$("$BATON" status web --json | jq '.[0].versions[] | select(.version == 1) | .tree_count')"
check "deploy v2" "$BATON" deploy web -- "$DEMO"
wait_cg_gone() {
	for _ in $(seq 100); do [ -d "$CGMNT$CGDIR/services/web/v1" ] || return 0; sleep 0.1; done
	return 1
}
check "v1's cgroup is removed once it stopped" wait_cg_gone
"$BATON" shutdown --stop >/dev/null
wait_gone 10 "$AGENT"
check "shutdown --stop removed services/" test ! -d "$CGMNT$CGDIR/services"
