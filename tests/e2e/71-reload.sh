#!/bin/bash
# SPDX-License-Identifier: MIT
# The configuration directory and reload (baton reload, SIGHUP): one file per
# service in conf.d; an added service starts, a changed setting applies, a
# removed service drains and stops, an invalid or unsupported change is
# refused as a whole; the traffic of the service that stays is untouched
# (same processes, zero failed requests under wrk); and a restarted agent
# takes over the services a reload added.
. "$(dirname "$0")/lib.sh"

# web.conf keeps only [agent]; the services live in conf.d/.
write_conf "instances = 1" "ready = notify" "drain-policy = signal-then-wait" \
	"drain-timeout = 3s" "kill-after = 1s"
mkdir -p "$T/conf.d"
sed -n '/^\[service web\]/,$p' "$T/web.conf" >"$T/conf.d/web.conf"
sed -i '/^\[service web\]/,$d' "$T/web.conf"
start_agent || exit 1
check_eq "web runs from conf.d/web.conf" 1 "$(active_version)"
webpids=$(version_pids 1)
service_conf() { # NAME PORT
	printf '[service %s]\nlisten = 127.0.0.1:%s\nexec = %s --version-name %s\nenvironment = E2E_TEST_ID=%s\nready = notify\ndrain-policy = signal-then-wait\ndrain-timeout = 3s\nkill-after = 1s\n' \
		"$1" "$2" "$DEMO" "$1" "$TEST_ID"
}
"$DEMO" --help 2>&1 | grep -q -- --version-name || service_conf() {
	printf '[service %s]\nlisten = 127.0.0.1:%s\nexec = %s\nenvironment = E2E_TEST_ID=%s\nready = notify\ndrain-policy = signal-then-wait\ndrain-timeout = 3s\nkill-after = 1s\n' \
		"$1" "$2" "$DEMO" "$TEST_ID"
}
nstat_snap "$T/nstat.before"
wrk_start "$T/wrk.ka" -t1 -c20 -d300s --timeout 5s http://127.0.0.1:8080/
KA=$WRK
wrk_start "$T/wrk.cl" -t1 -c10 -d300s --timeout 5s -H "Connection: close" http://127.0.0.1:8080/
CL=$WRK
sleep 0.5

service_conf api 8081 >"$T/conf.d/api.conf"
out=$("$BATON" reload 2>&1)
echo "$out"
check "reload adds api" grep -q "reloaded: 1 added api, 0 removed, 0 changed, 1 unchanged" <<<"$out"
for _ in $(seq 50); do [ -n "$(served_by http://127.0.0.1:8081/)" ] && break; sleep 0.1; done
check_eq "api serves on 8081" v1 "$(served_by http://127.0.0.1:8081/)"

sed -i 's/^drain-timeout = 3s$/drain-timeout = 7s/' "$T/conf.d/web.conf"
kill -HUP "$AGENT"
for _ in $(seq 50); do grep -q "reloaded: 0 added, 0 removed, 1 changed web" "$T/agent.log" && break; sleep 0.1; done
check "SIGHUP reloads: web's settings changed" grep -q "reloaded: 0 added, 0 removed, 1 changed web, 1 unchanged" "$T/agent.log"
check_eq "the new drain-timeout applies" 7000 \
	"$("$BATON" status web --json | jq '.[0].settings.drain_timeout_ms')"

cp "$T/conf.d/api.conf" "$T/api.good"
echo "instanses = 2" >>"$T/conf.d/api.conf"
out=$("$BATON" reload 2>&1); rc=$?
check "an invalid configuration is refused" test $rc -ne 0
check "naming file and line" grep -q "reload refused, the running configuration stays: .*conf.d/api.conf:9: unknown key \"instanses\"" <<<"$out"
cp "$T/api.good" "$T/conf.d/api.conf"
sed -i 's/^listen = 127.0.0.1:8081$/listen = 127.0.0.1:8082/' "$T/conf.d/api.conf"
out=$("$BATON" reload 2>&1); rc=$?
check "a listen change of a running service is refused" test $rc -ne 0 -a -n "$(grep 'api changes its listen addresses' <<<"$out")"
cp "$T/api.good" "$T/conf.d/api.conf"
check_eq "api still serves after the refusals" v1 "$(served_by http://127.0.0.1:8081/)"

service_conf jobs 8083 >"$T/conf.d/jobs.conf"
check "add jobs" "$BATON" reload
for _ in $(seq 50); do [ -n "$(served_by http://127.0.0.1:8083/)" ] && break; sleep 0.1; done
# The agent dies and comes back: it takes over web, api and jobs by name.
kill -9 "$AGENT"; wait_gone 5 "$AGENT"
start_agent >/dev/null || not_ok "restart after reloads"
check "the restarted agent took the three services over" \
	test "$(grep -c 'took over 1 version(s)' "$T/agent.log")" -ge 3
check_eq "jobs still serves" v1 "$(served_by http://127.0.0.1:8083/)"

apipids=$("$BATON" status api --json | jq -r '.[0].versions[].processes[].pid')
rm "$T/conf.d/api.conf"
out=$("$BATON" reload 2>&1)
check "reload removes api" grep -q "0 added, 1 removed api" <<<"$out"
# shellcheck disable=SC2086
check "api's processes exit" wait_gone 8 $apipids
check "api is gone from status" test -z "$("$BATON" status --json | jq -r '.[] | select(.name == "api") | .name')"

check_eq "web kept its processes through everything" "$webpids" "$(version_pids 1)"
sleep 0.5
nstat_snap "$T/nstat.after"
WRK=$KA wrk_stop
WRK=$CL wrk_stop
cat "$T/wrk.ka" "$T/wrk.cl"
for w in ka cl; do
	for f in connect read write timeout non2xx; do
		check_eq "$w: wrk $f errors on web" 0 "$(wrk_field "$T/wrk.$w" $f)"
	done
done
check_eq "TcpAttemptFails" 0 "$(nstat_delta "$T/nstat.before" "$T/nstat.after" TcpAttemptFails)"
check "port 8081 is closed (after the count: this connect is refused)" \
	test -z "$(curl -s --max-time 1 http://127.0.0.1:8081/)"
