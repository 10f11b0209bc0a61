#!/bin/bash
# SPDX-License-Identifier: MIT
# Rolling replacement under wrk load (keep-alive and a new connection per
# request at once), sampled every 20 ms:
#  1. instances = 4, max-surge 1, max-unavailable 0, pause 5 s: never more
#     than 5 processes of the service (its cgroups), never fewer than 4
#     serving instances (the agent's steering state); the new version's
#     share of new connections (the kernel's accepted counts of each
#     version, while the policy holds each weight) steps through 25/50/75/100% (+-5);
#  2. max-surge 0, max-unavailable 1 (in place): never more than 4 processes.
# Zero failed requests in every class, no refused or reset connection.
. "$(dirname "$0")/lib.sh"

write_conf "instances = 4" "ready = notify" "ready-timeout = $(slow 5)s" \
	"drain-policy = signal-then-wait" "drain-timeout = 5s" "kill-after = 2s" "backlog = 4096" \
	"steering = per-connection" "strategy = rolling" "max-surge = 1" "max-unavailable = 0" \
	"pause = 5s"
start_agent || exit 1
URL=http://127.0.0.1:8080/
[ -n "$CGMNT" ] || { not_ok "no cgroup v2 mount: the process count needs the versions' cgroups"; exit 1; }

# sampler OUT: every 20 ms, the processes of the service: the pids in its
# versions' cgroups whose parent is the agent (under ASan an instance's exit
# runs LeakSanitizer, whose tracer is a short-lived child of the instance in
# the same cgroup; it is not an instance).  Newest version first: the agent
# starts an instance only after it saw the one it replaces exit, so reading
# the old version's list after the new one's never counts one twice.  In
# python: a bash loop forks too much to keep 20 ms on a loaded machine.
sampler() {
	python3 - "$CGMNT$CGDIR/services/web" "$AGENT" "$T/stop-sampler" "$(slow 120)" >"$1.procs" <<'PY'
import glob, os, sys, time
base, agent, stop, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
end = time.monotonic() + limit
tick = time.monotonic()
while time.monotonic() < end and not os.path.exists(stop):
    n = 0
    for d in sorted(glob.glob(base + "/v*"), key=lambda d: -int(d.rsplit("/v", 1)[1])):
        try:
            pids = open(d + "/cgroup.procs").read().split()
        except OSError:
            continue
        for p in pids:
            try:
                st = open("/proc/%s/stat" % p).read()
            except OSError:
                continue
            if st.rsplit(")", 1)[1].split()[1] == agent:
                n += 1
    print("p", n, time.monotonic_ns() // 1000000, flush=True)
    tick += 0.02
    time.sleep(max(0.0, tick - time.monotonic()))
PY
}
# serving_sampler OUT: the instances the agent steers to, as often as baton
# status answers (it lists every process: slower on a loaded machine; the
# bound at every step is asserted by tests/unit/test_fsm_rolling.c).
serving_sampler() {
	local end=$((SECONDS + $(slow 120)))
	while [ $SECONDS -lt $end ] && [ ! -e "$T/stop-sampler" ]; do
		"$BATON" status web --json 2>/dev/null | jq -r '.[0] |
			if .rollout != null and .rollout.rolling != null then
				"s \(.rollout.rolling.new.serving + .rollout.rolling.old.serving)"
			else "s \([.versions[] | select(.state == "active") | .processes[] |
				select(.alive and .ready)] | length)" end'
		sleep 0.02
	done >"$1.serving"
}
# share_sampler OUT NEW OLD: every 0.2 s, from the kernel's maps (not baton
# status, which is slow on a loaded machine): NEW's weight in the policy and
# both versions' accepted connections, as "weight accepted-new accepted-old"
# (one python process: jq per sample was too slow to start under load).
share_sampler() {
	python3 - "$BPFDIR" "$2" "$3" "$T/stop-sampler" "$(slow 120)" >"$1" <<'PY'
import json, os, subprocess, sys, time
bpf, new, old, stop, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
def dump(name):
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", bpf + "/" + name],
                         capture_output=True, text=True).stdout
    return [e["formatted"] for e in json.loads(out or "[]")]
end = time.monotonic() + limit
while time.monotonic() < end and not os.path.exists(stop):
    w = [v["weight"] for e in dump("services") for v in e["value"]["v"] if v["version"] == new]
    acc = {e["key"]["version"]: e["value"]["accepted"] for e in dump("versions")}
    print(w[0] if w else 0, acc.get(new, 0), acc.get(old, 0), flush=True)
    time.sleep(0.2)
PY
}
# share_at FILE WEIGHT: percent of new connections the new version got while
# the policy gave it WEIGHT (between consecutive samples both at WEIGHT),
# and how many connections that is: "percent count".
share_at() {
	awk -v w="$2" 'NR > 1 && $1 == w && pw == w && $3 >= po {dn += $2 - pn; dold += $3 - po}
		{pw = $1; pn = $2; po = $3}
		END {printf "%d %d\n", (dn + dold) ? dn * 100 / (dn + dold) : -1, dn + dold}' "$1"
}

run() {
	local name=$1 maxprocs=$2 minserving=$3 old new rc=0 k s p n iv
	shift 3
	old=$(active_version)
	new=$((old + 1))
	rm -f "$T/stop-sampler"
	nstat_snap "$T/nstat.$name.before"
	wrk_start "$T/wrk.$name.ka" -t1 -c20 -d300s --timeout 5s "$URL"
	local ka=$WRK
	wrk_start "$T/wrk.$name.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" "$URL"
	local cl=$WRK
	sleep 1
	sampler "$T/$name" & local sp=$!
	serving_sampler "$T/$name" & local ss=$!
	share_sampler "$T/$name.share" "$new" "$old" & local sh=$!
	EXTRA_PIDS="${EXTRA_PIDS:-} $sp $ss $sh"
	# The deploy starts once every sampler runs (a loaded machine starts
	# python or bpftool late: a sampler that begins after the rollout sees
	# nothing of it).
	for _ in $(seq "$(slow 300)"); do
		[ -s "$T/$name.procs" ] && [ -s "$T/$name.share" ] && [ -s "$T/$name.serving" ] && break
		sleep 0.1
	done
	check "$name: the samplers run" test -s "$T/$name.procs" -a -s "$T/$name.share" -a -s "$T/$name.serving"
	timeout "$(slow 120)" "$BATON" deploy web "$@" -- "$DEMO" >"$T/deploy.$name" 2>&1 &
	local dep=$!
	wait "$dep" || rc=$?
	cat "$T/deploy.$name"
	check "$name: the rolling deploy succeeded" test $rc = 0
	check_eq "$name: v$new active" "$new" "$(active_version)"
	check "$name: v$old exits" wait_gone 10 $(version_pids "$old")
	sleep 0.5
	sleep 1.5 # the share at 100%
	touch "$T/stop-sampler"
	wait "$sp" "$ss" "$sh"
	if [ "$name" = surge ]; then
		# The new version's share of new connections follows its share of
		# the serving instances: 1, 2, 3 of 4, then all.
		for k in 1 2 3 4; do
			read -r s n < <(share_at "$T/$name.share" $((k * 2500)))
			echo "v$new at $((k * 25))% in the policy: $s% of $n new connections"
			check "$name: $k of 4 new instances serving: v$new has $((k * 25))% +-5 of new connections ($s% of $n)" \
				test "$n" -ge 200 -a "$s" -ge $((k * 25 - 5)) -a "$s" -le $((k * 25 + 5))
		done
	fi
	nstat_snap "$T/nstat.$name.after"
	wrk_stop; WRK=$ka; wrk_stop
	WRK=$cl
	cat "$T/wrk.$name.ka" "$T/wrk.$name.cl"
	p=$(awk '{print $2}' "$T/$name.procs" | sort -n | tail -1)
	s=$(awk '{print $2}' "$T/$name.serving" | sort -n | head -1)
	echo "$name: $(wc -l <"$T/$name.procs") process samples (max $p), $(wc -l <"$T/$name.serving") serving samples (min $s)"
	# The mean interval between process samples (20 ms asked, plus the read).
	iv=$(awk 'NR == 1 {a = $3} {b = $3} END {print (NR > 1) ? int((b - a) / (NR - 1)) : 999}' "$T/$name.procs")
	check "$name: processes sampled every ${iv} ms on average (at most 30)" test "$iv" -le 30
	check "$name: never more than $maxprocs processes (max $p)" test "${p:-99}" -le "$maxprocs"
	check "$name: never fewer than $minserving serving instances (min $s)" test "${s:-0}" -ge "$minserving"
	check_wrk_clean "$name keep-alive" "$T/wrk.$name.ka"
	check_wrk_clean "$name connection-per-request" "$T/wrk.$name.cl"
	check_tcp_clean "$T/nstat.$name.before" "$T/nstat.$name.after"
}

run surge 5 4
run inplace 4 3 --max-surge 0 --max-unavailable 1 --pause 0
"$BATON" status web
