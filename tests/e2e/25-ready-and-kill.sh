#!/bin/bash
# SPDX-License-Identifier: MIT
# Readiness by TCP probe through the new version's own socket (the old
# version shares the port and accepts at once), and the drain bound: a
# version that ignores its exit signal is killed at drain-timeout + kill-after.
# With ready = none, a program that cannot start still fails the deploy.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 2" "ready = tcp" "ready-timeout = 2s" "drain-timeout = 2s" \
	"kill-after = 1s"
start_agent || exit 1
URL=http://127.0.0.1:8080/

# The new version accepts only after 600 ms; a probe that reached v1 would pass at once.
out=$("$BATON" deploy web -- "$DEMO" --ready-delay-ms 600 2>&1); rc=$?
check "tcp-ready deploy succeeds" test $rc -eq 0
ms=$(sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' <<<"$out")
check "ready waited for the new version to accept (${ms:-?} ms >= 600)" test "${ms:-0}" -ge 600
check "v2 serves" only_version "$URL" v2 5

# A version that never accepts never becomes ready, and v2 keeps the traffic.
v2pids=$(version_pids 2)
out=$("$BATON" deploy web -- "$DEMO" --no-accept 2>&1); rc=$?
check "never-accepting version fails the deploy" test $rc -ne 0
check "reason names the ready timeout" grep -q "not ready within ready-timeout 2000 ms" <<<"$out"
check_eq "v2 still active" 2 "$(active_version)"
check_eq "v2 kept its processes" "$v2pids" "$(version_pids 2)"
check "v2 still serves" only_version "$URL" v2 5
# kill-after 1 s bounds the failed version's exit.
noaccept() {
	local p
	for p in $(test_pids); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- --no-accept && echo "$p"
	done
}
for _ in $(seq 30); do [ -z "$(noaccept)" ] && break; sleep 0.1; done
check_eq "the failed version's processes are gone" "" "$(noaccept)"
left=$("$BATON" status web --json | jq '[.[0].versions[] | select(.version == 3)] | length')
check_eq "the failed version is gone from status" 0 "$left"
"$BATON" shutdown --stop >/dev/null

# Drain bound: an old version that ignores SIGTERM.
EXEC="/bin/sh -c \"trap '' TERM; exec sleep 600\"" \
	write_conf "instances = 1" "ready = none" "drain-policy = signal-then-wait" "drain-timeout = 1s" \
	"kill-after = 1s"
wait_gone 10 "$AGENT"
start_agent || exit 1
pid=$(version_pids 1)
n0=$(wc -l <"$T/agent.log") # the log goes on from the first agent's
check "deploy over a version that ignores SIGTERM" "$BATON" deploy web -- /bin/sh -c "exec sleep 600"
check "v1 is gone" wait_gone 5 "$pid"
# From the switch-out, by the agent's monotonic clock (its log line): timed
# by the test from before the deploy, v2's start and readiness added 1.5 s
# at load 24.  Never before drain-timeout + kill-after; the margin after it
# is a time bound, and scales.
log2() { tail -n +"$((n0 + 1))" "$T/agent.log"; }
for _ in $(seq "$(slow 20)"); do log2 | grep -q "web v1: all processes exited" && break; sleep 0.1; done
ms=$(log2 | sed -n 's/.*web v1: all processes exited, stopped \([0-9]*\)\.\([0-9]*\) s after switch-out.*/\1\2/p')
ms=$((10#${ms:-0}))
check "it is killed at drain-timeout + kill-after (${ms} ms after its switch-out, want 2000..$((2000 + $(slow 600))))" \
	test $ms -ge 2000 -a $ms -le $((2000 + $(slow 600)))
grep -q "sending SIGKILL" "$T/agent.log" && ok "agent logged the SIGKILL" || not_ok "no SIGKILL log"

# ready = none counts an instance ready once its program runs, not once forked:
# one whose execve fails in the child (no shebang, not ELF; the agent's access()
# check passes) fails the deploy with the reason, and v2 keeps the traffic.
printf 'not a program\n' >"$T/not-a-program"
chmod 755 "$T/not-a-program"
expect_err "ready = none: a program that cannot start fails the deploy" \
	"deploy failed: cannot start $T/not-a-program: exec: Exec format error" \
	"$BATON" deploy web -- "$T/not-a-program"
check_eq "ready = none: v2 stays active" 2 "$(active_version)"
