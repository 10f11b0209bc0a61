#!/bin/bash
# SPDX-License-Identifier: MIT
# `baton deploy` and `baton rollback` wait as long as a rollout takes (bakes,
# approvals), but not for a stopped or hung agent: they ask it for a
# heartbeat and give up, in one line, after BATON_AGENT_TIMEOUT seconds
# without any line from it.  Before, they waited 7 days for an agent stopped
# with SIGSTOP.  A long bake without progress lines still ends normally.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify" "health = none"
start_agent || exit 1
TO=$(slow 3)

# 1. A bake longer than the bound: the heartbeat keeps the CLI waiting.
BAKE=$((TO * 2 + 1)) # after the 50% step; the last step does not bake
t0=$(date +%s)
BATON_AGENT_TIMEOUT=$TO "$BATON" deploy web --steps 50,100 --bake "${BAKE}s" -- "$DEMO" \
	>"$T/deploy.1" 2>&1
rc=$?
t1=$(date +%s)
cat "$T/deploy.1"
check_eq "a deploy baking ${BAKE} s with BATON_AGENT_TIMEOUT=$TO succeeds" 0 "$rc"
check "it took the bake ($((t1 - t0)) s), longer than the bound" test $((t1 - t0)) -ge "$BAKE"
check_eq "v2 is active" 2 "$(active_version)"

# 2. The agent stopped during a bake: the CLI ends within the bound, the rollout goes on.
BATON_AGENT_TIMEOUT=$TO "$BATON" deploy web --steps 50,100 --bake 600s -- "$DEMO" \
	>"$T/deploy.2" 2>&1 &
DEP=$!
for _ in $(seq "$(slow 100)"); do
	grep -q "baking" "$T/deploy.2" && break
	sleep 0.1
done
check "v3 bakes at 50%" grep -q "v3 at 50.00% (step 1 of 2), baking 600.0 s" "$T/deploy.2"
kill -STOP "$AGENT"
t0=$(date +%s%N)
for _ in $(seq $((TO * 40))); do
	kill -0 "$DEP" 2>/dev/null || break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
if kill -0 "$DEP" 2>/dev/null; then
	not_ok "the CLI still waits for the stopped agent after $ms ms"
	kill "$DEP"
fi
check "the CLI ended while the agent was stopped" test "$(awk '{print $3}' "/proc/$AGENT/stat")" = T
kill -CONT "$AGENT"
wait "$DEP"
rc=$?
cat "$T/deploy.2"
check "it exited non-zero ($rc) after ${ms} ms, the bound being ${TO} s" \
	test "$rc" -ne 0 -a "$ms" -ge $((TO * 1000 - 100)) -a "$ms" -le $((TO * 2000))
# The heartbeat asked for: a quarter of the bound, from 1 to 5 s.
hb=$((TO * 1000 / 4))
[ $hb -lt 1000 ] && hb=1000
[ $hb -gt 5000 ] && hb=5000
check "one line says so, and how to look" grep -q \
	"^baton: no word from the agent in $TO s (asked for one every $((hb / 1000)).$((hb % 1000 / 100)) s): it is stopped or hung; what it was doing goes on if it resumes (see: baton status; BATON_AGENT_TIMEOUT sets this bound)$" \
	"$T/deploy.2"
check_eq "the resumed agent goes on baking v3 at step 1, 50%" "3 1 5000" \
	"$("$BATON" status web --json | jq -r '.[0].rollout | "\(.version) \(.step) \(.weight)"')"
check "abort ends it" "$BATON" abort web
check_eq "v2 is active again" 2 "$(active_version)"

# 3. Bad input: one line, nothing changes.
n=$("$BATON" status web --json | jq '.[0].versions | length')
for v in abc 2 -1 86401; do
	expect_err "BATON_AGENT_TIMEOUT=$v is refused" \
		"BATON_AGENT_TIMEOUT=$v: want whole seconds from 3 to 86400, or 0 to wait as long as it takes" \
		env BATON_AGENT_TIMEOUT=$v "$BATON" deploy web -- "$DEMO"
done
check_eq "no version was started" "$n" "$("$BATON" status web --json | jq '.[0].versions | length')"

# 4. The protocol: heartbeat_ms is checked, and asked for, it comes.
ask() {
	python3 - "$BATON_CONTROL" "$1" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
for i, line in enumerate(sys.argv[2].split("\n")):
    if i:
        time.sleep(0.3)
    s.sendall(line.encode() + b"\n")
end, got = time.time() + float(sys.argv[3]), b""
while time.time() < end:
    try:
        b = s.recv(65536)
    except socket.timeout:
        break
    if not b:
        break
    got += b
for line in got.decode().splitlines():
    print(line[:200])
PY
}
for hb in 999 60001 '"5000"' 1.5; do
	check "heartbeat_ms $hb is refused in one line" grep -qx \
		'{"ok":false,"error":"bad request: heartbeat_ms must be an integer from 1000 to 60000"}' \
		<<<"$(ask "{\"cmd\":\"status\",\"service\":\"web\",\"heartbeat_ms\":$hb}" 1)"
done
out=$(ask '{"cmd":"status","service":"web","heartbeat_ms":1000}' "$(slow 3).5")
check "a status answered once" test "$(grep -c '"services"\|"name"' <<<"$out")" -ge 1
n=$(grep -cx '{"alive":true}' <<<"$out")
check "then a heartbeat every second ($n in $(slow 3).5 s)" test "$n" -ge 2 -a "$n" -le $((TO + 1))
# A second request on the same connection asking another interval gets it.
out=$(ask '{"cmd":"status","service":"web","heartbeat_ms":60000}
{"cmd":"status","service":"web","heartbeat_ms":1000}' "$(slow 3).5")
check "two statuses answered" test "$(grep -c '"services"\|"name"' <<<"$out")" -ge 2
n=$(grep -cx '{"alive":true}' <<<"$out")
check "then a heartbeat every second, as the second asked ($n in $(slow 3).5 s)" \
	test "$n" -ge 2 -a "$n" -le $((TO + 1))
check_eq "none without asking" 0 \
	"$(ask '{"cmd":"status","service":"web"}' 2.5 | grep -cx '{"alive":true}')"
check "the agent runs" kill -0 "$AGENT"
exit 0
