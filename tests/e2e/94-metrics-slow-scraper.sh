#!/bin/bash
# SPDX-License-Identifier: MIT
# A scraper that asks for /metrics and never reads the answer cannot stall
# the agent (issue 17, item 4): the answer is written as the socket takes
# it, from the event loop, and the agent answers status meanwhile.
#
# The namespace's TCP buffers are made small (tcp_wmem 4096, the scrapers'
# SO_RCVBUF 2048) so that an answer of a few KiB does not fit in what the
# kernel buffers: a write that waits (the agent once made the socket blocking
# with a 1 s send timeout) would hold the loop about a second per scraper.
. "$(dirname "$0")/lib.sh"

SCRAPERS=5
sysctl -qw net.ipv4.tcp_wmem="4096 4096 4096" net.ipv4.tcp_rmem="4096 4096 4096"
write_conf "instances = 1" "ready = notify"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
# More services: more metrics lines (about 2 KiB each).
for i in $(seq 1 15); do
	printf '[service s%d]\nlisten = 127.0.0.1:%d\nexec = %s\nenvironment = E2E_TEST_ID=%s\nready = notify\n' \
		"$i" $((9000 + i)) "$DEMO" "$TEST_ID" >>"$T/web.conf"
done
start_agent || exit 1
M=http://127.0.0.1:9464/metrics
for _ in 1 2 3 4 5; do curl -s -o /dev/null http://127.0.0.1:8080/; done
for i in $(seq 1 15); do curl -s -o /dev/null http://127.0.0.1:$((9000 + i))/; done
size=$(curl -s "$M" | wc -c)
check "the answer ($size bytes) is larger than what the kernel buffers for a scraper" \
	test "$size" -gt 16384

# A status request's time on this machine now, for comparison.
t0=$(date +%s%N)
"$BATON" status web >/dev/null
base_ms=$((($(date +%s%N) - t0) / 1000000))

# The stuck scrapers: each sends its request and sleeps without reading.
python3 - "$SCRAPERS" "$T" <<'PY' &
import socket, sys, time, os
n, t = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(("127.0.0.1", 9464))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
open(t + "/stuck", "w").close()
end = time.monotonic() + 30
while not os.path.exists(t + "/done") and time.monotonic() < end:
    time.sleep(0.05)
PY
STUCK=$!
EXTRA_PIDS=$STUCK
for _ in $(seq 100); do [ -e "$T/stuck" ] && break; sleep 0.1; done
check "$SCRAPERS scrapers asked and read nothing" test -e "$T/stuck"

# While they hang: status, and a normal scrape, answer.
t0=$(date +%s%N)
check "status answers" "$BATON" status web
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
# Stalled, the agent would take about a second per scraper before this answer.
check "status answered in ${ms} ms (${base_ms} ms before the scrapers), not after their $SCRAPERS s" \
	test "$ms" -lt $((base_ms + SCRAPERS * 1000 / 2))
check "a normal scrape answers meanwhile" promtool check metrics < <(curl -s -m 5 "$M")
check "the agent is still the same process" kill -0 "$AGENT"
touch "$T/done"
wait "$STUCK"
