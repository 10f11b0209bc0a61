#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Smoke test for tools/demo-server: HTTP answers, keep-alive, pipelining,
# limits, drain on SIGTERM, socket activation and READY=1, /healthz, and
# the failures it can fake (--unhealthy-after-ms, --reset-every,
# --exit-after-ms).
#
# usage: tests/unit/demo_server_smoke.sh [path/to/demo-server]
#        (default build/demo-server; this script builds nothing)
#
# Runs in a private network namespace so that loopback ports cannot clash
# with anything else on the machine.  Needs bash, curl, python3, unshare, ip.
set -eu

BIN=${1:-build/demo-server}
case $BIN in
/*) ;;
*) BIN=$PWD/$BIN ;;
esac
if [ ! -x "$BIN" ]; then
	echo "demo_server_smoke: $BIN is not an executable (build it first)" >&2
	exit 2
fi

if [ "${DEMO_SMOKE_NETNS:-}" != 1 ]; then
	export DEMO_SMOKE_NETNS=1
	if unshare -n true 2>/dev/null; then
		exec unshare -n -- bash "$0" "$BIN"
	fi
	# not root: a user namespace gives us a network namespace all the same
	if unshare -rn true 2>/dev/null; then
		exec unshare -rn -- bash "$0" "$BIN"
	fi
	echo "demo_server_smoke: SKIP: cannot create a network namespace (run as root)" >&2
	exit 77
fi
ip link set lo up

TMP=$(mktemp -d)
PIDS=()
PASSED=0
FAILED=0

cleanup() {
	local p

	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

pass() {
	PASSED=$((PASSED + 1))
	echo "ok    $1"
}

fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL  $1${2:+: $2}"
}

# True while $1 runs; an exited child that bash has not reaped yet is a zombie, not alive.
alive() {
	local st

	[ -r "/proc/$1/stat" ] || return 1
	read -r st <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# wait_exit PID SECONDS: sets RC to the exit status, or returns 1 if still running.
wait_exit() {
	local i

	RC=
	for ((i = 0; i < $2 * 20; i++)); do
		alive "$1" || break
		sleep 0.05
	done
	if alive "$1"; then
		return 1
	fi
	RC=0
	wait "$1" 2>/dev/null || RC=$?
}

# start_server LOG ARGS...: background server, pid in SPID
start_server() {
	local log=$1

	shift
	"$BIN" "$@" 2>"$log" &
	SPID=$!
	PIDS+=("$SPID")
}

# stop_server: SIGTERM, bounded wait, SIGKILL as a last resort
stop_server() {
	kill -TERM "$SPID" 2>/dev/null || true
	if ! wait_exit "$SPID" 20; then
		kill -KILL "$SPID" 2>/dev/null || true
		wait_exit "$SPID" 1 || true
	fi
}

# wait_http PORT [MAX_TIME]: until the server answers HTTP (each try within MAX_TIME s, default 1)
wait_http() {
	local i

	for ((i = 0; i < 50; i++)); do
		if curl -s -o /dev/null --max-time "${2:-1}" "http://127.0.0.1:$1/"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

free_port() {
	python3 "$TMP/h.py" freeport
}

cat >"$TMP/h.py" <<'EOF'
# Helpers for the checks curl cannot express.
import os, signal, socket, sys, time


def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=3)
    s.settimeout(3)
    return s


class Reader:
    def __init__(self, s):
        self.s, self.buf = s, b""

    def more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self.more()
        hdr, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = hdr.decode().split("\r\n")
        h = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            h[k.strip().lower()] = v.strip()
        n = 0 if head else int(h["content-length"])
        while len(self.buf) < n:
            self.more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return int(lines[0].split()[1]), h, body.decode()

    def eof(self):
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return self.buf == b""
                self.buf += d
        except ConnectionResetError:
            return False


def req(method="GET", path="/", extra=""):
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def check(cond, msg):
    if not cond:
        print(msg)
        sys.exit(1)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeport":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    elif cmd == "head":
        # HEAD gets the headers of a GET, Content-Length included, and not one body byte
        s = connect(args[0])
        s.sendall(req("HEAD", "/h", "Connection: close\r\n"))
        r = Reader(s)
        st, h, _ = r.response(head=True)
        check(st == 200, f"status {st}")
        check(int(h.get("content-length", 0)) > 0, "no Content-Length")
        check(r.eof(), f"bytes after the head: {r.buf!r}")
    elif cmd == "pipeline":
        # three requests (one with a body) in two writes split mid-request
        data = (req("GET", "/1") + req("POST", "/2", "Content-Length: 5\r\n") + b"hello" +
                req("GET", "/3", "Connection: close\r\n"))
        s = connect(args[0])
        s.sendall(data[:30])
        time.sleep(0.1)
        s.sendall(data[30:])
        r = Reader(s)
        got = [r.response()[0] for _ in range(3)]
        check(got == [200, 405, 200], f"statuses {got}")
        check(r.eof(), "not closed after Connection: close")
    elif cmd == "http10":
        s = connect(args[0])
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        r = Reader(s)
        st, h, _ = r.response()
        check(st == 200 and h.get("connection") == "close", f"{st} {h}")
        check(r.eof(), "HTTP/1.0 connection not closed")
    elif cmd == "drain":
        # idle keep-alive connection survives SIGTERM; its next answer says close
        port, pid = args[0], int(args[1])
        s = connect(port)
        r = Reader(s)
        s.sendall(req())
        st, h, _ = r.response()
        check(st == 200 and h.get("connection") == "keep-alive", f"before: {st} {h}")
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(req())
        try:
            st, h, body = r.response()
        except (EOFError, ConnectionResetError) as e:
            check(False, f"idle connection closed on SIGTERM: {e}")
        check(st == 200 and h.get("connection") == "close", f"after: {st} {h}")
        check(f"pid={pid}" in body, f"body {body!r}")
        check(r.eof(), "not closed after the Connection: close answer")
    elif cmd == "drain-idle":
        # a client that never sends again is closed --drain-idle-ms after SIGTERM
        port, pid, ms = args[0], int(args[1]), int(args[2])
        s = connect(port)
        r = Reader(s)
        s.sendall(req())
        r.response()
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        check(r.eof(), "idle connection not closed cleanly")
        dt = (time.monotonic() - t0) * 1000
        check(ms * 0.8 <= dt <= ms + 1000, f"closed after {dt:.0f} ms, want ~{ms}")
    elif cmd == "resets":
        # --reset-every N: connections N, 2N, ... get a RST instead of an answer
        port, n, total = args[0], int(args[1]), int(args[2])
        for i in range(1, total + 1):
            s = connect(port)
            r = Reader(s)
            if i == n:
                # nothing happens before the first request is in
                s.settimeout(0.3)
                try:
                    d = s.recv(1)
                    check(False, f"connection {i}: {d!r} before any request")
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    check(False, f"connection {i}: reset before any request")
                s.settimeout(3)
            s.sendall(req())
            if i % n == 0:
                try:
                    r.response()
                    check(False, f"connection {i}: answered, want a reset")
                except ConnectionResetError:
                    pass
                except EOFError:
                    check(False, f"connection {i}: closed with FIN, want a reset")
            else:
                st, _, body = r.response()
                check(st == 200 and body.startswith("version="), f"connection {i}: {st}")
                # only the first request decides: a kept connection keeps working
                s.sendall(req())
                st, _, _ = r.response()
                check(st == 200, f"connection {i}, second request: {st}")
            s.close()
    elif cmd == "activate":
        # systemd's side of socket activation; exec keeps our pid for LISTEN_PID
        binary, port = args[0], int(args[1])
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(128)
        if ls.fileno() != 3:
            os.dup2(ls.fileno(), 3)
        os.set_inheritable(3, True)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                   LISTEN_FDNAMES="http")
        if len(args) > 2 and args[2] == "wrong-pid":
            env["LISTEN_PID"] = "1"
        os.execve(binary, [binary] + args[3:], env)
    elif cmd == "notify-recv":
        # systemd's side of sd_notify: print the first datagram
        path, out = args[0], args[1]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind("\0" + path[1:] if path.startswith("@") else path)
        open(out + ".bound", "w").close()
        s.settimeout(float(args[2]))
        try:
            data = s.recv(4096)
        except socket.timeout:
            sys.exit(1)
        with open(out, "wb") as f:
            f.write(data)
    else:
        sys.exit(f"unknown helper {cmd}")


main()
EOF

# ---- command line

out=$("$BIN" --help 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] && [[ $out == *--delay-ms* && $out == *--drain-idle-ms* &&
	$out == *--no-accept* && $out == *--unhealthy-after-ms* && $out == *--reset-every* &&
	$out == *--exit-after-ms* && $out == */healthz* ]]; then
	pass "--help lists the options, exit 0"
else
	fail "--help" "rc=$rc"
fi

out=$("$BIN" --frobnicate 2>&1) && rc=0 || rc=$?
if [ "$rc" = 2 ] && [[ $out == *--frobnicate* && $out == *"see --help"* ]]; then
	pass "unknown option names itself, exit 2"
else
	fail "unknown option" "rc=$rc: $out"
fi

out=$(env -u LISTEN_FDS -u LISTEN_PID "$BIN" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 2 ] && [[ $out == *--listen* ]]; then
	pass "no listener: exit 2 naming the fix"
else
	fail "no listener" "rc=$rc: $out"
fi

# ---- HTTP behaviour on one server

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
BATON_INSTANCE=7 start_server "$TMP/main.log" --listen "127.0.0.1:$PORT" --version smoke-1
if ! wait_http "$PORT"; then
	fail "server answers on 127.0.0.1:$PORT" "$(cat "$TMP/main.log")"
else
	body=$(curl -s --max-time 3 -D "$TMP/h" "$URL/any/path?q=1" || true)
	if [ "$body" = "version=smoke-1 instance=7 pid=$SPID" ]; then
		pass "GET body names version, instance and pid"
	else
		fail "GET body" "'$body'"
	fi
	if grep -qx $'X-Version: smoke-1\r' "$TMP/h" && grep -qx $'X-Instance: 7\r' "$TMP/h"; then
		pass "X-Version and X-Instance headers"
	else
		fail "identity headers" "$(tr -d '\r' <"$TMP/h")"
	fi

	out=$(curl -s --max-time 3 -w ' %{http_code}' "$URL/healthz" || true)
	out2=$(curl -s --max-time 3 -w ' %{http_code}' "$URL/healthz?deep=1" || true)
	if [ "$out" = $'ok\n 200' ] && [ "$out2" = $'ok\n 200' ]; then
		pass "GET /healthz and /healthz?deep=1: 200 ok"
	else
		fail "GET /healthz" "'$out' '$out2'"
	fi
	out=$(curl -s --max-time 3 -w ' %{http_code}' "$URL/healthzz" || true)
	if [ "$out" = "version=smoke-1 instance=7 pid=$SPID"$'\n 200' ]; then
		pass "GET /healthzz is an ordinary path"
	else
		fail "GET /healthzz" "'$out'"
	fi

	if curl -sv --max-time 3 "$URL/a" "$URL/b" 2>&1 >/dev/null | grep -q "Re-using"; then
		pass "keep-alive: curl reuses the connection"
	else
		fail "keep-alive"
	fi

	if msg=$(python3 "$TMP/h.py" head "$PORT"); then
		pass "HEAD: 200 with Content-Length and no body"
	else
		fail "HEAD" "$msg"
	fi

	code=$(curl -s -o /dev/null --max-time 3 -w '%{http_code}' -d 'hello=world' "$URL/" || true)
	if [ "$code" = 405 ]; then
		pass "POST with a body: 405"
	else
		fail "POST" "got $code"
	fi

	big=$(head -c 10240 /dev/zero | tr '\0' a)
	code=$(curl -s -o /dev/null --max-time 3 -w '%{http_code}' -H "X-Big: $big" "$URL/" || true)
	if [ "$code" = 431 ]; then
		pass "10 KiB header: 431"
	else
		fail "10 KiB header" "got $code"
	fi

	code=$(head -c $((1024 * 1024 + 1)) /dev/zero |
		curl -s -o /dev/null --max-time 5 -w '%{http_code}' --data-binary @- "$URL/" ||
		true)
	if [ "$code" = 413 ]; then
		pass "body over 1 MiB: 413"
	else
		fail "body over 1 MiB" "got $code"
	fi

	if msg=$(python3 "$TMP/h.py" pipeline "$PORT"); then
		pass "pipelined requests split across writes: 200, 405, 200"
	else
		fail "pipelining" "$msg"
	fi

	if msg=$(python3 "$TMP/h.py" http10 "$PORT"); then
		pass "HTTP/1.0 without keep-alive: Connection: close"
	else
		fail "HTTP/1.0" "$msg"
	fi

	if msg=$(python3 "$TMP/h.py" drain "$PORT" "$SPID"); then
		pass "SIGTERM: idle keep-alive connection answered with Connection: close"
	else
		fail "SIGTERM drain" "$msg"
	fi
	if wait_exit "$SPID" 10 && [ "$RC" = 0 ]; then
		pass "SIGTERM: exit 0 within 2 s"
	else
		fail "SIGTERM exit" "rc=${RC:-still running}"
	fi
fi
stop_server

# ---- drain of a client that never sends again

PORT=$(free_port)
start_server "$TMP/idle.log" --listen "127.0.0.1:$PORT" --drain-idle-ms 300
if wait_http "$PORT" && msg=$(python3 "$TMP/h.py" drain-idle "$PORT" "$SPID" 300) &&
	wait_exit "$SPID" 10 && [ "$RC" = 0 ]; then
	pass "SIGTERM: silent keep-alive client closed after --drain-idle-ms, exit 0"
else
	fail "drain idle" "${msg:-} $(cat "$TMP/idle.log")"
fi
stop_server

# ---- --delay-ms must not serialise connections: each of five concurrent requests
# takes about the delay by its own clock (curl's time_total), while served one after
# another the second would take twice the delay and the fifth five times.  Per request,
# not the whole batch's wall time, which a loaded machine stretches by process starts.

PORT=$(free_port)
start_server "$TMP/delay.log" --listen "127.0.0.1:$PORT" --delay-ms 1000
if wait_http "$PORT" 3; then
	cpids=()
	for i in 1 2 3 4 5; do
		curl -s -o "$TMP/d$i" -w '%{time_total}\n' --max-time 10 "http://127.0.0.1:$PORT/" \
			>"$TMP/t$i" &
		cpids+=($!)
		PIDS+=($!)
	done
	ok=1
	for p in "${cpids[@]}"; do
		wait "$p" || ok=0
	done
	times=$(cat "$TMP"/t[1-5] | tr '\n' ' ')
	slowest=$(cat "$TMP"/t[1-5] | awk '{ms = int($1 * 1000); if (ms > m) m = ms} END {print m + 0}')
	fastest=$(cat "$TMP"/t[1-5] | awk 'NR == 1 || $1 * 1000 < m {m = int($1 * 1000)} END {print m + 0}')
	if [ "$ok" = 1 ] && [ "$fastest" -ge 950 ] && [ "$slowest" -lt 2000 ] &&
		grep -q "^version=" "$TMP/d5"; then
		pass "--delay-ms 1000: five concurrent requests, each ${fastest}..${slowest} ms"
	else
		fail "--delay-ms" "ok=$ok, each request's time (s): $times"
	fi
else
	fail "--delay-ms server starts"
fi
stop_server

# ---- --unhealthy-after-ms

# The server's clock starts between t0 (before it is started) and t1 (its
# first answer): 503 never before t0 + 3000 ms, and by t1 + 3000 ms plus a
# margin.  Both from the test's clock, each on the safe side (a start slowed
# by ASan on a loaded machine took 1.5 s, and failed a bound from t0 alone).
PORT=$(free_port)
t0=$(date +%s%N)
start_server "$TMP/unhealthy.log" --listen "127.0.0.1:$PORT" --unhealthy-after-ms 3000
if wait_http "$PORT"; then
	t1=$(date +%s%N)
	code=$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" ||
		true)
	ms=$((($(date +%s%N) - t0) / 1000000))
	if [ "$code" = 200 ] && [ "$ms" -lt 3000 ]; then
		pass "--unhealthy-after-ms 3000: /healthz 200 at ${ms} ms"
	else
		fail "--unhealthy-after-ms: healthy at first" "$code at ${ms} ms"
	fi
	for ((i = 0; i < 100; i++)); do
		code=$(curl -s -o /dev/null --max-time 1 -w '%{http_code}' \
			"http://127.0.0.1:$PORT/healthz" || true)
		[ "$code" = 503 ] && break
		sleep 0.05
	done
	now=$(date +%s%N)
	ms=$(((now - t0) / 1000000)) ms1=$(((now - t1) / 1000000))
	if [ "$code" = 503 ] && [ "$ms" -ge 3000 ] && [ "$ms1" -lt 4000 ]; then
		pass "--unhealthy-after-ms 3000: /healthz 503 from ${ms} ms after the start (${ms1} ms after its first answer)"
	else
		fail "--unhealthy-after-ms: unhealthy later" "$code at ${ms} ms (${ms1} ms after its first answer)"
	fi
	out=$(curl -s --max-time 1 -w ' %{http_code}' "http://127.0.0.1:$PORT/" || true)
	if [ "$out" = "version=dev instance=0 pid=$SPID"$'\n 200' ]; then
		pass "--unhealthy-after-ms: other paths still 200"
	else
		fail "--unhealthy-after-ms: other paths" "'$out'"
	fi
else
	fail "--unhealthy-after-ms server starts" "$(cat "$TMP/unhealthy.log")"
fi
stop_server

# ---- --reset-every

out=$("$BIN" --listen 127.0.0.1:1 --reset-every 0 2>&1) && rc=0 || rc=$?
if [ "$rc" = 2 ] && [[ $out == *"--reset-every '0': expected a count"* ]]; then
	pass "--reset-every 0: usage error, exit 2"
else
	fail "--reset-every 0" "rc=$rc: $out"
fi

# Not wait_http: its probe would be an accepted connection, and the count must start at 1.
PORT=$(free_port)
start_server "$TMP/reset.log" --listen "127.0.0.1:$PORT" --reset-every 2
for ((i = 0; i < 50; i++)); do
	grep -q "ready" "$TMP/reset.log" && break
	sleep 0.1
done
rst0=$(nstat -asz TcpOutRsts | awk '$1 == "TcpOutRsts" {print $2}')
if msg=$(python3 "$TMP/h.py" resets "$PORT" 2 6 2>&1); then
	pass "--reset-every 2: connections 2, 4, 6 reset after their request, 1, 3, 5 served"
else
	fail "--reset-every 2" "$msg $(cat "$TMP/reset.log")"
fi
rst1=$(nstat -asz TcpOutRsts | awk '$1 == "TcpOutRsts" {print $2}')
if [ $((rst1 - rst0)) = 3 ]; then
	pass "--reset-every 2: 3 RSTs sent"
else
	fail "--reset-every 2: RSTs sent" "$((rst1 - rst0)), want 3"
fi
stop_server
if [ "${RC:-}" = 0 ] && grep -q "and 3 resets (--reset-every)" "$TMP/reset.log"; then
	pass "--reset-every 2: exit 0, 3 resets logged"
else
	fail "--reset-every 2: exit" "rc=${RC:-} $(tail -1 "$TMP/reset.log")"
fi

# ---- --exit-after-ms

out=$("$BIN" --listen 127.0.0.1:1 --exit-after-ms soon 2>&1) && rc=0 || rc=$?
if [ "$rc" = 2 ] && [[ $out == *"--exit-after-ms 'soon': expected milliseconds"* ]]; then
	pass "--exit-after-ms soon: usage error, exit 2"
else
	fail "--exit-after-ms soon" "rc=$rc: $out"
fi

PORT=$(free_port)
t0=$(date +%s%N)
start_server "$TMP/exit.log" --listen "127.0.0.1:$PORT" --exit-after-ms 800
if wait_http "$PORT"; then
	# an idle keep-alive connection would hold up a drain: not this exit
	exec {hold}<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' >&"$hold"
	if wait_exit "$SPID" 20; then
		ms=$((($(date +%s%N) - t0) / 1000000))
		if [ "$RC" = 3 ] && [ "$ms" -ge 800 ] && [ "$ms" -lt 2000 ] &&
			grep -q "with 1 open connection" "$TMP/exit.log"; then
			pass "--exit-after-ms 800: exit 3 at ${ms} ms with a connection open"
		else
			fail "--exit-after-ms" "rc=$RC at ${ms} ms: $(tail -1 "$TMP/exit.log")"
		fi
	else
		fail "--exit-after-ms" "still running after 3 s"
	fi
	exec {hold}<&-
else
	fail "--exit-after-ms server starts" "$(cat "$TMP/exit.log")"
fi
stop_server

# ---- socket activation

PORT=$(free_port)
BATON_VERSION=act python3 "$TMP/h.py" activate "$BIN" "$PORT" ok 2>"$TMP/act.log" &
SPID=$!
PIDS+=("$SPID")
if wait_http "$PORT" &&
	[ "$(curl -s --max-time 3 "http://127.0.0.1:$PORT/" || true)" = \
		"version=act instance=0 pid=$SPID" ]; then
	pass "socket activation: serves fd 3 as LISTEN_PID"
else
	fail "socket activation" "$(cat "$TMP/act.log")"
fi
stop_server
if [ "${RC:-}" = 0 ]; then
	pass "socket activation: SIGTERM exit 0"
else
	fail "socket activation exit" "rc=${RC:-}"
fi

PORT=$(free_port)
python3 "$TMP/h.py" activate "$BIN" "$PORT" wrong-pid 2>"$TMP/act2.log" &
SPID=$!
PIDS+=("$SPID")
if wait_exit "$SPID" 20 && [ "$RC" = 2 ] &&
	grep -q "LISTEN_PID=1 is not this process" "$TMP/act2.log"; then
	pass "socket activation: fds for another LISTEN_PID are ignored"
else
	fail "LISTEN_PID mismatch" "rc=${RC:-} $(cat "$TMP/act2.log")"
fi

# ---- readiness notification

# notify_case NAME SOCKET SERVER-ARGS...: a server on $PORT sends READY=1 and MAINPID to SOCKET
notify_case() {
	local name=$1 sock=$2 out=$TMP/notify.$RANDOM i rpid

	shift 2
	python3 "$TMP/h.py" notify-recv "$sock" "$out" 5 &
	rpid=$!
	PIDS+=("$rpid")
	for ((i = 0; i < 50; i++)); do
		[ -e "$out.bound" ] && break
		sleep 0.05
	done
	NOTIFY_SOCKET=$sock start_server "$TMP/notify.log" --listen "127.0.0.1:$PORT" "$@"
	if wait_exit "$rpid" 6 && [ "$RC" = 0 ] &&
		[ "$(cat "$out")" = "READY=1"$'\n'"MAINPID=$SPID" ]; then
		pass "$name"
	else
		fail "$name" "$(cat "$out" 2>/dev/null) $(cat "$TMP/notify.log")"
	fi
}

PORT=$(free_port)
notify_case "NOTIFY_SOCKET path: READY=1 and MAINPID" "$TMP/notify.sock"
stop_server
PORT=$(free_port)
notify_case "NOTIFY_SOCKET abstract @name, after --ready-delay-ms" "@demo-smoke-$$" \
	--ready-delay-ms 200
stop_server

# --no-accept still says READY=1 but never answers
PORT=$(free_port)
notify_case "--no-accept: READY=1 still sent" "$TMP/notify2.sock" --no-accept
rc=0
curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" || rc=$?
if [ "$rc" = 28 ]; then
	pass "--no-accept: requests time out"
else
	fail "--no-accept" "curl exit $rc"
fi
stop_server

rm -f "$TMP/ready.out"
python3 "$TMP/h.py" notify-recv "$TMP/notify3.sock" "$TMP/ready.out" 2 &
rpid=$!
PIDS+=("$rpid")
for ((i = 0; i < 50; i++)); do
	[ -e "$TMP/ready.out.bound" ] && break
	sleep 0.05
done
NOTIFY_SOCKET=$TMP/notify3.sock start_server "$TMP/fail.log" --listen "127.0.0.1:$(free_port)" \
	--ready-delay-ms 100 --fail-ready
if wait_exit "$SPID" 20 && [ "$RC" = 3 ] && wait_exit "$rpid" 20 && [ ! -e "$TMP/ready.out" ]; then
	pass "--fail-ready: exit 3 without READY=1"
else
	fail "--fail-ready" "rc=${RC:-}"
fi

# ---- sanitizer reports, when built with them

if grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$TMP"/*.log; then
	fail "sanitizer reports in server logs"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
