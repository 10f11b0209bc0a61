#!/bin/bash
# SPDX-License-Identifier: MIT
# kill -9 of the agent in the middle of a rolling rollout, under wrk load
# (keep-alive and a new connection per request at once); instances = 4,
# max-surge 1, ready = tcp (probed through the steering map), drain-delay 2s:
#  1. while an old instance that left waits out its drain-delay (unsignalled);
#  2. while a new instance of batch 2 starts (not ready: it does not accept
#     for 4 s), the old instance it replaced having exited;
# each time the restarted agent rolls back: 4 old instances ready, every one
# of them in the steering map (both listen addresses' slots filled, the
# policy spreading over 4), new connections to the old version only; zero
# failed requests in every class, no refused or reset connection.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 4" "ready = tcp" "ready-timeout = $(slow 8)s" \
	"drain-policy = signal-then-wait" "drain-delay = 2s" "drain-timeout = 5s" "kill-after = 2s" \
	"backlog = 4096" "steering = per-connection" "strategy = rolling" "max-surge = 1" \
	"max-unavailable = 0"
start_agent || exit 1
URL=http://127.0.0.1:8080/

# The new build: instances past the first accept only after 4 s.
cat >"$T/v-slow" <<EOS
#!/bin/sh
[ "\$BATON_INSTANCE" != 0 ] && exec "$DEMO" --ready-delay-ms 4000
exec "$DEMO"
EOS
chmod +x "$T/v-slow"

rolling() { "$BATON" status web --json | jq -r ".[0].rollout.rolling.$1 // 0"; }

# slots_filled VERSION: how many (listen address, instance) slots of the
# version's 4 instances hold a socket in the sockets map, and the instances
# the policy spreads over, as "FILLED SPREAD".
slots_filled() {
	python3 - "$BPFDIR" "$1" "$("$BATON" status web --json | jq -r ".[0].versions[] | select(.version == $1) | .slot")" <<'PY'
import json, subprocess, sys
bpf, num, vslot = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MAX_VERSIONS, MAX_INSTANCES = 8, 32
def bt(*a):
    r = subprocess.run(["bpftool", "-j"] + list(a), capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
groups = [e["formatted"]["value"]["group"] for e in bt("map", "dump", "pinned", bpf + "/groups") or []]
filled = 0
for g in groups:
    for i in range(4):
        k = g * MAX_VERSIONS * MAX_INSTANCES + vslot * MAX_INSTANCES + i
        key = [str(b) for b in k.to_bytes(4, "little")]
        if bt("map", "lookup", "pinned", bpf + "/sockets", "key", *key) is not None:
            filled += 1
        else:
            print("empty: group %d instance %d (slot %d)" % (g, i, k), file=sys.stderr)
spread = [v["instances"] for e in bt("map", "dump", "pinned", bpf + "/services") or []
          for v in e["formatted"]["value"]["v"] if v["version"] == num]
print(filled, spread[0] if spread else 0, len(groups))
PY
}

nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c20 -d300s --timeout 5s "$URL"
ka=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
cl=$WRK
sleep 1
check_eq "before: v1's 8 slots filled, spread over 4, 2 addresses" "8 4 2" "$(slots_filled 1)"

# kill_at COND: ask the agent's status on its control socket every 20 ms (the
# CLI under ASan takes seconds), and kill -9 it the moment COND (python, over
# r = the rollout's "rolling" object) holds; prints that object, bounded.
kill_at() {
	python3 - "$BATON_CONTROL" "$AGENT" "$1" "$(slow 60)" <<'PY'
import json, os, signal, socket, sys, time
path, agent, cond, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b'{"cmd":"status","service":"web"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
        s.close()
        st = json.loads(buf)
        ro = (st.get("services") or st.get("status") or st)
        ro = ro[0]["rollout"] if isinstance(ro, list) else None
        r = ro.get("rolling") if ro else None
        if r and eval(cond, {}, {"r": r}):
            os.kill(agent, signal.SIGKILL)
            print(json.dumps(r))
            sys.exit(0)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    time.sleep(0.02)
print("not reached")
sys.exit(1)
PY
}

# kill_when NAME COND: deploy, kill -9 the agent once COND holds, restart it,
# wait for the rollback, check the old version.
kill_when() {
	local name=$1 active rc=0
	active=$(active_version)
	"$BATON" deploy web -- "$T/v-slow" >"$T/deploy.$name" 2>&1 &
	local dep=$!
	kill_at "$2" >"$T/kill.$name" || rc=$?
	cat "$T/kill.$name"
	check_eq "$name: the agent was killed at that point" 0 $rc
	kill -9 "$AGENT" 2>/dev/null
	wait_gone 5 "$AGENT"
	wait "$dep" 2>/dev/null
	start_agent >/dev/null
	for _ in $(seq "$(slow 200)"); do
		[ "$("$BATON" status web --json | jq -r '.[0].rollout')" = null ] && break
		sleep 0.1
	done
	check_eq "$name: after the restart v$active is active" "$active" "$(active_version)"
	check_eq "$name: with 4 ready instances" 4 \
		"$("$BATON" status web --json | jq -r "[.[0].versions[] | select(.version == $active) | .processes[] | select(.alive and .ready)] | length")"
	check_eq "$name: every instance's slots filled, the policy over 4" "8 4 2" "$(slots_filled "$active")"
	"$BATON" status web --json | jq -c ".[0].versions[] | select(.version == $active) | [.processes[] | [.instance, .pid, .ready]]"
	check "$name: the rollback says why" sh -c "'$BATON' status web --json | jq -r '.[0].last_rollback.reason' | grep -q 'agent restarted during the rolling rollout'"
	check "$name: new connections reach v$active only" only_version "$URL" "v$active" 20
}
kill_when "while an old instance drains" 'r["old"]["draining"] >= 1'
kill_when "while a new instance starts" 'r["batch"] == 2 and r["new"]["serving"] == 1 and r["new"]["starting"] == 1'

sleep 0.5
nstat_snap "$T/nstat.after"
wrk_stop; WRK=$ka; wrk_stop
cat "$T/wrk.ka" "$T/wrk.cl"
check_wrk_clean "keep-alive" "$T/wrk.ka"
check_wrk_clean "connection-per-request" "$T/wrk.cl"
check_tcp_clean "$T/nstat.before" "$T/nstat.after"
