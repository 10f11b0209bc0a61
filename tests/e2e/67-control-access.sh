#!/bin/bash
# SPDX-License-Identifier: MIT
# The control socket: root may do everything; members of control-group may
# only read (status, watch); anyone else is refused, and the agent logs who
# tried.  A client that sends half a request is cut off after 5 s, one that
# floods is cut off, and neither disturbs the service.
. "$(dirname "$0")/lib.sh"

GROUP=batontest$$
groupadd "$GROUP" || { not_ok "groupadd $GROUP"; exit 1; }
trap 'groupdel '"$GROUP"' 2>/dev/null; cleanup' EXIT
GID=$(getent group "$GROUP" | cut -d: -f3)
chmod 755 "$T"
write_conf "instances = 1" "ready = notify"
sed -i "/^run-dir/a control-group = $GROUP" "$T/web.conf"
start_agent || exit 1
check_eq "the control socket is root:$GROUP 0660" "0 $GID 660" \
	"$(stat -c '%u %g %a' "$T/control.sock")"
member() { setpriv --reuid=65534 --regid="$GID" --clear-groups "$BATON" "$@"; }
stranger() { setpriv --reuid=65534 --regid=65534 --clear-groups "$BATON" "$@"; }

check "a member may read status" member status web
check "and watch" member watch web --count 1
out=$(member shutdown 2>&1); rc=$?
check "the CLI itself refuses state changes to non-root" test $rc -ne 0 -a -n "$(grep 'must run as root' <<<"$out")"
# A member's raw request for a state change, past the CLI.
raw() {
	setpriv --reuid=65534 --regid="$GID" --clear-groups /usr/bin/python3 - "$BATON_CONTROL" "$1" "${2:-0}" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
time.sleep(float(sys.argv[3]))
print(s.makefile().readline().strip())
PY
}
check "a member's raw deploy is refused, and told why" \
	grep -q "permission denied: deploy changes state; members of group $GROUP may only use status, watch and events" \
	<<<"$(raw '{"cmd":"deploy","service":"web","argv":["/bin/true"]}
')"
check "the agent logs who tried" grep -q "control: refused \"deploy\" from uid 65534" "$T/agent.log"
out=$(stranger status web 2>&1); rc=$?
check "a stranger cannot even connect" test $rc -ne 0 -a -n "$(grep 'permission denied' <<<"$out")"

# Half a request: cut off after CTL_READ_TIMEOUT_MS.
t0=$(date +%s%N)
out=$(raw '{"cmd":"sta')
t1=$(date +%s%N)
check "half a request is answered with a timeout" grep -q "timeout: no complete request line within 5000 ms" <<<"$out"
ms=$(( (t1 - t0) / 1000000 ))
check "after about 5 s ($ms ms)" test "$ms" -ge 4900 -a "$ms" -le 7000
check "and the agent logs it" grep -q "sent no complete request within 5000 ms" "$T/agent.log"
# A flood: 100 requests at once; the bucket allows a burst of 20.
flood=$(python3 - "$BATON_CONTROL" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"status"}\n' * 100)
n = ok = 0
f = s.makefile()
for line in f:
    n += 1
    if '"too many requests' in line:
        print("limited after", ok)
        break
    ok += 1
PY
)
check "a flood is cut off after the burst ($flood)" grep -q "limited after 2[0-9]$" <<<"$flood"
check "the agent still answers root" "$BATON" status web
check_eq "and v1 still serves" v1 "$(served_by http://127.0.0.1:8080/)"
