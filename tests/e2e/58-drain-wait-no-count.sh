#!/bin/bash
# SPDX-License-Identifier: MIT
# wait-then-signal when the version's connection count cannot be read (its
# entry is gone from the pinned versions map): the agent says so instead of
# logging a count it never read (issue 17, item 13), and the version is still
# stopped at its drain-timeout.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify" "drain-policy = wait-then-signal" \
	"drain-timeout = 1s" "kill-after = 2s"
start_agent || exit 1

# v1's entry: its key's bytes, as bpftool prints and takes them.
key=$(bpftool -j map dump pinned "$BPFDIR/versions" |
	jq -r '.[] | select(.formatted.key.version == 1) | .key | join(" ")')
check "found v1's counters in the versions map" test -n "$key"
# shellcheck disable=SC2086 # one word per byte
check "removed them" bpftool map delete pinned "$BPFDIR/versions" key $key
v1=$(version_pids 1)
check "deploy v2" "$BATON" deploy web -- "$DEMO"
for _ in $(seq 40); do grep -q "web v1: .*drain-timeout" "$T/agent.log" && break; sleep 0.05; done
line=$(grep "web v1: .*drain-timeout" "$T/agent.log" | head -1)
case $line in
*"cannot read its connection count"*) ok "agent says the count is unknown: $line" ;;
*) not_ok "want 'cannot read its connection count', got: $line" ;;
esac
# shellcheck disable=SC2086 # one word per pid
check "v1 stopped after drain-timeout" wait_gone 5 $v1
