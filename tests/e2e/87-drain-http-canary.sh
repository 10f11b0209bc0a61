#!/bin/bash
# SPDX-License-Identifier: MIT
# drain-http = close and a canary: keep-alive clients follow the weights.
# 40 keep-alive clients, each from its own address (127.1.0.N), send
# requests in a loop on persistent connections.  At each canary step (10%,
# 50%, then promote --full) every client's requests come, within a second,
# from the version a new connection from its address gets (steer's sticky
# choice) — not from the version its old connection had.  Zero failed
# requests.  Baseline first, drain-http = off: the keep-alive clients stay
# where they were (printed, not asserted).
. "$(dirname "$0")/lib.sh"

NCLI=40
write_conf "instances = 2" "ready = notify" "drain-timeout = 8s" "kill-after = 2s" \
	"drain-http = off"
EXEC="$DEMO --keepalive-forever"
sed -i "s|^exec = .*|exec = $EXEC|" "$T/web.conf"
start_agent || exit 1

# The keep-alive clients: every round, each client's version in $T/ka.now ("addr vN").
cat >"$T/client.py" <<'EOC'
import http.client, os, sys, time
n, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
addrs = ["127.1.0.%d" % (i + 1) for i in range(n)]
conns = {a: http.client.HTTPConnection("127.0.0.1", 8080, timeout=5, source_address=(a, 0)) for a in addrs}
errors = requests = 0
end = time.time() + 300
while not os.path.exists(stop) and time.time() < end:
    now = {}
    for a in addrs:
        c = conns[a]
        try:
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read().decode()
            requests += 1
            now[a] = body.split()[0].split("=")[1] if r.status == 200 else "status%d" % r.status
            if r.status != 200:
                errors += 1
        except Exception as e:
            errors += 1
            now[a] = "error"
            c.close()
    with open(out + ".tmp", "w") as f:
        for a in addrs:
            f.write("%s %s\n" % (a, now[a]))
    os.replace(out + ".tmp", out)
    with open(out + ".count.tmp", "w") as f:
        f.write("%d %d\n" % (requests, errors))
    os.replace(out + ".count.tmp", out + ".count")
    time.sleep(0.02)
EOC
served_from() { curl -s --max-time 2 --interface "$1" http://127.0.0.1:8080/ | sed -n 's/^version=\([^ ]*\) .*/\1/p'; }
# sticky FILE: the version a new connection from each client address gets now.
sticky() { local i; for i in $(seq 1 $NCLI); do echo "127.1.0.$i $(served_from 127.1.0.$i)"; done >"$1"; }
weight_of() { "$BATON" status web --json | jq -r ".[0].versions[] | select(.version == $1) | .weight"; }
wait_promote() {
	for _ in $(seq 100); do
		[ "$("$BATON" status web --json | jq -r '.[0].rollout.waiting_for_promote')" = true ] && return 0
		sleep 0.1
	done
	return 1
}
# agree WANT: within 3 s every keep-alive client's last response came from WANT's version.
agree() {
	for _ in $(seq 30); do
		sleep 0.1
		cmp -s "$1" "$T/ka.now" && return 0
	done
	diff "$1" "$T/ka.now" | head -5
	return 1
}
count_of() { awk '{print $'"$1"'}' "$T/ka.now.count"; }

# run MODE: a canary 10 -> 50 -> full under the keep-alive clients.
run() {
	local mode=$1 dep
	rm -f "$T/stop" "$T/ka.now" "$T/ka.now.count"
	python3 "$T/client.py" $NCLI "$T/ka.now" "$T/stop" &
	CLI=$!
	EXTRA_PIDS="${EXTRA_PIDS:-} $CLI"
	for _ in $(seq 50); do [ -s "$T/ka.now" ] && break; sleep 0.1; done
	"$BATON" deploy web --steps 10,50 --bake 0 -- $EXEC >"$T/deploy.$mode" 2>&1 &
	dep=$!
	check "$mode: step 1 waits for promote" wait_promote
	new=$(("$(active_version)" + 0))
	sticky "$T/want10.$mode"
	echo "$mode: at 10%: new connections $(grep -c " v$((new + 1))\$" "$T/want10.$mode") of $NCLI to the canary"
	if [ "$mode" = close ]; then
		check "close: at 10% each keep-alive client follows its address's version" agree "$T/want10.$mode"
	else
		sleep 1.5
		echo "off: at 10%: keep-alive clients on the canary: $(grep -c " v$((new + 1))\$" "$T/ka.now") of $NCLI"
	fi
	"$BATON" promote web >/dev/null
	wait_promote
	sticky "$T/want50.$mode"
	if [ "$mode" = close ]; then
		check "close: at 50% each keep-alive client follows its address's version" agree "$T/want50.$mode"
	else
		sleep 1.5
		echo "off: at 50%: keep-alive clients on the canary: $(grep -c " v$((new + 1))\$" "$T/ka.now") of $NCLI (new connections: $(grep -c " v$((new + 1))\$" "$T/want50.$mode"))"
	fi
	"$BATON" promote web --full >/dev/null
	wait $dep
	sleep 2
	touch "$T/stop"
	wait $CLI
	echo "$mode: keep-alive requests $(count_of 1), failed $(count_of 2)"
	[ "$mode" = close ] && check_eq "close: keep-alive clients: failed requests" 0 "$(count_of 2)"
	[ "$mode" = close ] && check "close: real load ($(count_of 1) requests)" test "$(count_of 1)" -gt 1000
}

run off
sed -i 's/^drain-http = off$/drain-http = close/' "$T/web.conf"
check "reload to drain-http = close" "$BATON" reload
run close
check "the log counts the re-steered connections" grep -q "asked so far to close" "$T/agent.log" ||
	grep "drain-http" "$T/agent.log" | tail -5
