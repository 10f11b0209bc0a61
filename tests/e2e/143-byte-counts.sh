#!/bin/bash
# SPDX-License-Identifier: MIT
# byte-counts = yes: the payload bytes each version's server received and
# sent, counted in the kernel (sock_recv_length / sock_send_length, Linux
# 6.3), exact.  A python client makes connections of known request sizes to
# a canary at 50% (per-connection steering, so both versions serve), reads
# each whole response, and sums per version (each body names its version)
# what it sent and what it received: status --json and /metrics must show
# exactly those sums, live (read while the versions run), and after an agent
# restart (kill -9) the totals stay and grow.  Connections to a
# service without byte-counts and to a port baton does not serve count
# nothing; the tracepoint programs are attached only while a service has
# byte-counts on.  On a kernel without the tracepoints (decided by baton
# features): the agent refuses to start in one line, and a reload that turns
# byte-counts on is refused in one line, the running configuration unchanged.
. "$(dirname "$0")/lib.sh"

N=${BYTES_CONNS:-40}
M=http://127.0.0.1:9464/metrics
metric() { curl -s "$M" | awk -v k="$1" '$1 == k {print $2}'; }
have=$("$BATON" features --json | jq -r '.[] | select(.name == "sock_{recv,send}_length") | .supported')
# Links of the byte-counts programs, attached now.
bytes_links() { bpftool -j link show | jq '[.[] | select(.tp_name == "sock_recv_length" or .tp_name == "sock_send_length")] | length'; }

# A second service on 8081 without byte-counts (appended to web's file).
add_other() {
	cat >>"$T/web.conf" <<EOC
[service other]
listen = 127.0.0.1:8081
exec = $DEMO
environment = E2E_TEST_ID=$TEST_ID
ready = notify
ready-timeout = $(slow 10)s
EOC
}

# client HOST PORT N: N connections, request i padded to a size of its own;
# prints "VERSION SENT RECEIVED" per connection.
client() {
	python3 - "$1" "$2" "$3" "$(slow 5)" <<'PY'
import re, socket, sys
host, port, n, tmo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
for i in range(n):
    req = ("GET / HTTP/1.1\r\nHost: baton\r\nX-Pad: %s\r\nConnection: close\r\n\r\n"
           % ("x" * (7 * i + 1))).encode()
    got = b""
    with socket.create_connection((host, port), timeout=tmo) as s:
        s.sendall(req)
        while chunk := s.recv(65536):
            got += chunk
    m = re.search(rb"^version=(\S+) ", got, re.M)
    print(m.group(1).decode() if m else "?", len(req), len(got))
PY
}
# sum FILE VERSION COLUMN: the column's sum over that version's connections.
sum() { awk -v v="$2" -v c="$3" '$1 == v {s += $c} END {print s + 0}' "$1"; }
bytes_of() { "$BATON" status "$1" --json | jq -c ".[0].versions[] | select(.version == $2) | .bytes"; }

if [ "$have" != true ]; then
	echo "this kernel lacks sock_recv_length / sock_send_length: the refusals"
	write_conf "instances = 1" "ready = notify" "byte-counts = yes"
	out=$("$BATON" agent -d -f "$T/web.conf" 2>&1); rc=$?
	pat="^baton: web: byte-counts = yes needs the sock_recv_length and sock_send_length tracepoints (Linux 6.3 or later), which this kernel lacks; remove byte-counts from the service$"
	if [ $rc != 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q "$pat" <<<"$out"; then
		ok "the agent refuses byte-counts at start, in one line: $out"
	else
		not_ok "the agent refuses byte-counts at start, in one line: rc=$rc, output: $out"
	fi
	check "and did not start (nothing answers on its control socket)" \
		bash -c "! \"$BATON\" status --json >/dev/null 2>&1"
	check "and pinned nothing" bash -c "[ ! -e '$BPFDIR/conns' ]"
	write_conf "instances = 1" "ready = notify"
	start_agent || exit 1
	write_conf "instances = 1" "ready = notify" "byte-counts = yes"
	add_other
	expect_err "a reload that turns byte-counts on (and adds a service) is refused" \
		"reload refused: web: byte-counts = yes needs the sock_recv_length and sock_send_length tracepoints (Linux 6.3 or later), which this kernel lacks; remove byte-counts from the service" \
		"$BATON" reload
	check_eq "the running configuration stays: one service" 1 "$("$BATON" status --json | jq length)"
	check_eq "web counts no bytes" null "$(bytes_of web 1)"
	check_eq "still served" v1 "$(served_by http://127.0.0.1:8080/)"
	check_eq "the agent logged no libbpf message" 0 "$(grep -c libbpf "$T/agent.log")"
	exit 0
fi

write_conf "instances = 2" "ready = notify" "steering = per-connection" "byte-counts = yes"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
add_other
start_agent || exit 1
check_eq "v1 counts from zero" '{"received":0,"sent":0}' "$(bytes_of web 1)"
check_eq "the tracepoint programs are attached (2 links)" 2 "$(bytes_links)"

"$BATON" deploy web --steps 50 --bake 0 -- "$DEMO" >"$T/deploy.out" 2>&1 &
EXTRA_PIDS=$!
for _ in $(seq "$(slow 100)"); do
	[ "$("$BATON" status web --json | jq -r '.[0].rollout.waiting_for_promote')" = true ] && break
	sleep 0.1
done
check_eq "v2 holds 50% and waits for promote" 5000 \
	"$("$BATON" status web --json | jq '.[0].versions[] | select(.version == 2) | .weight')"

client 127.0.0.1 8080 "$N" >"$T/c4"
client ::1 8080 "$N" >"$T/c6"
cat "$T/c4" "$T/c6" >"$T/c"
check_eq "every connection was answered by v1 or v2" 0 "$(awk '$1 != "v1" && $1 != "v2"' "$T/c" | wc -l)"
n1=$(awk '$1 == "v1"' "$T/c" | wc -l)
n2=$(awk '$1 == "v2"' "$T/c" | wc -l)
check "both versions served ($n1 and $n2 of $((2 * N)))" test "$n1" -gt 0 -a "$n2" -gt 0
for v in 1 2; do
	want=$(printf '{"received":%d,"sent":%d}' "$(sum "$T/c" v$v 2)" "$(sum "$T/c" v$v 3)")
	check_eq "status: v$v's bytes are exactly what its clients sent and received" "$want" \
		"$(bytes_of web $v)"
	check_eq "/metrics: v$v received" "$(sum "$T/c" v$v 2)" \
		"$(metric "baton_version_bytes_received_total{service=\"web\",version=\"v$v\"}")"
	check_eq "/metrics: v$v sent" "$(sum "$T/c" v$v 3)" \
		"$(metric "baton_version_bytes_sent_total{service=\"web\",version=\"v$v\"}")"
done
check "status text shows them" grep -q "bytes received $(sum "$T/c" v1 2), sent $(sum "$T/c" v1 3)" \
	<<<"$("$BATON" status web)"
check "promtool accepts the metrics" bash -c "curl -s $M | promtool check metrics"

# Neither another service without byte-counts nor a port baton does not serve count.
before=$("$BATON" status web --json | jq -c '[.[0].versions[].bytes]')
client 127.0.0.1 8081 10 >"$T/other"
check_eq "the service without byte-counts answered" 10 "$(grep -c '^v1 ' "$T/other")"
check_eq "and counts no bytes (null in status)" null "$(bytes_of other 1)"
check_eq "and has no bytes metric" "" "$(metric 'baton_version_bytes_received_total{service="other",version="v1"}')"
python3 -m http.server 8099 --bind 127.0.0.1 >/dev/null 2>&1 &
EXTRA_PIDS="$EXTRA_PIDS $!"
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8099/ && break; sleep 0.1; done
for _ in $(seq 10); do curl -s -o /dev/null http://127.0.0.1:8099/; done
check_eq "connections to both count nothing for web" "$before" \
	"$("$BATON" status web --json | jq -c '[.[0].versions[].bytes]')"

# An agent restart keeps the totals (pinned) and counts on.
kill -9 "$AGENT"
while kill -0 "$AGENT" 2>/dev/null; do sleep 0.05; done
check_eq "after an agent kill: both versions' totals are what they were" "$before" \
	"$(start_agent >/dev/null && "$BATON" status web --json | jq -c '[.[0].versions[].bytes]')"
client 127.0.0.1 8080 10 >"$T/c2"
for v in 1 2; do
	want=$(printf '{"received":%d,"sent":%d}' "$(($(sum "$T/c" v$v 2) + $(sum "$T/c2" v$v 2)))" \
		"$(($(sum "$T/c" v$v 3) + $(sum "$T/c2" v$v 3)))")
	check_eq "the restarted agent counts on: v$v" "$want" "$(bytes_of web $v)"
done

# byte-counts off by reload: the programs detach, nothing is counted.
check "promote --full" "$BATON" promote web --full
sed -i '/^byte-counts/d' "$T/web.conf"
check "reload without byte-counts" "$BATON" reload
check_eq "no service counts bytes: the tracepoint programs are detached" 0 "$(bytes_links)"
check_eq "web counts no bytes now" null "$(bytes_of web 2)"

# A service with byte-counts added by reload attaches them; removing it
# detaches them once its last version is gone.
sed -i '/^\[service other\]/a byte-counts = yes' "$T/web.conf"
check "reload: other counts bytes" "$BATON" reload
check_eq "other counts from zero" '{"received":0,"sent":0}' "$(bytes_of other 1)"
check_eq "the tracepoint programs are attached again" 2 "$(bytes_links)"
sed -i '/^\[service other\]/,$d' "$T/web.conf"
check "reload: other removed" "$BATON" reload
for _ in $(seq "$(slow 100)"); do
	[ "$("$BATON" status --json | jq length)" = 1 ] && break
	sleep 0.1
done
check_eq "other is gone" 1 "$("$BATON" status --json | jq length)"
check_eq "and the tracepoint programs with it" 0 "$(bytes_links)"
