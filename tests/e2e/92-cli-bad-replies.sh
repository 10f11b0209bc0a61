#!/bin/bash
# SPDX-License-Identifier: MIT
# The CLI against an agent that answers badly (issue 17, item 12): replies
# with missing fields, fields of the wrong type, not an object, not JSON, a
# huge one, or none at all.  Every command ends by itself, with status 0 or
# 1 (never a crash, a sanitizer report or a hang), and a failure is one
# line starting with "baton".
. "$(dirname "$0")/lib.sh"

FAKE=$T/fake.sock
export BATON_CONTROL=$FAKE

# fake_agent REPLY: answer every request line with REPLY (a Python
# expression giving the bytes), then close; bounded by its own timeout.
fake_agent() {
	python3 - "$FAKE" "$1" <<'PY' &
import os, socket, sys
path, expr = sys.argv[1], sys.argv[2]
reply = eval(expr)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
s.settimeout(30)
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    c.settimeout(5)
    try:
        data = b""
        while b"\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        if reply is not None:
            c.sendall(reply)
    except OSError:
        pass
    c.close()
PY
	FAKE_PID=$!
	EXTRA_PIDS="${EXTRA_PIDS:-} $FAKE_PID"
	local i
	for i in $(seq 50); do [ -S "$FAKE" ] && return 0; sleep 0.1; done
	return 1
}

replies=(
	'b"{\"ok\": true}\n"'
	'b"{}\n"'
	'b"{\"ok\": false}\n"'
	'b"{\"ok\": true, \"services\": \"x\", \"version\": \"v\", \"rollout\": 3, \"versions\": {}}\n"'
	'b"{\"ok\": true, \"services\": [1, null, {\"versions\": [7, {\"processes\": \"p\"}]}]}\n"'
	'b"[]\n"'
	'b"\"a string\"\n"'
	'b"not json\n"'
	'b"{\"ok\": true, \"pad\": \"" + b"x" * (20 << 20) + b"\"}\n"'
	'b""'
	'None'
)
cmds=(
	"status" "status --json" "status web" "deploy web -- /bin/true"
	"deploy web --steps 10,50 --bake 1s -- /bin/true" "adopt web --pid $$" "promote web"
	"pause web" "abort web" "weight web v1=50 v2=50" "pin web 10.0.0.0/8 v1"
	"unpin web 10.0.0.0/8" "rollback web" "reload" "shutdown" "watch --count 1"
)
for r in "${replies[@]}"; do
	rm -f "$FAKE"
	fake_agent "$r" || { not_ok "the fake agent did not start for $r"; continue; }
	for c in "${cmds[@]}"; do
		# shellcheck disable=SC2086
		out=$(timeout 20 "$BATON" $c 2>&1)
		rc=$?
		desc="reply ${r:0:40}: baton $c"
		if [ $rc -gt 1 ]; then
			not_ok "$desc: status $rc: $(tail -3 <<<"$out")"
		elif grep -qE "Sanitizer|runtime error" <<<"$out"; then
			not_ok "$desc: $(grep -m1 -E 'Sanitizer|runtime error' <<<"$out")"
		elif [ $rc = 1 ] && [ "$(grep -c . <<<"$out")" != 1 -o "${out:0:5}" != baton ]; then
			not_ok "$desc: the failure is not one 'baton' line: $(head -3 <<<"$out")"
		else
			ok "$desc: status $rc${out:+: ${out:0:100}}"
		fi
	done
	kill "$FAKE_PID" 2>/dev/null
	wait "$FAKE_PID" 2>/dev/null || true # (its status on SIGTERM is not the test's)
done
