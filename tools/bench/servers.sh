#!/bin/bash
# SPDX-License-Identifier: MIT
# Part 11, servers: two unmodified third-party HTTP/1.1 servers from Debian
# that keep keep-alive connections open and close idle ones on their
# graceful stop (lighttpd, socket-activated by baton; nginx, adopted), each
# deployed DEPLOYS times by baton with drain-http = close under wrk load
# (keep-alive and a new connection per request at once), against the same
# server's own graceful reload DEPLOYS times under the same load, in the
# same run.  The work is tests/e2e/86-drain-http-servers.sh's (the test
# asserts baton's side is clean); this part reports both sides' figures.
# usage: tools/bench/servers.sh BUILD_DIR OUT_JSON
. "$(dirname "$0")/common.sh"
bench_enter "$@"
DEPLOYS=${BENCH_SERVER_DEPLOYS:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
cmd "DEPLOYS=$DEPLOYS tests/e2e/86-drain-http-servers.sh   (lighttpd and nginx: baton deploys with drain-http = close, then each server's own reload: lighttpd SIGUSR1, nginx -s reload; wrk -t1 -c40 keep-alive and wrk -t1 -c10 -H 'Connection: close' at once)"
log "$DEPLOYS deploys and $DEPLOYS reloads per server"
if ! BATON_BUILD=$B DEPLOYS=$DEPLOYS E2E_SIDE_BY_SIDE=$T/side.jsonl \
	bash "$here/tests/e2e/86-drain-http-servers.sh" >"$T/e2e.log" 2>&1; then
	log "the e2e run reported failures (baton's side not clean):"
	grep -E '^(FAIL|not ok)' "$T/e2e.log" >&2
fi
[ -s "$T/side.jsonl" ] || { cat "$T/e2e.log" >&2; exit 1; }
data servers "$(jq -s . "$T/side.jsonl")"
while read -r line; do
	srv=$(jq -r .server <<<"$line")
	fig() { # SIDE: "N failed of M (keep-alive K, conn/request C); A connects failed, E established reset"
		jq -r --arg s "$1" '.[$s] | "\(.failed_keepalive + .failed_conn_per_request) failed of \(.requests) (keep-alive \(.failed_keepalive), conn/request \(.failed_conn_per_request)); \(.attempt_fails) connects failed, \(.established_resets) established reset"' <<<"$line"
	}
	case $srv in
	lighttpd) own="lighttpd's own graceful restart (SIGUSR1)" ;;
	nginx) own="nginx -s reload" ;;
	*) own="$srv's own reload" ;;
	esac
	row "failed requests in $DEPLOYS deploys, $srv (drain-http = close)" "$(fig baton)" "$own: $(fig own)" \
		"$(jq -r '"baton \(.baton.failed_keepalive + .baton.failed_conn_per_request) vs \(.own.failed_keepalive + .own.failed_conn_per_request)"' <<<"$line")"
done <"$T/side.jsonl"
bench_finish
