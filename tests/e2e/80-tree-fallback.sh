#!/bin/bash
# SPDX-License-Identifier: MIT
# Without a writable cgroup v2 the agent says so in one line and a version's
# tree is its instances' process groups: a pre-forking master that exits at
# once on SIGTERM leaves workers that ignore it, the version stays draining
# while they run, and kill(-pgid) at drain-timeout + kill-after ends them.
# A. cgroup-dir = off.  B. the agent in a mount namespace where the cgroup2
# mount is read-only (a container without delegation).
. "$(dirname "$0")/lib.sh"

[ -n "$CGMNT" ] || { echo "no cgroup v2 mounted: nothing to test"; exit 1; }
URL=http://127.0.0.1:8080/
EXEC="$DEMO --workers 2 --workers-ignore-term --master-no-wait"

# scenario NAME: v1 (the server above) replaced by v2; its workers die at the bound.
scenario() {
	local st main tree workers watch t0 ms listed_early=0 alive p
	st=$("$BATON" status web --json)
	check_eq "$1: status has no cgroup for v1" null "$(jq '.[0].versions[0].cgroup' <<<"$st")"
	main=$(jq -r '.[0].versions[0].processes[0].pid' <<<"$st")
	# Its workers: the processes of its process group other than itself.
	workers=$(ps -e -o pid=,pgid= | awk -v g="$main" '$2 == g && $1 != g {print $1}' | tr '\n' ' ')
	check_eq "$1: the master's process group holds 2 workers" 2 "$(wc -w <<<"$workers")"
	# When the last worker ended (wall clock, ms), watched every 20 ms from before the deploy.
	(for p in $workers; do while running "$p"; do sleep 0.02; done; done; date +%s%3N >"$T/gone.$1") &
	watch=$!
	check "$1: deploy v2" "$BATON" deploy web -- "$DEMO"
	check "$1: v1's master exited at once" wait_gone 5 "$main"
	check_eq "$1: v1 stays draining while its workers run" "draining" \
		"$("$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 1) | .state')"
	for _ in $(seq "$(slow 100)"); do
		kill -0 "$watch" 2>/dev/null || break
		sleep 0.05
	done
	alive=0
	for p in $workers; do running "$p" && alive=$((alive + 1)); done
	check_eq "$1: every worker is gone" 0 "$alive"
	kill "$watch" 2>/dev/null
	wait "$watch" 2>/dev/null
	# From v1's draining event (the agent's clock, ms; the last one: B's agent starts at v1
	# again) to the last worker gone: the bound, however long v2 took to start.
	t0=$("$BATON" events web --json | jq -s '[.[] | select(.event == "draining" and .version == 1)][-1].time_ms')
	ms=$(($(cat "$T/gone.$1" 2>/dev/null || echo 0) - ${t0:-0}))
	check "$1: at drain-timeout + kill-after ($ms ms after v1 began draining, want 2950..4000)" \
		test $ms -ge 2950 -a $ms -le 4000
	for _ in $(seq 40); do
		[ "$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1)] | length')" = 0 ] && break
		sleep 0.05
	done
	check_eq "$1: v1 is stopped" 0 \
		"$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 1)] | length')"
	check "$1: v2 serves" only_version "$URL" v2 5
}

# --- A: cgroup-dir = off
CGROUP_DIR=off write_conf "instances = 1" "ready = notify" "drain-policy = signal-then-wait" \
	"drain-timeout = 2s" "kill-after = 1s"
start_agent || exit 1
check_eq "A: one line says cgroups are off and what follows" 1 \
	"$(grep -c "cgroups are off (cgroup-dir = off): process trees fall back to process groups" "$T/agent.log")"
scenario A
check "A: no cgroup was made" test ! -d "$CGMNT$CGDIR"
"$BATON" shutdown --stop >/dev/null
wait_gone 10 "$AGENT"

# --- B: a read-only cgroup2 mount (the agent's own mount namespace)
rm -rf "$T/run"
write_conf "instances = 1" "ready = notify" "drain-policy = signal-then-wait" \
	"drain-timeout = 2s" "kill-after = 1s"
start_agent_ro() {
	# unshare execs sh, which execs the agent: $! is the agent's pid.
	unshare -m sh -c "mount --bind '$CGMNT' '$CGMNT' && mount -o remount,bind,ro '$CGMNT' &&
		exec '$BATON' agent -d -f '$T/web.conf'" >>"$T/agent.log" 2>&1 &
	AGENT=$!
	disown "$AGENT"
	local out
	for _ in $(seq 100); do
		# (jq -e succeeds on empty input: require an answer first)
		out=$("$BATON" status --json 2>/dev/null) && [ -n "$out" ] &&
			jq -e 'all(.[]; .active != null)' <<<"$out" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}
check "B: the agent starts with a read-only cgroup2 mount" start_agent_ro
check_eq "B: one line says what is missing and what follows" 1 \
	"$(grep -c "cannot create the cgroup $CGMNT$CGDIR: Read-only file system (no delegation?): process trees fall back to process groups" "$T/agent.log")"
scenario B
"$BATON" shutdown --stop >/dev/null
wait_gone 10 "$AGENT"
