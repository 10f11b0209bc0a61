#!/bin/bash
# SPDX-License-Identifier: MIT
# A retired old instance that does not exit is bounded as a whole version
# is: at its bound the SIGKILL reaches its whole tree, not only its process.
# v1 is a pre-forking server whose workers ignore SIGTERM (hung) and whose
# master waits for them; rolling to v2 (2 instances, max-surge 1): each
# retired instance gets SIGTERM, then at drain-timeout SIGKILL, and its
# workers die with their master, while the rollout still runs (before,
# they lived on in v1's cgroup until the version's own bound, 2 s later).
. "$(dirname "$0")/lib.sh"

EXEC="$DEMO --workers 2 --workers-ignore-term" \
	write_conf "instances = 2" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 2s" "kill-after = 1s" \
	"strategy = rolling" "max-surge = 1" "max-unavailable = 0"
start_agent || exit 1

masters=$(version_pids 1)
declare -A workers
for m in $masters; do
	workers[$m]=$(ps -o pid= --ppid "$m" | tr -d ' ' | tr '\n' ' ')
	check_eq "instance pid $m has 2 workers" 2 "$(wc -w <<<"${workers[$m]}")"
done

"$BATON" deploy web -- "$DEMO" >"$T/deploy" 2>&1 &
DEPLOY=$!
EXTRA_PIDS=$DEPLOY
# The first instance to leave: its master is SIGKILLed at drain-timeout.
first=
for i in $(seq "$(slow 100)"); do
	first=$(sed -n 's/.*v1: instance [0-9]* (pid \([0-9]*\), .* leaves.*/\1/p' "$T/agent.log" | head -1)
	[ -n "$first" ] && break
	sleep 0.1
done
check "an old instance leaves" test -n "$first"
check "its master is killed at its bound" wait_gone 6 "$first"
# SIGKILL is delivered at once: 0.5 s is slack for a loaded machine, well
# below the 2 s after which the version's own bound would have killed them.
sleep 0.5
left=0
for p in ${workers[$first]}; do running "$p" && left=$((left + 1)); done
check_eq "its workers died with it" 0 "$left"
check "the log says what was killed" grep -q "SIGKILL to instance [0-9] (pid $first), its process group and 2 process(es) below it" "$T/agent.log"
rc=0
wait "$DEPLOY" || rc=$?
cat "$T/deploy"
check_eq "the rolling deploy completes" 0 "$rc"
check "every v1 process is gone in the end" wait_gone 10 $masters ${workers[*]}
