# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers for end-to-end tests.  Each test runs in its own network namespace
# (tests/run.sh starts it under unshare -n), pins its maps in its own bpffs
# directory, and ends every process it started by PID.
set -u
B=${BATON_BUILD:?run through tests/run.sh, or set BATON_BUILD}
BATON=$B/baton
DEMO=$B/demo-server
T=$(mktemp -d /tmp/baton-e2e.XXXXXX)
TEST_ID=$$-$RANDOM
BPFDIR=/sys/fs/bpf/baton-e2e-$TEST_ID
export BATON_CONTROL=$T/control.sock
# This test's own cgroup subtree (tests run in parallel with the same service
# names), below the cgroup2 mount; empty CGMNT: no cgroup v2 here.
CGMNT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
CGDIR=/baton-e2e-$TEST_ID
PASS=0 FAIL=0 AGENT=
# Time bounds scale by BATON_SLOW, a whole factor (tests/kvm/run.sh sets 10
# under emulation, where everything runs 10-50x slower).  Only bounds on
# time scale: counts and what a test asserts do not.
SLOW=${BATON_SLOW:-1}
case $SLOW in '' | *[!0-9]* | 0) echo "BATON_SLOW must be a whole number >= 1, not '$SLOW'"; exit 1 ;; esac
# slow N: N seconds (or tries) scaled.
slow() { echo $(($1 * SLOW)); }

ip link set lo up

ok() { PASS=$((PASS + 1)); echo "ok: $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: pass when COMMAND succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# expect_err DESCRIPTION PATTERN COMMAND...: non-zero exit and exactly one error
# line ("baton..."; a deploy's progress lines may come before it) matching PATTERN.
expect_err() {
	local d=$1 pat=$2 out rc
	shift 2
	out=$("$@" 2>&1); rc=$?
	if [ $rc -ne 0 ] && [ "$(grep -c '^baton' <<<"$out")" = 1 ] &&
		grep '^baton' <<<"$out" | grep -q -- "$pat"; then
		ok "$d: $out"
	else
		not_ok "$d: rc=$rc, output: $out"
	fi
}
# check_eq DESCRIPTION WANT GOT
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: want '$2', got '$3'"; fi; }

# PIDs of every process carrying this test's marker in its environment.
test_pids() {
	local f pid
	for f in /proc/[0-9]*/environ; do
		pid=${f#/proc/}; pid=${pid%/environ}
		{ tr "\0" "\n" <"$f"; } 2>/dev/null | grep -qx "E2E_TEST_ID=$TEST_ID" && echo "$pid"
	done
}

# cg_cleanup: end what is left in this test's cgroups (by the kernel's list of
# their pids) and remove them, deepest first.
cg_cleanup() {
	local d p
	[ -n "$CGMNT" ] && [ -d "$CGMNT$CGDIR" ] || return 0
	for d in $(find "$CGMNT$CGDIR" -depth -type d); do
		for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	done
	for d in $(find "$CGMNT$CGDIR" -depth -type d); do
		for p in $(seq 20); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
	done
}

cleanup() {
	local p
	# The agent runs under ASan+UBSan: anything they reported is a failure.
	if [ -f "$T/agent.log" ] &&
		grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T/agent.log"; then
		not_ok "sanitizer report in the agent log: $(grep -m1 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/agent.log")"
	fi
	[ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null
	for p in $(test_pids); do kill -9 "$p" 2>/dev/null; done
	for p in ${EXTRA_PIDS:-} ${LOAD_PIDS:-}; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -d "$BPFDIR" ] && rm -rf "$BPFDIR"
	cg_cleanup
	if [ "$FAIL" != 0 ] && [ -f "$T/agent.log" ]; then
		cp "$T/agent.log" /tmp/baton-e2e-agent.log 2>/dev/null
		echo "-- agent log (last 60 lines; all of it in /tmp/baton-e2e-agent.log):"
		tail -60 "$T/agent.log"
	fi
	rm -rf "$T"
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" = 0 ] || exit 1
}
trap cleanup EXIT

# write_conf [KEY=VALUE lines for the service...]: service "web" on v4 and v6,
# running $EXEC (default: the demo server).  Give ready-timeout as
# "ready-timeout = $(slow 5)s": starting a version is slower under emulation.
write_conf() {
	{
		echo "[agent]"
		echo "control = $T/control.sock"
		echo "bpf-dir = $BPFDIR"
		echo "run-dir = $T/run"
		echo "cgroup-dir = ${CGROUP_DIR:-$CGDIR}"
		echo "[service web]"
		echo "listen = 127.0.0.1:8080"
		echo "listen = [::1]:8080"
		echo "exec = ${EXEC:-$DEMO}"
		echo "environment = E2E_TEST_ID=$TEST_ID"
		local kv ready=
		for kv in "$@"; do
			echo "$kv"
			case $kv in ready-timeout*) ready=1 ;; esac
		done
		# The default ready-timeout (10 s) is a bound on time too.
		[ -z "$ready" ] && [ "$SLOW" != 1 ] && echo "ready-timeout = $(slow 10)s"
	} >"$T/web.conf"
}

# start_agent: run the agent in the background, wait (bounded) until it answers
# and every instance of the first version is ready.
# AGENT_STDERR: the agent's stderr there instead (a FIFO), its stdout still in agent.log.
start_agent() {
	if [ -n "${AGENT_STDERR:-}" ]; then
		"$BATON" agent -d ${E2E_AGENT_VERBOSE:-} -f "$T/web.conf" >>"$T/agent.log" \
			2>"$AGENT_STDERR" &
	else
		"$BATON" agent -d ${E2E_AGENT_VERBOSE:-} -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
	fi
	AGENT=$!
	disown "$AGENT" # ended by PID in cleanup; no job-control noise
	local i
	local out
	for i in $(seq "$(slow 100)"); do
		# (jq -e succeeds on empty input: require an answer first)
		out=$("$BATON" status --json 2>/dev/null) && [ -n "$out" ] &&
			jq -e 'all(.[].versions[].processes[]; .ready) and all(.[]; .active != null)' \
				<<<"$out" >/dev/null && return 0
		kill -0 "$AGENT" 2>/dev/null || break
		sleep 0.1
	done
	echo "agent did not come up:"; cat "$T/agent.log"
	return 1
}

# lighttpd_activated_conf [LINE...]: $T/lighttpd.conf for lighttpd from Debian,
# socket-activated by baton on 127.0.0.1:8080 and [::1]:8080 (the config's
# listen lines), serving $T/www, with LINEs added.
lighttpd_activated_conf() {
	{
		echo "server.document-root = \"$T/www\""
		echo "server.port = 8080"
		echo "server.bind = \"127.0.0.1\""
		echo "\$SERVER[\"socket\"] == \"[::1]:8080\" { }"
		echo "server.systemd-socket-activation = \"enable\""
		echo "server.errorlog = \"$T/lighttpd.err\""
		printf '%s\n' "$@"
	} >"$T/lighttpd.conf"
}

# Version that serves a new connection: "v3".
served_by() { curl -s --max-time "$(slow 2)" "$1" | sed -n 's/^version=\([^ ]*\) .*/\1/p'; }

# only_version URL WANT N: N new connections, all served by WANT.
only_version() {
	local i v
	for i in $(seq "$3"); do
		v=$(served_by "$1")
		[ "$v" = "$2" ] || { echo "connection $i served by '$v', want $2"; return 1; }
	done
}

# pids of a version from baton status --json: version_pids 2
version_pids() {
	"$BATON" status web --json | jq -r ".[0].versions[] | select(.version == $1) |
		.processes[] | select(.alive) | .pid"
}
active_version() { "$BATON" status web --json | jq -r '.[0].active'; }

# wait_gone SECONDS PID...: every PID exits within SECONDS (scaled).
wait_gone() {
	local limit=$(($1 * SLOW)) p end
	shift
	end=$((SECONDS + limit))
	for p in "$@"; do
		while kill -0 "$p" 2>/dev/null; do
			[ $SECONDS -ge $end ] && { echo "pid $p still running after ${limit}s"; return 1; }
			sleep 0.05
		done
	done
}

# nstat_get NAME: absolute counter in this namespace.
nstat_get() { nstat -asz "$1" 2>/dev/null | awk -v n="$1" '$1 == n {print $2}' | head -1; }
NSTAT_KEYS="TcpAttemptFails TcpOutRsts TcpExtTCPMigrateReqSuccess TcpExtTCPMigrateReqFailure TcpExtListenOverflows TcpExtListenDrops TcpEstabResets TcpExtTCPAbortOnData TcpExtTCPAbortOnClose TcpExtTCPAbortOnLinger TcpExtTCPAbortOnTimeout TcpExtTCPAbortFailed TcpExtTCPReqQFullDrop TcpExtPAWSEstab TcpExtTWRecycled TcpExtTW TcpExtTCPChallengeACK TcpExtTCPSYNChallenge TcpExtTWKilled TcpExtTCPTimeWaitOverflow TcpRetransSegs"
nstat_snap() { local k; for k in $NSTAT_KEYS; do echo "$k $(nstat_get "$k")"; done >"$1"; }
# nstat_delta BEFORE AFTER NAME
nstat_delta() {
	local a b
	a=$(awk -v n="$3" '$1 == n {print $2}' "$1"); b=$(awk -v n="$3" '$1 == n {print $2}' "$2")
	echo $(( ${b:-0} - ${a:-0} ))
}

# rst_start FILE: capture every RST on loopback (cheap: RST packets only).
rst_start() {
	tcpdump -i lo -nn -l -S 'tcp[tcpflags] & tcp-rst != 0' >"$1" 2>"$1.err" &
	RSTCAP=$!
	local i
	for i in $(seq "$(slow 50)"); do grep -q "listening on" "$1.err" && return 0; sleep 0.1; done
	echo "tcpdump did not start: $(cat "$1.err")"
	return 1
}
rst_stop() { sleep 0.2; kill "$RSTCAP" 2>/dev/null; wait "$RSTCAP" 2>/dev/null; }
# rst_count FILE server-abort|server-bare|client-abort|client-bare PORT: RSTs
# from the server's PORT or from a client, with ACK (an abort: close() with
# unread data, SO_LINGER 0) or bare (the kernel's answer to an ACK-bearing
# segment that found no socket of its connection).
rst_count() {
	case $2 in
	server-abort) grep -c "\.$3 > .*Flags \[R\.\]" "$1" ;;
	server-bare) grep -c "\.$3 > .*Flags \[R\]," "$1" ;;
	client-abort) grep -v "\.$3 > " "$1" | grep -c "Flags \[R\.\]" ;;
	client-bare) grep -v "\.$3 > " "$1" | grep -c "Flags \[R\]," ;;
	esac
}

# wrk_start OUT [wrk args...]: background load, bounded by -d; stop with wrk_stop.
# cleanup ends any still running (by PID: LOAD_PIDS).
# WRK_NICE=N: wrk runs at nice N (nice execs it: $WRK is still wrk's PID).
wrk_start() {
	local out=$1; shift
	if [ -n "${WRK_NICE:-}" ]; then
		nice -n "$WRK_NICE" wrk "$@" >"$out" 2>&1 &
	else
		wrk "$@" >"$out" 2>&1 &
	fi
	WRK=$!
	LOAD_PIDS="${LOAD_PIDS:-} $WRK"
}
# running PID: PID is alive (a child that exited but is not reaped yet is not).
running() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}
# wrk_stop: end the load $WRK by PID with SIGINT (wrk prints its totals), and
# reap it; bounded: after 10 s (scaled) SIGKILL, and a non-zero status.
wrk_stop() {
	local i
	kill -INT "$WRK" 2>/dev/null
	for i in $(seq "$(slow 100)"); do
		running "$WRK" || break
		sleep 0.1
	done
	if running "$WRK"; then
		echo "wrk $WRK still running $(slow 10) s after SIGINT: killed"
		kill -9 "$WRK" 2>/dev/null
		wait "$WRK" 2>/dev/null
		return 1
	fi
	wait "$WRK" 2>/dev/null
	return 0
}
# wrk_field OUT connect|read|write|timeout|non2xx|requests
wrk_field() {
	case $2 in
	requests) sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$1" ;;
	non2xx) sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$1" | grep . || echo 0 ;;
	*) sed -n "s/.*Socket errors:.* $2 \([0-9]*\).*/\1/p" "$1" | grep . || echo 0 ;;
	esac
}
# check_wrk_clean NAME OUT: wrk (its totals in OUT) made real load (over
# 1000 requests) and had no error of any class.
check_wrk_clean() {
	local reqs f
	reqs=$(wrk_field "$2" requests)
	check "$1: wrk made real load ($reqs requests)" test "${reqs:-0}" -gt 1000
	for f in connect read write timeout non2xx; do
		check_eq "$1: wrk $f errors" 0 "$(wrk_field "$2" $f)"
	done
}
# check_tcp_clean BEFORE AFTER: no refused connection attempt, established
# reset, accept-queue overflow or failed migration between two nstat_snap.
check_tcp_clean() {
	local k
	for k in TcpAttemptFails TcpEstabResets TcpExtListenOverflows TcpExtTCPMigrateReqFailure; do
		check_eq "$k" 0 "$(nstat_delta "$1" "$2" $k)"
	done
}
