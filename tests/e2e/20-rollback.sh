#!/bin/bash
# SPDX-License-Identifier: MIT
# baton rollback: instant while the previous version is kept (drain-delay),
# starting it again as a new version once it was told to exit (the rollback
# window; its refusals are tests/e2e/103-rollback-bad-input.sh), and
# aborting a deploy in progress.
. "$(dirname "$0")/lib.sh"

# v1 drains idle keep-alive connections for up to 5 s after its exit signal.
# drain-delay scales: the first rollback must come within it, and under
# emulation, and on this host at load average 26, a deploy and two CLI
# calls outlasted 3 s.
DELAY=$(slow 5)
EXEC="$DEMO --drain-idle-ms 5000" write_conf "instances = 1" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-delay = ${DELAY}s" \
	"drain-timeout = 3s" "kill-after = 1s"
start_agent || exit 1
URL=http://127.0.0.1:8080/

check "deploy v2" "$BATON" deploy web -- "$DEMO"
v2pids=$(version_pids 2)
out=$("$BATON" rollback web 2>&1)
check_eq "rollback within drain-delay succeeds" "web: v1 active again, draining v2" "$out"
check "new connections reach v1 after rollback" only_version "$URL" v1 10
check "new IPv6 connections reach v1 after rollback" only_version "http://[::1]:8080/" v1 5
# drain-delay 5 s (scaled) + drain-timeout 3 s + kill-after 1 s bound v2's exit.
# shellcheck disable=SC2086
check "v2 exits after its drain" wait_gone 10 $v2pids

# An idle keep-alive connection on v1 keeps it running after its exit signal.
exec 5<>/dev/tcp/127.0.0.1/8080
printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' >&5
signalled() { grep -c "web v1: draining, sending SIGTERM" "$T/agent.log"; }
before=$(signalled)
check "v3 deploy" "$BATON" deploy web -- "$DEMO"
v1pids=$(version_pids 1)
# Past drain-delay: v1 has its exit signal, and still runs.
for _ in $(seq $((DELAY * 20 + 20))); do [ "$(signalled)" -gt "$before" ] && break; sleep 0.1; done
check "v1 got its exit signal at drain-delay" test "$(signalled)" -gt "$before"
out=$("$BATON" rollback web 2>&1); rc=$?
check "rollback after the exit signal succeeds ($out)" test $rc -eq 0
check "and starts v1 again as v4" grep -q "^web: v4 (v1 started again) active" <<<"$out"
check "v4 takes new connections" only_version "$URL" v4 5
exec 5>&-
# shellcheck disable=SC2086
check "v1 exits" wait_gone 8 $v1pids

# A slow new version; rollback aborts it and the deploy fails with that reason.
# (v5 must still be starting when the rollback comes: its delay scales.)
"$BATON" deploy web -- "$DEMO" --ready-delay-ms "$(slow 4000)" >"$T/deploy.out" 2>&1 &
dep=$!
for _ in $(seq "$(slow 50)"); do [ -n "$(version_pids 5)" ] && break; sleep 0.1; done
v5pids=$(version_pids 5)
out=$("$BATON" rollback web 2>&1)
check_eq "rollback aborts a deploy in progress" "deploy of web v5 aborted; web v4 stays active" "$out"
wait $dep; rc=$?
check "the aborted deploy exits non-zero" test $rc -ne 0
check "with the reason" grep -q "aborted by baton rollback" "$T/deploy.out"
# shellcheck disable=SC2086
check "v5's process is gone" wait_gone 3 $v5pids
check "v4 still serves" only_version "$URL" v4 5
"$BATON" status
