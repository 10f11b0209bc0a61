#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent's stderr is a pipe whose reader stops (a FIFO read by a `cat`
# that gets SIGSTOP, as a stalled journald or a terminal on Ctrl-S): the
# pipe is full, then more than the log's queue (64 KiB) is logged.  The
# agent goes on as if nothing happened: the control socket answers at once,
# `baton status` within a bound, a deploy completes with its drain, and the
# kill-after bound of a hung version fires on time.  The lines that did not
# fit are dropped and counted (baton_log_lines_dropped_total); once the
# reader goes on, the log says how many, and the lines after follow in order.
# At exit with stderr stuck again, the agent waits for it 1 s, no more.
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
M=http://127.0.0.1:9464/metrics
metric() { curl -s --max-time 5 "$M" | awk -v k="$1" '$1 == k {print $2}'; }
ms() { date +%s%3N; }

mkfifo "$T/err.fifo"
cat "$T/err.fifo" >>"$T/agent.log" &
CAT=$!
EXTRA_PIDS="${EXTRA_PIDS:-} $CAT"
# The versions' own output goes to a file: they inherit the agent's stderr,
# and a child that writes to a pipe nobody reads waits, which is its own
# business, not the agent's (this test is about the agent).
cat >"$T/demo.sh" <<EOS
#!/bin/sh
exec "$DEMO" "\$@" >>"$T/children.log" 2>&1
EOS
chmod +x "$T/demo.sh"
# v1 hangs on SIGTERM (its worker ignores it): only the kill-after bound ends it.
EXEC="$T/demo.sh --workers 1 --workers-ignore-term" write_conf "instances = 1" "ready = notify" \
	"health = none" "ready-timeout = $(slow 5)s" "drain-policy = signal-then-wait" \
	"drain-timeout = 1s" "kill-after = 1s"
sed -i "/^run-dir/a metrics = 127.0.0.1:9464" "$T/web.conf"
AGENT_STDERR=$T/err.fifo start_agent || exit 1
check_eq "nothing dropped while stderr is read" 0 "$(metric baton_log_lines_dropped_total)"

# The reader stops; the pipe fills up (with lines of our own, told apart later).
kill -STOP "$CAT"
filled=$(python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
n = 0
try:
    while True:
        n += os.write(fd, b"filler: the pipe is full\n")
except BlockingIOError:
    pass
print(n)' "$T/err.fifo")
echo "filled the pipe with $filled bytes"
check "the pipe is full" test "$filled" -gt 0

# 3000 requests that each log a line (~180 KiB): the loop must not wait for stderr.
t0=$(ms)
out=$(python3 "$HERE/log-flood.py" "$T/control.sock" 3000)
t1=$(ms)
echo "log-flood: $out (requests, slowest reply in s), $((t1 - t0)) ms in all"
# Before the writer thread, the first of them got no reply at all (the loop
# waited in write(2) for good); 4 s leaves room for a loaded machine (1.7 s
# measured at worst, under ASan with a load average of 12 on 2 cores).
check "3000 requests answered, each in under 4 s" \
	awk -v o="$out" -v b="$(slow 4)" 'BEGIN { split(o, a, " "); exit !(a[1] == 3000 && a[2] < b) }'
d1=$(metric baton_log_lines_dropped_total)
echo "dropped so far: $d1"
check "log lines were dropped and counted" test "${d1:-0}" -gt 0

t0=$(ms)
"$BATON" status >/dev/null
t1=$(ms)
echo "baton status: $((t1 - t0)) ms"
# (an ASan CLI took 0.5-3.0 s here under load; before, no reply within its 10 s)
check "baton status answers within 5 s" test $((t1 - t0)) -lt $((5000 * SLOW))

# v2 replaces the hung v1: its drain ends with the kill-after bound, on time
# (by the agent's own clock: its "drained" event in RUN-DIR/events.jsonl, written by
# its own thread, says how long after switch-out; the test's clock adds a loaded machine).
v1=$(version_pids 1)
t0=$(ms)
check "deploy of v2" "$BATON" deploy web -- "$T/demo.sh"
wait_gone 10 $v1
t1=$(ms)
ev() { jq -s -c "[.[] | select(.version == $1 and .event == \"$2\")][0]" "$T/run/events.jsonl"; }
for _ in $(seq "$(slow 50)"); do [ "$(ev 1 drained)" != null ] && break; sleep 0.1; done
reason=$(ev 1 drained | jq -r .reason)
# "stopped 2.013 s after switch-out": the agent's own measure, in ms.
drain_ms=$(sed -n 's/^stopped \([0-9]*\)\.\([0-9]\{3\}\) s after switch-out.*/\1\2/p' <<<"$reason" | sed 's/^0*//')
echo "v1 gone $((t1 - t0)) ms after the deploy started; the agent says: $reason"
# (0.4 s late measured under ASan with a load average of 11 on 2 cores)
check "v1 killed at its bound (1 s drain-timeout + 1 s kill-after), at most 1 s late" \
	test "${drain_ms:-0}" -ge 2000 -a "${drain_ms:-0}" -lt $((2000 + 1000 * SLOW))
# v3 replaces v2, which drains on SIGTERM as a graceful server does.
v2=$(version_pids 2)
t0=$(ms)
check "deploy of v3" "$BATON" deploy web -- "$T/demo.sh"
wait_gone 5 $v2
t1=$(ms)
echo "v2 drained and gone $((t1 - t0)) ms after the deploy started"
check_eq "v3 is active" 3 "$(active_version)"
check_eq "v3 serves" v3 "$(served_by http://127.0.0.1:8080/)"
check "nothing of the deploys reached the stopped reader's log yet" \
	test -z "$(grep 'event=completed version=3' "$T/agent.log")"
check "the agent runs" kill -0 "$AGENT"

# The reader goes on: the log says how many lines it missed, then goes on.
d2=$(metric baton_log_lines_dropped_total)
kill -CONT "$CAT"
for _ in $(seq "$(slow 50)"); do grep -q "log line(s) dropped" "$T/agent.log" && break; sleep 0.1; done
notice=$(grep -n "log line(s) dropped" "$T/agent.log")
echo "$notice"
check_eq "one line says lines were dropped" 1 "$(grep -c "log line(s) dropped" "$T/agent.log")"
n=$(sed -n 's/^[0-9]*:baton: \([0-9]*\) log line(s) dropped: stderr did not take them in time.*/\1/p' <<<"$notice")
check_eq "it counts every line dropped (the metric)" "$d2" "$n"
check_eq "none dropped since" "$d2" "$(metric baton_log_lines_dropped_total)"
"$BATON" pin web 10.8.0.0/16 v3 >/dev/null
for _ in $(seq "$(slow 50)"); do grep -q "clients in 10.8.0.0/16 pinned" "$T/agent.log" && break; sleep 0.1; done
# In order: start-up, the filler the pipe held, the lines the queue held, the notice, a later line.
line() { grep -n -m1 -- "$1" "$T/agent.log" | cut -d: -f1; }
order="$(line 'agent running') $(line 'filler: the pipe is full') $(line 'clients in 10.9.0.0/24 pinned') $(line 'log line(s) dropped') $(line 'clients in 10.8.0.0/16 pinned')"
echo "line numbers: $order"
check "the lines are in order" sh -c "echo $order | tr ' ' '\n' | sort -n -c && [ \$(echo $order | wc -w) = 5 ]"
check "no line cut or mixed with another" sh -c "! grep -E 'pinned|unpinned' '$T/agent.log' |
	grep -v -E '^baton: web: (clients in 10\.[0-9.]+/[0-9]+ pinned to v[0-9]+|unpinned 10\.[0-9.]+/[0-9]+)\$'"
check "the agent still runs" kill -0 "$AGENT"

# At exit, lines still queued get a bounded time (1 s): a stuck stderr does not hold the agent.
kill -STOP "$CAT"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
try:
    while True:
        os.write(fd, b"filler: the pipe is full\n")
except BlockingIOError:
    pass' "$T/err.fifo"
python3 "$HERE/log-flood.py" "$T/control.sock" 40 >/dev/null
t0=$(ms)
kill -TERM "$AGENT"
wait_gone 10 "$AGENT"
t1=$(ms)
echo "the agent exited $((t1 - t0)) ms after SIGTERM with its stderr stuck"
# Measured: 1.1-1.2 s without sanitizers (the queue's 1 s + 0.15 s of exit),
# 2.1-7.8 s under ASan (LeakSanitizer's exit scan, a load average of 12 on 2
# cores); before the writer thread it never exited.  The 1 s itself is
# asserted to the millisecond by tests/unit/test_logq.c.
check "the agent exits in under 10 s with stderr stuck" test $((t1 - t0)) -lt $((10000 * SLOW))
kill -CONT "$CAT"
exit 0
