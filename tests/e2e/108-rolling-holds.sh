#!/bin/bash
# SPDX-License-Identifier: MIT
# Holds between the batches of a rolling rollout (instances = 3, max-surge
# 1: three batches), with real webhook receivers (webhook-receiver.py), under
# wrk load (keep-alive and a new connection per request at once):
#  1. a step event per batch, in order, with its number; confirm-step asked
#     before batch 2, confirm-promotion before batch 3; 403 holds the
#     rollout with 1 new instance serving, 200 lets it finish;
#  2. --approve: each batch after the first waits for baton promote
#     (status says waiting_for_promote); promoted, it completes;
#  3. --approve and nobody promotes: rolled back at approval-timeout, the
#     reason says so, 3 old instances serve;
#  4. bad input: --approve with rolling options and bluegreen refused, one line.
# Zero failed requests in every class, no refused or reset connection.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

receiver() {
	python3 "$HERE/webhook-receiver.py" "$1" "$T/$2.log" "$T/$2.status" &
	EXTRA_PIDS="${EXTRA_PIDS:-} $!"
	local i
	for i in $(seq "$(slow 50)"); do
		curl -s -o /dev/null -X POST --max-time 1 "http://127.0.0.1:$1/ping" && return 0
		sleep 0.1
	done
	echo "receiver on $1 did not start"
	return 1
}
receiver 9111 events || exit 1
receiver 9112 confirm || exit 1
echo 403 >"$T/confirm.status"

# conf APPROVAL-TIMEOUT
conf() {
	write_conf "instances = 3" "ready = notify" "health = none" "ready-timeout = $(slow 5)s" \
		"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" \
		"steering = per-connection" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
		"webhook = all http://127.0.0.1:9111/events" \
		"webhook = confirm-step,confirm-promotion http://127.0.0.1:9112/confirm" \
		"webhook-timeout = 1s" "confirm-interval = 300ms" "confirm-timeout = $(slow 60)s" \
		"approval-timeout = $1"
}
# Promotes take a few CLI round trips (1-3 s each under ASan on a loaded machine).
conf "$(slow 30)s"
start_agent || exit 1
URL=http://127.0.0.1:8080/

serving() { "$BATON" status web --json | jq -r '.[0].rollout.rolling.new.serving // 0'; }
events_of() { grep -v '"path": "/ping"' "$T/events.log" | jq -r "select(.body.version == $1) | .body.event" | tr '\n' ' '; }
asks() { jq -r "select(.body.version == $1 and .body.event == \"$2\") | .body.step" "$T/confirm.log" | sort -u | tr '\n' ' '; }

nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c20 -d300s --timeout 5s "$URL"
ka=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
cl=$WRK
sleep 1

# 1. Confirmations and step events.
timeout "$(slow 120)" "$BATON" deploy web -- "$DEMO" >"$T/deploy.confirm" 2>&1 &
DEP=$!
for _ in $(seq "$(slow 100)"); do
	[ "$(jq -r 'select(.body.version == 2 and .body.event == "confirm-step") | .path' "$T/confirm.log" | wc -l)" -ge 3 ] && break
	sleep 0.1
done
check "confirm-step asked again while it answers 403" \
	test "$(jq -r 'select(.body.version == 2 and .body.event == "confirm-step") | .path' "$T/confirm.log" | wc -l)" -ge 3
check_eq "held with 1 new instance serving" 1 "$(serving)"
check_eq "status: waiting for the confirm-step webhook" confirm-step \
	"$("$BATON" status web --json | jq -r '.[0].rollout.waiting_for_webhook')"
check "the deploy still waits" kill -0 $DEP
jq -c 'select(.body.version == 2 and .body.event == "confirm-step")' "$T/confirm.log" | head -1 >"$T/ask.json"
cat "$T/ask.json"
check "its text names the batch" jq -e '.body.text | test("^web: may batch 2 of v2 start\\? 1 of 3 instance")' "$T/ask.json"
echo 200 >"$T/confirm.status"
rc=0
wait $DEP || rc=$?
cat "$T/deploy.confirm"
check_eq "200: the rollout finishes" 0 $rc
check_eq "v2 is active" 2 "$(active_version)"
check_eq "confirm-step for batch 2 only" "2 " "$(asks 2 confirm-step)"
check_eq "confirm-promotion before batch 3" "3 " "$(asks 2 confirm-promotion)"
for _ in $(seq "$(slow 50)"); do events_of 2 | grep -q completed && break; sleep 0.1; done
check_eq "the events of v2, in order" "rollout-start step step step promoted completed " "$(events_of 2)"
check_eq "one step per batch, numbered" "1 2 3 " \
	"$(jq -r 'select(.body.version == 2 and .body.event == "step") | .body.step' "$T/events.log" | tr '\n' ' ')"
check "a step's text" jq -e -s 'any(.[]; .body.version == 2 and .body.event == "step" and (.body.text | test("^web: batch 2 of v2 starts")))' "$T/events.log"

# 2. Approvals, promoted whenever the rollout waits (bounded).
timeout "$(slow 120)" "$BATON" deploy web --approve --strategy rolling -- "$DEMO" >"$T/deploy.approved" 2>&1 &
DEP=$!
promotes=0
for _ in $(seq "$(slow 300)"); do
	kill -0 $DEP 2>/dev/null || break
	st=$("$BATON" status web --json | jq -r '.[0].rollout | "\(.waiting_for_promote) \(.rolling.new.serving)"')
	if [ "${st% *}" = true ]; then
		[ $promotes = 0 ] && held=${st#* }
		"$BATON" promote web >/dev/null && promotes=$((promotes + 1))
	fi
	sleep 0.1
done
rc=0
wait $DEP || rc=$?
cat "$T/deploy.approved"
check_eq "approved before batches 2 and 3: completes" 0 $rc
check_eq "two promotes" 2 $promotes
check_eq "the first wait came with 1 new instance serving" 1 "$held"
check_eq "v3 is active" 3 "$(active_version)"

# 3. Nobody approves: rolled back at approval-timeout.
conf "$(slow 4)s"
check "reload with approval-timeout 4s" "$BATON" reload
rc=0
timeout "$(slow 120)" "$BATON" deploy web --approve --max-surge 1 -- "$DEMO" >"$T/deploy.noapprove" 2>&1 || rc=$?
cat "$T/deploy.noapprove"
check "not approved: the deploy fails" test $rc -ne 0
check "rolled back, the reason says so" \
	grep -q "rolled back to v3.*batch 2 of v4 was not approved within approval-timeout $(slow 4).0 s (nobody ran baton promote web)" "$T/deploy.noapprove"
check_eq "v3 is active" 3 "$(active_version)"
check_eq "with 3 ready instances" 3 \
	"$("$BATON" status web --json | jq -r '[.[0].versions[] | select(.version == 3) | .processes[] | select(.alive and .ready)] | length')"
check "v4 exits" wait_gone 10 $(version_pids 4)
check "new connections reach v3 only" only_version "$URL" v3 10

sleep 0.5
nstat_snap "$T/nstat.after"
wrk_stop; WRK=$ka; wrk_stop
cat "$T/wrk.ka" "$T/wrk.cl"
check_wrk_clean "keep-alive" "$T/wrk.ka"
check_wrk_clean "connection-per-request" "$T/wrk.cl"
check_tcp_clean "$T/nstat.before" "$T/nstat.after"

# 4. Bad input: one line each, nothing changes.
before=$("$BATON" status web --json | jq -c '[.[0].active, [.[0].versions[].version]]')
expect_err "--approve with bluegreen" "--approve to canary or rolling" \
	"$BATON" deploy web --strategy bluegreen --approve -- "$DEMO"
expect_err "--approve with rolling and steps" "belong to --strategy rolling" \
	"$BATON" deploy web --approve --steps 50 --max-surge 1 -- "$DEMO"
check_eq "nothing changed" "$before" "$("$BATON" status web --json | jq -c '[.[0].active, [.[0].versions[].version]]')"
