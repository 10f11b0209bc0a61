#!/bin/bash
# SPDX-License-Identifier: MIT
# Limits with real cgroup v2 controllers (the kernel VM mounts cgroup2 alone,
# with every controller): memory-max, cpu-max and pids-max are written to each
# version's cgroup (read back from its files), status --json has the
# version's memory figures, and a canary that grows past memory-max is
# OOM-killed inside its own cgroup (the kernel's memory.events says so), which
# baton reports as any crash: the canary rolls back, v1 runs on untouched.
# Where cgroup v2 has no memory, cpu or pids controller (a hybrid hierarchy,
# as on the development hosts) this test skips, saying why; e2e 82 tests the
# refusal there.
. "$(dirname "$0")/lib.sh"

[ -n "$CGMNT" ] || { echo "skip: no cgroup v2 mounted"; exit 0; }
offered=$(cat "$CGMNT/cgroup.controllers")
for c in memory cpu pids; do
	grep -qw "$c" <<<"$offered" ||
		{ echo "skip: cgroup v2 at $CGMNT offers no $c controller (it offers '$offered'); e2e 82 tests the refusal"; exit 0; }
done
echo "cgroup v2 at $CGMNT offers: $offered"

write_conf "instances = 1" "ready = tcp" "memory-max = 128M" "cpu-max = 50%" "pids-max = 64" \
	"steering = per-connection" "drain-timeout = 2s" "kill-after = 2s"
start_agent || exit 1
v1pid=$(version_pids 1)
js=$("$BATON" status web --json | jq -c '.[0].versions[] | select(.version == 1)')
cg=$(jq -r '.cgroup' <<<"$js")
echo "v1: cgroup $cg, memory $(jq -r '.memory_bytes' <<<"$js") bytes (peak $(jq -r '.memory_peak_bytes' <<<"$js"))"
check "v1 has a cgroup ($cg)" test -d "$CGMNT$cg"
check_eq "memory.max of v1's cgroup" 134217728 "$(cat "$CGMNT$cg/memory.max")"
check_eq "cpu.max of v1's cgroup (50% of one CPU)" "50000 100000" "$(cat "$CGMNT$cg/cpu.max")"
check_eq "pids.max of v1's cgroup" 64 "$(cat "$CGMNT$cg/pids.max")"
mem=$(jq -r '.memory_bytes // 0' <<<"$js") peak=$(jq -r '.memory_peak_bytes // 0' <<<"$js")
check "status --json: memory_bytes of v1 ($mem) > 0" test "$mem" -gt 0
check "status --json: memory_peak_bytes ($peak) >= memory_bytes ($mem)" test "$peak" -ge "$mem"
check "status --json: memory_bytes ($mem) within memory-max" test "$mem" -le 134217728
svc_oom() { awk '$1 == "oom_kill" {print $2}' "$CGMNT${cg%/v1}/memory.events"; }
oom_before=$(svc_oom)

# The canary: serves on baton's sockets (LISTEN_FDS), then, once it has
# answered, allocates (and writes) 16 MiB at a time up to 1 GiB, far past
# memory-max, in its one process: the kernel's OOM killer ends it.
# (ready = tcp: baton's probe connects and closes, which is no answer.)
cat >"$T/hog.py" <<'PY'
import os, selectors, socket, sys
sel = selectors.DefaultSelector()
for fd in range(3, 3 + int(os.environ["LISTEN_FDS"])):
    sel.register(socket.socket(fileno=fd), selectors.EVENT_READ)
# (served_by reads "version=vN " up to the space)
body = ("version=%s hog\n" % os.environ.get("BATON_VERSION", "v?")).encode()
reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
hog, served = [], 0
while True:
    for key, _ in sel.select(timeout=0.1):
        try:
            c, _ = key.fileobj.accept()
            # (baton's readiness probe connects and closes: not an answer)
            if c.recv(4096):
                c.sendall(reply)
                served += 1
            c.close()
        except OSError:
            pass
    if served and len(hog) < 64:
        hog.append(b"x" * (16 << 20))
PY
URL=http://127.0.0.1:8080/
rc=0
timeout "$(slow 30)" "$BATON" deploy web --steps 50 --bake "$(slow 10)s" -- \
	/usr/bin/python3 "$T/hog.py" >"$T/deploy" 2>&1 &
dep=$!
# Connections until the canary has answered one (it then starts to grow);
# bounded, every one answered by v1 or v2.
got2=0
for _ in $(seq "$(slow 20)"); do
	v=$(served_by "$URL")
	[ "$v" = v2 ] && { got2=1; break; }
	kill -0 "$dep" 2>/dev/null || break
	sleep 0.1
done
wait "$dep" || rc=$?
cat "$T/deploy"
check "the canary v2 answered before it grew" test "$got2" = 1
check "the deploy exits non-zero" test "$rc" -ne 0
check "the deploy names the rollback to v1" grep -q "rolled back to v1" "$T/deploy"
reason=$("$BATON" status web --json | jq -r '.[0].last_rollback.reason')
echo "last rollback: $reason"
check "the reason is v2's SIGKILL by the OOM killer during the rollout" grep -q "v2 instance 0 (pid [0-9]*) killed by SIGKILL (OOM killer) during the rollout" <<<"$reason"
oom_after=$(svc_oom)
check "the kernel OOM-killed inside web's cgroups (memory.events oom_kill $oom_before -> $oom_after)" \
	test "$oom_after" -gt "$oom_before"
check_eq "v1's own cgroup had no OOM kill" 0 "$(awk '$1 == "oom_kill" {print $2}' "$CGMNT$cg/memory.events")"
check_eq "v1 is active" 1 "$(active_version)"
check_eq "v1 has 100%" 10000 \
	"$("$BATON" status web --json | jq -r '.[0].versions[] | select(.version == 1) | .weight')"
check_eq "v1 runs on, the same process" "$v1pid" "$(version_pids 1)"
check "new connections reach v1" only_version "$URL" v1 5
check "v2's cgroup is removed" test ! -d "$CGMNT${cg%/v1}/v2"
"$BATON" shutdown --stop >/dev/null
check "the agent exits after shutdown --stop" wait_gone 10 "$AGENT"
