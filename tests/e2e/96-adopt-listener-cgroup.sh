#!/bin/bash
# SPDX-License-Identifier: MIT
# An adopted server whose listener was made in another cgroup than the one
# it runs in (systemd makes a socket unit's listeners in its own cgroup and
# hands them over; here a server makes its listener in cgroup "made", then
# moves itself to "runs"): connections accepted from a listener belong to the
# listener's cgroup, so the track program must be attached there, found from
# the socket (sock_diag), not from the server's /proc/PID/cgroup.  Every
# connection is counted, and the link is pinned for "made".
. "$(dirname "$0")/lib.sh"
[ -n "$CGMNT" ] || { not_ok "no cgroup v2 mounted"; exit 1; }

CGX=$CGMNT$CGDIR-adopt
mkdir -p "$CGX/made" "$CGX/runs" || { not_ok "make cgroups under $CGX"; exit 1; }
cat >"$T/server.py" <<'PY'
import os, socket, sys
made, runs, ready = sys.argv[1:4]
def move(cg):
    with open(cg + "/cgroup.procs", "w") as f:
        f.write(str(os.getpid()))
move(made)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 8080))
s.listen(128)
move(runs)
open(ready, "w").write("ok")
while True:
    c, _ = s.accept()
    try:
        # a probe that connects and closes gets nothing, and ends nothing
        if c.recv(4096):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nversion=v1\n")
    except OSError:
        pass
    c.close()
PY
python3 "$T/server.py" "$CGX/made" "$CGX/runs" "$T/ready" &
SERVER=$!
EXTRA_PIDS=$SERVER
adopt_cleanup() {
	kill -9 "$SERVER" 2>/dev/null
	wait "$SERVER" 2>/dev/null
	rmdir "$CGX/made" "$CGX/runs" "$CGX" 2>/dev/null
	cleanup
}
trap adopt_cleanup EXIT
for _ in $(seq 50); do [ -s "$T/ready" ] && break; sleep 0.1; done
check "the server runs in cgroup runs" grep -qx "0::$CGDIR-adopt/runs" "/proc/$SERVER/cgroup"
made_id=$(stat -c %i "$CGX/made")
runs_id=$(stat -c %i "$CGX/runs")

write_conf "adopt = yes" "drain-timeout = 1s" "kill-after = 1s" "ready-timeout = 5s"
sed -i -e '/^exec = /d' -e '/^listen = \[::1\]/d' "$T/web.conf"
"$BATON" agent -d -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
AGENT=$!
disown "$AGENT"
for _ in $(seq 100); do "$BATON" status >/dev/null 2>&1 && break; sleep 0.1; done
check "adopt the server" "$BATON" adopt web --pid "$SERVER"
check "a link pinned for the listener's cgroup (made, id $made_id)" test -e "$BPFDIR/track_link_$made_id"
check "none for the cgroup the server runs in (runs, id $runs_id)" test ! -e "$BPFDIR/track_link_$runs_id"

N=20
ok_n=0
for _ in $(seq $N); do
	[ "$(curl -s --max-time 5 http://127.0.0.1:8080/)" = version=v1 ] && ok_n=$((ok_n + 1))
done
check_eq "the adopted server answered all $N" $N $ok_n
check_eq "and the kernel counted every one of its $N connections" $N \
	"$("$BATON" status web --json | jq '.[0].versions[0].accepted')"

# A restarted agent keeps the link (the adopted server still runs).
kill -9 "$AGENT"
wait_gone 5 "$AGENT"
"$BATON" agent -d -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
AGENT=$!
disown "$AGENT"
for _ in $(seq 100); do "$BATON" status web >/dev/null 2>&1 && break; sleep 0.1; done
check "a restarted agent took v1 over" \
	jq -e '.[0].versions[0].adopted' <<<"$("$BATON" status web --json)"
check "and kept the link for made" test -e "$BPFDIR/track_link_$made_id"
for _ in $(seq 5); do curl -s --max-time 5 -o /dev/null http://127.0.0.1:8080/; done
check_eq "which still counts: 5 more connections" $((N + 5)) \
	"$("$BATON" status web --json | jq '.[0].versions[0].accepted')"
# Once the adopted server is gone, its listener's cgroup needs the link no
# more: it goes, and track runs there no more.
kill "$SERVER"
check "the adopted server ended" wait_gone 5 "$SERVER"
gone_link() {
	for _ in $(seq 50); do [ -e "$BPFDIR/track_link_$made_id" ] || return 0; sleep 0.1; done
	return 1
}
check "the link for made is gone once v1 is" gone_link
check "the log says so" grep -q "the track program left cgroup id $made_id" "$T/agent.log"
check_eq "no program attached to made" "" \
	"$(bpftool cgroup show "$CGX/made" 2>/dev/null | awk 'NR > 1 && $2 == "cgroup_sock_ops"')"
