#!/bin/bash
# SPDX-License-Identifier: MIT
# Where latency measurement costs anything, and the latency setting:
#  1. with latency = on, the two latency programs (cgroup_skb ingress and
#     egress) are attached to the agent's cgroup, where track is, and never
#     run for another server of the host (the kernel's bpf_stats: run_cnt);
#  2. they measure baton's connections (the metrics' response count);
#  3. a reload with latency = off for the service: its new connections are
#     not measured (the count stays) while the service serves on;
#  4. bad settings are refused with one line; [agent] latency changes only
#     with a restart;
#  5. latency = auto (the default) without a latency gate: nothing measured,
#     no latency program attached; [agent] latency = off with a service's
#     latency = on: the same.
. "$(dirname "$0")/lib.sh"

N=100
write_conf "instances = 1" "ready = notify" "latency = on"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
start_agent || exit 1
M=http://127.0.0.1:9464/metrics
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; cleanup' EXIT

agent_cg=$(sed -n 's/^0:://p' "/proc/$AGENT/cgroup")
progs=$(bpftool -j cgroup show "$CGMNT$agent_cg")
echo "programs on $agent_cg: $progs"
rx=$(jq -r '.[] | select(.name == "lat_rx") | .id' <<<"$progs")
tx=$(jq -r '.[] | select(.name == "lat_tx") | .id' <<<"$progs")
check "lat_rx is attached to the agent's cgroup, ingress" \
	test "$(jq -r '.[] | select(.name == "lat_rx") | .attach_type' <<<"$progs")" = cgroup_inet_ingress
check "lat_tx is attached to the agent's cgroup, egress" \
	test "$(jq -r '.[] | select(.name == "lat_tx") | .attach_type' <<<"$progs")" = cgroup_inet_egress
runs() { echo $(($(bpftool -j prog show id "$rx" | jq -r '.run_cnt // 0') + $(bpftool -j prog show id "$tx" | jq -r '.run_cnt // 0'))); }
not_grep() { ! grep -q "$@"; }
count() { curl -s "$M" | sed -n 's/^baton_version_response_seconds_count{service="web",version="v1"} //p'; }

# 1. Another server of the host, in this shell's cgroup.
python3 -m http.server 8099 --bind 127.0.0.1 >/dev/null 2>&1 &
EXTRA_PIDS=$!
for _ in $(seq "$(slow 50)"); do curl -s -o /dev/null http://127.0.0.1:8099/ && break; sleep 0.1; done
before=$(runs)
for _ in $(seq $N); do curl -s -o /dev/null http://127.0.0.1:8099/; done
check_eq "$N requests to another server: the latency programs ran 0 times" 0 $(($(runs) - before))

# 2. baton's service: measured.
c0=$(count)
before=$(runs)
for _ in $(seq $N); do curl -s -o /dev/null http://127.0.0.1:8080/; done
r=$(($(runs) - before))
check "$N requests to baton's service: the programs ran $r times (at least once per request each way)" \
	test "$r" -ge $((2 * N))
c1=$(count)
echo "response count $c0 -> $c1"
check "and measured each ($c0 -> $c1)" test "${c1:-0}" -ge $((${c0:-0} + N))
sleep 1.2
check "status --json has v1's latency" \
	test "$("$BATON" status web --json | jq -c '.[0].versions[0].latency')" != null

# 3. latency = off for web, by reload: new connections are not measured.
sed -i "s/^latency = on/latency = off/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
echo "$out"
check "reload with latency = off: web changed" grep -q "1 changed web" <<<"$out"
ok_reqs=0
for _ in $(seq $N); do curl -sf -o /dev/null http://127.0.0.1:8080/ && ok_reqs=$((ok_reqs + 1)); done
check_eq "web serves on: $N requests answered" "$N" "$ok_reqs"
check_eq "v1 is no longer measured: no response histogram in /metrics" "" "$(count)"
sleep 1.2
check_eq "and status --json shows no latency for it" null \
	"$("$BATON" status web --json | jq -c '.[0].versions[0].latency')"
# On again: a new histogram, which has exactly the requests made from now on.
sed -i "s/^latency = off/latency = on/" "$T/web.conf"
out=$("$BATON" reload 2>&1)
check "reload with latency = on again: web changed" grep -q "1 changed web" <<<"$out"
check_eq "a fresh histogram: 0 responses" 0 "$(count)"
for _ in $(seq 10); do curl -s -o /dev/null http://127.0.0.1:8080/; done
check_eq "then exactly the 10 requests made since" 10 "$(count)"
sed -i "s/^latency = on/latency = off/" "$T/web.conf"
"$BATON" reload >/dev/null 2>&1

# 4. Bad input: one line each, nothing changes.
bad_conf() { # NAME: the config with the service lines given, for agent -n
	sed '/^latency/d' "$T/web.conf" >"$T/bad.conf"
	shift
	local kv
	for kv in "$@"; do sed -i "/^\[service web\]/a $kv" "$T/bad.conf"; done
}
try_bad() { # DESCRIPTION PATTERN
	out=$("$BATON" agent -n -f "$T/bad.conf" 2>&1)
	rc=$?
	echo "$1 -> $out"
	check "$1: refused" test $rc -ne 0
	check_eq "$1: one line" 1 "$(printf '%s\n' "$out" | wc -l)"
	check "$1: says what ($2)" grep -q -- "$2" <<<"$out"
}
bad_conf x "latency = maybe"
try_bad "latency = maybe" "latency must be auto, on or off"
bad_conf x
sed -i "/^run-dir/a latency = auto" "$T/bad.conf"
try_bad "[agent] latency = auto" "latency must be on or off in \[agent\]"
bad_conf x "latency = off" "max-p99 = 100ms"
try_bad "latency = off with max-p99" "max-p99 needs latency measured"
bad_conf x "max-accept-wait-p99 = 100ms"
sed -i "/^run-dir/a latency = off" "$T/bad.conf"
try_bad "[agent] latency = off with a service's max-accept-wait-p99" "\[agent\] has latency = off"
cp "$T/web.conf" "$T/web.conf.ok"
sed -i "/^run-dir/a latency = off" "$T/web.conf"
out=$("$BATON" reload 2>&1)
echo "$out"
check "a reload changing [agent] latency is refused" grep -q "reload refused: \[agent\] settings" <<<"$out"
cp "$T/web.conf.ok" "$T/web.conf"
check "the agent runs on" kill -0 "$AGENT"

# 5. Restarts: latency = auto without a gate, then [agent] latency = off.
restart_with() { # AGENT-LINE SERVICE-LINE (either may be empty)
	kill -TERM "$AGENT"
	wait_gone 10 "$AGENT" || exit 1
	sed -i '/^latency/d' "$T/web.conf"
	[ -n "$1" ] && sed -i "/^run-dir/a $1" "$T/web.conf"
	[ -n "$2" ] && sed -i "/^\[service web\]/a $2" "$T/web.conf"
	start_agent || exit 1
	agent_cg=$(sed -n 's/^0:://p' "/proc/$AGENT/cgroup")
	progs=$(bpftool -j cgroup show "$CGMNT$agent_cg")
	echo "programs on $agent_cg: $progs"
}
no_latency() { # DESCRIPTION
	check_eq "$1: no latency program attached" 0 \
		"$(jq '[.[] | select(.name == "lat_rx" or .name == "lat_tx")] | length' <<<"$progs")"
	check "$1: track still is" jq -e 'any(.[]; .name == "track")' <<<"$progs" >/dev/null
	for _ in $(seq 20); do curl -s -o /dev/null http://127.0.0.1:8080/; done
	sleep 1.2
	"$BATON" status web >"$T/status.off"
	check "$1: status shows no response times" not_grep "response p50" "$T/status.off"
	check_eq "$1: status --json has no latency" null \
		"$("$BATON" status web --json | jq -c '.[0].versions[0].latency')"
}
restart_with "" ""
no_latency "latency = auto (the default) without a latency gate"
restart_with "latency = off" "latency = on"
no_latency "[agent] latency = off"
check "the log says latency is off" grep -q "latency is not measured (latency = off)" "$T/agent.log"
