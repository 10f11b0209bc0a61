#!/bin/bash
# SPDX-License-Identifier: MIT
# drain-http = close with two unmodified third-party HTTP/1.1 servers from
# Debian that keep keep-alive connections open and close the idle ones on
# their graceful stop: lighttpd, socket-activated by baton (LISTEN_FDS), and
# nginx (keepalive_requests 1000000), adopted.  Under wrk load, keep-alive
# and a new connection per request at once, DEPLOYS deploys each with the
# default drain policy: zero failed requests of every class, zero
# TcpAttemptFails and aborted connections.  Baseline in the same run, same
# load: each server's own graceful reload, DEPLOYS times, printed side by side.
. "$(dirname "$0")/lib.sh"
for b in lighttpd nginx; do
	command -v $b >/dev/null || { not_ok "$b not installed (tools/deps.sh installs it)"; exit 1; }
done

DEPLOYS=${DEPLOYS:-5}
LOAD_S=$((DEPLOYS * 45 + 30))
SERVER_PIDS=()
tree() { local p=$1; echo "$p"; cat "/proc/$p/task/$p/children" 2>/dev/null | tr ' ' '\n' | grep .; }
servers_cleanup() {
	local m p
	for m in "${SERVER_PIDS[@]}"; do
		for p in $(tree "$m"); do kill -9 "$p" 2>/dev/null; done
	done
}
trap 'servers_cleanup; cleanup' EXIT

mkdir -p "$T/www"
printf 'hello from lighttpd\n' >"$T/www/index.html"
# lighttpd_conf PORT SOCKET_ACTIVATION: keep-alive without a request limit;
# graceful stop (SIGINT) and restart (SIGUSR1) close idle keep-alive
# connections at once.
lighttpd_conf() {
	cat >"$T/lighttpd.$1.conf" <<EOC
server.document-root = "$T/www"
server.port = $1
server.bind = "127.0.0.1"
\$SERVER["socket"] == "[::1]:$1" { }
server.systemd-socket-activation = "$2"
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 60
server.max-connections = 4096
server.feature-flags += ("server.graceful-shutdown-timeout" => 8)
server.errorlog = "$T/lighttpd.$1.err"
server.pid-file = "$T/lighttpd.$1.pid"
EOC
}
nginx_conf() {
	cat >"$T/nginx.$1.conf" <<EOC
worker_processes 2;
pid $T/nginx.$1.pid;
error_log $T/nginx.$1.err warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$2 reuseport;
		listen [::1]:$2 reuseport;
		location / { return 200 "version=v$1 nginx\n"; }
	}
}
EOC
}
nginx_start() {
	nginx_conf "$1" "$2"
	nginx -c "$T/nginx.$1.conf" || return 1
	for _ in $(seq 50); do [ -s "$T/nginx.$1.pid" ] && break; sleep 0.1; done
	SERVER_PIDS+=("$(cat "$T/nginx.$1.pid")")
}

# load_start NAME PORT [PATH] / load_stop NAME: keep-alive and connection-per-request wrk at once.
load_start() {
	nstat_snap "$T/nstat.before.$1"
	wrk_start "$T/wrk.ka.$1" -t1 -c40 -d${LOAD_S}s --timeout 5s "http://127.0.0.1:$2/${3:-}"
	KA=$WRK
	wrk_start "$T/wrk.cl.$1" -t1 -c10 -d${LOAD_S}s --timeout 5s -H "Connection: close" \
		"http://127.0.0.1:$2/${3:-}"
	CL=$WRK
	sleep 1
}
load_stop() {
	sleep 1
	nstat_snap "$T/nstat.after.$1"
	check "$1: the loads outlasted the deploys" running "$KA"
	WRK=$KA wrk_stop
	WRK=$CL wrk_stop
}
failed() {
	local f n=0
	for f in connect read write timeout non2xx; do n=$((n + $(wrk_field "$1" $f))); done
	echo $n
}
# assert_clean NAME: zero failures under baton.
assert_clean() {
	local w k reqs
	for w in ka cl; do
		reqs=$(wrk_field "$T/wrk.$w.$1" requests)
		check "$1: wrk $w made real load ($reqs requests)" test "${reqs:-0}" -gt 2000
		check_eq "$1: wrk $w failed requests" 0 "$(failed "$T/wrk.$w.$1")"
	done
	for k in TcpAttemptFails TcpEstabResets TcpExtTCPAbortOnData TcpExtTCPAbortOnClose \
		TcpExtListenDrops; do
		check_eq "$1: $k" 0 "$(nstat_delta "$T/nstat.before.$1" "$T/nstat.after.$1" $k)"
	done
}
# summary NAME: one run's figures as JSON (for make bench's servers part).
summary() {
	jq -nc --argjson ka "$(wrk_field "$T/wrk.ka.$1" requests)" \
		--argjson cl "$(wrk_field "$T/wrk.cl.$1" requests)" \
		--argjson fka "$(failed "$T/wrk.ka.$1")" --argjson fcl "$(failed "$T/wrk.cl.$1")" \
		--argjson af "$(nstat_delta "$T/nstat.before.$1" "$T/nstat.after.$1" TcpAttemptFails)" \
		--argjson er "$(nstat_delta "$T/nstat.before.$1" "$T/nstat.after.$1" TcpEstabResets)" \
		'{requests: ($ka + $cl), failed_keepalive: $fka, failed_conn_per_request: $fcl,
		  attempt_fails: $af, established_resets: $er}'
}
# side_by_side A B: the two runs' failures (and, with E2E_SIDE_BY_SIDE=FILE,
# one JSON line of both in FILE).
side_by_side() {
	[ -n "${E2E_SIDE_BY_SIDE:-}" ] &&
		jq -nc --arg server "${1%-baton}" --argjson baton "$(summary "$1")" \
			--argjson own "$(summary "$2")" --argjson deploys "$DEPLOYS" \
			'{server: $server, deploys: $deploys, baton: $baton, own: $own}' \
			>>"$E2E_SIDE_BY_SIDE"
	local w f k
	printf '%-30s %22s %22s\n' "" "$1" "$2"
	for w in ka cl; do
		for f in requests connect read write timeout non2xx; do
			printf '%-30s %22s %22s\n' "wrk $w $f" "$(wrk_field "$T/wrk.$w.$1" $f)" \
				"$(wrk_field "$T/wrk.$w.$2" $f)"
		done
	done
	for k in TcpAttemptFails TcpEstabResets TcpExtTCPAbortOnData TcpExtTCPAbortOnClose; do
		printf '%-30s %22s %22s\n' "$k" \
			"$(nstat_delta "$T/nstat.before.$1" "$T/nstat.after.$1" $k)" \
			"$(nstat_delta "$T/nstat.before.$2" "$T/nstat.after.$2" $k)"
	done
}

# ---- lighttpd under baton (socket activation), then its own graceful restart ----
lighttpd_conf 8080 enable
EXEC="/usr/sbin/lighttpd -D -f $T/lighttpd.8080.conf" write_conf "ready = tcp" \
	"exit-signal = SIGINT" "drain-timeout = 8s" "kill-after = 3s" "drain-http = close"
start_agent || exit 1
check "lighttpd answers under baton" grep -q "hello from lighttpd" \
	<<<"$(curl -s --max-time 2 http://127.0.0.1:8080/index.html)"
load_start lighttpd-baton 8080 index.html
bad=0
for i in $(seq "$DEPLOYS"); do
	oldpids=$(version_pids "$(active_version)")
	out=$(timeout 30 "$BATON" deploy web -- /usr/sbin/lighttpd -D -f "$T/lighttpd.8080.conf" 2>&1) ||
		{ bad=$((bad + 1)); echo "deploy $i: $out"; continue; }
	# shellcheck disable=SC2086
	wait_gone 15 $oldpids || bad=$((bad + 1))
done
load_stop lighttpd-baton
check_eq "lighttpd: every deploy succeeded and each old version exited" 0 "$bad"
"$BATON" shutdown --stop >/dev/null
wait_gone 15 "$AGENT"
AGENT=

lighttpd_conf 8081 disable
/usr/sbin/lighttpd -D -f "$T/lighttpd.8081.conf" &
SERVER_PIDS+=("$!")
disown "${SERVER_PIDS[-1]}"
for _ in $(seq 50); do curl -s --max-time 1 -o /dev/null http://127.0.0.1:8081/index.html && break; sleep 0.1; done
load_start lighttpd-own 8081 index.html
for _ in $(seq "$DEPLOYS"); do kill -USR1 "${SERVER_PIDS[-1]}"; sleep 2; done
load_stop lighttpd-own
assert_clean lighttpd-baton
side_by_side lighttpd-baton lighttpd-own

# ---- nginx adopted by baton, then nginx -s reload ----
nginx_start 1 8080 || { not_ok "nginx v1 starts"; exit 1; }
write_conf "adopt = yes" "exit-signal = SIGQUIT" "drain-timeout = 8s" "kill-after = 3s" \
	"ready-timeout = 5s" "drain-http = close"
sed -i '/^exec = /d' "$T/web.conf"
"$BATON" agent -d -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
AGENT=$!
disown "$AGENT"
for _ in $(seq 100); do "$BATON" status >/dev/null 2>&1 && break; sleep 0.1; done
check "adopt nginx v1" "$BATON" adopt web --pid "${SERVER_PIDS[-1]}"
load_start nginx-baton 8080
bad=0
for i in $(seq 2 $((DEPLOYS + 1))); do
	old=$(tree "${SERVER_PIDS[-1]}")
	nginx_start "$i" 8080 || { bad=$((bad + 1)); continue; }
	out=$(timeout 30 "$BATON" deploy web --adopt-pid "${SERVER_PIDS[-1]}" 2>&1) ||
		{ bad=$((bad + 1)); echo "deploy $i: $out"; continue; }
	# shellcheck disable=SC2086
	wait_gone 15 $old || bad=$((bad + 1))
done
load_stop nginx-baton
check_eq "nginx: every deploy succeeded and each old version exited" 0 "$bad"
"$BATON" shutdown >/dev/null
wait_gone 15 "$AGENT"
AGENT=
load_start nginx-own 8080
for _ in $(seq "$DEPLOYS"); do nginx -c "$T/nginx.$((DEPLOYS + 1)).conf" -s reload 2>/dev/null; sleep 2; done
load_stop nginx-own
assert_clean nginx-baton
side_by_side nginx-baton nginx-own

grep "drain-http:" "$T/agent.log" | sed 's/^/  /' | tail -8
rewritten=$(grep -o "[0-9]* response(s) rewritten" "$T/agent.log" | awk '{s+=$1} END {print s+0}')
check "responses were rewritten ($rewritten)" test "$rewritten" -gt 0
check "no drain fell back (every server spoke HTTP/1.x)" \
	test "$(grep -c "no response could be rewritten" "$T/agent.log")" = 0
