#!/bin/bash
# SPDX-License-Identifier: MIT
# An adopted server cannot be moved into a cgroup, but the kill-after bound
# still reaches its whole tree: Debian's nginx (a master and 2 workers)
# adopted as v1, frozen (SIGSTOP, every process) with requests queued, then
# replaced by an adopted nginx v2: at drain-timeout + kill-after baton kills
# the master and both workers (found at adoption), and every queued request
# is answered by v2.
. "$(dirname "$0")/lib.sh"
command -v nginx >/dev/null || { not_ok "nginx not installed (tools/deps.sh installs it)"; exit 1; }

NGINX_PIDS=()
nginx_start() {
	cat >"$T/nginx.v$1.conf" <<EOC
worker_processes 2;
pid $T/nginx.v$1.pid;
error_log $T/nginx.v$1.err warn;
events { worker_connections 1024; }
http {
	access_log off;
	server {
		listen 127.0.0.1:8080 reuseport;
		location / { return 200 "version=v$1 nginx\n"; }
	}
}
EOC
	nginx -c "$T/nginx.v$1.conf" || return 1
	for _ in $(seq 50); do [ -s "$T/nginx.v$1.pid" ] && break; sleep 0.1; done
	NGINX_PIDS+=("$(cat "$T/nginx.v$1.pid")")
}
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
v1tree=$(tree "$v1" | tr '\n' ' ')
check_eq "nginx v1 has a master and 2 workers" 3 "$(wc -w <<<"$v1tree")"
write_conf "adopt = yes" "exit-signal = SIGQUIT" "drain-policy = signal-then-wait" \
	"drain-timeout = 1s" "kill-after = 1s" "ready-timeout = 5s"
sed -i -e '/^exec = /d' -e '/^listen = \[::1\]/d' "$T/web.conf"
"$BATON" agent -d -f "$T/web.conf" >>"$T/agent.log" 2>&1 &
AGENT=$!
disown "$AGENT"
for _ in $(seq 100); do "$BATON" status >/dev/null 2>&1 && break; sleep 0.1; done
check "adopt nginx v1" "$BATON" adopt web --pid "$v1"
check "v1 serves" only_version http://127.0.0.1:8080/ v1 5

# shellcheck disable=SC2086
kill -STOP $v1tree
N=10
for i in $(seq $N); do
	curl -s --max-time 20 -o "$T/q.$i" http://127.0.0.1:8080/ &
	LOAD_PIDS="${LOAD_PIDS:-} $!"
done
for _ in $(seq 50); do
	q=$(ss -Hltn 'sport = :8080' | awk '$2 > 0 {s += $2} END {print s + 0}')
	[ "$q" -ge $N ] && break
	sleep 0.1
done
check_eq "all $N requests queued on frozen v1" "$N" "$q"
nginx_start 2 || { not_ok "nginx v2 starts"; exit 1; }
check "deploy --adopt-pid v2" "$BATON" deploy web --adopt-pid "$(cat "$T/nginx.v2.pid")"
# shellcheck disable=SC2086
check "v1's master and both workers are killed at the bound" wait_gone 8 $v1tree
check "the agent killed the adopted tree" grep -q "web v1: SIGKILL to the 3 process(es) of its adopted tree" "$T/agent.log"
for p in $LOAD_PIDS; do wait "$p"; done
LOAD_PIDS=
v2=0
for i in $(seq $N); do grep -q '^version=v2 ' "$T/q.$i" && v2=$((v2 + 1)); done
check_eq "every queued request was answered by v2" "$N" "$v2"
