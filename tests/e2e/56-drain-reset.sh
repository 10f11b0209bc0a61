#!/bin/bash
# SPDX-License-Identifier: MIT
# drain-reset = yes: connections still open at drain-timeout are reset
# (SOCK_DESTROY), the clients see it at once, and the version is signalled
# and exits without waiting for kill-after.
. "$(dirname "$0")/lib.sh"

EXEC="$DEMO --idle-ms 600000" write_conf "instances = 1" "ready = notify" \
	"drain-policy = wait-then-signal" "drain-timeout = 1s" "kill-after = 3s" "drain-reset = yes"
start_agent || exit 1

python3 - "$T" <<'PY' &
import os, socket, sys, time
t = sys.argv[1]
conns = []
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.connect((host, 8080))
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    s.recv(4096)  # the answer; the connection stays open (keep-alive)
    conns.append(s)
open(t + "/held", "w").close()
for _ in range(100):  # at most 10 s
    if os.path.exists(t + "/go"):
        break
    time.sleep(0.1)
out = []
for s in conns:
    s.settimeout(5)
    try:
        out.append("data" if s.recv(1) else "eof")
    except ConnectionResetError:
        out.append("reset")
    except socket.timeout:
        out.append("timeout")
open(t + "/result", "w").write(" ".join(out))
PY
EXTRA_PIDS=$!
for _ in $(seq 50); do [ -e "$T/held" ] && break; sleep 0.1; done
v1=$(version_pids 1)
check_eq "v1 holds 3 connections" 3 "$("$BATON" status web --json | jq '.[0].versions[0].live')"
check "deploy v2" "$BATON" deploy web -- "$DEMO"
touch "$T/go"
check "v1 is gone" wait_gone 5 "$v1"
# From the switch-out, by the agent's monotonic clock (its log line), not
# from before the deploy, which adds v2's start and readiness (more than a
# second on a loaded machine).  The margin after the bound scales and stays
# below kill-after (3 s).
for _ in $(seq "$(slow 20)"); do grep -q "web v1: all processes exited" "$T/agent.log" && break; sleep 0.1; done
ms=$(sed -n 's/.*web v1: all processes exited, stopped \([0-9]*\)\.\([0-9]*\) s after switch-out.*/\1\2/p' "$T/agent.log")
ms=$((10#${ms:-0})) lim=$((1000 + $(slow 1500)))
[ "$lim" -gt 3900 ] && lim=3900 # SIGKILL would come at 4000
check "v1 exits right after drain-timeout, not at kill-after (${ms} ms after its switch-out, want 1000..$lim)" \
	test $ms -ge 1000 -a $ms -le $lim
wait "$EXTRA_PIDS"
check_eq "each held client saw its connection reset" "reset reset reset" "$(cat "$T/result")"
grep -q "web v1: reset 3 connection(s) (drain-reset)" "$T/agent.log" &&
	ok "agent logged the reset" || not_ok "no reset log: $(grep 'web v1' "$T/agent.log" | tail -3)"
