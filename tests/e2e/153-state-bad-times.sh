#!/bin/bash
# SPDX-License-Identifier: MIT
# A state file whose times are impossible (CLOCK_MONOTONIC ms are never
# negative) is refused entry by entry with a one-line error: the restarted
# agent does not crash on them (before, a rollout's bake_end or a draining
# version's deadline of -2^63 overflowed in the restore rules: UBSan aborted
# the agent, and a release build armed a timer for ever).
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify" "ready-timeout = $(slow 5)s" "health = none"
start_agent || exit 1
STATE=$T/run/state.json

# edit PYTHON-EXPR: change the state file (st: its JSON, web: service web) with exact integers.
edit() {
	python3 - "$STATE" "$1" <<'EOP'
import json, sys
path, expr = sys.argv[1], sys.argv[2]
st = json.load(open(path))
web = [s for s in st["services"] if s["name"] == "web"][0]
exec(expr)
json.dump(st, open(path, "w"))
EOP
}
restart_with() {
	kill -9 "$AGENT"
	wait_gone 5 "$AGENT"
	edit "$1" || { not_ok "edit the state file: $1"; return 1; }
	# Not start_agent: what it waits for (an active version) may be what was refused.
	"$BATON" agent -d -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
	AGENT=$!
	disown "$AGENT"
	for _ in $(seq "$(slow 100)"); do
		"$BATON" status >/dev/null 2>&1 && return 0
		kill -0 "$AGENT" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# 1. A canary that bakes, its bake_end made negative.
"$BATON" deploy web --strategy canary --steps 20,50 --bake 60s -- "$DEMO" >/dev/null 2>&1 &
weight2() { "$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 2) | .weight'; }
for _ in $(seq "$(slow 100)"); do [ "$(weight2)" = 2000 ] && break; sleep 0.1; done
check_eq "the canary bakes at 20%" 2000 "$(weight2)"
check "restart with the rollout's bake_end at -2^63" \
	restart_with 'web["rollout"]["bake_end"] = -2**63'
check "the agent runs" kill -0 "$AGENT"
check "it says the rollout entry is bad" grep -q "the state file has a bad rollout entry" "$T/agent.log"

# 2. A version whose deadline is negative, in a phase that arms a timer from it
# (draining); no rollout, so that only this entry is wrong.
check "restart with v1 draining, its deadline at -2^63" \
	restart_with 'web["rollout"]["stage"] = 0; v = [v for v in web["versions"] if v["num"] == 1][0]; v["phase"] = 4; v["deadline"] = -2**63'
check "the agent runs" kill -0 "$AGENT"
check "it says the version entry is bad" grep -q "web: the state file has a bad version entry" "$T/agent.log"
