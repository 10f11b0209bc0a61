#!/bin/bash
# SPDX-License-Identifier: MIT
# A canary rollout that completes, under wrk load: steps that wait for
# promote (bake 0), sticky clients (the same client keeps its version, and a
# client in the canary at 10% is still in it at 50%), the share of 400
# distinct client addresses near the weight, a manual weight, a CIDR pin
# that wins over weights (IPv4 and IPv6), then promote --full.  Zero failed
# requests throughout.
. "$(dirname "$0")/lib.sh"

# health-timeout bounds time: scaled.  A check that outlives it is abandoned,
# and the server's late answer meets the check's closed socket: a RST back to
# the server, which counts in TcpEstabResets below.
write_conf "instances = 2" "ready = http" "health-path = /healthz" "health-interval = 200ms" \
	"health-timeout = $(slow 1)s" "ready-timeout = $(slow 5)s" "drain-policy = signal-then-wait" \
	"drain-timeout = 5s" "kill-after = 2s" "backlog = 4096"
start_agent || exit 1
URL=http://127.0.0.1:8080/
# Many client addresses: all of 127/8 is local; IPv6 needs addresses on lo.
for i in $(seq 1 100); do ip -6 addr add "fd00:ba70::$i/128" dev lo nodad; done

# assign FILE: "addr version" for 300 IPv4 and 100 IPv6 clients, each a new
# connection from its own address (20 at a time); "addr " for a client that
# got no answer (its timeout only bounds a hang: each round checks that all
# 400 answered).  One process makes them all: under emulation 400 curl
# processes took minutes, and what is measured is where the kernel steers
# each address, not how fast processes start.
assign() {
	python3 - "$(slow 10)" <<'PY' | sort >"$1"
import concurrent.futures, re, socket, sys

timeout = float(sys.argv[1])
clients = [(f"127.1.{a}.{b}", "127.0.0.1") for a in (1, 2, 3) for b in range(1, 101)]
clients += [(f"fd00:ba70::{i}", "::1") for i in range(1, 101)]

def ask(client):
    src, dst = client
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    got = b""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.bind((src, 0))
            s.connect((dst, 8080))
            s.sendall(b"GET / HTTP/1.1\r\nHost: baton\r\nConnection: close\r\n\r\n")
            while chunk := s.recv(4096):
                got += chunk
    except OSError:
        pass
    m = re.search(rb"^version=(\S+) ", got, re.M)
    return f"{src} {m.group(1).decode() if m else ''}"

with concurrent.futures.ThreadPoolExecutor(20) as pool:
    for line in pool.map(ask, clients):
        print(line)
PY
}
share() { awk -v v="$2" '$2 == v {n++} END {print n + 0}' "$1"; }
# answered FILE: every one of the 400 clients got a version.
answered() { check_eq "${1##*/}: all 400 clients answered" 400 "$(awk '$2 != ""' "$1" | wc -l)"; }
weight_of() { "$BATON" status web --json | jq -r ".[0].versions[] | select(.version == $1) | .weight"; }

rst_start "$T/rst" || exit 1
EXTRA_PIDS=$RSTCAP
nstat_snap "$T/nstat.before"
wrk_start "$T/wrk" -t2 -c40 -d600s --timeout 5s "$URL"
sleep 0.5

"$BATON" deploy web --steps 10,50 --bake 0 -- "$DEMO" >"$T/deploy.out" 2>&1 &
dep=$!
for _ in $(seq "$(slow 100)"); do
	[ "$("$BATON" status web --json | jq -r '.[0].rollout.waiting_for_promote')" = true ] && break
	sleep 0.1
done
check_eq "step 1 holds v2 at 10% and waits for promote" 1000 "$(weight_of 2)"
check_eq "v1 has the rest" 9000 "$(weight_of 1)"
"$BATON" status web

assign "$T/at10"
n2=$(share "$T/at10" v2)
echo "at 10%: $n2 of 400 clients on v2"
# 400 clients at p = 0.1: mean 40, sd 6; 15..70 is beyond 4 sd either way.
check "about 10% of 400 distinct clients reach v2 ($n2)" test "$n2" -ge 15 -a "$n2" -le 70
check_eq "every client reached v1 or v2" 400 $(( n2 + $(share "$T/at10" v1) ))
assign "$T/again10"
answered "$T/again10"
check "sticky: the same 400 clients get the same versions again" cmp -s "$T/at10" "$T/again10"

check "promote moves to the next step" "$BATON" promote web
check_eq "v2 at 50%" 5000 "$(weight_of 2)"
assign "$T/at50"
answered "$T/at50"
n2=$(share "$T/at50" v2)
echo "at 50%: $n2 of 400 clients on v2"
check "about 50% of 400 clients reach v2 ($n2)" test "$n2" -ge 150 -a "$n2" -le 250
lost=$(join <(sort "$T/at10") <(sort "$T/at50") | awk '$2 == "v2" && $3 != "v2"' | wc -l)
check_eq "every client in the canary at 10% is still in it at 50%" 0 "$lost"

out=$("$BATON" weight web v2=25 2>&1)
check "weight sets v2 to 25% by hand" grep -q "v2 25.00%, v1 75.00%" <<<"$out"
check_eq "v2 at 25%" 2500 "$(weight_of 2)"
check_eq "v1 at 75%" 7500 "$(weight_of 1)"
check_eq "a manual weight pauses the rollout" true \
	"$("$BATON" status web --json | jq -r '.[0].rollout.paused')"

# Pins win over weights; the longest prefix wins.
check "pin 127.1.0.0/16 to v1" "$BATON" pin web 127.1.0.0/16 v1
check "pin 127.1.2.0/24 to v2" "$BATON" pin web 127.1.2.0/24 v2
check "pin fd00:ba70::/64 to v2" "$BATON" pin web fd00:ba70::/64 v2
assign "$T/pinned"
answered "$T/pinned"
check_eq "127.1.1.0/24 follows the /16 pin to v1" 100 \
	"$(grep -c '^127\.1\.1\.[0-9]* v1$' "$T/pinned")"
check_eq "127.1.2.0/24 follows its /24 pin to v2" 100 \
	"$(grep -c '^127\.1\.2\.[0-9]* v2$' "$T/pinned")"
check_eq "IPv6 clients follow their pin to v2" 100 "$(grep -c '^fd00:ba70::[0-9]* v2$' "$T/pinned")"
check_eq "status lists 3 pins" 3 "$("$BATON" status web --json | jq '.[0].pins | length')"
check "unpin the IPv6 pin" "$BATON" unpin web fd00:ba70::/64
out=$("$BATON" unpin web fd00:ba70::/64 2>&1); rc=$?
check "unpin of a missing pin fails and says so" test $rc -ne 0 -a -n "$(grep 'no pin for' <<<"$out")"
"$BATON" unpin web 127.1.0.0/16 && "$BATON" unpin web 127.1.2.0/24
assign "$T/unpinned"
answered "$T/unpinned"
n2=$(share "$T/unpinned" v2)
check "without pins, about 25% again ($n2 of 400)" test "$n2" -ge 60 -a "$n2" -le 150
"$BATON" status web

check "promote --full" "$BATON" promote web --full
wait $dep; rc=$?
check_eq "the deploy exits 0" 0 $rc
cat "$T/deploy.out"
check "and reports the canary" grep -q "canary rollout" "$T/deploy.out"
check "v2 has all traffic" only_version "$URL" v2 10
check_eq "v2 weight 100%" 10000 "$(weight_of 2)"
check_eq "no rollout left" null "$("$BATON" status web --json | jq -r '.[0].rollout')"
sleep 1
nstat_snap "$T/nstat.after"
rst_stop
wrk_stop
cat "$T/wrk"
reqs=$(wrk_field "$T/wrk" requests)
check "wrk made real load ($reqs requests)" test "${reqs:-0}" -gt 5000
for f in connect read write timeout non2xx; do
	check_eq "wrk $f errors" 0 "$(wrk_field "$T/wrk" $f)"
done
check_tcp_clean "$T/nstat.before" "$T/nstat.after"
# Whose: the counters that moved, and the RSTs on loopback (IPv4) in the test.
if [ "$(nstat_delta "$T/nstat.before" "$T/nstat.after" TcpEstabResets)" != 0 ]; then
	for k in $NSTAT_KEYS; do echo "$k +$(nstat_delta "$T/nstat.before" "$T/nstat.after" $k)"; done
	cat "$T/rst"
fi
