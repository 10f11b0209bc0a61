#!/bin/bash
# SPDX-License-Identifier: MIT
# A held canary step keeps its deadline across an agent restart (kill -9),
# with a webhook receiver started here (tests/e2e/webhook-receiver.py):
#  1. an approval (deploy --approve): killed 4 s into the wait, the
#     restarted agent still waits for promote with the time that was left,
#     and rolls back at the original deadline (before: the approval was not
#     in the state file, and the step waited for promote for ever);
#  2. a confirm-step webhook answering 403: killed 4 s in, the restarted
#     agent asks again at once, status shows the wait and the last answer,
#     and it rolls back at the original deadline (before: the clock started
#     again at the restart);
#  3. the same, answered 200 after the restart: the rollout finishes.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

python3 "$HERE/webhook-receiver.py" 9102 "$T/confirm.log" "$T/confirm.status" &
EXTRA_PIDS="${EXTRA_PIDS:-} $!"
for _ in $(seq "$(slow 50)"); do
	curl -s -o /dev/null -X POST --max-time 1 http://127.0.0.1:9102/ping && break
	sleep 0.1
done
echo 403 >"$T/confirm.status"

TO=$(slow 20) # approval-timeout and confirm-timeout, s (a restart under ASan takes seconds)
write_conf "instances = 1" "ready = notify" "health = none" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 2s" "kill-after = 1s" \
	"webhook = confirm-step http://127.0.0.1:9102/confirm" "webhook-timeout = 1s" \
	"confirm-interval = 500ms" "confirm-timeout = ${TO}s" "approval-timeout = ${TO}s"
start_agent || exit 1

ms() { echo $(($(date +%s%N) / 1000000)); }
hold_of() { "$BATON" status web --json | jq -c '.[0].rollout.hold // empty'; }
# wait_hold KIND: until the rollout is held for KIND (bounded); sets LEFT (its left_ms)
# and DEADLINE_LO, DEADLINE_HI: the deadline by this clock (ms), before and after status answered.
wait_hold() {
	local h t0
	for _ in $(seq "$(slow 100)"); do
		t0=$(ms)
		h=$(hold_of)
		if [ "$(jq -r .for <<<"$h" 2>/dev/null)" = "$1" ]; then
			LEFT=$(jq -r .left_ms <<<"$h")
			DEADLINE_LO=$((t0 + LEFT))
			DEADLINE_HI=$(($(ms) + LEFT))
			return 0
		fi
		sleep 0.1
	done
	return 1
}
# wait_rolled_back N: until no rollout runs and vN was the last one rolled back (bounded).
wait_rolled_back() {
	for _ in $(seq "$(slow 600)"); do
		[ "$("$BATON" status web --json |
			jq -r '.[0] | select(.rollout == null) | .last_rollback.version // empty')" = "$1" ] &&
			return 0
		sleep 0.05
	done
	return 1
}
restart() {
	kill -9 "$AGENT"
	wait_gone 5 "$AGENT"
	start_agent >/dev/null || not_ok "the agent starts again"
}
asked() { jq -r "select(.body.event == \"confirm-step\" and .body.version == $1) | .t" "$T/confirm.log" | wc -l; }
# check_left KIND: after the restart, held for KIND with the time left to the deadline
# wait_hold measured.  The deadline lies in [DEADLINE_LO, DEADLINE_HI] and the agent answered
# between t0 and t1, so the time left lies in [DEADLINE_LO - t1, DEADLINE_HI - t0] (100 ms for
# rounding), however slow the machine; a clock restarted by the restart would leave about
# approval-timeout, more than the slept time above that interval's top.
check_left() {
	local h left t0 t1
	t0=$(ms)
	h=$(hold_of)
	t1=$(ms)
	echo "after the restart: $h"
	left=$(jq -r .left_ms <<<"$h")
	check_eq "after the restart: still held for $1" "$1" "$(jq -r .for <<<"$h")"
	check "with the time that was left ($left ms, expected $((DEADLINE_LO - t1)) to $((DEADLINE_HI - t0)) ms, not ${TO}000)" \
		test "$left" -ge $((DEADLINE_LO - t1 - 100)) -a "$left" -le $((DEADLINE_HI - t0 + 100))
}
# check_on_time N: vN's rollback (its event's time) came at the deadline, not a restarted
# clock's, which would be at least the slept $(slow 4) s later; 2 s for a late loop turn.
check_on_time() {
	local t
	t=$("$BATON" events web --json | jq -s -r "map(select(.event == \"rolled-back\" and .version == $1)) | .[0].time_ms")
	check "rolled back at the original deadline ($((t - DEADLINE_LO)) ms after it, within $((DEADLINE_HI - DEADLINE_LO)) ms of measuring)" \
		test "$t" -ge $((DEADLINE_LO - 100)) -a "$t" -le $((DEADLINE_HI + 2000))
}

# 1. An approval.
"$BATON" deploy web --steps 50,100 --approve -- "$DEMO" >"$T/deploy.1" 2>&1 &
DEP=$!
wait_hold approval || not_ok "v2 waits for approval"
echo "held for approval, $LEFT ms left"
check "held for approval with about approval-timeout left ($LEFT ms)" \
	test "$LEFT" -le $((TO * 1000)) -a "$LEFT" -gt $((TO * 1000 - 3000))
sleep "$(slow 4)"
restart
wait $DEP 2>/dev/null
check_left approval
check "the log says the wait goes on" grep -q "web: v2 waits as before the restart" "$T/agent.log"
wait_rolled_back 2 || not_ok "v2 was rolled back"
check_on_time 2
check "the reason: not approved in time" grep -q "v2 was not approved within approval-timeout ${TO}.0 s" \
	<<<"$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')"
check_eq "v1 is active" 1 "$(active_version)"

# 2. A confirm-step webhook answering 403.
"$BATON" deploy web --steps 30,60 --bake 1s -- "$DEMO" >"$T/deploy.2" 2>&1 &
DEP=$!
wait_hold webhook || not_ok "v3 waits for its webhook"
echo "held for confirm-step, $LEFT ms left"
sleep "$(slow 4)"
restart
n=$(asked 3)
wait $DEP 2>/dev/null
check_left webhook
for _ in $(seq "$(slow 40)"); do
	[ "$(asked 3)" -gt "$n" ] && "$BATON" status web | grep -q "last: HTTP 403" && break
	sleep 0.05
done
check "the restarted agent asks the webhook again ($n, then $(asked 3) asks)" test "$(asked 3)" -gt "$n"
"$BATON" status web | tee "$T/status.2" | grep waiting
check "status: what it waits for, until when, and the last answer" grep -Eq \
	"waiting for the confirm-step webhook to answer 2xx \(asked every 0.5 s\), held [0-9.]+ s, until .*Z \([0-9.]+ s left, then rolled back\); last: HTTP 403 from http://127.0.0.1:9102/confirm" \
	"$T/status.2"
wait_rolled_back 3 || not_ok "v3 was rolled back"
check_on_time 3
check "the reason: the webhook did not confirm in time" \
	grep -q "the confirm-step webhook did not answer 2xx within confirm-timeout ${TO}.0 s" \
	<<<"$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')"
check_eq "v1 is active" 1 "$(active_version)"

# 3. Confirmed after the restart: the rollout goes on and finishes.
"$BATON" deploy web --steps 30,60 --bake 1s -- "$DEMO" >"$T/deploy.3" 2>&1 &
DEP=$!
wait_hold webhook || not_ok "v4 waits for its webhook"
restart
wait $DEP 2>/dev/null
echo 200 >"$T/confirm.status"
for _ in $(seq "$(slow 200)"); do
	[ "$(active_version)" = 4 ] && break
	sleep 0.1
done
check_eq "confirmed after the restart: v4 is active" 4 "$(active_version)"
check "the agent still runs" kill -0 "$AGENT"
exit 0
