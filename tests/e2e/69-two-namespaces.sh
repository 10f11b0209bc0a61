#!/bin/bash
# SPDX-License-Identifier: MIT
# The sock_ops program sees every TCP socket on the host.  A second network
# namespace with its own agent and the very same 4-tuples (same addresses,
# same client ports) must not touch this agent's counts: 10 connections held
# here stay counted as 10 while the other namespace opens and closes
# identical ones.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 1" "ready = notify"
start_agent || exit 1
# Hold 10 connections from fixed client ports.
python3 - "$T/held" <<'PY' &
import socket, sys, time
conns = []
for port in range(41001, 41011):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.connect(("127.0.0.1", 8080))
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    s.recv(4096)
    conns.append(s)
open(sys.argv[1], "w").close()
time.sleep(60)
PY
EXTRA_PIDS=$!
for _ in $(seq 100); do [ -e "$T/held" ] && break; sleep 0.1; done
live() { "$BATON" status web --json | jq -r '.[0].versions[0].live'; }
check_eq "10 connections held here" 10 "$(live)"

# The other namespace: its own agent, same config shape, same 4-tuples, opened and closed 5 times.
T2=$T/other
mkdir -p "$T2"
cat >"$T2/web.conf" <<EOC
[agent]
control = $T2/control.sock
bpf-dir = $BPFDIR-other
run-dir = $T2/run
cgroup-dir = $CGDIR/other
[service web]
listen = 127.0.0.1:8080
exec = $DEMO
environment = E2E_TEST_ID=$TEST_ID
ready = notify
EOC
unshare -n bash -c '
	ip link set lo up
	"$1" agent -d -f "$2/web.conf" >"$2/agent.log" 2>&1 & a=$!
	for _ in $(seq 100); do BATON_CONTROL=$2/control.sock "$1" status >/dev/null 2>&1 && break; sleep 0.1; done
	python3 - <<PY
import socket, time
for round in range(5):
    conns = []
    for port in range(41001, 41011):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.connect(("127.0.0.1", 8080))
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        s.recv(4096)
        conns.append(s)
    for s in conns:
        s.close()
    time.sleep(0.2)
PY
	echo "other live: $(BATON_CONTROL=$2/control.sock "$1" status web --json | jq -r ".[0].versions[0].accepted")" >"$2/result"
	BATON_CONTROL=$2/control.sock "$1" shutdown --stop >/dev/null
	wait $a
' _ "$BATON" "$T2"
rm -rf "$BPFDIR-other"
cat "$T2/result"
check_eq "the other namespace's agent counted its own 50" "other live: 50" "$(cat "$T2/result")"
check_eq "still 10 counted here after 50 identical 4-tuples elsewhere" 10 "$(live)"
kill "$EXTRA_PIDS"
for _ in $(seq 50); do [ "$(live)" = 0 ] && break; sleep 0.1; done
check_eq "and 0 once they close" 0 "$(live)"
