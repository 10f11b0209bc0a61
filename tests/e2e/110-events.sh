#!/bin/bash
# SPDX-License-Identifier: MIT
# The rollout event log (baton events):
#  1. `baton events --follow` shows a healthy canary live, every event in
#     order (rollout-start, each step, promoted, completed, draining, drained);
#  2. a canary failing its health checks: gate verdicts and a rolled-back
#     event with the reason; a canary that crashes: a crashed event;
#  3. kill -9 and restart of the agent: the follower ends, the log is intact
#     (same events, same sequence numbers) and goes on after an agent-restart;
#  4. the file is bounded: a previous log over the limit is rotated once to
#     events.jsonl.1, a line cut by a crash is skipped, memory keeps the last
#     1000 and sequence numbers go on;
#  5. bad input: one-line errors.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = http" "health-path = /healthz" "health-interval = 200ms" \
	"health-timeout = 1s" "health-threshold = 3" "ready-timeout = $(slow 5)s" \
	"drain-policy = wait-then-signal" "drain-timeout = 2s" "kill-after = 1s"
start_agent || exit 1
EV=$T/run/events.jsonl

# has FILE EVENT REGEX: FILE (JSON lines) has an EVENT whose reason matches REGEX.
has() { jq -s -e --arg e "$2" --arg r "$3" 'any(.[]; .event == $e and ((.reason // "") | test($r)))' "$1" >/dev/null; }
# kinds SERVICE: the event kinds kept, one line.
kinds() { "$BATON" events "$1" --json | jq -r .event | tr '\n' ' '; }

# 1. A healthy canary, followed live.
before=$("$BATON" events --json | tail -1 | jq .seq)
"$BATON" events web --follow --json >"$T/follow" 2>"$T/follow.err" &
FOLLOW=$!
EXTRA_PIDS=$FOLLOW
sleep 0.3
check "follow is running" kill -0 $FOLLOW
check "a healthy canary completes" timeout 60 "$BATON" deploy web --steps 20,50 --bake 1s -- "$DEMO"
# v1 drains and stops (no connections: at once).
for _ in $(seq "$(slow 50)"); do grep -q '"event":"drained"' "$T/follow" && break; sleep 0.1; done
seq1=$(jq -r "select(.seq > $before) | .event" "$T/follow" | tr '\n' ' ')
echo "followed: $seq1"
check_eq "followed live, in order" \
	"rollout-start step step promoted completed draining drained " "$seq1"
check_eq "the steps' weights" "2000 5000 " \
	"$(jq -r 'select(.event == "step") | .weight' "$T/follow" | tr '\n' ' ')"
check_eq "rollout-start names both versions" "2 1" \
	"$(jq -r "select(.seq > $before and .event == \"rollout-start\") | \"\\(.version) \\(.previous_version)\"" "$T/follow")"
check_eq "every followed event has a text" "" "$(jq -r 'select((.text | length) == 0) | .seq' "$T/follow")"
first=$(head -1 "$T/follow" | jq .seq)
check_eq "the listing holds what was followed" "$(jq -c '{seq, event, text}' "$T/follow")" \
	"$("$BATON" events --json | jq -c "select(.seq >= $first) | {seq, event, text}")"
check "events are in the log as key=value lines" \
	grep -q 'event: service=web event=completed version=2 previous=1' "$T/agent.log"
check "and in the file" grep -q '"event":"completed"' "$EV"
"$BATON" events web | tail -4

# 2. A canary failing its health checks, then one that crashes.
rc=0
timeout 60 "$BATON" deploy web --steps 25,50 --bake 20s -- "$DEMO" --unhealthy-after-ms 500 \
	>"$T/deploy.health" 2>&1 || rc=$?
check "the unhealthy canary is rolled back" test $rc -ne 0
"$BATON" events web --json | jq -c 'select(.version == 3)' >"$T/v3"
check "gate verdicts recorded" grep -q '"event":"gate"' "$T/v3"
check "rolled-back with the reason" has "$T/v3" rolled-back "health checks in a row"
check "followed too" grep -q '"event":"rolled-back"' "$T/follow"
rc=0
timeout 60 "$BATON" deploy web --steps 25,50 --bake 20s -- "$DEMO" --exit-after-ms 800 \
	>"$T/deploy.crash" 2>&1 || rc=$?
check "the crashing canary is rolled back" test $rc -ne 0
"$BATON" events web --json | jq -c 'select(.version == 4)' >"$T/v4"
check "a crashed event" has "$T/v4" crashed "exited with status 3"
check "then rolled-back" grep -q '"event":"rolled-back"' "$T/v4"

# 3. kill -9 and restart: the follower ends; the log is intact and goes on.
for _ in $(seq "$(slow 50)"); do [ "$(jq -r 'select(.version == 4) | .event' "$T/follow" | tail -1)" = drained ] && break; sleep 0.1; done
"$BATON" events --json >"$T/before"
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
check "the follower ends when the agent is gone" wait_gone 5 $FOLLOW
start_agent >/dev/null || exit 1
"$BATON" events --json >"$T/after"
n=$(wc -l <"$T/before")
check "events were kept ($n)" test "$n" -ge 15
check_eq "after kill -9 and restart the log is intact" "$(cat "$T/before")" "$(head -n "$n" "$T/after")"
check_eq "the restarted agent says so" agent-restart "$(sed -n "$((n + 1))p" "$T/after" | jq -r .event)"
check_eq "sequence numbers go on" "$(($(tail -1 "$T/before" | jq .seq) + 1))" \
	"$(sed -n "$((n + 1))p" "$T/after" | jq .seq)"
check "--last 2" test "$("$BATON" events web --last 2 --json | wc -l)" = 2

# 4. Bounded: a log over the limit is rotated at the next event.
"$BATON" shutdown >/dev/null
wait_gone 10 "$AGENT"
python3 - "$EV" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    seq = 0
    while f.tell() < 1024 * 1024:
        seq += 1
        f.write(json.dumps({"seq": seq, "time_ms": 1, "service": "old", "event": "step",
                            "text": "old: filler %d" % seq + " " * 100}) + "\n")
    f.write('{"seq": 999999, "service": "old", "ev')  # cut by a crash
PY
last=$(tail -2 "$EV" | head -1 | jq .seq)
start_agent >/dev/null || exit 1
check "the file over the limit was rotated to events.jsonl.1" test -s "$EV.1"
check "events.jsonl is small again" test "$(stat -c %s "$EV")" -lt 10000
check_eq "memory keeps the last 1000" 1000 "$("$BATON" events --json | wc -l)"
check_eq "the cut line is skipped; seq goes on from the last whole one" "$((last + 1))" \
	"$("$BATON" events web --json | jq .seq)"
check_eq "a service's own events" agent-restart "$(kinds web | tr -d ' ')"

# 5. Bad input.
expect_err "unknown service" "unknown service nosuch" "$BATON" events nosuch
expect_err "bad --last" "takes 1..1000000" "$BATON" events web --last 0
expect_err "two services" "unexpected argument" "$BATON" events web other
r=$(python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"{\"cmd\":\"events\",\"last\":-3}\n"); print(s.makefile().readline().strip())' "$BATON_CONTROL")
check "a bad \"last\" on the socket: one-line error ($r)" grep -q 'must be 0..1000000' <<<"$r"
