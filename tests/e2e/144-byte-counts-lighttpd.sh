#!/bin/bash
# SPDX-License-Identifier: MIT
# byte-counts = yes with an unmodified third-party server from Debian:
# lighttpd, socket-activated by baton (LISTEN_FDS), serving static files of
# 20 bytes and 300 KiB (the large one by sendfile(2)), to a python client
# that makes connections of one request (Connection: close) and keep-alive
# connections of three, request sizes of their own, and counts what it sent
# and what it received.  status --json must show exactly those sums for the
# version that served them, and after a deploy the new version counts its
# own from zero.  (e2e 143 proves the same
# with the demo server, and the refusals on a kernel without the
# tracepoints.)
. "$(dirname "$0")/lib.sh"
command -v lighttpd >/dev/null || { not_ok "lighttpd not installed (tools/deps.sh installs it)"; exit 1; }

have=$("$BATON" features --json | jq -r '.[] | select(.name == "sock_{recv,send}_length") | .supported')
if [ "$have" != true ]; then
	echo "this kernel lacks sock_recv_length / sock_send_length (Linux 6.3): e2e 143 tests the refusals"
	exit 0
fi

mkdir -p "$T/www"
printf 'hello from lighttpd\n' >"$T/www/small.html"
head -c $((300 * 1024)) /dev/urandom >"$T/www/large.bin"
lighttpd_activated_conf "server.max-keep-alive-requests = 100" 'server.network-backend = "sendfile"'
LIGHTTPD="/usr/sbin/lighttpd -D -f $T/lighttpd.conf"
EXEC=$LIGHTTPD write_conf "ready = tcp" "exit-signal = SIGINT" "drain-timeout = 8s" \
	"kill-after = 3s" "byte-counts = yes"
start_agent || exit 1
bytes_of() { "$BATON" status web --json | jq -c ".[0].versions[] | select(.version == $1) | .bytes"; }
check_eq "v1 counts from zero" '{"received":0,"sent":0}' "$(bytes_of 1)"

# client HOST N: N connections, even ones with one request (Connection:
# close, read to EOF), odd ones keep-alive with three (each response read by
# its Content-Length, then the client closes); the files alternate.  Prints
# "CONNS SENT RECEIVED BAD" (BAD: responses that were not a whole 200).
client() {
	python3 - "$1" "$2" "$(slow 5)" <<'PY'
import re, socket, sys
host, n, tmo = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sent = got = bad = 0
def request(path, i, close):
    return ("GET %s HTTP/1.1\r\nHost: baton\r\nX-Pad: %s\r\n%s\r\n"
            % (path, "x" * (5 * i + 1), "Connection: close\r\n" if close else "")).encode()
def read_response(s, buf):
    """One response from s (buf: bytes already read); returns (ok, rest, nread)."""
    nread = 0
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            return False, buf, nread
        buf += c
        nread += len(c)
    head, body = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\nContent-Length: (\d+)", head, re.I)
    if not head.startswith(b"HTTP/1.1 200") or not m:
        return False, b"", nread
    want = int(m.group(1))
    while len(body) < want:
        c = s.recv(65536)
        if not c:
            return False, b"", nread
        body += c
        nread += len(c)
    return True, body[want:], nread
for i in range(n):
    path = "/large.bin" if i % 4 >= 2 else "/small.html"
    with socket.create_connection((host, 8080), timeout=tmo) as s:
        if i % 2 == 0:
            req = request(path, i, True)
            s.sendall(req)
            sent += len(req)
            ok, rest, nread = read_response(s, b"")
            got += nread
            while c := s.recv(65536):  # then the server's close
                got += len(c)
                ok = False
            bad += not ok or rest != b""
            continue
        rest = b""
        for k in range(3):
            req = request(path, i + k, False)
            s.sendall(req)
            sent += len(req)
            ok, rest, nread = read_response(s, rest)
            got += nread
            bad += not ok
print(n, sent, got, bad)
PY
}

# check_counts V FILE...: V's bytes are exactly the clients' sums in FILEs.
check_counts() {
	local v=$1 s=0 r=0 f
	shift
	for f in "$@"; do
		s=$((s + $(awk '{print $2}' "$f")))
		r=$((r + $(awk '{print $3}' "$f")))
	done
	check_eq "status: v$v received exactly what its clients sent, and sent what they received" \
		"$(printf '{"received":%d,"sent":%d}' "$s" "$r")" "$(bytes_of "$v")"
}

client 127.0.0.1 40 >"$T/c1.4"
client ::1 40 >"$T/c1.6"
cat "$T/c1.4" "$T/c1.6"
check_eq "v1: every response was a whole 200" "0 0" "$(awk '{print $4}' "$T/c1.4" "$T/c1.6" | xargs)"
check "v1 served real volume ($(awk '{s += $3} END {print s}' "$T/c1.4" "$T/c1.6") bytes)" \
	test "$(awk '{s += $3} END {print s}' "$T/c1.4" "$T/c1.6")" -gt $((10 * 300 * 1024))
check_counts 1 "$T/c1.4" "$T/c1.6"

# shellcheck disable=SC2086 # LIGHTTPD is a command line
out=$(timeout "$(slow 30)" "$BATON" deploy web -- $LIGHTTPD 2>&1)
check "deploy v2 (lighttpd again)" test $? = 0 || echo "$out"
check_eq "v2 is active" 2 "$(active_version)"
check_eq "v2 counts from zero" '{"received":0,"sent":0}' "$(bytes_of 2)"
client 127.0.0.1 24 >"$T/c2"
check_eq "v2: every response was a whole 200" 0 "$(awk '{print $4}' "$T/c2")"
check_counts 2 "$T/c2"
exit 0
