#!/bin/bash
# SPDX-License-Identifier: MIT
# A version that does not accept is visible as such (issue 15): its
# listeners' accept queue, and for how long none of it was accepted, in
# status (text and --json), /metrics and the log.
#  1. a healthy version under wrk load (keep-alive and a new connection per
#     request): sampled 20 times, never "not accepting";
#  2. the same version hung (--no-accept: ready, never accepts) with 10
#     requests queued: not accepting, 10 queued, for >= 2 s, logged once;
#  3. a version frozen with SIGSTOP with requests queued: the same; thawed,
#     it accepts again (logged) and answers them.
#  ready = none: since READY=1 is followed by a probe that the instance must
#  accept (ready = notify, like tcp), a version that never accepts is no
#  longer deployed with notify (e2e 89); here it must be, to be seen hung.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = none" "drain-timeout = 1s" "kill-after = 1s" "backlog = 128"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
start_agent || exit 1
URL=http://127.0.0.1:8080/
field() { "$BATON" status web --json | jq ".[0].versions[] | select(.version == $1) | .$2"; }
metric() {
	curl -s --max-time 2 http://127.0.0.1:9464/metrics |
		awk -v m="$1{service=\"web\",version=\"v$2\"}" '$1 == m {print $2}'
}

# 1. Healthy under load: never flagged.
wrk_start "$T/wrk.ka" -t1 -c20 -d"$(slow 20)"s "$URL"
ka=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d"$(slow 20)"s -H "Connection: close" "$URL"
cl=$WRK
sleep 1
flagged=0
for _ in $(seq 20); do
	ms=$(field 1 not_accepting_ms)
	[ "${ms:-x}" = 0 ] || flagged=$((flagged + 1))
	sleep 0.2
done
check_eq "a healthy v1 under load: not flagged in any of 20 samples" 0 $flagged
WRK=$ka wrk_stop
WRK=$cl wrk_stop
check_eq "/metrics: v1 not accepting 0 s" 0.000 "$(metric baton_version_not_accepting_seconds 1)"

# queue N: N requests in the background, each bounded.
queue() {
	local i
	for i in $(seq "$1"); do
		curl -s --max-time "$(slow 30)" -o "$T/q.$2.$i" "$URL" &
		LOAD_PIDS="${LOAD_PIDS:-} $!"
	done
}
# wait_flagged V: until status says V has not accepted for 2 s (bounded).
wait_flagged() {
	local _
	for _ in $(seq "$(slow 60)"); do
		[ "$(field "$1" not_accepting_ms)" -ge 2000 ] 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# 2. A hung version: ready, never accepts.
check "deploy v2 (--no-accept)" "$BATON" deploy web -- "$DEMO" --no-accept
queue 10 hung
check "v2 is flagged not accepting within 3 s" wait_flagged 2
check_eq "v2: 10 connections queued" 10 "$(field 2 accept_queue)"
check_eq "/metrics: v2's accept queue" 10 "$(metric baton_version_accept_queue 2)"
check "/metrics: v2 not accepting >= 2 s" \
	awk -v s="$(metric baton_version_not_accepting_seconds 2)" 'BEGIN {exit !(s != "" && s >= 2)}'
"$BATON" status web >"$T/status.hung"
cat "$T/status.hung"
check "status: v2 not accepting, 10 queued" grep -q "not accepting: 10 connection(s) queued" "$T/status.hung"
check_eq "logged once" 1 "$(grep -c 'web v2: not accepting: 10 connection(s) queued' "$T/agent.log")"

# 3. A frozen version: v3, stopped with SIGSTOP, then thawed.
check "deploy v3" "$BATON" deploy web -- "$DEMO"
# Hung v2 goes at drain-timeout + kill-after; its 10 queued requests move to
# v3 (and must be answered) before v3 is frozen, so that v3's queue is ours.
for _ in $(seq "$(slow 100)"); do [ "$(cat "$T"/q.hung.* 2>/dev/null | grep -c version=v3)" = 10 ] && break; sleep 0.1; done
check_eq "v2's 10 queued requests were answered by v3" 10 "$(cat "$T"/q.hung.* 2>/dev/null | grep -c version=v3)"
v3=$(version_pids 3)
# shellcheck disable=SC2086
kill -STOP $v3
queue 5 frozen
check "frozen v3 is flagged not accepting" wait_flagged 3
check_eq "v3: 5 connections queued" 5 "$(field 3 accept_queue)"
# shellcheck disable=SC2086
kill -CONT $v3
for _ in $(seq "$(slow 30)"); do grep -q "web v3: accepting again" "$T/agent.log" && break; sleep 0.1; done
check "thawed, v3 accepts again (logged)" grep -q "web v3: accepting again" "$T/agent.log"
check_eq "and is not flagged" 0 "$(field 3 not_accepting_ms)"
for _ in $(seq "$(slow 50)"); do [ "$(cat "$T"/q.frozen.* 2>/dev/null | grep -c version=v3)" = 5 ] && break; sleep 0.1; done
check_eq "it answered the 5 queued requests" 5 "$(cat "$T"/q.frozen.* 2>/dev/null | grep -c version=v3)"
