#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent never adopts itself.  It holds copies of the listeners of the
# version it serves (reuseport, root's), so before, `baton deploy --adopt-pid`
# given the agent's pid, or the pid of a process that runs it (its tree holds
# the agent), made a version of the agent's own copies: at its drain's end
# the exit signal and then SIGKILL would reach the agent and, for an
# ancestor, the whole tree with every service's processes.  Both are now
# refused with one line naming the problem, and nothing changes.
. "$(dirname "$0")/lib.sh"

# A server that opens its own SO_REUSEPORT listener, as root (nginx's master does).
python3 -c '
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 8080))
s.listen(64)
time.sleep(600)
' &
SRV=$!
EXTRA_PIDS=$SRV
for _ in $(seq 50); do ss -ltn | grep -q '127.0.0.1:8080' && break; sleep 0.1; done
write_conf "adopt = yes" "ready-timeout = 5s"
sed -i -e '/^exec = /d' -e '/^listen = \[::1\]/d' "$T/web.conf"
"$BATON" agent -d -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
AGENT=$!
disown "$AGENT"
for _ in $(seq 100); do "$BATON" status >/dev/null 2>&1 && break; sleep 0.1; done
check "adopt the server as v1" "$BATON" adopt web --pid "$SRV"
check_eq "v1 is active" 1 "$(active_version)"

expect_err "deploy --adopt-pid with the agent's own pid is refused" "this agent" \
	"$BATON" deploy web --adopt-pid "$AGENT"
expect_err "deploy --adopt-pid with a process that runs the agent is refused" "this agent" \
	"$BATON" deploy web --adopt-pid "$$"
check_eq "v1 is still active" 1 "$(active_version)"
check_eq "and the only version" 1 \
	"$("$BATON" status web --json | jq -r '[.[0].versions[].version] | map(tostring) | join(" ")')"
check "the agent runs" kill -0 "$AGENT"
