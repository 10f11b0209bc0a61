#!/bin/bash
# SPDX-License-Identifier: MIT
# journald's native protocol with a fake journal (a datagram socket bound
# here by tests/e2e/journal-receiver.py; no journald needed): with stderr
# the journal's stream (JOURNAL_STREAM is its device:inode), the agent
# sends each line to the journal's socket (BATON_JOURNAL_SOCKET for this
# test), an event with its fields (SERVICE=, EVENT=, VERSION=, ...); with
# the journal gone, lines go to stderr as before, said once.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

python3 "$HERE/journal-receiver.py" "$T/journal.sock" "$T/journal.jsonl" &
RECV=$!
EXTRA_PIDS="${EXTRA_PIDS:-} $RECV"
for _ in $(seq "$(slow 50)"); do [ -S "$T/journal.sock" ] && break; sleep 0.1; done
write_conf "instances = 1" "ready = notify" "health = none" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 2s" "kill-after = 1s"
touch "$T/agent.log"
export JOURNAL_STREAM
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/agent.log")
export BATON_JOURNAL_SOCKET=$T/journal.sock
start_agent || exit 1

check "a deploy" "$BATON" deploy web -- "$DEMO"
# entry EVENT VERSION: the fake journal's entry of that event.
entry() { jq -c "select(.EVENT == \"$1\" and .VERSION == \"$2\")" "$T/journal.jsonl" | head -1; }
for _ in $(seq "$(slow 50)"); do [ -n "$(entry completed 2)" ] && break; sleep 0.1; done
e=$(entry completed 2)
echo "$e"
check "the journal got the event with its fields" jq -e '.SERVICE == "web" and .PREVIOUS_VERSION == "1" and
	.WEIGHT == "10000" and (.SEQ | test("^[0-9]+$")) and .PRIORITY == "6" and .SYSLOG_IDENTIFIER == "baton" and
	(.MESSAGE | startswith("event: service=web event=completed version=2"))' <<<"$e"
check "and other lines, without fields" jq -s -e 'any(.[]; (.MESSAGE | test("^web v2: ")) and .SERVICE == null)' \
	"$T/journal.jsonl"
check "not on stderr too" test -z "$(grep 'event=completed version=2' "$T/agent.log")"

# The journal goes away: lines go to stderr, the agent goes on.
kill "$RECV"
wait "$RECV" 2>/dev/null
check "a deploy with no journal" "$BATON" deploy web -- "$DEMO"
check "its events on stderr" grep -q 'event: service=web event=completed version=3' "$T/agent.log"
check_eq "said once" 1 "$(grep -c "the journal's socket did not take a line" "$T/agent.log")"
check "the agent still runs" kill -0 "$AGENT"
exit 0
