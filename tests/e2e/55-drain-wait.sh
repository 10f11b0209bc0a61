#!/bin/bash
# SPDX-License-Identifier: MIT
# wait-then-signal: under wrk keep-alive load the old version keeps its
# long-lived connections and is not signalled; it is signalled within
# milliseconds of its last close.  A version that never drains is stopped at
# exactly drain-timeout + kill-after.  An idle agent with thousands of live
# connections uses no CPU.
. "$(dirname "$0")/lib.sh"

# SIGWINCH: the demo server ignores it, so only SIGKILL ends a version.
# Step 1's drain-timeout (DRAIN1 s) must outlast its checks and the end of
# its load: 6 s did not, on a host at load average 11 to 14 (v1 was then
# stopped with wrk's 20 connections still open and never signalled for its
# last close), so 30 s, scaled; it is never waited out.  Step 2 waits its
# drain-timeout out (DRAIN s, set by a reload before it): 6 s, scaled.
DRAIN1=$(slow 30)
DRAIN=$(slow 6)
conf() {
	EXEC="$DEMO --idle-ms 600000" write_conf "instances = 2" "ready = notify" \
		"drain-policy = wait-then-signal" "exit-signal = WINCH" "drain-timeout = ${1}s" \
		"kill-after = 1s" "backlog = 4096"
}
conf "$DRAIN1"
start_agent || exit 1
field() { "$BATON" status web --json | jq ".[0].versions[] | select(.version == $1) | .$2"; }

# 1. wrk holds 20 keep-alive connections to v1; the deploy comes in the
#    middle, and the load is ended (by PID, right after the checks, so a slow
#    deploy cannot outlive it) before v1's drain-timeout.  -d bounds it.
wrk_start "$T/wrk" -t1 -c20 -d"$(slow 30)"s --timeout 5s http://127.0.0.1:8080/
sleep 0.5
check "deploy v2 under load" "$BATON" deploy web -- "$DEMO" --idle-ms 600000
sleep 0.3
check_eq "v1 keeps wrk's 20 connections" 20 "$(field 1 live)"
check_eq "v1 is not signalled while they are open" false "$(field 1 signalled)"
wrk_stop
for f in connect read write timeout non2xx; do
	check_eq "wrk $f errors" 0 "$(wrk_field "$T/wrk" $f)"
done
for _ in $(seq "$(slow 40)"); do grep -q "web v1: last connection closed" "$T/agent.log" && break; sleep 0.05; done
# The signal goes out in the loop turn the kernel's event wakes (the ring
# buffer's fd): the agent's own share of the delay is that turn's CPU before
# it; the wall-clock figure, from the kernel's timestamp, adds the
# scheduler's wake-up (make bench's switch part measures it on a quiet
# machine; 7.9 ms here once at load 19).  That CPU is checked in step 3,
# against a baseline of the same run.
line=$(grep -m1 "web v1: last connection closed; signalled" "$T/agent.log")
us=$(sed -n 's/.*signalled \([0-9]*\) us later.*/\1/p' <<<"$line")
cpu=$(sed -n 's/.*(\([0-9]*\) us of the agent.s CPU in that loop turn).*/\1/p' <<<"$line")
echo "v1 signalled ${us:-?} us after wrk's last close, ${cpu:-?} us of the agent's CPU into the loop turn"
check "v1 signalled in the loop turn that saw wrk's last close" test -n "$cpu"

# 2. v2 holds a connection forever and ignores its exit signal.
conf "$DRAIN"
check "reload: drain-timeout ${DRAIN}s" "$BATON" reload
exec 5<>/dev/tcp/127.0.0.1/8080
printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' >&5
v2=$(version_pids 2)
check "deploy v3" "$BATON" deploy web -- "$DEMO" --idle-ms 600000
# shellcheck disable=SC2086
wait_gone 10 $v2 # 6 + 1 + a margin, scaled
# From the switch-out, by the agent's monotonic clock (its log line), not the
# test's: v3's start and readiness before the switch took more than the
# margin on a loaded machine.  Never before drain-timeout + kill-after; the
# margin after it is a time bound, and scales.
for _ in $(seq "$(slow 20)"); do grep -q "web v2: all processes exited" "$T/agent.log" && break; sleep 0.1; done
ms=$(sed -n 's/.*web v2: all processes exited, stopped \([0-9]*\)\.\([0-9]*\) s after switch-out.*/\1\2/p' "$T/agent.log")
ms=$((10#${ms:-0}))
early=$(((DRAIN + 1) * 1000)) late=$(((DRAIN + 1) * 1000 + $(slow 600)))
check "never-draining v2 stopped at drain-timeout + kill-after (${ms} ms, want $early..$late)" \
	test $ms -ge $early -a $ms -le $late
grep -q "web v2: 1 connection(s) still open at drain-timeout" "$T/agent.log" &&
	ok "agent logged the connection left at drain-timeout" || not_ok "no drain-timeout log"
exec 5>&-

# 3. 2000 idle connections to v3; the agent sleeps.  Its CPU time, exact to
#    the nanosecond (every thread's schedstat, not clock ticks, which charge a
#    whole tick to whoever runs when it fires), over 3 s without connections
#    and 3 s with 2000: its timers read per-version counters, never a
#    connection, so the 2000 must add next to nothing.  Work per connection on
#    each of its 3 wake-ups a second (one map lookup, about 1 us) would add
#    18 ms.
cpu_ns() { cat /proc/"$AGENT"/task/*/schedstat 2>/dev/null | awk '{n += $1} END {printf "%.0f\n", n}'; }
idle_window() {
	local c0
	field 3 live >/dev/null
	c0=$(cpu_ns)
	sleep 3
	echo $((($(cpu_ns) - c0) / 1000))
}
check_eq "v3 has no connection yet" 0 "$(field 3 live)"
us0=$(idle_window)
# Step 1's bound: the turn that signals did less work before the signal than
# the idle agent does in 3 s (its timers, nothing to do).  Measured: the turn
# 0.2-0.8 ms, the idle agent 8-15 ms on the host (ASan); 1.2 ms and 99 ms in
# the VM under TCG.  A fixed bound on CPU time is one on speed: under TCG the
# guest charges a running thread the time the host took its vCPU away (17.7 ms
# against the 10 ms bound this replaced, once, in a starved VM).  Both figures
# come from this agent in this run, so they slow down together; 20 ms of CPU
# added before the zero events' handling fails it (tried on the host).
check "v1's signal turn used ${cpu:-?} us of CPU before the signal, < the idle agent's ${us0} us in 3 s" \
	test "${cpu:-999999999}" -lt "$us0"
python3 - "$T/hold.ready" "$(slow 30)" <<'PY' &
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
conns = []
for i in range(2000):
    s = socket.create_connection(("127.0.0.1", 8080), timeout=5)
    conns.append(s)
open(sys.argv[1], "w").close()
time.sleep(float(sys.argv[2]))
PY
EXTRA_PIDS=$!
for _ in $(seq "$(slow 100)"); do [ -e "$T/hold.ready" ] && break; sleep 0.1; done
for _ in $(seq "$(slow 40)"); do [ "$(field 3 live)" = 2000 ] && break; sleep 0.05; done
check_eq "2000 live connections counted" 2000 "$(field 3 live)"
us1=$(idle_window)
echo "agent CPU in 3 s: ${us0} us without connections, ${us1} us with 2000"
# The margin is CPU time, a bound on speed: scaled under emulation.
check "idle agent with 2000 live connections used ${us1} us of CPU in 3 s, <= ${us0} us without them + $(slow 5) ms" \
	test "$us1" -le $((us0 + $(slow 5000)))
kill "$EXTRA_PIDS"
