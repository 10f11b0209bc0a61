#!/bin/bash
# SPDX-License-Identifier: MIT
# Webhooks, confirmations and approvals, with real HTTP receivers started here
# (tests/e2e/webhook-receiver.py on loopback):
#  1. a receiver of every event gets each event of a canary rollout, in order,
#     as JSON with the documented fields and a one-line text;
#  2. a confirm-promotion webhook answering 403 holds the rollout at its last
#     step (asked again every confirm-interval), then 200 lets it finish;
#  3. a receiver that never answers delays nothing else: the agent answers
#     status within 50 ms while it hangs, events still go out, and the deploy
#     fails at confirm-timeout, rolled back;
#  4. --approve with approval-timeout 2s and no promote: rolled back, the
#     reason says so; with promotes it completes;
#  5. bad input: one-line errors, nothing changed.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

# receiver PORT NAME [SLOW]: start one; its log is $T/NAME.log, its answer
# $T/NAME.status; the event SLOW is answered 0.3 s late.
receiver() {
	python3 "$HERE/webhook-receiver.py" "$1" "$T/$2.log" "$T/$2.status" ${3:+"$3"} &
	EXTRA_PIDS="${EXTRA_PIDS:-} $!"
	local i
	for i in $(seq "$(slow 50)"); do
		curl -s -o /dev/null -X POST --max-time 1 "http://127.0.0.1:$1/ping" && return 0
		sleep 0.1
	done
	echo "receiver on $1 did not start"
	return 1
}
# promoted is answered late: completed, which follows it at once, must wait.
receiver 9101 events promoted || exit 1
receiver 9102 confirm || exit 1
echo 200 >"$T/confirm.status"

# conf APPROVAL-TIMEOUT [more lines]
conf() {
	local approval=$1
	shift
	write_conf "instances = 1" "ready = notify" "health = none" "ready-timeout = $(slow 5)s" \
		"drain-policy = wait-then-signal" "drain-timeout = 2s" "kill-after = 1s" \
		"webhook = all http://127.0.0.1:9101/events" \
		"webhook = confirm-promotion http://127.0.0.1:9102/confirm" \
		"webhook-timeout = 1s" "confirm-interval = 300ms" "confirm-timeout = $(slow 4)s" \
		"approval-timeout = $approval" "$@"
}
conf "$(slow 2)s"
start_agent || exit 1

# events_of N: the event kinds the receiver got about vN, in order.
events_of() { grep -v '"path": "/ping"' "$T/events.log" | jq -r "select(.body.version == $1) | .body.event" | tr '\n' ' '; }

# 1. Every event of a canary, in order.
check "a healthy canary completes" timeout 60 "$BATON" deploy web --steps 20,50 --bake 500ms -- "$DEMO"
for _ in $(seq "$(slow 50)"); do [ "$(events_of 1 | tr -d ' ')" != "" ] && events_of 1 | grep -q drained && break; sleep 0.1; done
check_eq "the receiver got v2's events in order" "rollout-start step step promoted completed " "$(events_of 2)"
check_eq "v1: its start (the agent's first), then its drain" "rollout-start completed draining drained " "$(events_of 1)"
jq -c 'select(.body.version == 2 and .body.event == "step")' "$T/events.log" | head -1 >"$T/step.json"
cat "$T/step.json"
check_eq "a step's fields" "web step 2 1 2000 1 3 application/json" \
	"$(jq -r '[.body.service, .body.event, .body.version, .body.previous_version, .body.weight, .body.step, .body.steps, .ctype] | join(" ")' "$T/step.json")"
check "a one-line text" jq -e '.body.text | test("^web: v2 takes 20.00% of new connections")' "$T/step.json"
check "the seq and time of the event log" jq -e '(.body.seq | type) == "number" and (.body.time | test("Z$"))' "$T/step.json"
check_eq "the confirm-promotion webhook was asked once" 1 \
	"$(jq -r 'select(.body.event == "confirm-promotion" and .body.version == 2) | .path' "$T/confirm.log" | wc -l)"

# 2. 403 holds the promotion; 200 lets it finish.
echo 403 >"$T/confirm.status"
t0=$(date +%s%N)
timeout 60 "$BATON" deploy web --steps 50 --bake 200ms -- "$DEMO" >"$T/deploy.403" 2>&1 &
DEP=$!
for _ in $(seq "$(slow 100)"); do
	[ "$(jq -r 'select(.body.version == 3) | .path' "$T/confirm.log" | wc -l)" -ge 3 ] && break
	sleep 0.1
done
check "asked again while it answers 403" \
	test "$(jq -r 'select(.body.version == 3) | .path' "$T/confirm.log" | wc -l)" -ge 3
check_eq "held at 50%" 5000 \
	"$("$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 3) | .weight')"
check "the deploy still waits" kill -0 $DEP
echo 200 >"$T/confirm.status"
rc=0
wait $DEP || rc=$?
cat "$T/deploy.403"
check_eq "200: the rollout finishes" 0 $rc
check_eq "v3 is active" 3 "$(active_version)"
echo "held and confirmed in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# 3. A receiver that never answers.
echo hang >"$T/confirm.status"
rc=0
t0=$(date +%s%N)
timeout 60 "$BATON" deploy web --steps 50 --bake 200ms -- "$DEMO" >"$T/deploy.hang" 2>&1 &
DEP=$!
for _ in $(seq "$(slow 50)"); do
	jq -r 'select(.body.version == 4) | .path' "$T/confirm.log" | grep -q . && break
	sleep 0.1
done
check "the rollout is held while it hangs" kill -0 $DEP
# The agent's answer to status, timed at the socket (not the CLI's start-up).
python3 - "$BATON_CONTROL" >"$T/status.ms" <<'PY'
import socket, sys, time
worst = 0
for i in range(10):
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b'{"cmd":"status"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        buf += s.recv(65536)
    s.close()
    worst = max(worst, (time.monotonic() - t) * 1000)
    time.sleep(0.05)
print("%.1f" % worst)
PY
worst=$(cat "$T/status.ms")
echo "status while the webhook hangs: slowest of 10 answers $worst ms"
check "status answers within 50 ms while the webhook hangs ($worst ms)" \
	awk -v w="$worst" 'BEGIN { exit !(w < 50) }'
wait $DEP || rc=$?
tend=$(date +%s.%N)
# From the first time it was asked to the deploy's end.
asked=$(jq -r 'select(.body.version == 4) | .t' "$T/confirm.log" | head -1)
el=$(python3 -c "import sys; print(int((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$asked" "$tend")
cat "$T/deploy.hang"
check "the deploy fails" test $rc -ne 0
check "at confirm-timeout, rolled back" grep -q "rolled back to v3: the confirm-promotion webhook did not answer 2xx within confirm-timeout" "$T/deploy.hang"
check "at confirm-timeout after it was first asked ($el ms)" \
	test $el -ge $(( $(slow 4) * 1000 )) -a $el -lt $(( $(slow 4) * 1000 + 1500 ))
check_eq "v3 is active" 3 "$(active_version)"
check "the events receiver still got the rollback" \
	jq -e -s 'any(.[]; .body.version == 4 and .body.event == "rolled-back")' "$T/events.log"
check "the agent logged the timeouts" grep -q "webhook web confirm-promotion: http://127.0.0.1:9102/confirm: Timeout" "$T/agent.log"

# 4. Approvals.
echo 200 >"$T/confirm.status"
rc=0
timeout 60 "$BATON" deploy web --steps 20 --approve -- "$DEMO" >"$T/deploy.approve" 2>&1 || rc=$?
cat "$T/deploy.approve"
check "not approved: the deploy fails" test $rc -ne 0
check "rolled back, the reason says so" \
	grep -q "rolled back to v3: v5 was not approved within approval-timeout 2.0 s (nobody ran baton promote web)" "$T/deploy.approve"
check_eq "v3 is active" 3 "$(active_version)"
# Promotes take a few CLI round trips: a longer approval-timeout for them.
conf "$(slow 30)s"
check "reload with approval-timeout 30s" "$BATON" reload
timeout 60 "$BATON" deploy web --steps 20,60 --approve -- "$DEMO" >"$T/deploy.approved" 2>&1 &
DEP=$!
# Promote whenever it waits, until the deploy ends (bounded).
for _ in $(seq "$(slow 300)"); do
	kill -0 $DEP 2>/dev/null || break
	[ "$("$BATON" status web --json | jq -r '.[0].rollout.waiting_for_promote')" = true ] &&
		"$BATON" promote web >/dev/null
	sleep 0.1
done
rc=0
wait $DEP || rc=$?
cat "$T/deploy.approved"
check_eq "approved at each step: completes" 0 $rc
check_eq "v6 is active" 6 "$(active_version)"

# 5. Bad input: the agent refuses the configuration with one line, the running one stays.
bad() {
	local d=$1 pat=$2 out
	shift 2
	write_conf "instances = 1" "ready = notify" "$@"
	out=$("$BATON" agent -n -f "$T/web.conf" 2>&1)
	if [ $? -ne 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q -- "$pat" <<<"$out"; then
		ok "$d: $out"
	else
		not_ok "$d: $out"
	fi
	out=$("$BATON" reload 2>&1)
	check "$d: reload refused" grep -q "reload refused" <<<"$out"
}
bad "webhook URL not http" "the URL must begin with http:// or https://" "webhook = all ftp://127.0.0.1/x"
bad "webhook without URL" "needs EVENTS URL" "webhook = all"
bad "unknown webhook event" 'unknown event "deployed"' "webhook = deployed http://127.0.0.1:9/"
bad "approve not yes/no" "approve must be yes or no" "approve = maybe"
bad "approval-timeout 0" "approval-timeout must be more than 0" "approval-timeout = 0"
check_eq "still v6" 6 "$(active_version)"
expect_err "--approve with bluegreen" "belong to --strategy canary" \
	"$BATON" deploy web --strategy bluegreen --approve -- "$DEMO"
