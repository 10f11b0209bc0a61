#!/bin/bash
# SPDX-License-Identifier: MIT
# Readiness by TCP probe through the new version's own socket (the old
# version shares the port and accepts at once), and the drain bound: a
# version that ignores its exit signal is killed at drain-timeout + kill-after.
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
t0=$(date +%s%N)
check "deploy over a version that ignores SIGTERM" "$BATON" deploy web -- /bin/sh -c "exec sleep 600"
wait_gone 5 "$pid"
ms=$((($(date +%s%N) - t0) / 1000000))
check "it is killed at drain-timeout + kill-after (${ms} ms, want 2000..2600)" \
	test $ms -ge 2000 -a $ms -le 2600
grep -q "sending SIGKILL" "$T/agent.log" && ok "agent logged the SIGKILL" || not_ok "no SIGKILL log"
