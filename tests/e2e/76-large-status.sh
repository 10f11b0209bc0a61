#!/bin/bash
# SPDX-License-Identifier: MIT
# A status reply far larger than a socket buffer and the CLI's old 64 KiB
# line (3000 pins: about 150 KiB) is written whole, without blocking the
# agent, and read whole by the CLI (issue 17, items 12 and 13: before, the
# CLI failed with "reply from the agent too long", and status showed at
# most 256 pins).
. "$(dirname "$0")/lib.sh"

write_conf "ready = notify"
start_agent || exit 1
N=3000
# 150 control connections of 20 pin requests each (one burst each: the rate limit holds).
python3 - "$BATON_CONTROL" "$N" <<'PY'
import json, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
done = 0
for c in range(n // 20):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    f = s.makefile("rwb")
    for k in range(20):
        i = c * 20 + k
        req = {"cmd": "pin", "service": "web", "version": 1,
               "cidr": "10.%d.%d.0/24" % (i // 256, i % 256)}
        f.write(json.dumps(req).encode() + b"\n")
    f.flush()
    for k in range(20):
        if json.loads(f.readline()).get("ok"):
            done += 1
    s.close()
print("pins set:", done)
PY
OUT=$("$BATON" status web --json)
check "status answers" test -n "$OUT"
check "the reply is over 64 KiB ($(wc -c <<<"$OUT") bytes)" test "$(wc -c <<<"$OUT")" -gt 65536
check_eq "status lists every pin" "$N" "$(jq '.[0].pins | length' <<<"$OUT")"
check "the text status works too" "$BATON" status web
# A client that asks three times and does not read for a while: the agent
# keeps answering others, queues the three replies, and they arrive whole.
python3 - "$BATON_CONTROL" "$T/slow" <<'PY' &
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
for _ in range(3):
    s.sendall(b'{"cmd": "status"}\n')
time.sleep(3)
s.settimeout(10)
f = s.makefile("rb")
pins = [len(json.loads(f.readline())["services"][0]["pins"]) for _ in range(3)]
open(sys.argv[2], "w").write(" ".join(map(str, pins)))
PY
SLOW=$!
EXTRA_PIDS=$SLOW
sleep 1
quiet_status() { "$BATON" status web --json >/dev/null; }
check "status answers while another client does not read" quiet_status
wait "$SLOW"
check_eq "the slow reader got its three replies whole" "$N $N $N" "$(cat "$T/slow" 2>/dev/null)"
