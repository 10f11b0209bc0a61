# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers shared by the parts of `make bench` (tools/bench/PART.sh BUILD OUT).
#
# Each part re-executes itself in private network, PID and mount namespaces
# (bench_enter): its servers, proxies and loads live on a loopback of their
# own, and every process it starts dies with the namespace's first process
# at the latest.  Inside, it still ends what it started by PID (bench_cleanup),
# pins maps in a bpffs directory of its own, and writes one JSON file:
#   {"part", "date", "seconds", "rows": [{measure, baton, baseline, ratio}],
#    "data": {...}, "commands": [...]}
set -u

bench_enter() {
	if [ -z "${BENCH_IN_NS:-}" ]; then
		BENCH_IN_NS=1 exec unshare -n -p -f -m --mount-proc --kill-child=TERM -- /bin/bash "$0" "$@"
	fi
	PART=$(basename "$0" .sh)
	B=$(cd "${1:?usage: $0 BUILD_DIR OUT_JSON}" && pwd)
	OUT=${2:?usage: $0 BUILD_DIR OUT_JSON}
	BATON=$B/baton
	DEMO=$B/demo-server
	# shellcheck disable=SC2034 # used by the parts
	LOADGEN=$B/loadgen
	T=$(mktemp -d /tmp/baton-bench.XXXXXX)
	# run.sh sets BENCH_RUN so that it can sweep /sys/fs/bpf/BENCH_RUN-* after a part.
	BENCH_ID=${BENCH_RUN:-baton-bench}-$PART-${T##*.}
	BPFDIR=/sys/fs/bpf/$BENCH_ID
	export BATON_CONTROL=$T/control.sock
	BENCH_PIDS='' AGENT=''
	BENCH_T0=$EPOCHREALTIME
	: >"$T/rows.jsonl"
	: >"$T/commands"
	echo '{}' >"$T/data.json"
	trap bench_cleanup EXIT
	# As the namespace's first process, bash would ignore these otherwise.
	trap 'exit 130' INT
	trap 'exit 143' TERM
	ip link set lo up
	# Loopback clients need many ports; a new namespace starts with 28k.
	sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
	sysctl -qw net.core.somaxconn=4096
}

log() { echo "bench $PART: $*" >&2; }

# track PID...: end these by PID at cleanup (and before, with stop_pid).
track_pid() { BENCH_PIDS="$BENCH_PIDS $*"; }

# stop_pid PID [SIGNAL]: signal it, wait at most 5 s, then SIGKILL.
stop_pid() {
	local p=$1 sig=${2:-TERM}
	kill -"$sig" "$p" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	{
		kill -9 "$p"
		wait "$p"
	} 2>/dev/null
	return 0
}

# PIDs of the agent's children: they carry BENCH_ID in their environment.
marked_pids() {
	local f p
	for f in /proc/[0-9]*/environ; do
		p=${f#/proc/}
		p=${p%/environ}
		{ tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qx "BENCH_ID=$BENCH_ID" && echo "$p"
	done
}

stop_agent() {
	local p
	[ -n "$AGENT" ] && kill -9 "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
	AGENT=''
	for p in $(marked_pids); do kill -9 "$p" 2>/dev/null; done
	[ -d "$BPFDIR" ] && rm -rf "$BPFDIR"
	rm -rf "$T/run" # its state file would make the next agent take over the old services
	return 0
}

bench_cleanup() {
	local p
	exec 2>/dev/null # no job notices for what is killed here
	for p in $BENCH_PIDS; do kill -9 "$p" 2>/dev/null; done
	stop_agent
	wait 2>/dev/null
	# BENCH_KEEP=DIR keeps the part's files (logs, raw outputs) for a look.
	[ -n "${BENCH_KEEP:-}" ] && mkdir -p "$BENCH_KEEP" && cp -r "$T" "$BENCH_KEEP/"
	rm -rf "$T"
}

# agent_conf FILE: the [agent] section; services are appended by the caller.
agent_conf() {
	printf '[agent]\ncontrol = %s\nbpf-dir = %s\nrun-dir = %s\n' \
		"$T/control.sock" "$BPFDIR" "$T/run" >"$1"
}

# service_conf NAME LISTEN [KEY=VALUE...]: a demo-server service, marked for cleanup.
service_conf() {
	local name=$1 listen=$2 kv
	shift 2
	printf '[service %s]\nlisten = %s\nexec = %s\nenvironment = BENCH_ID=%s\n' \
		"$name" "$listen" "$DEMO" "$BENCH_ID"
	for kv in "$@"; do echo "$kv"; done
}

# start_agent CONF [SECONDS]: run it, wait (bounded) until every service has
# an active version whose instances are all ready.
start_agent() {
	local conf=$1 limit=${2:-10} end out
	"$BATON" agent -d -f "$conf" >>"$T/agent.log" 2>&1 &
	AGENT=$!
	end=$((SECONDS + limit))
	while [ $SECONDS -lt $end ]; do
		out=$("$BATON" status --json 2>/dev/null) && [ -n "$out" ] &&
			jq -e 'length > 0 and all(.[]; .active != null) and
				all(.[].versions[].processes[]; .ready)' <<<"$out" >/dev/null && return 0
		kill -0 "$AGENT" 2>/dev/null || break
		sleep 0.05
	done
	log "the agent did not come up within ${limit}s:"
	tail -20 "$T/agent.log" >&2
	return 1
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT.
wait_port() {
	local end=$((SECONDS + ${2:-10}))
	while [ $SECONDS -lt $end ]; do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}

# Process figures from /proc: resident KiB, peak resident KiB, CPU ns of all its threads
# (the scheduler's run time, exact).
rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '$1 == "VmHWM:" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
now() { echo "$EPOCHREALTIME"; }
# fdiv A B [DIGITS]: A / B
fdiv() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { if (b == 0) print "null"; else printf "%.*f\n", d, a / b }'; }

# nstat_snap FILE: every TCP counter of this namespace.
nstat_snap() { nstat -asz 2>/dev/null | awk '$1 ~ /^(Tcp|TcpExt)/ {print $1, $2}' >"$1"; }
# nstat_delta BEFORE AFTER NAME
nstat_delta() {
	awk -v n="$3" 'FNR == NR { if ($1 == n) a = $2; next } $1 == n { b = $2 } END { print b - a }' "$1" "$2"
}
NSTAT_FAILS="TcpAttemptFails TcpEstabResets TcpOutRsts TcpExtListenOverflows TcpExtListenDrops TcpExtTCPMigrateReqFailure TcpExtTCPAbortOnData TcpExtTCPAbortOnClose TcpExtTCPAbortOnTimeout"
# nstat_json BEFORE AFTER: the failure counters' deltas as a JSON object.
nstat_json() {
	local k
	for k in $NSTAT_FAILS; do echo "$k $(nstat_delta "$1" "$2" "$k")"; done |
		jq -Rn '[inputs | split(" ") | {(.[0]): (.[1] | tonumber)}] | add'
}

# wrk_json FILE: wrk's summary (--latency output) as JSON.
wrk_json() {
	awk '
	/requests in/ { req = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Socket errors:/ {
		for (i = 1; i <= NF; i++) {
			g = $(i + 1); sub(",", "", g)
			if ($i == "connect") c = g; if ($i == "read") r = g
			if ($i == "write") w = g; if ($i == "timeout") t = g
		}
	}
	/Non-2xx or 3xx responses:/ { n = $NF }
	$1 == "99%" { p99 = $2 }
	function us(s) {
		if (s ~ /us$/) return s + 0; if (s ~ /ms$/) return s * 1000
		if (s ~ /m$/) return s * 60e6; if (s ~ /s$/) return s * 1e6; return s + 0
	}
	END {
		printf "{\"requests\": %d, \"rps\": %.1f, \"connect\": %d, \"read\": %d, ", req, rps, c, r
		printf "\"write\": %d, \"timeout\": %d, \"non2xx\": %d, \"p99_us\": %.1f}\n", w, t, n, us(p99)
	}' "$1"
}

# cmd TEXT: record a command line for the report.
cmd() { echo "$*" >>"$T/commands"; }

# row MEASURE BATON BASELINE RATIO: one line of the table.
row() {
	jq -nc --arg m "$1" --arg b "$2" --arg base "$3" --arg r "$4" \
		'{measure: $m, baton: $b, baseline: $base, ratio: $r}' >>"$T/rows.jsonl"
}

# data KEY JSON: keep raw figures under data.KEY.
data() {
	jq --arg k "$1" --argjson v "$2" '.[$k] = $v' "$T/data.json" >"$T/data.tmp" &&
		mv "$T/data.tmp" "$T/data.json"
}

# bench_finish: write OUT.
bench_finish() {
	local secs
	secs=$(awk -v a="$BENCH_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	jq -n --arg part "$PART" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson secs "$secs" \
		--slurpfile rows "$T/rows.jsonl" --slurpfile data "$T/data.json" \
		--rawfile cmds "$T/commands" \
		'{part: $part, date: $date, seconds: $secs, rows: $rows, data: $data[0],
		  commands: ($cmds | split("\n") | map(select(length > 0)))}' >"$OUT"
}

# nginx_reuseport BODY: nginx with 2 workers on 127.0.0.1:8080 (reuseport),
# answering "return 200 BODY", in $T/nginx; sets NGINX_PID, tracked for cleanup.
# Reload it with nginx_reload.
nginx_reuseport() {
	mkdir -p "$T/nginx"
	cat >"$T/nginx.conf" <<-EOF
		worker_processes 2;
		pid $T/nginx.pid;
		error_log $T/nginx-error.log;
		events { worker_connections 4096; }
		http {
			access_log off;
			client_body_temp_path $T/nginx/body;
			proxy_temp_path $T/nginx/proxy;
			fastcgi_temp_path $T/nginx/fastcgi;
			uwsgi_temp_path $T/nginx/uwsgi;
			scgi_temp_path $T/nginx/scgi;
			server {
				listen 127.0.0.1:8080 reuseport backlog=4096;
				location / { return 200 "$1"; }
			}
		}
	EOF
	nginx -p "$T/nginx" -e "$T/nginx-error.log" -c "$T/nginx.conf" -g 'daemon off;' &
	NGINX_PID=$!
	track_pid "$NGINX_PID"
}
nginx_reload() { nginx -p "$T/nginx" -e "$T/nginx-error.log" -c "$T/nginx.conf" -s reload; }
