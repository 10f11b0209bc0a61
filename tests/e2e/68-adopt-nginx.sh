#!/bin/bash
# SPDX-License-Identifier: MIT
# Adopting an unmodified server: Debian's nginx with `listen ... reuseport`,
# 2 workers.  baton adopts the running v1, a second nginx (v2, its own
# config and pid file) joins the reuseport group and gets nothing until baton
# places its sockets, then `baton deploy --adopt-pid` switches to it under
# wrk load (keep-alive and a new connection per request); v1 is signalled
# (SIGQUIT, nginx's graceful stop) only once its last connection is gone.
# Zero failed requests.  Baseline in the same run: `nginx -s reload`.
. "$(dirname "$0")/lib.sh"
command -v nginx >/dev/null || { echo "nginx not installed (tools/deps.sh installs it)"; not_ok "nginx"; exit 1; }

NGINX_PIDS=()
# nginx_conf N: a config whose answer names version vN.
nginx_conf() {
	cat >"$T/nginx.v$1.conf" <<EOC
worker_processes 2;
pid $T/nginx.v$1.pid;
error_log $T/nginx.v$1.err warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100;
	server {
		listen 127.0.0.1:8080 reuseport;
		listen [::1]:8080 reuseport;
		location / { return 200 "version=v$1 nginx\n"; }
	}
}
EOC
}
nginx_start() {
	nginx_conf "$1"
	nginx -c "$T/nginx.v$1.conf" || return 1
	for _ in $(seq 50); do [ -s "$T/nginx.v$1.pid" ] && break; sleep 0.1; done
	NGINX_PIDS+=("$(cat "$T/nginx.v$1.pid")")
}
# The master and its workers.
tree() { local p=$1; echo "$p"; cat "/proc/$p/task/$p/children" 2>/dev/null | tr ' ' '\n' | grep .; }
nginx_cleanup() {
	local m p
	for m in "${NGINX_PIDS[@]}"; do
		for p in $(tree "$m"); do kill -9 "$p" 2>/dev/null; done
	done
}
trap 'nginx_cleanup; cleanup' EXIT

nginx_start 1 || { not_ok "nginx v1 starts"; exit 1; }
v1=$(cat "$T/nginx.v1.pid")
v1tree=$(tree "$v1")
check_eq "nginx v1 has a master and 2 workers" 3 "$(wc -w <<<"$v1tree")"
write_conf "adopt = yes" "exit-signal = SIGQUIT" "drain-policy = wait-then-signal" \
	"drain-timeout = 20s" "kill-after = 5s" "ready-timeout = 5s"
sed -i '/^exec = /d' "$T/web.conf"
"$BATON" agent -d -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
AGENT=$!
disown "$AGENT"
for _ in $(seq 100); do "$BATON" status >/dev/null 2>&1 && break; sleep 0.1; done
out=$("$BATON" adopt web --pid "$v1" 2>&1)
check "adopt nginx v1" grep -q "adopted process $v1 as v1 (2 listener(s) per address)" <<<"$out"
check_eq "v1 is active" 1 "$(active_version)"
check "it still serves, over IPv4" only_version http://127.0.0.1:8080/ v1 10
check "and IPv6" only_version "http://[::1]:8080/" v1 5

nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c20 -d300s --timeout 5s http://127.0.0.1:8080/
KA=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" http://127.0.0.1:8080/
CL=$WRK
sleep 1
nginx_start 2 || { not_ok "nginx v2 starts"; exit 1; }
v2=$(cat "$T/nginx.v2.pid")
check "v2's sockets joined the group but get no connection before baton places them" \
	only_version http://127.0.0.1:8080/ v1 20
out=$("$BATON" deploy web --adopt-pid "$v2" 2>&1); rc=$?
echo "$out"
check_eq "deploy --adopt-pid v2 succeeds" 0 $rc
check "new connections reach v2" only_version http://127.0.0.1:8080/ v2 10
check "IPv6 too" only_version "http://[::1]:8080/" v2 5
# shellcheck disable=SC2086
check "v1's master and workers exit (SIGQUIT once its connections are gone)" wait_gone 25 $v1tree
check "v1 was signalled only when empty" grep -q "web v1: last connection closed; signalled" "$T/agent.log"
sleep 1
nstat_snap "$T/nstat.after"
WRK=$KA wrk_stop
WRK=$CL wrk_stop
cat "$T/wrk.ka" "$T/wrk.cl"
base=0
for w in ka cl; do
	n=0
	for f in connect read write timeout non2xx; do n=$((n + $(wrk_field "$T/wrk.$w" $f))); done
	echo "baton adopt+deploy, $w: $n failed of $(wrk_field "$T/wrk.$w" requests)"
	check_eq "$w: zero failed requests across the switch" 0 "$n"
done
check_eq "TcpAttemptFails" 0 "$(nstat_delta "$T/nstat.before" "$T/nstat.after" TcpAttemptFails)"

# Errors: a pid that does not exist; a process without a listener there.
out=$("$BATON" deploy web --adopt-pid 999999 2>&1)
check "a missing pid is named" grep -q "no process 999999" <<<"$out"
sleep 1000 & sl=$!
out=$("$BATON" deploy web --adopt-pid $sl 2>&1)
kill $sl
check "a process without a listener is named" grep -q "process $sl has no listening socket on 127.0.0.1:8080" <<<"$out"
check_eq "v2 stays active" 2 "$(active_version)"

# Baseline: nginx's own reload with reuseport, same load, 5 reloads (nginx only, no baton).
"$BATON" shutdown >/dev/null
wait_gone 5 "$AGENT"
AGENT=
wrk_start "$T/wrk.rl.ka" -t1 -c20 -d300s --timeout 5s http://127.0.0.1:8080/
KA=$WRK
wrk_start "$T/wrk.rl.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" http://127.0.0.1:8080/
CL=$WRK
sleep 1
for _ in 1 2 3 4 5; do nginx -c "$T/nginx.v2.conf" -s reload; sleep 1; done
WRK=$KA wrk_stop
WRK=$CL wrk_stop
for w in ka cl; do
	n=0
	for f in connect read write timeout non2xx; do n=$((n + $(wrk_field "$T/wrk.rl.$w" $f))); done
	echo "baseline nginx -s reload x5, $w: $n failed of $(wrk_field "$T/wrk.rl.$w" requests)"
done
