#!/bin/bash
# SPDX-License-Identifier: MIT
# One control client deploys two services and disconnects before either
# answers: both deploys complete and the agent never touches the freed
# client (ASan reports a use after free; cleanup fails the test on it).
# Issue 17, item 2: before the fix, this test failed with a
# heap-use-after-free in reply().
. "$(dirname "$0")/lib.sh"

write_conf "ready = http" "health-path = /healthz" "ready-timeout = 5s" \
	"drain-policy = signal-then-wait" "drain-timeout = 3s" "kill-after = 1s" \
	"drain-delay = 30s"
cat >>"$T/web.conf" <<CONF
[service api]
listen = 127.0.0.1:8081
exec = $DEMO
environment = E2E_TEST_ID=$TEST_ID
ready = http
health-path = /healthz
ready-timeout = 5s
drain-timeout = 3s
kill-after = 1s
CONF
start_agent || exit 1

# Two deploys on one connection, then gone (the demo server takes 300 ms to be ready).
python3 - "$BATON_CONTROL" "$DEMO" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
for svc in ("web", "api"):
    s.sendall(json.dumps({"cmd": "deploy", "service": svc,
                          "argv": [sys.argv[2], "--ready-delay-ms", "300"]}).encode() + b"\n")
s.close()
PY
ok_both() {
	local i out
	for i in $(seq 100); do
		out=$("$BATON" status --json) &&
			[ "$(jq -r '[.[] | .active] | sort | join(",")' <<<"$out")" = "2,2" ] &&
			[ "$(jq -r '[.[] | .rollout] | map(select(. != null)) | length' <<<"$out")" = 0 ] &&
			return 0
		sleep 0.1
	done
	echo "status: $out"
	return 1
}
check "both deploys of the vanished client completed" ok_both
check "the agent still answers" "$BATON" status web
check "the agent is alive" kill -0 "$AGENT"

